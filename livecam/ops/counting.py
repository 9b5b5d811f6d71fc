"""A counting "device" backend: the GPU backend's code on NumPy, with every host<->device
crossing and every host sync counted (tests, and the CPU half of benchmarks/gpu_check.py).

It stands in for CuPy the way the reference backend does (`ops.xp.make_reference_backend`),
and adds what the reference backend cannot tell: which arrays live on the "device".

- Arrays the backend makes, and every result computed from them through `backend.xp` or
  `backend.ndi`, are `DeviceArray`s (a NumPy subclass). A plain `numpy.ndarray` is host memory.
- `backend.asarray(host array)` is an upload, `backend.to_host(device array)` a download (and a
  sync); each is recorded with its shape in `transfers`.
- Reading a device value on the host (`float(x)`, `int(x)`, `bool(x)`, `x.item()`,
  `x.tolist()`, `x.get()`) is a sync, as it is on CuPy; so is `backend.synchronize()`.

On real CuPy an implicit conversion (`numpy.asarray(cupy_array)`) raises `TypeError`, so
the counted calls are the only ways data can reach the host; the device check
(`benchmarks/gpu_check.py`) runs the same path on CuPy and would fail on a stray one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from livecam.ops.xp import XpBackend


@dataclass
class Counts:
    uploads: list = field(default_factory=list)  # shapes sent host -> device
    downloads: list = field(default_factory=list)  # shapes sent device -> host
    syncs: int = 0  # host waits for the device: downloads, scalar reads, synchronize()

    def reset(self) -> None:
        self.uploads.clear()
        self.downloads.clear()
        self.syncs = 0

    def crossings(self, shape) -> int:
        """How many transfers (either way) had exactly this shape."""
        shape = tuple(shape)
        return sum(1 for s in self.uploads + self.downloads if tuple(s) == shape)


class DeviceArray(np.ndarray):
    """A NumPy array that stands for device memory; host reads of it are counted."""

    counts: Counts | None = None  # set per backend through `_view`

    def __array_finalize__(self, obj):
        self.counts = getattr(obj, "counts", None)

    def _sync(self):
        if self.counts is not None:
            self.counts.syncs += 1

    def __float__(self):
        self._sync()
        return float(np.asarray(self))

    def __int__(self):
        self._sync()
        return int(np.asarray(self))

    __index__ = __int__

    def __bool__(self):
        self._sync()
        return bool(np.asarray(self))

    def item(self, *args):
        self._sync()
        return np.asarray(self).item(*args)

    def tolist(self):
        self._sync()
        return np.asarray(self).tolist()

    def get(self, stream=None):
        """CuPy's download."""
        self._sync()
        if self.counts is not None:
            self.counts.downloads.append(self.shape)
        return np.array(self, copy=True).view(np.ndarray)


class _DeviceModule:
    """A module look-alike whose functions return `DeviceArray`s (CuPy functions return CuPy arrays)."""

    def __init__(self, module, view):
        self._module, self._viewer = module, view

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if callable(attr) and not isinstance(attr, type):
            view = self._viewer

            def call(*args, **kwargs):
                return view(attr(*args, **kwargs))
            return call
        return attr


class CountingBackend(XpBackend):
    """`XpBackend` on NumPy, in its GPU configuration (`is_gpu`), counting transfers and syncs."""

    def __init__(self):
        import scipy.ndimage as ndi

        self.counts = Counts()
        super().__init__(_DeviceModule(np, self._view), _DeviceModule(ndi, self._view), name="counting",
                         fused_kernels=False)
        self.is_gpu = True  # the stage takes its device path: crops stay in backend arrays

    def _view(self, result):
        if isinstance(result, np.ndarray) and not isinstance(result, DeviceArray):
            out = result.view(DeviceArray)
            out.counts = self.counts
            return out
        if isinstance(result, tuple):
            return tuple(self._view(r) for r in result)
        return result

    def asarray(self, a, dtype=None):
        if not isinstance(a, DeviceArray):
            self.counts.uploads.append(np.shape(a))
        return self._view(np.asarray(a, dtype=dtype))

    def to_host(self, a) -> np.ndarray:
        if isinstance(a, DeviceArray):
            self.counts.syncs += 1
            self.counts.downloads.append(a.shape)
            return np.array(a, copy=True).view(np.ndarray)
        return np.asarray(a)

    def synchronize(self) -> None:
        self.counts.syncs += 1
