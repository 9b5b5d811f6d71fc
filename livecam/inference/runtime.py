"""Runnable sessions down the provider ladder: native TensorRT -> ORT TensorRT EP -> ORT CUDA EP -> CPU.

`settings.runtime.provider` picks where the ladder starts ("auto" = the top;
"cpu" = CPU only). Each rung that is unavailable (module missing, no GPU, build
failure, ORT silently falling back) is skipped with a logged reason, kept in
`Attempt`s so the user can see why a model ended up where it did.

GPU imports (cupy, tensorrt, onnxruntime's GPU providers) happen only inside
these functions; on a CPU-only machine nothing here fails, it just falls through.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livecam.errors import ModelError
from livecam.inference.tensorrt import (EngineBuildError, ShapeRange, TrtSession, build_engine, is_device_array,
                                        profile_tag)
from livecam.timing import infer_timer

log = logging.getLogger(__name__)

LADDER = ("tensorrt", "ort-tensorrt", "cuda", "cpu")
ORT_NAMES = {"TensorrtExecutionProvider": "ort-tensorrt", "CUDAExecutionProvider": "cuda",
             "CPUExecutionProvider": "cpu"}


@dataclass(frozen=True)
class Attempt:
    provider: str
    ok: bool
    reason: str


@dataclass(frozen=True)
class GpuInfo:
    available: bool
    arch: str | None  # compute capability as "89"; None when unknown / no GPU
    name: str
    reason: str  # why not available ("" when available)


def ladder(start: str) -> tuple[str, ...]:
    if start == "auto":
        return LADDER
    if start not in LADDER:
        raise ModelError(f"unknown runtime.provider '{start}'", f"use one of auto, {', '.join(LADDER)}")
    return LADDER[LADDER.index(start):]


def probe_gpu(device_id: int = 0) -> GpuInfo:
    """Is there a CUDA GPU CuPy can use? Never raises."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CUDA library load error
        return GpuInfo(False, None, "", f"cupy not importable ({type(exc).__name__}: {exc})")
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        if n <= device_id:
            return GpuInfo(False, None, "", f"no CUDA device {device_id} ({n} present)")
        dev = cupy.cuda.Device(device_id)
        arch = str(dev.compute_capability)
        try:
            name = cupy.cuda.runtime.getDeviceProperties(device_id)["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception:
            name = f"cuda:{device_id}"
        return GpuInfo(True, arch, name, "")
    except Exception as exc:
        return GpuInfo(False, None, "", f"CUDA not usable ({type(exc).__name__}: {exc})")


def module_version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:
        return None
    return str(getattr(mod, "__version__", "")) or None


class OrtSession:
    """A `ModelSession` on an onnxruntime InferenceSession; IO binding on GPU providers."""

    def __init__(self, name: str, path: Path, providers: list, device_id: int = 0, precision: str = "fp32",
                 intra_threads: int = 0):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if intra_threads > 0:  # 0: ORT's default (one per physical core)
            opts.intra_op_num_threads = int(intra_threads)
        # ORT's worker threads spin for a while after each run by default; on a laptop's few
        # cores that spinning took the core that OpenCV's paste-back and the tracker need right
        # after a model call (benchmarks/host_cost.py, interleaved A/B: 8.55 -> 7.53 ms per frame
        # at 720p, 12.18 -> 10.49 ms at 1080p)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self._sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # corrupt file, or a provider that cannot start
            raise ModelError(f"model '{name}' at {path} cannot be loaded: {type(exc).__name__}: {exc}",
                             f"run `livecam models verify {name}`, then `livecam models pull {name} --force`") from exc
        self.name = name
        self.path = Path(path)
        self.device_id = device_id
        self.ort_providers = list(self._sess.get_providers())
        self.provider = ORT_NAMES.get(self.ort_providers[0], self.ort_providers[0])
        self.precision = precision if self.provider == "ort-tensorrt" else "fp32"
        self.input_names = [i.name for i in self._sess.get_inputs()]
        self.output_names = [o.name for o in self._sess.get_outputs()]
        self.input_shapes = {i.name: list(i.shape) for i in self._sess.get_inputs()}
        self._binding = self.provider != "cpu"
        self._io = None  # one IO binding per session, made on the first GPU call and re-bound per call
        self._lock = threading.Lock()  # one call at a time: the binding and ORT's output buffers are shared

    def run(self, feeds: dict) -> list:
        """Host arrays in -> host arrays out. On a GPU provider, CuPy inputs -> CuPy outputs (no host copy)."""
        with self._lock, infer_timer():
            if not self._binding:
                return self._sess.run(None, feeds)
            device_out = any(is_device_array(v) for v in feeds.values())
            if self._io is None:
                self._io = self._sess.io_binding()
            io = self._io
            for name, arr in feeds.items():
                if is_device_array(arr):
                    io.bind_input(name, "cuda", self.device_id, arr.dtype.type, list(arr.shape), int(arr.data.ptr))
                else:
                    io.bind_cpu_input(name, np.ascontiguousarray(arr))
            for name in self.output_names:
                io.bind_output(name, "cuda" if device_out else "cpu", self.device_id)
            io.synchronize_inputs()
            self._sess.run_with_iobinding(io)
            io.synchronize_outputs()
            if not device_out:
                return io.copy_outputs_to_cpu()
            return [_ortvalue_to_cupy(v) for v in io.get_outputs()]


def _ortvalue_to_cupy(value):
    """Wrap an ORT-owned CUDA buffer as a CuPy array (keeps the OrtValue alive)."""
    import cupy

    dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
             "tensor(int32)": np.int32, "tensor(uint8)": np.uint8}[value.data_type()]
    shape = tuple(value.shape())
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    mem = cupy.cuda.UnownedMemory(value.data_ptr(), nbytes, value)
    return cupy.ndarray(shape, dtype=dtype, memptr=cupy.cuda.MemoryPointer(mem, 0))


class Runtime:
    """Creates sessions for one `RuntimeSettings` and records what each rung did."""

    def __init__(self, settings, engine_cache=None):
        self.settings = settings
        self._gpu: GpuInfo | None = None
        self._engine_cache = engine_cache
        self._pulled = False

    def _share_repo(self) -> str:
        """LIVECAM_ENGINE_REPO: a hub repo engines are pulled from before building and pushed to after."""
        import os

        return os.environ.get("LIVECAM_ENGINE_REPO", "").strip()

    def _pull_shared(self) -> None:
        repo = self._share_repo()
        if not repo or self._pulled:
            return
        self._pulled = True
        try:
            got = self.engine_cache.pull(repo)
            log.info("pulled %d engine files from %s", len(got), repo)
        except Exception as exc:  # sharing is an optimisation: never fatal
            log.warning("could not pull engines from %s: %s", repo, exc)

    def _push_shared(self) -> None:
        repo = self._share_repo()
        if not repo:
            return
        try:
            self.engine_cache.push(repo)
        except Exception as exc:
            log.warning("could not push engines to %s: %s", repo, exc)

    @property
    def gpu(self) -> GpuInfo:
        if self._gpu is None:
            self._gpu = probe_gpu(self.settings.device_id)
        return self._gpu

    @property
    def engine_cache(self):
        if self._engine_cache is None:
            from livecam.inference.engine_cache import EngineCache

            gpu = self.gpu
            self._engine_cache = EngineCache(self.settings.engine_cache or None,
                                             gpu_arch=gpu.arch if gpu.available else None,
                                             trt_version=module_version("tensorrt") if gpu.available else None,
                                             ort_version=module_version("onnxruntime"))
        return self._engine_cache

    def _ort_providers(self, rung: str, fp16: bool, profiles: dict[str, ShapeRange] | None = None) -> list:
        dev = self.settings.device_id
        cuda = ("CUDAExecutionProvider", {"device_id": dev})
        if rung == "ort-tensorrt":
            cache = self.engine_cache.ort_trt_dir()
            cache.mkdir(parents=True, exist_ok=True)
            trt_opts = {"device_id": dev, "trt_fp16_enable": bool(fp16), "trt_engine_cache_enable": True,
                        "trt_engine_cache_path": str(cache), "trt_timing_cache_enable": True,
                        "trt_timing_cache_path": str(cache)}
            ranged = {n: r for n, r in (profiles or {}).items() if r.min != r.max}
            if ranged:  # the EP's own profile: the same range the native engine gets
                dims = lambda t: "x".join(map(str, t))  # noqa: E731
                for key, part in (("trt_profile_min_shapes", "min"), ("trt_profile_opt_shapes", "opt"),
                                  ("trt_profile_max_shapes", "max")):
                    trt_opts[key] = ",".join(f"{n}:{dims(getattr(r, part))}" for n, r in sorted(ranged.items()))
            return [("TensorrtExecutionProvider", trt_opts), cuda, "CPUExecutionProvider"]
        if rung == "cuda":
            return [cuda, "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def _native(self, name: str, path: Path, model_sha256: str, fp16: bool,
                profiles: dict[str, ShapeRange] | None) -> TrtSession:
        gpu = self.gpu
        if not gpu.available:
            raise EngineBuildError(gpu.reason)
        try:
            import tensorrt as trt
        except Exception as exc:
            raise EngineBuildError(f"tensorrt not importable ({type(exc).__name__}: {exc})") from exc
        import cupy

        cache = self.engine_cache
        precision = "fp16" if fp16 else "fp32"
        tag = profile_tag(profiles)
        cached = cache.lookup(name, model_sha256, precision, tag)
        if cached is None:
            self._pull_shared()
            cached = cache.lookup(name, model_sha256, precision, tag)
        if cached is not None:
            try:
                return TrtSession(name, cached.read_bytes(), trt, cupy, self.settings.device_id, precision)
            except EngineBuildError as exc:
                log.warning("%s: %s; rebuilding", cached, exc)
                cache.invalidate(cached.name)
        log.info("building a TensorRT %s engine for %s (first run only; cached in %s)", precision, name, cache.dir)
        with cupy.cuda.Device(self.settings.device_id):
            plan, got = build_engine(trt, path, fp16, cache.timing_cache_path(), profiles)
        stored = cache.store(name, model_sha256, got, plan, tag)
        if got != precision:  # TRT 11 without a converter: remember under the requested key too
            cache.store(name, model_sha256, precision, plan, tag)
        self._push_shared()
        return TrtSession(name, stored.read_bytes(), trt, cupy, self.settings.device_id, got)

    def create(self, name: str, path: Path, model_sha256: str = "", fp16: bool | None = None,
               profiles: dict[str, ShapeRange] | None = None) -> tuple[object, list[Attempt]]:
        """The first rung that works, and what every rung tried said.

        `profiles`: the shape range of each input (TensorRT engines are built for it)."""
        fp16 = self.settings.fp16 if fp16 is None else fp16
        attempts: list[Attempt] = []
        avail = None
        for rung in ladder(self.settings.provider):
            if rung == "tensorrt":
                try:
                    sess = self._native(name, path, model_sha256 or "nohash", fp16, profiles)
                    attempts.append(Attempt(rung, True, ""))
                    return sess, attempts
                except (EngineBuildError, ImportError, OSError, RuntimeError) as exc:
                    attempts.append(Attempt(rung, False, str(exc)))
                    log.debug("%s: native TensorRT unavailable: %s", name, exc)
                    continue
            if rung != "cpu":
                if avail is None:
                    try:
                        import onnxruntime as ort

                        avail = set(ort.get_available_providers())
                    except Exception as exc:
                        avail = set()
                        log.debug("onnxruntime unavailable: %s", exc)
                ep = {"ort-tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider"}[rung]
                if ep not in avail:
                    reason = f"{ep} not in this onnxruntime build (install onnxruntime-gpu: pip install -e \".[gpu]\")"
                    attempts.append(Attempt(rung, False, reason))
                    log.debug("%s: %s: %s", name, rung, reason)
                    continue
                if not self.gpu.available and rung == "ort-tensorrt":
                    pass  # ORT may still find the GPU without CuPy; let it try
            try:
                sess = OrtSession(name, path, self._ort_providers(rung, fp16, profiles), self.settings.device_id,
                                  "fp16" if fp16 else "fp32")
            except ModelError as exc:
                if rung == "cpu":
                    raise
                attempts.append(Attempt(rung, False, exc.message))
                log.debug("%s: %s failed: %s", name, rung, exc.message)
                continue
            if sess.provider != rung:
                # ORT fell back silently (e.g. libnvinfer missing): record it; keep the session if it
                # landed on a rung we would try next anyway.
                attempts.append(Attempt(rung, False, f"onnxruntime fell back to {sess.ort_providers[0]}"))
                log.debug("%s: %s fell back to %s", name, rung, sess.provider)
                if sess.provider in ladder(self.settings.provider):
                    attempts.append(Attempt(sess.provider, True, ""))
                    return sess, attempts
                continue
            attempts.append(Attempt(rung, True, ""))
            return sess, attempts
        raise ModelError(f"model '{name}': no execution provider could run it",
                         "; ".join(f"{a.provider}: {a.reason}" for a in attempts) or "install onnxruntime")
