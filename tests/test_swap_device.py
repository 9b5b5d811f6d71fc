"""The device-resident swap path on the counting backend (NumPy standing in for CuPy).

The GPU configuration of the swap stage: the array backend is on the device and the
swapper's session takes device arrays (TensorRT / ORT IO binding; here the device
stand-in runtime). Counted: host<->device transfers by shape and host syncs.
"""

from __future__ import annotations

import numpy as np
import pytest

from livecam.face.types import Face, SourceFace
from livecam.settings import Settings
from livecam.timing import StageTimes

ASTRO_KPS5 = np.array([[203.59, 101.95], [247.78, 104.07], [223.99, 124.90], [204.23, 143.20], [241.87, 144.79]])


def _source(seed=1):
    e = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return SourceFace("src", e, e / np.linalg.norm(e))


def _faces(n, frame_shape):
    """n faces spread over the frame (the astronaut's 5 points, shifted, scaled x2)."""
    h, w = frame_shape[:2]
    out = []
    for i in range(n):
        kps = (ASTRO_KPS5 - ASTRO_KPS5.mean(0)) * 2.0 + [(i + 0.5) * w / n, h / 2]
        out.append(Face(bbox=np.r_[kps.min(0) - 60, kps.max(0) + 60], kps5=kps, score=1.0, track_id=i + 1))
    return out


def _frame(h=1080, w=1920, seed=0):
    import cv2

    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 4)


def _stage(settings, backend, tint=0.0):
    from livecam.swap.stage import SwapStage
    from livecam.testing.device import counting_loader

    return SwapStage(counting_loader(backend, tint), settings, backend)


SETTINGS = {"masks.types": ["box"], "composite.color_transfer": True, "temporal.enabled": True}


@pytest.mark.parametrize("model", ["hyperswap_1a_256", "inswapper_128"])
@pytest.mark.parametrize("n_faces", [1, 2, 4])
def test_gpu_configuration_moves_no_crop_and_syncs_at_most_once_per_face(model, n_faces):
    from livecam.ops.counting import CountingBackend

    be = CountingBackend()
    settings = Settings().with_changes(dict(SETTINGS, **{"swapper.model": model, "temporal.enabled": False}))
    stage = _stage(settings, be, tint=0.05)
    frame = _frame()
    faces = _faces(n_faces, frame.shape)
    size = stage._swapper.size
    for i in range(4):
        be.counts.reset()
        out = stage.process(frame, faces, _source(), settings, StageTimes())
        c = be.counts
        assert isinstance(out, np.ndarray) and out.shape == frame.shape
        for shape in ((size, size, 3), (1, 3, size, size)):
            assert c.crossings(shape) == 0, (shape, c.uploads, c.downloads)  # no crop crosses
        assert c.uploads.count(frame.shape) == 1 and c.downloads.count(frame.shape) == 1  # frame up once, down once
        assert c.downloads == [(5,)] * n_faces + [frame.shape]  # per face: the guard's 5 statistics, nothing else
        face_syncs = c.syncs - 1  # the frame's download is the one per-frame sync
        assert face_syncs <= n_faces, (i, c.syncs)  # <= 1 per face
        if i:
            assert c.uploads == [frame.shape]  # latents, masks and tables stay on the device after frame 1
    assert stage.guard_rejects == 0 and stage._swapper.session.calls == 4 * n_faces


def test_temporal_filters_add_no_host_read(tmp_path):
    """The camera-guided temporal filters decide on the device: with them on, still one read per
    face (the guard's) plus the frame's download."""
    from livecam.ops.counting import CountingBackend

    be = CountingBackend()
    settings = Settings().with_changes(SETTINGS)
    stage = _stage(settings, be)
    frame = _frame()
    faces = _faces(2, frame.shape)
    syncs = []
    for _ in range(3):
        be.counts.reset()
        stage.process(frame, faces, _source(), settings, StageTimes())
        syncs.append(be.counts.syncs)
        assert be.counts.crossings((256, 256, 3)) == 0
    assert all(s - 1 <= 2 for s in syncs), syncs  # 2 faces: one guard read each


def test_device_path_matches_the_cpu_path():
    """The same frame through the CPU backend (host model calls) and the counting backend (device path)."""
    from livecam.ops import get_backend
    from livecam.ops.counting import CountingBackend
    from livecam.swap.stage import SwapStage
    from livecam.testing.device import DeviceStandinLoader

    frame = _frame(540, 960)
    faces = _faces(2, frame.shape)
    for colour in (True, False):
        settings = Settings().with_changes(dict(SETTINGS, **{"composite.color_transfer": colour}))
        cpu_loader = DeviceStandinLoader(np, lambda a: isinstance(a, np.ndarray), tint=0.05)
        cpu = SwapStage(cpu_loader, settings, get_backend("cpu"))
        dev = _stage(settings, CountingBackend(), tint=0.05)
        for _ in range(3):  # colour smoothing and temporal state over frames
            a = cpu.process(frame, faces, _source(), settings, StageTimes())
            b = dev.process(frame, faces, _source(), settings, StageTimes())
        d = np.abs(a.astype(int) - b.astype(int))
        assert d.mean() < 0.2 and np.percentile(d, 99.9) <= 4, (colour, d.mean(), d.max())
        if not colour:  # (colour transfer maps a uniform tint back onto the target's colours)
            assert np.abs(b.astype(int) - frame).max() > 5


def test_device_session_refuses_host_crops():
    from livecam.ops.counting import CountingBackend
    from livecam.testing.device import counting_loader

    be = CountingBackend()
    sess = counting_loader(be).session("inswapper_128")
    with pytest.raises(TypeError, match="host array"):
        sess.run({"target": np.zeros((1, 3, 128, 128), np.float32), "source": be.asarray(np.zeros((1, 512)))})


def test_device_colour_table_equals_the_host_one():
    from livecam.ops.counting import CountingBackend
    from livecam.swap import composite as C
    from livecam.swap.temporal import TrackState

    be = CountingBackend()
    rng = np.random.default_rng(3)
    a = rng.integers(40, 200, (128, 128, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) * [1.2, 0.9, 1.0] + 10, 0, 255).astype(np.uint8)
    mask = np.ones((128, 128), np.float32)
    st_host, st_dev = TrackState(), TrackState()
    for momentum in (1.0, 0.3, 0.3):
        gain, bias = C.transfer_params(C.color_stats(get_cpu(), a, mask), C.color_stats(get_cpu(), b, mask))
        gain, bias = C.smooth_color(st_host, gain, bias, momentum)
        be.counts.reset()
        table = C.device_color_lut(be, st_dev, be.asarray(a), be.asarray(b), be.asarray(mask), momentum)
        assert be.counts.syncs == 0
        assert np.array_equal(be.to_host(table), C.color_lut(gain, bias))


def get_cpu():
    from livecam.ops import get_backend

    return get_backend("cpu")


def _cupy_backend():
    from livecam.ops import get_backend, gpu_available

    if not gpu_available():
        pytest.skip("CuPy or a CUDA device is not available")
    return get_backend("gpu")


@pytest.mark.gpu
def test_cupy_device_path_no_crop_crossing_and_matches_cpu():
    """On a real GPU: the stage on CuPy with the CuPy stand-in runtime (device arrays end to end)."""
    from benchmarks.gpu_check import BackendCounter
    from livecam.ops import get_backend
    from livecam.swap.stage import SwapStage
    from livecam.testing.device import DeviceStandinLoader, cupy_loader

    gpu = _cupy_backend()
    settings = Settings().with_changes(SETTINGS)
    frame = _frame(540, 960)
    faces = _faces(2, frame.shape)
    counter = BackendCounter(gpu)
    dev = SwapStage(cupy_loader(tint=0.05), settings, gpu)
    cpu = SwapStage(DeviceStandinLoader(np, lambda a: isinstance(a, np.ndarray), tint=0.05), settings,
                    get_backend("cpu"))
    for _ in range(3):
        counter.reset()
        b = dev.process(frame, faces, _source(), settings, StageTimes())
        a = cpu.process(frame, faces, _source(), settings, StageTimes())
        assert counter.crop_crossings(256) == 0 and counter.downloads.count(frame.shape) == 1
    assert gpu.fused is not None and gpu.fused.failed == ""  # the fused kernels compiled and ran
    d = np.abs(a.astype(int) - b.astype(int))
    assert d.mean() < 0.2 and np.percentile(d, 99.9) <= 4, (d.mean(), d.max())


@pytest.mark.gpu
def test_cupy_fused_reductions_match_the_array_module_code():
    from livecam.swap import composite as C
    from livecam.swap.guard import check_swap
    from livecam.swap.masks import box_mask
    from livecam.swap.temporal import TrackState

    gpu = _cupy_backend()
    rng = np.random.default_rng(4)
    a = rng.integers(30, 220, (256, 256, 3), dtype=np.uint8)
    b = np.clip(a * [1.1, 0.9, 1.0] + 8, 0, 255).astype(np.uint8)
    mask = box_mask(256, 0.3)
    fused_st, plain_st = TrackState(), TrackState()
    fused = gpu.fused
    for momentum in (1.0, 0.3, 0.3):
        t1 = C.device_color_lut(gpu, fused_st, gpu.asarray(a), gpu.asarray(b), gpu.asarray(mask), momentum)
        gpu.fused = None  # the array-module path on the same device
        t2 = C.device_color_lut(gpu, plain_st, gpu.asarray(a), gpu.asarray(b), gpu.asarray(mask), momentum)
        gpu.fused = fused
        assert np.abs(gpu.to_host(t1).astype(int) - gpu.to_host(t2)).max() <= 1
    sw = a.astype(np.float32)
    for crop in (sw, np.zeros_like(sw), np.full_like(sw, 128.0), sw * np.nan):
        assert check_swap(gpu.xp, gpu.asarray(crop), gpu.asarray(a), gpu.to_host, fused) == check_swap(np, crop, a)
