"""Provider ladder, native TensorRT runner and ORT GPU paths, driven by strict fakes.

The fakes implement exactly the TensorRT / CuPy / onnxruntime API surface the code
calls, with the real parameter names, and assert argument types; a wrong call
(wrong keyword, a Path where TensorRT wants str, FP16 flag on TRT 11, ...) raises
and fails the test. Execution inside the fakes is real: the fake engine and the
fake GPU session run the ONNX on onnxruntime CPU, so outputs are checked with numbers.
"""

from __future__ import annotations

import itertools
import json
import sys
import types
from pathlib import Path

import numpy as np
import onnxruntime as real_ort
import pytest

from livecam.settings import RuntimeSettings

# ----------------------------------------------------------------------------- fake cupy
_ptrs = itertools.count(0x7F0000001000, 0x100000)
_MEM: dict[int, "FakeCupyArray"] = {}


class _Data:
    def __init__(self, ptr):
        self.ptr = ptr


class FakeEvent:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        assert isinstance(block, bool) and isinstance(disable_timing, bool)
        self.recorded_on = None

    def record(self, stream=None):
        assert stream is None or isinstance(stream, FakeStream)
        self.recorded_on = stream


class FakeStream:
    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        assert isinstance(non_blocking, bool)
        self.ptr = next(_ptrs)
        self.syncs = 0
        self.waited: list = []

    def synchronize(self):
        self.syncs += 1

    def wait_event(self, event):
        assert isinstance(event, FakeEvent) and event.recorded_on is not None, "wait on an unrecorded event"
        self.waited.append(event.recorded_on)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeCupyArray:
    def __init__(self, shape, dtype=np.float32, memptr=None, strides=None, order="C"):
        self._a = np.zeros(tuple(shape), dtype=dtype)
        self.data = _Data(next(_ptrs))
        _MEM[self.data.ptr] = self

    @classmethod
    def of(cls, arr):
        out = cls(arr.shape, arr.dtype)
        out._a[...] = arr
        return out

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.data.ptr, False), "version": 3}

    def set(self, arr, stream=None):
        assert isinstance(arr, np.ndarray), "ndarray.set takes a host numpy array"
        assert arr.shape == self.shape and arr.dtype == self.dtype, (arr.shape, arr.dtype, self.shape, self.dtype)
        assert stream is None or isinstance(stream, FakeStream)
        self._a[...] = arr

    def get(self, stream=None, order="C", out=None, blocking=True):
        assert stream is None or isinstance(stream, FakeStream)
        return self._a.copy()

    def copy(self):
        return FakeCupyArray.of(self._a)

    def astype(self, dtype, copy=True):
        return self if (not copy and np.dtype(dtype) == self.dtype) else FakeCupyArray.of(self._a.astype(dtype))


class _Device:
    def __init__(self, device=None):
        assert device is None or isinstance(device, int)
        self.compute_capability = "89"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _fake_cupy(n_devices=1):
    cp = types.ModuleType("cupy")
    cp.__version__ = "14.2.0"
    cp.ndarray = FakeCupyArray

    def empty(shape, dtype=float, order="C"):
        return FakeCupyArray(shape, dtype)

    def copyto(dst, src, casting="same_kind", where=None):
        assert isinstance(dst, FakeCupyArray) and isinstance(src, FakeCupyArray)
        assert dst.shape == src.shape
        dst._a[...] = src._a

    def asnumpy(a, stream=None, order="C", out=None, blocking=True):
        return a._a.copy()

    cp.empty, cp.copyto, cp.asnumpy = empty, copyto, asnumpy
    current = FakeStream()  # the caller's (current) stream
    cuda = types.SimpleNamespace(Stream=FakeStream, Device=_Device, Event=FakeEvent,
                                 get_current_stream=lambda device=None: current)
    cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: n_devices,
                                         getDeviceProperties=lambda i: {"name": b"Fake GPU"})

    class UnownedMemory:
        def __init__(self, ptr, size, owner, device_id=None):
            assert isinstance(ptr, int) and isinstance(size, int)
            self.ptr, self.size, self.owner = ptr, size, owner

    class MemoryPointer:
        def __init__(self, mem, offset):
            self.mem, self.offset = mem, offset

    def ndarray_from(shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is None:
            return FakeCupyArray(shape, dtype)
        owner = memptr.mem.owner  # a FakeOrtValue
        assert memptr.mem.size == owner.array.nbytes
        return FakeCupyArray.of(owner.array.reshape(shape).astype(dtype))

    cp.ndarray = ndarray_from
    cuda.UnownedMemory, cuda.MemoryPointer = UnownedMemory, MemoryPointer
    cp.cuda = cuda
    return cp


# ----------------------------------------------------------------------------- fake tensorrt
def _fake_trt(version="10.13.0", fail_parse=False):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    major = int(version.split(".")[0])
    calls = trt.calls = {"build": 0, "flags": [], "profiles": [], "timing_cache_in": [], "deserialize": 0,
                         "refused_shapes": []}

    class Logger:
        WARNING = 2

        def __init__(self, min_severity=2):
            assert isinstance(min_severity, int)

    class BuilderFlag:
        if major < 11:
            FP16 = "FP16"
        TF32 = "TF32"

    class MemoryPoolType:
        WORKSPACE = "WORKSPACE"

    class TensorIOMode:
        INPUT = "INPUT"
        OUTPUT = "OUTPUT"

    class DataType:
        FLOAT = "FLOAT"

    def nptype(trt_type):
        assert trt_type == DataType.FLOAT
        return np.float32

    class Tensor:
        def __init__(self, name, shape):
            self.name, self.shape = name, shape

    class Network:
        def __init__(self):
            self.inputs, self.onnx = [], None

        @property
        def num_inputs(self):
            return len(self.inputs)

        def get_input(self, index):
            return self.inputs[index]

    class OnnxParser:
        def __init__(self, network, logger):
            assert isinstance(network, Network) and isinstance(logger, Logger)
            self.network, self.errors = network, []

        def parse_from_file(self, model):
            assert type(model) is str, "TensorRT's parse_from_file takes a str path"
            if fail_parse:
                self.errors = ["fake parse failure: unsupported op"]
                return False
            import onnx

            m = onnx.load(model)
            for i in m.graph.input:
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in i.type.tensor_type.shape.dim]
                self.network.inputs.append(Tensor(i.name, tuple(dims)))
            self.network.onnx = model
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, index):
            return self.errors[index]

    class HostMemory(bytes):
        pass

    class TimingCache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return HostMemory(b"TIMING" + self.data[6:] + b".")

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, input, min, opt, max):
            assert isinstance(input, str) and all(isinstance(t, tuple) for t in (min, opt, max))
            assert all(a <= b <= c for a, b, c in zip(min, opt, max)), "profile needs min <= opt <= max"
            self.shapes[input] = (min, opt, max)

    class Config:
        def __init__(self):
            self.flags, self.cache, self.profiles = [], None, []

        def set_memory_pool_limit(self, pool, pool_size):
            assert pool == MemoryPoolType.WORKSPACE and isinstance(pool_size, int)

        def set_flag(self, flag):
            assert flag in vars(BuilderFlag).values()
            self.flags.append(flag)
            calls["flags"].append(flag)

        def create_timing_cache(self, serialized_timing_cache):
            assert isinstance(serialized_timing_cache, (bytes, bytearray, memoryview))
            calls["timing_cache_in"].append(bytes(serialized_timing_cache))
            return TimingCache(serialized_timing_cache)

        def set_timing_cache(self, cache, ignore_mismatch):
            assert isinstance(cache, TimingCache) and isinstance(ignore_mismatch, bool)
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

        def add_optimization_profile(self, profile):
            assert isinstance(profile, Profile)
            self.profiles.append(profile)
            calls["profiles"].append(profile.shapes)
            return 0

    class Builder:
        def __init__(self, logger):
            assert isinstance(logger, Logger)

        def create_network(self, flags=0):
            assert isinstance(flags, int)
            if major >= 11:
                assert flags == 0, "EXPLICIT_BATCH is gone in TRT 11"
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            assert isinstance(network, Network) and isinstance(config, Config)
            assert network.onnx, "build before parse"
            assert config.cache is not None, "no timing cache set"
            for t in network.inputs:
                if -1 in t.shape:
                    assert any(t.name in p.shapes for p in config.profiles), f"dynamic input {t.name} has no profile"
            calls["build"] += 1
            profiles = [{n: [list(d) for d in mom] for n, mom in p.shapes.items()} for p in config.profiles]
            return HostMemory(b"FAKEPLAN" + json.dumps({"onnx": network.onnx, "flags": config.flags,
                                                        "profiles": profiles}).encode())

    class Context:
        def __init__(self, engine):
            self.engine, self.addr, self.shapes, self.outs = engine, {}, {}, {}

        def set_input_shape(self, name, shape):
            assert name in engine_inputs(self.engine) and isinstance(shape, tuple)
            if -1 not in self.engine.get_tensor_shape(name):  # a static input: only its own shape
                return shape == self.engine.get_tensor_shape(name)
            lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
            if len(shape) != len(lo) or not all(a <= d <= b for a, d, b in zip(lo, shape, hi)):
                calls["refused_shapes"].append(shape)
                return False  # TensorRT logs an error and returns False for a shape outside the profile
            self.shapes[name] = shape
            self.outs = {}
            return True

        def get_tensor_shape(self, name):
            if name in self.shapes:
                return self.shapes[name]
            if name in engine_inputs(self.engine):
                return self.engine.get_tensor_shape(name)
            if name not in self.outs:
                for i in self.engine.sess.get_inputs():
                    assert i.name in self.shapes or -1 not in self.engine.get_tensor_shape(i.name), \
                        f"output shape asked before set_input_shape({i.name})"
                feeds = {i.name: np.zeros(self.shapes.get(i.name, tuple(i.shape)), np.float32)
                         for i in self.engine.sess.get_inputs()}
                outs = self.engine.sess.run(None, feeds)
                self.outs = {o.name: v.shape for o, v in zip(self.engine.sess.get_outputs(), outs)}
            return self.outs[name]

        def set_tensor_address(self, name, memory):
            assert type(memory) is int, "set_tensor_address takes an int pointer"
            assert memory in _MEM, "address of no device buffer"
            self.addr[name] = memory
            return True

        def execute_async_v3(self, stream_handle):
            assert type(stream_handle) is int
            names = [i.name for i in self.engine.sess.get_inputs()]
            assert all(n in self.addr for n in names), "input address not set"
            for n in names:
                if -1 in self.engine.get_tensor_shape(n):
                    assert n in self.shapes, f"dynamic input {n}: set_input_shape not called"
                    assert _MEM[self.addr[n]].shape == self.shapes[n], "buffer does not match the input shape"
            feeds = {n: _MEM[self.addr[n]]._a for n in names}
            outs = self.engine.sess.run(None, feeds)
            for o, v in zip(self.engine.sess.get_outputs(), outs):
                dst = _MEM[self.addr[o.name]]
                assert dst.shape == v.shape, (o.name, dst.shape, v.shape)
                dst._a[...] = v
            return True

    def engine_inputs(engine):
        return [i.name for i in engine.sess.get_inputs()]

    class Engine:
        def __init__(self, onnx_path, profiles):
            self.profiles = profiles
            self.sess = real_ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
            self.names = [i.name for i in self.sess.get_inputs()] + [o.name for o in self.sess.get_outputs()]

        @property
        def num_io_tensors(self):
            return len(self.names)

        def get_tensor_name(self, index):
            return self.names[index]

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if name in engine_inputs(self) else TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return DataType.FLOAT

        def get_tensor_shape(self, name):
            for t in list(self.sess.get_inputs()) + list(self.sess.get_outputs()):
                if t.name == name:
                    return tuple(d if isinstance(d, int) else -1 for d in t.shape)
            raise KeyError(name)

        def get_tensor_profile_shape(self, name, profile_index):
            assert isinstance(name, str) and type(profile_index) is int
            assert name in engine_inputs(self), "profile shapes exist for inputs only"
            return [tuple(d) for d in self.profiles[profile_index][name]]

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            assert isinstance(logger, Logger)

        def deserialize_cuda_engine(self, serialized_engine):
            assert isinstance(serialized_engine, (bytes, bytearray, memoryview))
            calls["deserialize"] += 1
            data = bytes(serialized_engine)
            if not data.startswith(b"FAKEPLAN"):
                return None
            plan = json.loads(data[8:])
            return Engine(plan["onnx"], plan["profiles"])

    for obj in (Logger, BuilderFlag, MemoryPoolType, TensorIOMode, DataType, nptype, Builder, OnnxParser, Runtime):
        setattr(trt, obj.__name__, obj)
    return trt


# ----------------------------------------------------------------------------- fake onnxruntime (GPU build)
TRT_EP_KEYS = {"device_id", "trt_max_workspace_size", "trt_fp16_enable", "trt_int8_enable", "trt_engine_cache_enable",
               "trt_engine_cache_path", "trt_engine_cache_prefix", "trt_timing_cache_enable", "trt_timing_cache_path",
               "trt_force_timing_cache", "trt_builder_optimization_level", "trt_auxiliary_streams",
               "trt_min_subgraph_size", "trt_max_partition_iterations", "trt_profile_min_shapes",
               "trt_profile_max_shapes", "trt_profile_opt_shapes", "trt_cuda_graph_enable",
               "trt_detailed_build_log", "trt_layer_norm_fp32_fallback", "user_compute_stream",
               "has_user_compute_stream"}
CUDA_EP_KEYS = {"device_id", "gpu_mem_limit", "arena_extend_strategy", "cudnn_conv_algo_search",
                "do_copy_in_default_stream", "has_user_compute_stream", "user_compute_stream",
                "cudnn_conv_use_max_workspace", "enable_cuda_graph", "prefer_nhwc", "use_tf32",
                "use_ep_level_unified_stream"}


class FakeOrtValue:
    def __init__(self, array):
        self.array = np.ascontiguousarray(array)
        self.ptr = next(_ptrs)

    def data_ptr(self):
        return self.ptr

    def shape(self):
        return list(self.array.shape)

    def data_type(self):
        return {np.dtype(np.float32): "tensor(float)"}[self.array.dtype]


class FakeIOBinding:
    def __init__(self, sess):
        self.sess, self.inputs, self.outputs, self.results, self.synced = sess, {}, {}, None, []

    def bind_input(self, name, device_type, device_id, element_type, shape, buffer_ptr):
        assert device_type == "cuda" and isinstance(device_id, int)
        assert element_type in (np.float32,), element_type
        assert isinstance(buffer_ptr, int) and buffer_ptr in _MEM
        arr = _MEM[buffer_ptr]
        assert tuple(shape) == arr.shape
        self.inputs[name] = arr._a

    def bind_cpu_input(self, name, arr_on_cpu):
        assert isinstance(arr_on_cpu, np.ndarray) and arr_on_cpu.flags.c_contiguous
        self.inputs[name] = arr_on_cpu

    def bind_output(self, name, device_type="cpu", device_id=0, element_type=None, shape=None, buffer_ptr=None):
        assert device_type in ("cpu", "cuda") and isinstance(device_id, int)
        self.outputs[name] = device_type

    def synchronize_inputs(self):
        self.synced.append("in")

    def synchronize_outputs(self):
        self.synced.append("out")

    def copy_outputs_to_cpu(self):
        return [r.copy() for r in self.results]

    def get_outputs(self):
        return [FakeOrtValue(r) for r in self.results]


def _fake_ort(available=("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
              trt_starts=True):
    ort = types.ModuleType("onnxruntime")
    ort.__version__ = "1.31.1"
    ort.SessionOptions = real_ort.SessionOptions
    ort.get_available_providers = lambda: list(available)
    ort.created = []

    class InferenceSession:
        def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, **kwargs):
            assert isinstance(path_or_bytes, str)
            assert isinstance(sess_options, real_ort.SessionOptions)
            got = []
            for p in providers:
                name, opts = (p, {}) if isinstance(p, str) else p
                assert isinstance(name, str) and isinstance(opts, dict)
                assert name in available, f"{name} not available"
                keys = TRT_EP_KEYS if name == "TensorrtExecutionProvider" else CUDA_EP_KEYS if name == "CUDAExecutionProvider" else set()
                assert set(opts) <= keys, f"unknown {name} options {set(opts) - keys}"
                for k, v in opts.items():
                    if k == "device_id":
                        assert type(v) is int
                    elif k.endswith("_enable"):
                        assert type(v) is bool, (k, v)
                    elif k.endswith("_path"):
                        assert isinstance(v, str) and Path(v).is_dir(), (k, v)
                if name == "TensorrtExecutionProvider" and not trt_starts:
                    continue  # ORT's silent fallback when libnvinfer is missing
                got.append(name)
            self.options = providers
            self._got = got
            self._sess = real_ort.InferenceSession(path_or_bytes, providers=["CPUExecutionProvider"])
            ort.created.append(self)

        def get_providers(self):
            return list(self._got)

        def get_inputs(self):
            return self._sess.get_inputs()

        def get_outputs(self):
            return self._sess.get_outputs()

        def run(self, output_names, input_feed, run_options=None):
            assert self._got == ["CPUExecutionProvider"], "GPU sessions must run through IO binding"
            return self._sess.run(output_names, input_feed, run_options)

        def io_binding(self):
            return FakeIOBinding(self)

        def run_with_iobinding(self, iobinding, run_options=None):
            assert isinstance(iobinding, FakeIOBinding) and iobinding.synced[-1:] == ["in"]
            assert set(iobinding.outputs) == {o.name for o in self._sess.get_outputs()}
            iobinding.results = self._sess.run(None, iobinding.inputs)

    ort.InferenceSession = InferenceSession
    return ort


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def gpu_env(monkeypatch, tmp_path):
    """Install fake cupy + tensorrt (10.x) + GPU onnxruntime; returns a namespace of them."""
    def install(trt_version="10.13.0", fail_parse=False, ort_available=None, trt_starts=True, cupy=True):
        env = types.SimpleNamespace()
        env.cupy = _fake_cupy() if cupy else None
        env.trt = _fake_trt(trt_version, fail_parse) if trt_version else None
        env.ort = _fake_ort(**({"available": ort_available} if ort_available else {}), trt_starts=trt_starts)
        monkeypatch.setitem(sys.modules, "cupy", env.cupy)  # None => ImportError, like a missing module
        monkeypatch.setitem(sys.modules, "tensorrt", env.trt)
        monkeypatch.setitem(sys.modules, "onnxruntime", env.ort)
        return env

    return install


def _loader(models_dir, tmp_path, **runtime):
    from livecam.inference.models import ModelLoader

    settings = RuntimeSettings(engine_cache=str(tmp_path / "engines"), **runtime)
    return ModelLoader(settings, models_dir=models_dir)


def _target(size=128, seed=0, lo=0.0):
    return np.random.default_rng(seed).uniform(lo, 1.0, (1, 3, size, size)).astype(np.float32)


# ----------------------------------------------------------------------------- tests: native TensorRT
def test_native_trt10_builds_fp16_engine_and_runs_with_cupy_buffers(gpu_env, standins_dir, tmp_path):
    env = gpu_env("10.13.0")
    loader = _loader(standins_dir, tmp_path)
    sess = loader.session("inswapper_128")
    assert sess.provider == "tensorrt" and sess.precision == "fp16"
    assert env.trt.calls["flags"] == ["FP16"] and env.trt.calls["build"] == 1
    target = _target()
    out = sess.run({"target": target, "source": np.ones((1, 512), np.float32)})
    assert isinstance(out[0], np.ndarray) and np.array_equal(out[0], target)  # identity stand-in through the engine
    assert loader.providers() == {"inswapper_128": "tensorrt"}
    cache = loader.engine_cache
    assert cache.key == "sm89/trt10.13_ort1.31"
    manifest = json.loads((cache.dir / "manifest.json").read_text())
    assert manifest["cache_key"] == "sm89/trt10.13_ort1.31" and manifest["gpu_arch"] == "89"
    assert manifest["versions"]["tensorrt"] == "10.13.0" and manifest["versions"]["onnxruntime"] == "1.31.1"
    assert "created_at" in manifest
    (entry,) = manifest["engine_files"].values()
    assert entry["model"] == "inswapper_128" and entry["precision"] == "fp16"
    assert cache.timing_cache_path().read_bytes().startswith(b"TIMING")


def test_engine_reused_across_runs_and_timing_cache_fed_back(gpu_env, standins_dir, tmp_path):
    env = gpu_env()
    _loader(standins_dir, tmp_path).session("hyperswap_1a_256")
    assert env.trt.calls["build"] == 1 and env.trt.calls["timing_cache_in"] == [b""]
    # a new process: same cache dir -> engine loaded, no build
    sess = _loader(standins_dir, tmp_path).session("hyperswap_1a_256")
    assert env.trt.calls["build"] == 1 and sess.provider == "tensorrt"
    # another model builds with the saved timing cache as input
    _loader(standins_dir, tmp_path).session("xseg_1")
    assert env.trt.calls["build"] == 2 and env.trt.calls["timing_cache_in"][1].startswith(b"TIMING")


def test_corrupt_or_stale_engine_is_rebuilt_not_fatal(gpu_env, standins_dir, tmp_path):
    env = gpu_env()
    loader = _loader(standins_dir, tmp_path)
    loader.session("xseg_2")
    (engine,) = loader.engine_cache.dir.glob("xseg_2.*.engine")
    engine.write_bytes(b"garbage" * 10)  # corrupt: size/sha no longer match the manifest
    sess = _loader(standins_dir, tmp_path).session("xseg_2")
    assert sess.provider == "tensorrt" and env.trt.calls["build"] == 2
    # stale: the manifest matches but TensorRT refuses the plan (e.g. other TRT build) -> rebuild
    cache = loader.engine_cache
    name = engine.name
    sha = name.split(".")[1]
    cache.store("xseg_2", sha + "0" * 52, "fp16", b"NOT-A-PLAN", name.split(".")[3])  # same shape key
    (stale,) = [p for p in cache.dir.glob("xseg_2.*.engine")]
    assert stale.read_bytes() == b"NOT-A-PLAN"
    sess = _loader(standins_dir, tmp_path).session("xseg_2")
    assert sess.provider == "tensorrt" and env.trt.calls["build"] == 3
    out = sess.run({"input": np.zeros((1, 256, 256, 3), np.float32)})[0]
    assert out.shape == (1, 256, 256, 1) and out[0, 128, 128, 0] == 1.0


def test_trt11_has_no_fp16_flag_and_falls_back_to_fp32_build(gpu_env, standins_dir, tmp_path, caplog):
    env = gpu_env("11.4.0")
    assert not hasattr(env.trt.BuilderFlag, "FP16")
    sess = _loader(standins_dir, tmp_path).session("inswapper_128")
    assert sess.provider == "tensorrt"
    assert env.trt.calls["flags"] == []  # never asked for the removed flag
    assert sess.precision == "fp32"  # no onnxconverter-common here: built FP32, and says so
    assert "onnxconverter-common" in caplog.text
    assert _loader(standins_dir, tmp_path, fp16=False).session("inswapper_128").precision == "fp32"


def _scrfd_rows(side):
    return [(side // st) ** 2 * 2 for st in (8, 16, 32)]


@pytest.mark.parametrize("profile", ["speed", "default", "quality"])
def test_shipped_profiles_detect_on_the_tensorrt_rung(gpu_env, standins_dir, tmp_path, profile):
    """The engine is built for the profile's detector.size (speed 320, default/quality 640) and runs it."""
    from livecam.face.detect import make_detector
    from livecam.profiles import load_profile
    from livecam.testing.standins import SCRFD_BOX

    env = gpu_env()
    settings = load_profile(profile)
    side = settings.detector.size
    loader = _loader(standins_dir, tmp_path)
    det = make_detector(loader, settings)
    assert det.session.provider == "tensorrt"
    assert env.trt.calls["profiles"] == [{"input": ((1, 3, 32, 32), (1, 3, side, side), (1, 3, 1280, 1280))}]
    (engine,) = loader.engine_cache.dir.glob("scrfd_2.5g.*.engine")
    assert f".1x3x{side}x{side}-" in engine.name  # the shape is part of the engine's key
    outs = det.session.run({"input": np.zeros((1, 3, side, side), np.float32)})
    assert [o.shape[0] for o in outs[:3]] == _scrfd_rows(side)
    faces = det.detect(np.zeros((side * 9 // 16, side, 3), np.uint8))
    if side == 640:  # the stand-in's face sits at stride-32 row 260, which a 320 input does not have
        assert len(faces) == 1 and faces[0].bbox.tolist() == pytest.approx(SCRFD_BOX, abs=1e-3)
    else:
        assert faces == []


def test_each_detector_size_gets_its_engine_and_cache_key(gpu_env, standins_dir, tmp_path):
    from livecam.face.detect import make_detector
    from livecam.settings import Settings

    env = gpu_env()
    names = {}
    for n, side in enumerate((320, 480, 640), start=1):
        det = make_detector(_loader(standins_dir, tmp_path), Settings().with_changes({"detector.size": side}))
        assert env.trt.calls["build"] == n
        assert env.trt.calls["profiles"][-1]["input"][1] == (1, 3, side, side)
        outs = det.session.run({"input": np.zeros((1, 3, side, side), np.float32)})
        assert [o.shape[0] for o in outs[:3]] == _scrfd_rows(side)
        names[side] = {p.name for p in _loader(standins_dir, tmp_path).engine_cache.dir.glob("scrfd_2.5g.*.engine")}
    assert len(names[640]) == 3 and names[320] < names[480] < names[640]
    # a new process asking for 480 again loads the cached engine: no build
    make_detector(_loader(standins_dir, tmp_path), Settings().with_changes({"detector.size": 480}))
    assert env.trt.calls["build"] == 3
    # one loader, a size change: the new size gets its engine, the loader drops the old session
    loader = _loader(standins_dir, tmp_path)
    make_detector(loader, Settings())
    make_detector(loader, Settings().with_changes({"detector.size": 320}))
    assert loader.loaded() == ["scrfd_2.5g:fp16"] and env.trt.calls["build"] == 3


def test_any_allowed_size_runs_on_one_engine_and_outside_the_range_is_refused(gpu_env, standins_dir, tmp_path):
    from livecam.errors import ModelError
    from livecam.inference.tensorrt import ShapeOutsideProfile

    env = gpu_env()
    sess = _loader(standins_dir, tmp_path).session("scrfd_2.5g", input_size=320)
    # a 480 or 1280 input runs on the 320-tuned engine (inside its range), no rebuild
    for side in (480, 1280, 64):
        outs = sess.run({"input": np.zeros((1, 3, side, side), np.float32)})
        assert [o.shape[0] for o in outs[:3]] == _scrfd_rows(side)
    assert env.trt.calls["build"] == 1
    # outside the built range: a clear error, TensorRT never sees the shape, the session keeps working
    with pytest.raises(ShapeOutsideProfile) as err:
        sess.run({"input": np.zeros((1, 3, 1600, 1600), np.float32)})
    assert isinstance(err.value, ModelError) and "1x3x1600x1600" in err.value.message
    assert "32x32..1280x1280" in err.value.message.replace("1x3x", "") and "detector.size" in err.value.fix
    assert env.trt.calls["refused_shapes"] == []
    outs = sess.run({"input": np.zeros((1, 3, 640, 640), np.float32)})
    assert outs[2][260, 0] == pytest.approx(0.92)
    # if TensorRT itself refuses a shape (set_input_shape -> False), the same error, no execution
    with pytest.raises(ShapeOutsideProfile):
        sess._run({"input": np.zeros((1, 3, 16, 16), np.float32)})
    assert env.trt.calls["refused_shapes"] == [(1, 3, 16, 16)]
    assert sess.run({"input": np.zeros((1, 3, 640, 640), np.float32)})[2][260, 0] == pytest.approx(0.92)


def test_ort_trt_ep_gets_the_detector_profile(gpu_env, standins_dir, tmp_path):
    env = gpu_env(trt_version=None)
    sess = _loader(standins_dir, tmp_path).session("scrfd_2.5g", input_size=480)
    assert sess.provider == "ort-tensorrt"
    trt_opts = env.ort.created[0].options[0][1]
    assert trt_opts["trt_profile_min_shapes"] == "input:1x3x32x32"
    assert trt_opts["trt_profile_opt_shapes"] == "input:1x3x480x480"
    assert trt_opts["trt_profile_max_shapes"] == "input:1x3x1280x1280"


def test_device_arrays_in_give_device_arrays_out(gpu_env, standins_dir, tmp_path):
    env = gpu_env()
    sess = _loader(standins_dir, tmp_path).session("hyperswap_1b_256")
    target = _target(256, lo=-1.0)
    outs = sess.run({"source": env.cupy.ndarray((1, 512)), "target": FakeCupyArray.of(target)})
    assert all(isinstance(o, FakeCupyArray) for o in outs)
    assert np.array_equal(outs[0]._a, target) and outs[1].shape == (1, 1, 256, 256)
    # no host sync on the device path: the streams wait on each other through events
    caller = env.cupy.cuda.get_current_stream()
    assert sess._stream.syncs == 0 and caller.syncs == 0
    assert sess._stream.waited == [caller] and caller.waited == [sess._stream]
    sess.run({"source": np.zeros((1, 512), np.float32), "target": target})  # host arrays: one sync
    assert sess._stream.syncs == 1


def test_parse_failure_falls_down_the_ladder_with_reason(gpu_env, standins_dir, tmp_path):
    gpu_env(fail_parse=True)
    loader = _loader(standins_dir, tmp_path)
    sess = loader.session("xseg_3")
    assert sess.provider == "ort-tensorrt"
    first = loader.attempts("xseg_3")[0]
    assert first.provider == "tensorrt" and not first.ok and "fake parse failure" in first.reason


def test_no_gpu_means_cpu_with_a_reason_per_rung(gpu_env, standins_dir, tmp_path):
    gpu_env(trt_version=None, cupy=False, ort_available=("CPUExecutionProvider",))
    loader = _loader(standins_dir, tmp_path)
    sess = loader.session("arcface_w600k_r50")
    assert sess.provider == "cpu" and loader.providers() == {"arcface_w600k_r50": "cpu"}
    reasons = {a.provider: a.reason for a in loader.attempts("arcface_w600k_r50")}
    assert "cupy" in reasons["tensorrt"]
    assert "TensorrtExecutionProvider not in this onnxruntime build" in reasons["ort-tensorrt"]
    assert "CUDAExecutionProvider" in reasons["cuda"] and reasons["cpu"] == ""


# ----------------------------------------------------------------------------- tests: ORT GPU providers
def test_ort_trt_ep_gets_cache_and_fp16_options(gpu_env, standins_dir, tmp_path):
    env = gpu_env(trt_version=None)  # no native TRT: ORT's TRT EP is next
    loader = _loader(standins_dir, tmp_path, fp16=True)
    sess = loader.session("inswapper_128")
    assert sess.provider == "ort-tensorrt" and sess.precision == "fp16"
    (created,) = env.ort.created
    (trt_name, trt_opts), (cuda_name, cuda_opts), cpu = created.options
    assert (trt_name, cuda_name, cpu) == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert trt_opts["trt_fp16_enable"] is True and trt_opts["trt_engine_cache_enable"] is True
    assert Path(trt_opts["trt_engine_cache_path"]).is_relative_to(tmp_path / "engines")
    assert cuda_opts == {"device_id": 0}
    # IO binding with host arrays returns host arrays equal to the CPU result
    target = _target()
    out = sess.run({"target": target, "source": np.zeros((1, 512), np.float32)})
    assert np.array_equal(out[0], target)


def test_ort_silent_trt_fallback_is_reported_as_cuda(gpu_env, standins_dir, tmp_path):
    gpu_env(trt_version=None, trt_starts=False)
    loader = _loader(standins_dir, tmp_path)
    sess = loader.session("xseg_1")
    assert sess.provider == "cuda" and loader.providers()["xseg_1"] == "cuda"
    a = {x.provider: x for x in loader.attempts("xseg_1")}
    assert not a["ort-tensorrt"].ok and "fell back to CUDAExecutionProvider" in a["ort-tensorrt"].reason
    assert a["cuda"].ok


def test_cuda_io_binding_with_device_arrays(gpu_env, standins_dir, tmp_path):
    env = gpu_env(trt_version=None)
    loader = _loader(standins_dir, tmp_path, provider="cuda")
    sess = loader.session("bisenet_resnet_18")
    assert sess.provider == "cuda"
    x = FakeCupyArray.of(np.zeros((1, 3, 512, 512), np.float32))
    (out,) = sess.run({"input": x})
    assert isinstance(out, FakeCupyArray) and out.shape == (1, 19, 512, 512)
    assert out._a[0, :, 256, 256].argmax() == 1 and out._a[0, :, 2, 2].argmax() == 0
    assert env.ort.created[0].options[0] == ("CUDAExecutionProvider", {"device_id": 0})


def test_provider_cpu_setting_skips_gpu_rungs(gpu_env, standins_dir, tmp_path):
    env = gpu_env()
    loader = _loader(standins_dir, tmp_path, provider="cpu")
    assert loader.session("xseg_1").provider == "cpu"
    assert env.trt.calls["build"] == 0 and [a.provider for a in loader.attempts("xseg_1")] == ["cpu"]


def test_remember_recall_persist_in_engine_manifest(gpu_env, standins_dir, tmp_path):
    gpu_env()
    loader = _loader(standins_dir, tmp_path)
    loader.remember("inswapper_128", "fp16_ok", False)
    again = _loader(standins_dir, tmp_path)
    assert again.recall("inswapper_128", "fp16_ok") is False
    assert again.recall("inswapper_128", "other", default="x") == "x"
    manifest = json.loads((again.engine_cache.dir / "manifest.json").read_text())
    assert manifest["decisions"] == {"inswapper_128": {"fp16_ok": False}}


def test_fp16_and_fp32_sessions_are_separate(gpu_env, standins_dir, tmp_path):
    env = gpu_env()
    loader = _loader(standins_dir, tmp_path)
    a = loader.session("inswapper_128", fp16=True)
    b = loader.session("inswapper_128", fp16=False)
    assert a is not b and (a.precision, b.precision) == ("fp16", "fp32")
    assert loader.session("inswapper_128") is a  # settings.runtime.fp16 defaults to True
    assert env.trt.calls["flags"] == ["FP16"] and env.trt.calls["build"] == 2


def test_shared_engine_repo_pulled_before_build_and_pushed_after(gpu_env, standins_dir, tmp_path, monkeypatch):
    from livecam.inference.engine_cache import EngineCache

    env = gpu_env()
    events = []
    monkeypatch.setattr(EngineCache, "pull", lambda self, repo, token=None: events.append(("pull", repo, env.trt.calls["build"])) or [])
    monkeypatch.setattr(EngineCache, "push", lambda self, repo, token=None: events.append(("push", repo, env.trt.calls["build"])) or [])
    monkeypatch.setenv("LIVECAM_ENGINE_REPO", "team/engines")
    loader = _loader(standins_dir, tmp_path)
    loader.session("xseg_1")
    loader.session("xseg_2")
    assert events == [("pull", "team/engines", 0), ("push", "team/engines", 1), ("push", "team/engines", 2)]
    _loader(standins_dir, tmp_path).session("xseg_1")  # cached engine: no pull, no push
    assert len(events) == 3


def test_every_session_run_counts_as_inference_time(gpu_env, standins_dir, tmp_path):
    from livecam.timing import infer_seconds

    gpu_env()
    for provider in ("tensorrt", "cuda", "cpu"):
        sess = _loader(standins_dir, tmp_path, provider=provider).session("bisenet_resnet_34")
        assert sess.provider == provider
        t0 = infer_seconds()
        sess.run({"input": np.zeros((1, 3, 512, 512), np.float32)})
        assert infer_seconds() > t0


# ----------------------------------------------------------------------------- tests: threads
def _hammer(sess, make_feed, check, threads=2, calls=40):
    """`threads` threads call one session `calls` times each with their own inputs; returns the failures."""
    import threading

    failures, start = [], threading.Barrier(threads)

    def work(k):
        start.wait()
        for i in range(calls):
            feed, want = make_feed(k, i)
            try:
                got = sess.run(feed)
            except Exception as exc:  # noqa: BLE001 - a crash is a failure too
                failures.append(f"thread {k} call {i}: {exc!r}")
                continue
            if not check(got, want):
                failures.append(f"thread {k} call {i}: output of another call")

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
    finally:
        sys.setswitchinterval(old)
    return failures


def _identity_feed(host=True):
    def make(k, i):
        target = np.full((1, 3, 128, 128), (k * 100 + i) / 1000.0, np.float32)
        t = target if host else FakeCupyArray.of(target)
        return {"target": t, "source": np.zeros((1, 512), np.float32)}, target
    return make


def _same(got, want):
    out = got[0]._a if isinstance(got[0], FakeCupyArray) else got[0]
    return np.array_equal(out, want)


def test_two_threads_share_one_tensorrt_session_without_mixing_outputs(gpu_env, standins_dir, tmp_path):
    gpu_env()
    sess = _loader(standins_dir, tmp_path).session("inswapper_128")
    assert sess.provider == "tensorrt"
    assert _hammer(sess, _identity_feed(), _same) == []
    assert _hammer(sess, _identity_feed(host=False), _same) == []  # device arrays in and out


def test_two_threads_share_one_ort_gpu_session_without_mixing_outputs(gpu_env, standins_dir, tmp_path):
    gpu_env(trt_version=None)
    sess = _loader(standins_dir, tmp_path, provider="cuda").session("inswapper_128")
    assert sess.provider == "cuda"
    assert _hammer(sess, _identity_feed(host=False), _same) == []
    assert _hammer(sess, _identity_feed(), _same) == []


def test_fp16_engine_check_releases_the_fp32_reference(gpu_env, standins_dir, tmp_path):
    import gc
    import weakref

    from livecam.swap.swappers import make_swapper

    gpu_env()
    loader = _loader(standins_dir, tmp_path)
    sw = make_swapper(loader, "inswapper_128", fp16=True)
    assert sw.session.precision == "fp16"  # the identity stand-in agrees in FP16 and FP32
    assert loader.loaded() == ["inswapper_128:fp16"]  # the FP32 reference is not cached
    ref = weakref.ref(loader.session("inswapper_128", fp16=False))  # (re-made here only to watch it go)
    loader.release("inswapper_128", fp16=False)
    gc.collect()
    assert ref() is None and loader.loaded() == ["inswapper_128:fp16"]


def test_a_detector_size_change_reuses_an_onnx_runtime_session(gpu_env, standins_dir, tmp_path):
    """Only a native TensorRT engine is rebuilt for a new detector.size; ORT sessions run any size."""
    from livecam.face.detect import make_detector
    from livecam.settings import Settings

    gpu_env(trt_version=None)  # ORT TensorRT EP rung
    loader = _loader(standins_dir, tmp_path)
    a = make_detector(loader, Settings())
    b = make_detector(loader, Settings().with_changes({"detector.size": 320}))
    assert a.session is b.session and a.session.provider == "ort-tensorrt"
    outs = b.session.run({"input": np.zeros((1, 3, 320, 320), np.float32)})
    assert [o.shape[0] for o in outs[:3]] == _scrfd_rows(320)


def test_ort_threads_do_not_spin_after_a_run(standins_dir):
    """ORT's worker threads spin after each run by default; in the live loop that took the core
    the paste-back and tracker run on next (issue 9: OpenCV work right after a CenterFace call
    ran 1.8x slower). Every session the loader opens is made without spinning."""
    from livecam.inference.catalog import load_catalog
    from livecam.inference.runtime import OrtSession

    path = standins_dir / load_catalog().get("xseg_1").file
    sess = OrtSession("xseg_1", path, ["CPUExecutionProvider"])
    opts = sess._sess.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    out = sess.run({sess.input_names[0]: np.zeros(sess.input_shapes[sess.input_names[0]], np.float32)})
    assert np.isfinite(out[0]).all()  # and it still runs


def test_background_session_is_a_cpu_twin_with_fewer_threads(standins_dir, monkeypatch):
    """A background worker's model calls get a second session of the same file whose intra-op
    threads leave the frame thread a core (issue 9: ORT's default threads in a background CPU
    CenterFace put the frame thread's p95 over twice its p50); the frame thread keeps its own
    session at ORT's default. GPU/remote sessions are shared as they are."""
    import psutil

    from livecam.inference.models import ModelLoader, background_threads

    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 4)  # 4 physical cores
    assert background_threads() == 3
    loader = ModelLoader(models_dir=standins_dir)
    inline = loader.session("2dfan4")
    twin = loader.background_session(inline)
    assert twin is not inline and twin.provider == "cpu" and twin.path == inline.path
    assert twin._sess.get_session_options().intra_op_num_threads == 3
    assert inline._sess.get_session_options().intra_op_num_threads == 0  # ORT's default
    assert loader.background_session(inline) is twin  # cached
    x = np.random.default_rng(0).random(inline.input_shapes[inline.input_names[0]]).astype(np.float32)
    np.testing.assert_allclose(twin.run({twin.input_names[0]: x})[0], inline.run({inline.input_names[0]: x})[0],
                               rtol=1e-5, atol=1e-5)

    class GpuSession:  # what a CUDA / TensorRT / remote session looks like to the loader
        provider = "cuda"

    gpu = GpuSession()
    assert loader.background_session(gpu) is gpu
    loader.release("2dfan4")
    assert loader.background_session(loader.session("2dfan4")) is not twin  # released with its model
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 1)
    assert background_threads() == 1  # never 0 (ORT's "default")
