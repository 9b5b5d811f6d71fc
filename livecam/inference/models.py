"""`ModelLoader`: catalog name -> verified local file -> runnable `ModelSession`.

This is the only way the rest of livecam gets a model. Files come from the
`ModelStore` (models dir -> user cache -> hub download, verified); sessions come
from the `Runtime` provider ladder (native TensorRT -> ORT TensorRT -> CUDA ->
CPU) and are cached per (name, precision). `providers()` tells what each model
actually got; `attempts(name)` tells why the rungs above it were skipped.

Precision: `session(name, fp16=None)` follows `settings.runtime.fp16`;
`fp16=True/False` forces it (the swap area builds both once to compare).
`remember(name, key, value)` / `recall(name, key)` persist small decisions per
model in the engine cache manifest (keyed by GPU arch and TRT/ORT versions), so
"FP16 checked against FP32: mismatch -> FP32" survives restarts and is redone
when the GPU or runtime changes.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from livecam.errors import ModelError
from livecam.inference.runtime import Attempt, OrtSession, Runtime
from livecam.inference.store import ModelStore
from livecam.settings import RuntimeSettings

__all__ = ["ModelLoader", "OrtSession"]

log = logging.getLogger(__name__)


class ModelLoader:
    def __init__(self, runtime: RuntimeSettings | None = None, models_dir: str | os.PathLike | None = None):
        self.runtime = runtime or RuntimeSettings()
        self.store = ModelStore(models_dir=models_dir)
        self.models_dir = self.store.models_dir
        self._runtime = Runtime(self.runtime)
        self._sessions: dict[tuple[str, bool], object] = {}
        self._attempts: dict[str, list[Attempt]] = {}
        self._paths: dict[str, Path] = {}
        self._lock = threading.RLock()
        self._building: dict[tuple[str, bool], threading.Lock] = {}

    def path(self, name: str) -> Path:
        """Resolve + verify (downloads when no models dir is set and the hub is reachable)."""
        with self._lock:
            cached = self._paths.get(name)
        if cached is not None and cached.exists():
            return cached
        p = self.store.resolve(name)
        with self._lock:
            self._paths[name] = p
        return p

    def sha256(self, name: str) -> str:
        """SHA-256 of the model's file: the one the store recorded when it verified it, else computed."""
        from livecam.inference.store import sha256_hex

        path = self.path(name)
        return (self.store.records.checked(path) or {}).get("sha256") or sha256_hex(path)

    def _precision(self, fp16: bool | None) -> bool:
        return self.runtime.fp16 if fp16 is None else bool(fp16)

    def session(self, name: str, fp16: bool | None = None):
        """A cached `ModelSession`; `fp16` None = settings.runtime.fp16."""
        key = (name, self._precision(fp16))
        with self._lock:
            if key in self._sessions:
                return self._sessions[key]
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:  # one build per key; other models load in parallel
            with self._lock:
                if key in self._sessions:
                    return self._sessions[key]
            path = self.path(name)
            sha = (self.store.records.checked(path) or {}).get("sha256", "")
            spec = self.store.spec(name)
            if spec.dynamic_dims:
                path = _dynamic_copy(path, sha)
            shapes = _static_shapes(spec)
            sess, attempts = self._runtime.create(name, path, sha, fp16=key[1], shapes=shapes)
            # One line per model; why each rung above was skipped only with -v (debug).
            skipped = [a for a in attempts if not a.ok]
            for a in skipped:
                log.debug("model %s: %s skipped: %s", name, a.provider, a.reason)
            log.info("model %s runs on %s%s", name, sess.provider,
                     f" ({', '.join(dict.fromkeys(a.provider for a in skipped))} unavailable; -v for why)"
                     if skipped else "")
            with self._lock:
                self._sessions[key] = sess
                self._attempts[name] = attempts
            return sess

    def providers(self) -> dict[str, str]:
        """{model: provider it actually runs on} for every session made so far."""
        with self._lock:
            return {n: s.provider for (n, _), s in self._sessions.items()}

    def attempts(self, name: str) -> list[Attempt]:
        with self._lock:
            return list(self._attempts.get(name, []))

    def initializer(self, name: str, index: int = -1) -> np.ndarray:
        """A graph initializer as an array (inswapper's emap is the last one)."""
        import onnx
        from onnx import numpy_helper

        path = self.path(name)
        try:
            model = onnx.load(str(path), load_external_data=False)
            return numpy_helper.to_array(model.graph.initializer[index])
        except Exception as exc:
            raise ModelError(f"model '{name}' at {path}: cannot read initializer {index}: {exc}",
                             f"livecam models verify {name}") from exc

    # -- decisions (persisted in the engine cache manifest) ----------------
    def remember(self, name: str, key: str, value) -> None:
        self._runtime.engine_cache.remember(name, key, value)

    def recall(self, name: str, key: str, default=None):
        return self._runtime.engine_cache.recall(name, key, default)

    @property
    def engine_cache(self):
        return self._runtime.engine_cache


def _dynamic_copy(path: Path, sha256: str) -> Path:
    """A cached copy of `path` with every 4-D input/output's N, H, W made symbolic.

    Written once per model hash (atomically) under the engine cache, so it goes
    through the same provider ladder, engine cache and providers report as any model.
    """
    import onnx

    from livecam.paths import atomic_output, engines_cache_dir

    key = sha256[:16] or f"{path.stat().st_size}-{path.stat().st_mtime_ns}"
    out = engines_cache_dir() / "dynamic" / f"{path.stem}-{key}.onnx"
    if out.exists():
        return out
    model = onnx.load(str(path))
    initializers = {i.name for i in model.graph.initializer}
    values = [v for v in model.graph.input if v.name not in initializers] + list(model.graph.output)
    for value in values:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4:
            for dim, symbol in zip(dims, ("N", None, "H", "W")):
                if symbol is not None:
                    dim.ClearField("dim_value")
                    dim.dim_param = f"{value.name}_{symbol}"
    with atomic_output(out) as tmp:
        onnx.save(model, str(tmp))
    return out


def _static_shapes(spec) -> dict[str, tuple]:
    """Run shapes per input from the catalog contract (for engines with dynamic inputs)."""
    out = {}
    for item in spec.contract.get("inputs", []):
        shape = item.get("shape")
        if shape and all(isinstance(d, int) for d in shape):
            out[item["name"]] = tuple(shape)
    return out
