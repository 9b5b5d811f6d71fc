"""The one interface every model adapter calls: `ModelSession.run(feeds) -> outputs`.

Adapters (detectors, swappers, maskers) never talk to onnxruntime or TensorRT
directly; they receive a `ModelSession` and own only their pre/post-processing.

The sessions the loader makes (`runtime.OrtSession`, `tensorrt.TrtSession`) also carry
`precision` ("fp16" | "fp32": what the engine was actually built with; "fp32" on CUDA/CPU).
It is not part of the protocol so simple test doubles need not define it.

Threads (the lock rule, docs/architecture.md "Sessions and threads"):
- a session is shared by everyone who loads that model, on any thread; it
  serialises its own `run` with a lock of its own (the TensorRT context, CUDA
  stream, device buffers and ORT IO binding serve one call at a time);
- a model adapter (detector, embedder, swapper, masker) owns reused host buffers.
  One that more than one thread may call wraps its entry points in `serialised`
  (a lock per adapter instance); one that a single thread owns (the swap stage's
  swapper and maskers) does not, and another thread makes its own adapter over the
  same session instead.
"""

from __future__ import annotations

import functools
import threading
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ModelSession(Protocol):
    name: str  # catalog name, e.g. "inswapper_128"
    provider: str  # what actually runs it: "tensorrt", "ort-tensorrt", "cuda", "cpu"
    input_names: list[str]
    output_names: list[str]
    input_shapes: dict[str, list]  # declared shapes; dynamic dims as str or None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run once. Inputs/outputs are host float32 arrays (GPU variants may also accept device arrays)."""
        ...


def serialised(method):
    """Run an adapter method under the instance's own re-entrant lock (its reused buffers)."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        lock = self.__dict__.get("_call_lock")
        if lock is None:  # dict.setdefault is atomic: two first callers get the same lock
            lock = self.__dict__.setdefault("_call_lock", threading.RLock())
        with lock:
            return method(self, *args, **kwargs)

    return locked
