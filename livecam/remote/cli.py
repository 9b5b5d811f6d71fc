"""`livecam serve`: the Triton server side of `runtime.remote` (and `--export-repo`)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from livecam.cli import add_common

    p = subparsers.add_parser(
        "serve", help="serve the heavy models from Triton Inference Server for remote clients",
        description="Start a Triton Inference Server (nvidia-pytriton, the `serve` extra) that runs livecam's own "
                    "sessions for the chosen models on this machine's best rung, with dynamic batching. Clients "
                    "use it with --set runtime.remote=grpc://HOST:PORT. Listens on 127.0.0.1 unless --host says "
                    "otherwise; a wider bind needs --token or --tls-cert/--tls-key.")
    add_common(p)
    p.add_argument("--models", metavar="A,B", help="models to serve (default: runtime.remote_models)")
    p.add_argument("--host", default="127.0.0.1", help="gRPC bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8001, help="gRPC port (default 8001)")
    p.add_argument("--token", metavar="SECRET", help="require this access token (env LIVECAM_REMOTE_TOKEN)")
    p.add_argument("--tls-cert", metavar="PEM", help="serve gRPC over TLS with this certificate")
    p.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    p.add_argument("--max-batch", type=int, default=8, metavar="N", help="dynamic batching: largest batch (8)")
    p.add_argument("--queue-delay-us", type=int, default=500, metavar="US",
                   help="dynamic batching: longest wait to fill a batch (500 us)")
    p.add_argument("--export-repo", metavar="DIR",
                   help="instead of serving: write a standard Triton model repository (ONNX Runtime backend, "
                        "TensorRT FP16, dynamic batching) for NVIDIA's Triton container or KServe")
    p.add_argument("--workspace", metavar="DIR", help=argparse.SUPPRESS)  # pytriton's model store (tests)
    p.set_defaults(func=_cmd)


def _cmd(args) -> int:
    from livecam.remote.server import cmd_serve

    return cmd_serve(args)
