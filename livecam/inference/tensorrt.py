"""Native TensorRT runner: ONNX -> engine (timing cache) -> execution with CuPy buffers.

Used as the first rung of the provider ladder when `tensorrt` and `cupy` import and
a CUDA GPU is present. One CUDA stream per session, device buffers allocated once
(re-allocated only when a dynamic input changes shape). Host arrays in: one sync per
`run`. Device arrays in: no host sync at all; the session's stream and the caller's
are ordered with CUDA events.

Shapes: a dynamic input gets one optimization profile (`ShapeRange`: min, opt, max)
covering every size its setting allows (a detector: any `detector.size`), tuned
(`opt`) for the size in use now. The profile is part of the engine cache key, so
a size change builds an engine tuned for it, while the old engine still runs the
new size meanwhile. A shape outside the built range is refused before TensorRT
sees it (`ShapeOutsideProfile`, naming the range and the setting to change).

Threads: an execution context, its stream and its buffers serve one call at a
time, so `run` holds the session's own lock (docs/architecture.md, "Sessions and
threads").

TensorRT 10 vs 11: TRT 11 made networks strongly typed and removed
`BuilderFlag.FP16`. On 10.x FP16 is a builder flag; on 11+ the ONNX itself is
converted to FP16 first (onnxconverter-common's float16 converter with
`keep_io_types=True`) and built as is; if that converter is not installed the
engine is built FP32 and the session reports `precision == "fp32"`.

Every call here is made against the real TensorRT/CuPy Python API names; the
tests drive it with strict fakes of exactly these calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livecam.errors import ModelError
from livecam.paths import atomic_write
from livecam.timing import infer_timer

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 2 << 30


class EngineBuildError(RuntimeError):
    """The ONNX could not be parsed or built into an engine (caller falls down the ladder)."""


class ShapeOutsideProfile(ModelError):
    """A run shape the engine was not built for (refused before TensorRT is called)."""


@dataclass(frozen=True)
class ShapeRange:
    """One input's optimization profile: any shape between `min` and `max` runs; `opt` is tuned for."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @classmethod
    def point(cls, shape) -> "ShapeRange":
        s = tuple(int(d) for d in shape)
        return cls(s, s, s)

    def covers(self, shape) -> bool:
        shape = tuple(int(d) for d in shape)
        return len(shape) == len(self.min) and all(lo <= d <= hi for lo, d, hi in zip(self.min, shape, self.max))

    def __str__(self) -> str:
        dims = lambda t: "x".join(map(str, t))  # noqa: E731
        return f"{dims(self.min)}..{dims(self.max)} (tuned for {dims(self.opt)})"


def profile_tag(ranges: dict[str, ShapeRange] | None) -> str:
    """A short, stable name for a set of profiles (engine cache key part); "" when there are none."""
    if not ranges:
        return ""
    canon = {name: [list(r.min), list(r.opt), list(r.max)] for name, r in sorted(ranges.items())}
    digest = hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()[:8]
    opt = "_".join("x".join(map(str, r.opt)) for _, r in sorted(ranges.items()))
    return f"{opt}-{digest}"


def trt_major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


def _fp16_onnx(onnx_path: Path, workdir: Path) -> Path | None:
    """An FP16 copy of the model with float32 I/O (TRT 11 path), or None if the converter is absent."""
    try:
        import onnx
        from onnxconverter_common import float16
    except ImportError:
        return None
    model = onnx.load(str(onnx_path))
    model = float16.convert_float_to_float16(model, keep_io_types=True)
    out = workdir / (onnx_path.stem + ".fp16.onnx")
    onnx.save(model, str(out))
    return out


def build_engine(trt, onnx_path: Path, fp16: bool, timing_cache: Path | None = None,
                 profiles: dict[str, ShapeRange] | None = None) -> tuple[bytes, str]:
    """Build a serialized engine; returns (plan bytes, precision actually used).

    `profiles` gives the shape range of each dynamic input (one optimization profile)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    major = trt_major(trt)
    precision = "fp16" if fp16 else "fp32"
    with tempfile.TemporaryDirectory(prefix="livecam-trt-") as tmp:
        src = Path(onnx_path)
        if fp16 and major >= 11:
            converted = _fp16_onnx(src, Path(tmp))
            if converted is None:
                log.warning("TensorRT %s has no FP16 builder flag and onnxconverter-common is not installed: "
                            "building %s in FP32 (pip install onnxconverter-common for FP16)", trt.__version__, src.name)
                precision = "fp32"
            else:
                src = converted
        if not parser.parse_from_file(str(src)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise EngineBuildError(f"TensorRT cannot parse {onnx_path.name}: " + "; ".join(errors or ["unknown error"]))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16 and major < 11:
        config.set_flag(trt.BuilderFlag.FP16)
    # dynamic inputs get one profile spanning every shape the settings allow
    dynamic = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if any(int(d) < 0 for d in tensor.shape):
            dynamic.append(tensor.name)
    if dynamic:
        profile = builder.create_optimization_profile()
        for name in dynamic:
            rng = (profiles or {}).get(name)
            if rng is None:
                raise EngineBuildError(f"{onnx_path.name}: input '{name}' has a dynamic shape "
                                       "and no shape range was given")
            profile.set_shape(name, tuple(rng.min), tuple(rng.opt), tuple(rng.max))
        config.add_optimization_profile(profile)
    old = b""
    if timing_cache is not None and timing_cache.is_file():
        old = timing_cache.read_bytes()
    cache = config.create_timing_cache(old)
    if not config.set_timing_cache(cache, ignore_mismatch=True):
        log.info("timing cache %s does not match this GPU/TensorRT: starting a fresh one", timing_cache)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=True)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError(f"TensorRT failed to build an engine for {onnx_path.name}")
    if timing_cache is not None:
        atomic_write(timing_cache, memoryview(config.get_timing_cache().serialize()))
    return bytes(memoryview(plan)), precision


def is_device_array(x) -> bool:
    return hasattr(x, "__cuda_array_interface__")


class TrtSession:
    """A `ModelSession` on a deserialized TensorRT engine."""

    def __init__(self, name: str, plan: bytes, trt, cupy, device_id: int = 0, precision: str = "fp32"):
        self.name = name
        self.provider = "tensorrt"
        self.precision = precision
        self._trt = trt
        self._cp = cupy
        self._device = cupy.cuda.Device(device_id)
        with self._device:
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self._engine = self._runtime.deserialize_cuda_engine(plan)
            if self._engine is None:
                raise EngineBuildError(f"engine for {name} cannot be deserialized (stale or corrupt)")
            self._ctx = self._engine.create_execution_context()
            if self._ctx is None:
                raise EngineBuildError(f"no execution context for {name} (out of GPU memory?)")
            self._stream = cupy.cuda.Stream(non_blocking=True)
        self.input_names, self.output_names = [], []
        self._dtypes, self.input_shapes = {}, {}
        self.profiles: dict[str, ShapeRange] = {}  # the built range of each dynamic input
        for i in range(self._engine.num_io_tensors):
            tname = self._engine.get_tensor_name(i)
            self._dtypes[tname] = np.dtype(trt.nptype(self._engine.get_tensor_dtype(tname)))
            if self._engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT:
                self.input_names.append(tname)
                dims = [int(d) for d in self._engine.get_tensor_shape(tname)]
                self.input_shapes[tname] = [d if d >= 0 else None for d in dims]
                if any(d < 0 for d in dims):
                    lo, opt, hi = self._engine.get_tensor_profile_shape(tname, 0)
                    self.profiles[tname] = ShapeRange(*(tuple(int(d) for d in s) for s in (lo, opt, hi)))
                else:
                    self.profiles[tname] = ShapeRange.point(dims)
            else:
                self.output_names.append(tname)
        self._buffers: dict = {}
        self._shapes: dict = {}
        self._lock = threading.Lock()  # one call at a time on this context, stream and buffers

    def _buffer(self, name: str, shape: tuple):
        if self._shapes.get(name) != shape:
            self._buffers[name] = self._cp.empty(shape, dtype=self._dtypes[name])
            self._shapes[name] = shape
            if not self._ctx.set_tensor_address(name, int(self._buffers[name].data.ptr)):
                raise ModelError(f"TensorRT rejected the buffer for '{name}' of {self.name}",
                                 "run with --set runtime.provider=cuda and report it")
        return self._buffers[name]

    def _check_shapes(self, feeds: dict) -> None:
        for name in self.input_names:
            shape = tuple(int(d) for d in feeds[name].shape)
            rng = self.profiles[name]
            if not rng.covers(shape):
                raise ShapeOutsideProfile(
                    f"{self.name}: input '{name}' shape {'x'.join(map(str, shape))} is outside the engine's "
                    f"built range {rng}",
                    "use a size inside that range (for a detector: detector.size), or "
                    "--set runtime.provider=cuda to run without a TensorRT engine")

    def run(self, feeds: dict) -> list:
        """Host arrays in -> host arrays out; device (CuPy) arrays in -> CuPy arrays out.

        One call at a time (the session's lock); a shape outside the built range
        raises `ShapeOutsideProfile` and leaves the session usable."""
        self._check_shapes(feeds)
        with self._lock:
            return self._run(feeds)

    def _run(self, feeds: dict) -> list:
        device_out = any(is_device_array(v) for v in feeds.values())
        with infer_timer(), self._device:
            if device_out:
                # Device inputs were made on the caller's stream: the session's stream waits for
                # them on the GPU (an event), not the host.
                caller = self._cp.cuda.get_current_stream()
                ready = self._cp.cuda.Event(disable_timing=True)
                ready.record(caller)
                self._stream.wait_event(ready)
            for name in self.input_names:
                arr = feeds[name]
                shape = tuple(int(d) for d in arr.shape)
                if self._shapes.get(name) != shape:
                    if not self._ctx.set_input_shape(name, shape):
                        raise ShapeOutsideProfile(f"{self.name}: TensorRT refused input '{name}' shape {shape} "
                                                  f"(built range {self.profiles[name]})",
                                                  "use a size inside that range (for a detector: detector.size)")
                buf = self._buffer(name, shape)
                if is_device_array(arr):
                    with self._stream:
                        self._cp.copyto(buf, arr.astype(self._dtypes[name], copy=False))
                else:
                    buf.set(np.ascontiguousarray(arr, dtype=self._dtypes[name]), stream=self._stream)
            outs = [self._buffer(n, tuple(int(d) for d in self._ctx.get_tensor_shape(n))) for n in self.output_names]
            if not self._ctx.execute_async_v3(stream_handle=self._stream.ptr):
                raise ModelError(f"TensorRT execution of {self.name} failed",
                                 "run with --set runtime.provider=cuda and report it")
            if device_out:
                with self._stream:
                    result = [o.copy() for o in outs]  # the session's buffers serve the next call
                # No host sync: the caller's stream waits for the outputs on the GPU.
                done = self._cp.cuda.Event(disable_timing=True)
                done.record(self._stream)
                caller.wait_event(done)
                return result
            result = [o.get(stream=self._stream) for o in outs]
            self._stream.synchronize()
            return result
