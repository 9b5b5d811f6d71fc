"""A device stand-in runtime: swapper "models" whose maths runs on device arrays.

Drives the device-resident swap path (crop -> swapper -> guard -> masks -> temporal ->
paste on GPU arrays) without TensorRT or ONNX Runtime: the session takes the
backend's device arrays (CuPy on a GPU, `ops.counting.DeviceArray` in CPU tests) and
returns device arrays, like a TensorRT session or an ORT session with IO binding.
It refuses host arrays, so a host copy of a crop on the way to the model fails loudly.

Maths (as `standins.py`'s swappers): identity (output = target) or tint (output =
target + `tint` in the model's value range, clipped), plus hyperswap's soft mask.
"""

from __future__ import annotations

import numpy as np

from livecam.errors import ModelError

SWAPPER_IO = {  # name -> (size, input names, output names, value range lo, hi)
    "inswapper_128": (128, ["target", "source"], ["output"], 0.0, 1.0),
    "inswapper_128_fp16": (128, ["target", "source"], ["output"], 0.0, 1.0),
    "hyperswap_1a_256": (256, ["source", "target"], ["output", "mask"], -1.0, 1.0),
    "hyperswap_1b_256": (256, ["source", "target"], ["output", "mask"], -1.0, 1.0),
    "hyperswap_1c_256": (256, ["source", "target"], ["output", "mask"], -1.0, 1.0),
}


class DeviceStandinSession:
    """A `ModelSession` for a swapper whose model maths runs on `xp` (cupy, or the counting module)."""

    provider = "cuda"  # what a GPU session reports: the swap stage then stays on the device
    precision = "fp32"

    def __init__(self, name: str, xp, is_device, tint: float = 0.0):
        if name not in SWAPPER_IO:
            raise ModelError(f"no device stand-in for '{name}'", f"use one of {', '.join(SWAPPER_IO)}")
        self.name = name
        self.size, self.input_names, self.output_names, self.lo, self.hi = SWAPPER_IO[name]
        s = self.size
        self.input_shapes = {"target": [1, 3, s, s], "source": [1, 512]}
        self._xp, self._is_device, self.tint = xp, is_device, float(tint)
        self.calls = 0
        self._mask = None

    def run(self, feeds: dict) -> list:
        for name, arr in feeds.items():
            if not self._is_device(arr):
                raise TypeError(f"{self.name}: input '{name}' is a host array; the device path must bind device arrays")
        xp = self._xp
        self.calls += 1
        out = feeds["target"].copy()
        if self.tint:
            out += self.tint * (self.hi - self.lo)
            xp.clip(out, self.lo, self.hi, out=out)
        if len(self.output_names) == 1:
            return [out]
        if self._mask is None:
            s = self.size
            y, x = np.mgrid[0:s, 0:s] / s
            ellipse = ((x - 0.5) ** 2 / 0.16 + (y - 0.5) ** 2 / 0.2 < 1).astype(np.float32)
            self._mask = xp.asarray(ellipse.reshape(1, 1, s, s))
        return [out, self._mask]


class DeviceStandinLoader:
    """The few loader calls `make_swapper` and the swap stage make, answered with device stand-ins."""

    def __init__(self, xp, is_device, tint: float = 0.0):
        self._xp, self._is_device, self.tint = xp, is_device, tint
        self.sessions: dict[str, DeviceStandinSession] = {}

    def session(self, name: str, fp16: bool | None = None) -> DeviceStandinSession:
        sess = self.sessions.get(name)
        if sess is None:
            sess = self.sessions[name] = DeviceStandinSession(name, self._xp, self._is_device, self.tint)
        return sess

    def path(self, name: str):
        raise ModelError(f"'{name}': the device stand-in loader has no files", "")

    def initializer(self, name: str, index: int = -1) -> np.ndarray:
        return np.eye(512, dtype=np.float32)  # inswapper's emap: identity, the latent is the embedding

    def release(self, name: str, fp16: bool | None = None) -> int:
        return 1 if self.sessions.pop(name, None) is not None else 0


def counting_loader(backend, tint: float = 0.0) -> DeviceStandinLoader:
    """A stand-in loader for `ops.counting.CountingBackend` (device arrays are `DeviceArray`s)."""
    from livecam.ops.counting import DeviceArray

    return DeviceStandinLoader(backend.xp, lambda a: isinstance(a, DeviceArray), tint)


def cupy_loader(tint: float = 0.0) -> DeviceStandinLoader:
    """A stand-in loader whose models run on CuPy (the device check on a real GPU)."""
    import cupy

    return DeviceStandinLoader(cupy, lambda a: isinstance(a, cupy.ndarray), tint)
