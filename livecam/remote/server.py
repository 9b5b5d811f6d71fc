"""`livecam serve`: livecam's own model sessions behind a real Triton Inference Server.

The server is the one bundled in `nvidia-pytriton` (the `serve` extra): Triton
owns the network side (KServe v2 gRPC, dynamic batching, restricted-protocol
tokens, TLS); each model is a Triton Python-backend model whose requests
pytriton hands to this process, where livecam's `ModelLoader` session for that
model runs them on this machine's best rung (TensorRT -> CUDA -> CPU; swappers
keep the FP16-vs-FP32 check of `make_swapper`). A small `livecam_info` model
answers with the versions and file hashes, so clients refuse a server that
serves something else.

Not open by default: gRPC binds 127.0.0.1 unless `--host` says otherwise, and a
wider bind needs TLS (`--tls-cert/--tls-key`) or an access token (`--token`,
Triton's restricted protocol); the HTTP endpoint pytriton drives the server
through always stays on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livecam.errors import LivecamError, SettingsError
from livecam.remote.wire import INFO_MODEL, INFO_OUTPUT, WIRE_VERSION, from_wire, model_wire

log = logging.getLogger(__name__)

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# Every Triton endpoint but `health` needs the token when one is set.
TOKEN_ENDPOINTS = ["inference", "metadata", "model-config", "model-repository", "shared-memory", "statistics",
                   "trace", "logging"]


@dataclass
class ServeOptions:
    models: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8001
    token: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    max_batch: int = 8
    queue_delay_us: int = 500  # Triton waits at most this long to fill a batch


def check_exposure(host: str, token: str, tls_cert: str, tls_key: str) -> None:
    """Refuse a non-loopback bind without TLS or an access token (and half a TLS pair)."""
    if bool(tls_cert) != bool(tls_key):
        raise SettingsError("serve: TLS needs both --tls-cert and --tls-key",
                            "give both PEM files (certificate and private key)")
    for path in (tls_cert, tls_key):
        if path and not Path(path).is_file():
            raise SettingsError(f"serve: TLS file {path} does not exist", "give the PEM certificate and key files")
    if host not in LOCAL_HOSTS and not token and not tls_cert:
        raise SettingsError(
            f"serve: refusing to listen on {host} without TLS or an access token",
            "keep the default --host 127.0.0.1 and reach it through an SSH tunnel "
            "(ssh -N -L 8001:127.0.0.1:8001 gpu-host), or add --token SECRET "
            "(clients: --set runtime.remote_token=SECRET) and/or --tls-cert/--tls-key",
        )


def python_libdir_env() -> None:
    """Put this interpreter's libpython directory first on LD_LIBRARY_PATH for the server process.

    The Python-backend stub bundled with pytriton links `libpython3.x.so`; without this it finds
    the system's copy, whose stdlib differs from this interpreter's and the stub dies at start-up.
    Only the child processes read it (the dynamic loader reads it at exec).
    """
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ldlib = sysconfig.get_config_var("LDLIBRARY") or ""
    if not libdir or not (Path(libdir) / ldlib).is_file() or not ldlib.endswith(".so"):
        log.warning("this Python (%s) has no shared libpython in %s: Triton's Python-backend stub will load the "
                    "system's, which fails at start-up unless it is the same version; use a Python built with "
                    "--enable-shared (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared)", sys.executable, libdir or "?")
        return
    parts = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    if libdir not in parts:
        os.environ["LD_LIBRARY_PATH"] = ":".join([libdir, *parts])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServedModel:
    """One model: the Triton infer function around livecam's session for it."""

    def __init__(self, name: str, session, wire, sha256: str):
        self.name = name
        self.session = session
        self.wire = wire
        self.sha256 = sha256
        self.provider = str(getattr(session, "provider", "?"))
        self.precision = str(getattr(session, "precision", "fp32"))

    def infer(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """A batch [B, ...] per input -> a batch per output (FP16); the session runs one item at a time
        (the catalog models are exported with batch 1)."""
        first = next(iter(inputs.values()))
        batch = int(first.shape[0])
        outs: dict[str, np.ndarray] = {}
        for i in range(batch):
            feeds = {t.name: from_wire(t, inputs[t.name][i:i + 1]) for t in self.wire.inputs}
            results = self.session.run(feeds)
            for t, r in zip(self.wire.outputs, results):
                r = np.asarray(r)
                if t.name not in outs:
                    outs[t.name] = np.empty((batch, *r.shape[1:]), np.float16)
                outs[t.name][i] = r[0]
        return outs

    def info(self) -> dict:
        return {"sha256": self.sha256, "provider": self.provider, "precision": self.precision,
                "wire": self.wire.to_dict()}


def load_models(loader, names) -> list[ServedModel]:
    """livecam's own sessions for `names` (swappers through `make_swapper`, so the FP16 check runs here)."""
    from livecam.swap.swappers import make_swapper

    served = []
    for name in names:
        spec = loader.store.spec(name)
        path = loader.path(name)
        if spec.kind == "swapper":
            session = make_swapper(loader, name, fp16=loader.runtime.fp16).session
        else:
            session = loader.session(name)
        served.append(ServedModel(name, session, model_wire(name, path, spec.contract), loader.sha256(name)))
    return served


def info_payload(served: list[ServedModel]) -> dict:
    from livecam import __version__

    return {"wire": WIRE_VERSION, "livecam": __version__, "models": {m.name: m.info() for m in served}}


def _tensor(t):
    from pytriton.model_config import Tensor

    return Tensor(name=t.name, dtype=t.np_dtype, shape=tuple(t.shape))


def require_pytriton() -> None:
    try:
        import pytriton.triton  # noqa: F401
    except ImportError as exc:
        raise LivecamError(f"livecam serve needs Triton (nvidia-pytriton): {exc}",
                           'pip install -e ".[serve]" (Linux x86-64; the wheel bundles the Triton server)') from exc


def start_triton(served: list[ServedModel], opts: ServeOptions, workspace: str | None = None):
    """Start Triton with `served` bound and return the pytriton `Triton` (call `.serve()` or `.stop()`)."""
    require_pytriton()
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    check_exposure(opts.host, opts.token, opts.tls_cert, opts.tls_key)
    python_libdir_env()
    cfg = dict(grpc_address=opts.host, grpc_port=opts.port, http_address="127.0.0.1", http_port=free_port(),
               allow_metrics=False, allow_cpu_metrics=False, allow_gpu_metrics=False, exit_timeout_secs=15,
               log_verbose=0)
    if opts.tls_cert:
        cfg.update(grpc_use_ssl=True, grpc_server_cert=opts.tls_cert, grpc_server_key=opts.tls_key)
    security = TritonSecurityConfig(access_token=opts.token, restricted_endpoints=list(TOKEN_ENDPOINTS)) \
        if opts.token else None
    triton = Triton(config=TritonConfig(**cfg), workspace=workspace, security_config=security)
    try:
        triton.__enter__()
        for m in served:
            triton.bind(model_name=m.name, infer_func=batch(m.infer),
                        inputs=[_tensor(t) for t in m.wire.inputs], outputs=[_tensor(t) for t in m.wire.outputs],
                        config=ModelConfig(max_batch_size=opts.max_batch,
                                           batcher=DynamicBatcher(max_queue_delay_microseconds=opts.queue_delay_us)),
                        strict=True)
        payload = np.array([json.dumps(info_payload(served)).encode()], dtype=object)

        def info(requests):  # unbatched: pytriton passes the list of requests
            return [{INFO_OUTPUT: payload} for _ in requests]

        triton.bind(model_name=INFO_MODEL, infer_func=info,
                    inputs=[Tensor(name="query", dtype=np.uint8, shape=(1,))],
                    outputs=[Tensor(name=INFO_OUTPUT, dtype=bytes, shape=(1,))],
                    config=ModelConfig(batching=False))
        triton.run()
    except BaseException:
        triton.stop()
        raise
    return triton


def announce(line: str) -> None:
    """A status line on a line of its own, in one write (`commands.say_line`).

    The Triton server logs to the same stdout from its own threads. `print` writes the
    text and its newline separately, so under load a READY line landed inside one of
    Triton's lines (`... 23READY grpc://...`) and a script waiting for a line that starts
    with `READY` never saw it. The leading newline ends whatever partial line Triton left."""
    from livecam.commands import say_line

    sys.stdout.flush()
    say_line("\n" + line, sys.stdout)


def cmd_serve(args) -> int:
    from livecam.commands import load_settings
    from livecam.inference.models import ModelLoader

    settings = load_settings(args)
    names = tuple(args.models.split(",")) if args.models else tuple(settings.runtime.remote_models)
    if args.export_repo:
        from livecam.remote.export import export_repo

        loader = ModelLoader(dataclasses.replace(settings.runtime, remote=""), models_dir=args.models_dir)
        written = export_repo(loader, names, args.export_repo, max_batch=args.max_batch,
                              queue_delay_us=args.queue_delay_us)
        for name, path in written.items():
            print(f"{name:22s} {path}")
        print(f"{len(written)} models written to {args.export_repo} (Triton model repository, ONNX Runtime + "
              "TensorRT FP16, dynamic batching)")
        return 0
    token = args.token or os.environ.get("LIVECAM_REMOTE_TOKEN", "")
    opts = ServeOptions(models=names, host=args.host, port=args.port, token=token, tls_cert=args.tls_cert or "",
                        tls_key=args.tls_key or "", max_batch=args.max_batch, queue_delay_us=args.queue_delay_us)
    check_exposure(opts.host, opts.token, opts.tls_cert, opts.tls_key)  # before any model loads
    require_pytriton()
    # The server runs the models itself: never forward them to another server.
    loader = ModelLoader(dataclasses.replace(settings.runtime, remote=""), models_dir=args.models_dir)
    served = load_models(loader, names)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a script, the shell made SIGINT ignored; the server says
        # "kill -SIGINT <pid> to quit" (pytriton's banner, and the clean stop that unloads the
        # models and removes their copies), so SIGINT must stop it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    triton = start_triton(served, opts, workspace=getattr(args, "workspace", None))
    scheme = "grpcs" if opts.tls_cert else "grpc"
    try:  # from here a Ctrl-C/SIGINT is the clean stop, even one that comes right after READY
        announce(f"livecam serve: {', '.join(f'{m.name} ({m.provider})' for m in served)} on "
                 f"{scheme}://{opts.host}:{opts.port}" + (" (token required)" if token else ""))
        announce(f"READY {scheme}://{opts.host}:{opts.port}")
        triton.serve()
    except KeyboardInterrupt:
        pass
    finally:
        triton.stop()
    return 0
