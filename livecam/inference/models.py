"""`ModelLoader`: catalog name -> verified local file -> runnable `ModelSession`.

This is the only way the rest of livecam gets a model. Files come from the
`ModelStore` (models dir -> user cache -> hub download, verified); sessions come
from the `Runtime` provider ladder (native TensorRT -> ORT TensorRT -> CUDA ->
CPU) and are cached per (name, precision, input shape profile). `providers()` tells
what each model actually got; `attempts(name)` tells why the rungs above it were skipped.

Shapes: every input gets a `ShapeRange` (`shape_ranges`): fixed inputs their catalog
shape; a detector's image input any size `detector.size` allows, tuned for the
`input_size` the caller runs. A session for a new input size replaces the cached
one for the old size (the old one lives on in whoever still holds it).

Threads: sessions are shared; each one serialises its own `run` (a lock per
session, see docs/architecture.md "Sessions and threads"). Memory: `release(name)`
drops sessions no model needs any more (a swapper switch, the FP32 reference
after the FP16 check); the loader never holds more than one per (name, precision).

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
from livecam.inference.contract import check_contract
from livecam.inference.runtime import Attempt, OrtSession, Runtime
from livecam.inference.store import ModelStore
from livecam.inference.tensorrt import ShapeRange, profile_tag
from livecam.settings import DetectorSettings, RuntimeSettings

__all__ = ["ModelLoader", "OrtSession"]

log = logging.getLogger(__name__)


def background_threads() -> int:
    """Intra-op threads for background models: the physical cores less one (at least one)."""
    import psutil

    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return max(1, int(cores) - 1)


class ModelLoader:
    def __init__(self, runtime: RuntimeSettings | None = None, models_dir: str | os.PathLike | None = None):
        self.runtime = runtime or RuntimeSettings()
        self.store = ModelStore(models_dir=models_dir)
        self.models_dir = self.store.models_dir
        self._runtime = Runtime(self.runtime)
        self._sessions: dict[tuple[str, bool, str], object] = {}  # (name, fp16, profile tag)
        self._twins: dict[tuple[str, str, int], OrtSession] = {}  # background twins (`background_session`)
        self._attempts: dict[str, list[Attempt]] = {}
        self._paths: dict[str, Path] = {}
        self._lock = threading.RLock()
        self._building: dict[tuple[str, bool, str], threading.Lock] = {}

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

    def session(self, name: str, fp16: bool | None = None, input_size: int | None = None):
        """A cached `ModelSession`; `fp16` None = settings.runtime.fp16.

        `input_size`: the square input side a detector will run (its `detector.size`);
        TensorRT engines are tuned for it and accept every size the setting allows."""
        spec = self.store.spec(name)
        ranges = shape_ranges(spec, input_size)
        key = (name, self._precision(fp16), profile_tag(ranges))
        with self._lock:
            cached = self._cached(key)
            if cached is not None:
                return cached
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:  # one build per key; other models load in parallel
            with self._lock:
                cached = self._cached(key)
                if cached is not None:
                    return cached
            if self._is_remote(name):  # issue 14: this model's calls go to the Triton server
                from livecam.remote.client import remote_session

                sess = remote_session(self, name)
                with self._lock:
                    self._sessions[key] = sess
                return sess
            path = self.path(name)
            sha = (self.store.records.checked(path) or {}).get("sha256", "")
            check_contract(spec, path)  # a different model under this name fails here, not every frame
            if spec.dynamic_dims:
                path = _dynamic_copy(path, sha)
            sess, attempts = self._runtime.create(name, path, sha, fp16=key[1], profiles=ranges)
            # One line per model; why each rung above was skipped only with -v (debug).
            skipped = [a for a in attempts if not a.ok]
            for a in skipped:
                log.debug("model %s: %s skipped: %s", name, a.provider, a.reason)
            log.info("model %s runs on %s%s", name, sess.provider,
                     f" ({', '.join(dict.fromkeys(a.provider for a in skipped))} unavailable; -v for why)"
                     if skipped else "")
            with self._lock:
                # a session for another input size of this model is superseded: its holder keeps it
                # until it lets go, the loader does not
                for old in [k for k in self._sessions if k[:2] == key[:2] and k != key]:
                    del self._sessions[old]
                self._sessions[key] = sess
                self._attempts[name] = attempts
            return sess

    def _cached(self, key: tuple):
        """The session for `key`; for another input size of the model, its session when that
        is not a native TensorRT engine (ONNX Runtime runs every size in the range as it is;
        only a TensorRT engine is worth rebuilding, tuned for the new size). Under `_lock`."""
        if key in self._sessions:
            return self._sessions[key]
        for other, sess in self._sessions.items():
            if other[:2] == key[:2] and sess.provider != "tensorrt":
                return sess
        return None

    def release(self, name: str, fp16: bool | None = None) -> int:
        """Drop the cached sessions of `name` (one precision, or all when `fp16` is None).

        Whoever still holds a session keeps a working one; the memory goes when the
        last holder lets go. Returns how many were dropped."""
        with self._lock:
            keys = [k for k in self._sessions if k[0] == name and (fp16 is None or k[1] == bool(fp16))]
            for k in keys:
                del self._sessions[k]
                self._building.pop(k, None)
            for k in [k for k in self._twins if k[0] == name]:
                del self._twins[k]
        return len(keys)

    def background_session(self, session):
        """The session a background worker should call instead of `session`.

        On ONNX Runtime's CPU provider: a second session of the same file (cached) with
        `background_threads()` intra-op threads, one core fewer than the machine has. The
        worker's detections then leave the frame thread a core: with ORT's default threads a
        CPU CenterFace in the background put the frame thread's p95 over twice its p50
        (benchmarks/host_cost.py --detector centerface --pace 30); and inline calls keep
        their own session at full speed. Any other session (GPU, TensorRT, remote) is
        returned as it is: threads do not compete there."""
        if not isinstance(session, OrtSession) or session.provider != "cpu":
            return session
        threads = background_threads()
        key = (session.name, str(session.path), threads)
        with self._lock:
            twin = self._twins.get(key)
            if twin is None:
                twin = self._twins[key] = OrtSession(session.name, session.path, ["CPUExecutionProvider"],
                                                     session.device_id, session.precision, intra_threads=threads)
        return twin

    def loaded(self) -> list[str]:
        """The cached sessions, as "name:fp16" / "name:fp32"."""
        with self._lock:
            return [f"{n}:{'fp16' if h else 'fp32'}" for (n, h, _) in self._sessions]

    def _is_remote(self, name: str) -> bool:
        """`runtime.remote` is set and `name` is one of `runtime.remote_models`."""
        return bool(self.runtime.remote) and name in self.runtime.remote_models

    def providers(self) -> dict[str, str]:
        """{model: provider it actually runs on} for every session made so far."""
        with self._lock:
            return {n: s.provider for (n, _, _), s in self._sessions.items()}

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
    The copy's own SHA-256 sits beside it (`.sha256`): a copy that does not match it
    (truncated, replaced) is rebuilt, never loaded. A read-only cache falls back to a
    temporary folder.
    """
    import tempfile

    from livecam.inference.store import sha256_hex
    from livecam.paths import engines_cache_dir

    key = sha256[:16] or f"{path.stat().st_size}-{path.stat().st_mtime_ns}"
    name = f"{path.stem}-{key}.onnx"
    for folder in (engines_cache_dir() / "dynamic", Path(tempfile.gettempdir()) / "livecam-dynamic"):
        out = folder / name
        try:
            if out.is_file() and out.with_suffix(".sha256").read_text().strip() == sha256_hex(out):
                return out
        except OSError:
            pass
        try:
            return _write_dynamic_copy(path, out)
        except OSError as exc:
            log.warning("cannot write the dynamic copy of %s into %s (%s)", path.name, folder, exc)
    raise ModelError(f"cannot write a dynamic-shape copy of {path} (cache and temp folder not writable)",
                     "make LIVECAM_CACHE_DIR point at a writable folder")


def _write_dynamic_copy(path: Path, out: Path) -> Path:
    import onnx

    from livecam.inference.store import sha256_hex
    from livecam.paths import atomic_output, atomic_write

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
    atomic_write(out.with_suffix(".sha256"), sha256_hex(out))
    return out


# The smallest detector input side an engine accepts: CenterFace runs face crops padded
# to a multiple of 32, SCRFD's coarsest stride is 32.
MIN_DETECTOR_SIDE = 32


def detector_size_range() -> tuple[int, int]:
    """(min, max) input side `detector.size` allows, from the setting's own spec."""
    from dataclasses import fields

    spec = next(f for f in fields(DetectorSettings) if f.name == "size").metadata["spec"]
    return min(MIN_DETECTOR_SIDE, int(spec.min)), int(spec.max)


def shape_ranges(spec, input_size: int | None = None) -> dict[str, ShapeRange]:
    """The shape range of each input from the catalog contract.

    Fixed inputs: their catalog shape. A detector's NCHW image input: batch 1, any
    side from `detector_size_range()` (CenterFace's canvas is not square, SCRFD's
    is), tuned for `input_size` (else the catalog size, else 640). Inputs with
    symbolic dims that are not a detector image get no range."""
    out = {}
    for item in spec.contract.get("inputs", []):
        shape = item.get("shape")
        if not shape:
            continue
        if spec.kind == "detector" and len(shape) == 4 and item.get("layout", "NCHW") == "NCHW":
            lo, hi = detector_size_range()
            channels = shape[1] if isinstance(shape[1], int) else 3
            side = int(input_size or (shape[2] if isinstance(shape[2], int) else 640))
            side = min(max(side, lo), hi)
            out[item["name"]] = ShapeRange((1, channels, lo, lo), (1, channels, side, side), (1, channels, hi, hi))
        elif all(isinstance(d, int) for d in shape):
            out[item["name"]] = ShapeRange.point(shape)
    return out
