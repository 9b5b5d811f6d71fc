"""What crosses the wire for a remote model: the smallest honest form of each tensor.

Both sides derive the same `ModelWire` from the model's ONNX file and its catalog
contract, so `livecam serve`, the exported Triton repository and the client agree
without a side channel:

- an image input whose catalog `norm` is an affine map of 8-bit pixels
  (`x/255`, `(x/255-0.5)/0.5`, `(x-127.5)/127.5`, ...) travels as UINT8 in the
  model's own layout; the server applies `x = u8 * scale + shift` with the same
  float32 arithmetic the adapters use, so the model sees bit-identical input;
- every other float input and every output travels as FP16 (values here are in
  [-1, 1] or [0, 1]: FP16 is within 0.12 of an 8-bit level);
- shapes drop the batch dimension (Triton's `max_batch_size` owns it).

`WIRE_VERSION` changes whenever this mapping changes; a client and a server with
different versions refuse each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from livecam.errors import LivecamError

WIRE_VERSION = "livecam-remote/1"
INFO_MODEL = "livecam_info"  # served next to the models: JSON with versions and file hashes
INFO_OUTPUT = "info"
# Triton's restricted-protocol key that nvidia-pytriton protects its endpoints with; over gRPC it
# travels as the `triton-grpc-protocol-<key>` metadata header.
TOKEN_KEY = "triton-access-token"
TOKEN_HEADER = f"triton-grpc-protocol-{TOKEN_KEY}"

# catalog `norm` -> (scale, shift): model value = u8 * scale + shift. Written as the adapters write
# them (`scale / 255.0`) so the server's float32 result is the one a local adapter computes.
U8_NORMS = {
    "x/255": (1.0 / 255.0, 0.0),
    "(x/255-0.5)/0.5": (2.0 / 255.0, -1.0),
    "(x-127.5)/127.5": (1.0 / 127.5, -1.0),
    "(x-127.5)/128": (1.0 / 128.0, -127.5 / 128.0),
    "raw 0-255": (1.0, 0.0),
}
# How far (in 8-bit levels) a float input may sit off the 8-bit grid before the client says so.
OFF_GRID_LEVELS = 0.25


class RemoteError(LivecamError):
    """The remote inference server is unreachable, too slow, or serves something else."""


class RemoteUnavailable(RemoteError):
    """No answer from the server within the deadline (or it is down): the frame passes through."""


class RemoteContractError(RemoteError):
    """The server's model, its version or its wire contract differs from this client's."""

    exit_code = 3


@dataclass(frozen=True)
class TensorWire:
    name: str
    dtype: str  # Triton datatype on the wire: "UINT8" or "FP16"
    shape: tuple[int, ...]  # without the batch dimension; -1 = dynamic
    scale: float = 1.0  # UINT8 only: model value = u8 * scale + shift
    shift: float = 0.0

    @property
    def np_dtype(self):
        return np.uint8 if self.dtype == "UINT8" else np.float16


@dataclass(frozen=True)
class ModelWire:
    name: str
    inputs: tuple[TensorWire, ...]
    outputs: tuple[TensorWire, ...]

    def to_dict(self) -> dict:
        return {"version": WIRE_VERSION, "name": self.name,
                "inputs": [asdict(t) | {"shape": list(t.shape)} for t in self.inputs],
                "outputs": [asdict(t) | {"shape": list(t.shape)} for t in self.outputs]}

    @property
    def bytes_per_call(self) -> int:
        """Bytes of tensor data one single-item call sends and receives (static shapes)."""
        total = 0
        for t in self.inputs + self.outputs:
            n = int(np.prod([d for d in t.shape if d > 0])) if t.shape else 1
            total += n * np.dtype(t.np_dtype).itemsize
        return total


def _dims(value) -> list:
    return [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]


def graph_io(onnx_path: str | Path) -> tuple[list[tuple[str, list]], list[tuple[str, list]]]:
    """([(input name, dims)], [(output name, dims)]) of an ONNX file; initializers are not inputs."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    ins = [(v.name, _dims(v)) for v in model.graph.input if v.name not in inits]
    outs = [(v.name, _dims(v)) for v in model.graph.output]
    return ins, outs


def model_wire(name: str, onnx_path: str | Path, contract: dict | None = None) -> ModelWire:
    """The wire form of catalog model `name` (its file and catalog contract)."""
    ins, outs = graph_io(onnx_path)
    norms = {i.get("name"): i.get("norm", "") for i in (contract or {}).get("inputs", [])}
    inputs = []
    for iname, dims in ins:
        if not dims:
            raise RemoteContractError(f"model '{name}': input '{iname}' has no batch dimension",
                                      "only models with a leading batch dimension can be served remotely")
        u8 = U8_NORMS.get(norms.get(iname, ""))
        shape = tuple(int(d) if d > 0 else -1 for d in dims[1:])
        if u8 is not None and len(dims) == 4:
            inputs.append(TensorWire(iname, "UINT8", shape, scale=u8[0], shift=u8[1]))
        else:
            inputs.append(TensorWire(iname, "FP16", shape))
    outputs = tuple(TensorWire(oname, "FP16", tuple(int(d) if d > 0 else -1 for d in dims[1:]))
                    for oname, dims in outs)
    return ModelWire(name, tuple(inputs), outputs)


# -- the two ends of one tensor -------------------------------------------------------------------
def to_wire(t: TensorWire, x: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Client side: a model-space float array -> its wire array, and how far (levels) it sat off the
    8-bit grid (0 for FP16). `out` is an optional reusable buffer of the wire dtype and shape."""
    x = np.asarray(x)
    if t.dtype == "FP16":
        if out is None or out.shape != x.shape:
            return x.astype(np.float16), 0.0
        np.copyto(out, x, casting="unsafe")
        return out, 0.0
    levels = (x.astype(np.float32, copy=False) - np.float32(t.shift)) * np.float32(1.0 / t.scale)
    grid = np.rint(levels)
    off = float(np.abs(levels - grid).max()) if levels.size else 0.0
    np.clip(grid, 0, 255, out=grid)
    if out is None or out.shape != x.shape:
        out = np.empty(x.shape, np.uint8)
    np.copyto(out, grid, casting="unsafe")
    return out, off


def from_wire(t: TensorWire, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Server side: a wire array -> the float32 model input (UINT8: u8 * scale + shift, as the adapters do)."""
    if out is None or out.shape != a.shape:
        out = np.empty(a.shape, np.float32)
    if t.dtype == "UINT8":
        np.multiply(a, t.scale, out=out, casting="unsafe")
        if t.shift:
            out += t.shift
    else:
        np.copyto(out, a, casting="unsafe")
    return out


def parse_url(url: str) -> tuple[str, bool]:
    """`grpc://host:port` -> ("host:port", False); `grpcs://` -> TLS. A bare host:port is plaintext gRPC."""
    from livecam.errors import SettingsError

    text = url.strip()
    tls = text.startswith("grpcs://")
    for prefix in ("grpcs://", "grpc://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    else:
        if "://" in text:
            raise SettingsError(f"runtime.remote {url!r}: unknown scheme",
                                "use grpc://HOST:PORT (or grpcs://HOST:PORT for TLS), e.g. grpc://127.0.0.1:8001")
    host, sep, port = text.rstrip("/").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SettingsError(f"runtime.remote {url!r}: expected HOST:PORT",
                            "for example --set runtime.remote=grpc://127.0.0.1:8001")
    return f"{host}:{port}", tls
