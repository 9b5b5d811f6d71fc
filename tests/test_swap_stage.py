"""SwapStage end to end with stand-in models: identity, tint and NaN swappers."""

from __future__ import annotations

import time

import numpy as np
import pytest

from livecam.face.geometry import align_matrix, paste_rect
from livecam.face.types import Face, SourceFace
from livecam.settings import Settings
from livecam.timing import StageTimes

# astronaut() 5 points (eyes, nose, mouth corners), photo pixels
ASTRO_KPS5 = np.array([[203.59, 101.95], [247.78, 104.07], [223.99, 124.90], [204.23, 143.20], [241.87, 144.79]])


# The shared stand-ins (tests/conftest.py): identity, tint and NaN swappers.
@pytest.fixture(scope="module")
def identity_dir(standins_dir):
    return standins_dir


@pytest.fixture(scope="module")
def tint_dir(tint_standins_dir):
    return tint_standins_dir


@pytest.fixture(scope="module")
def nan_dir(nan_standins_dir):
    return nan_standins_dir


def _loader(models):
    from livecam.inference.models import ModelLoader

    return ModelLoader(models_dir=models)


def _stage(models, settings, backend=None):
    from livecam.swap.stage import SwapStage

    return SwapStage(_loader(models), settings, backend)


def _source(seed=1):
    e = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return SourceFace("src", e, e / np.linalg.norm(e))


def _face(kps, tid=1, landmarks=True):
    from livecam.swap.masks import estimate_landmarks68

    kps = np.asarray(kps, dtype=np.float64)
    return Face(bbox=np.r_[kps.min(0) - 30, kps.max(0) + 30], kps5=kps, score=1.0,
                landmarks68=estimate_landmarks68(kps) if landmarks else None, track_id=tid)


def test_identity_720p_outside_identical_and_psnr(identity_dir):
    from livecam.ops import get_backend
    from benchmarks.swap_measure import measure_identity

    for model in ("hyperswap_1a_256", "inswapper_128"):
        r = measure_identity(identity_dir, get_backend("cpu"), model)
        assert r["outside_identical"], r
        assert r["psnr_face_db"] >= 32.0, r
        assert r["guard_rejects"] == 0


def test_nan_never_reaches_the_output(nan_dir, identity_dir):
    from livecam.ops import get_backend
    from benchmarks.swap_measure import measure_nan

    r = measure_nan(nan_dir, identity_dir, get_backend("cpu"), frames=8)
    a, b = r["nan_from_start"], r["good_then_nan"]
    assert a["frames_equal_input"] == 8 and a["guard_rejects"] == 8
    assert b["held_frames"] == b["guard_hold"] == 5
    assert b["frames_equal_input_after_hold"] == "3/3" and b["guard_rejects"] == 8


def test_tint_swaps_only_the_face_and_temporal_calms_it(tint_dir):
    from livecam.ops import get_backend
    from benchmarks.swap_measure import measure_temporal

    r = measure_temporal(tint_dir, get_backend("cpu"), frames=16)
    assert r["mean_abs_swap_minus_input"] > 8  # the tint is visible in the face
    assert r["ratio_on_over_off"] < 0.6  # temporal filters calm frame-to-frame change
    assert r["ratio_snap_only"] < 0.8 and r["ratio_seam_only"] <= 1.0
    assert r["seam_band_ratio_seam_only"] < 0.7  # the 12-px seam band itself is calmed


def test_process_contract(identity_dir, astronaut):
    settings = Settings().with_changes({"masks.types": ["box", "area"]})
    stage = _stage(identity_dir, settings)
    frame = astronaut.copy()
    times = StageTimes()
    out = stage.process(frame, [_face(ASTRO_KPS5)], _source(), settings, times)
    np.testing.assert_array_equal(frame, astronaut)  # input untouched by default
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8
    assert set(times.ms) == {"align", "swap", "guard", "masks", "temporal", "paste"}
    assert stage.active_model == "hyperswap_1a_256" and stage.loading == "" and stage.guard_rejects == 0
    seen = []  # `before_write`: called once, before the first write into an in-place frame
    same = stage.process(frame, [_face(ASTRO_KPS5)], _source(), settings, StageTimes(), inplace=True,
                         before_write=lambda: seen.append(np.array_equal(frame, astronaut)))
    assert same is frame and seen == [True] and not np.array_equal(frame, astronaut)
    stage.process(frame, [_face(ASTRO_KPS5)], _source(), settings, StageTimes(), before_write=lambda: seen.append(0))
    assert seen == [True]  # not in place: the frame is never written, nothing to wait for
    assert stage.process(frame, [], _source(), settings, StageTimes()) is frame  # nothing to do
    assert stage.process(frame, [_face(ASTRO_KPS5)], None, settings, StageTimes()) is frame


def test_tint_changes_the_face_region_only(tint_dir, astronaut):
    settings = Settings().with_changes({"masks.types": ["box"], "composite.color_transfer": False})
    stage = _stage(tint_dir, settings)
    out = stage.process(astronaut, [_face(ASTRO_KPS5)], _source(), settings, StageTimes())
    x1, y1, x2, y2 = paste_rect(align_matrix(ASTRO_KPS5, "arcface_128", 256), 256, astronaut.shape)
    diff = np.abs(out.astype(int) - astronaut).max(axis=2)
    assert diff[y1:y2, x1:x2].mean() > 5
    diff[y1:y2, x1:x2] = 0
    assert diff.max() == 0
    nose = ASTRO_KPS5[2].astype(int)
    assert np.abs(out[nose[1], nose[0]].astype(int) - astronaut[nose[1], nose[0]]).max() > 10
    # colour transfer pulls the tinted face back toward the scene's colours
    ct = Settings().with_changes({"masks.types": ["box"]})
    stage2 = _stage(tint_dir, ct)
    out2 = stage2.process(astronaut, [_face(ASTRO_KPS5)], _source(), ct, StageTimes())
    d1 = np.abs(out.astype(int) - astronaut)[y1:y2, x1:x2].mean()
    d2 = np.abs(out2.astype(int) - astronaut)[y1:y2, x1:x2].mean()
    assert d2 < 0.6 * d1


def test_occlusion_region_and_missing_landmarks(identity_dir, tint_dir, astronaut):
    base = Settings().with_changes({"composite.color_transfer": False, "temporal.enabled": False})
    src = _source()
    changed = {}
    for types in (["box"], ["box", "occlusion"], ["box", "region"], ["box", "area"]):
        s = base.with_changes({"masks.types": types})
        stage = _stage(tint_dir, s)
        out = stage.process(astronaut, [_face(ASTRO_KPS5, landmarks=False)], src, s, StageTimes())
        stage.process(astronaut, [_face(ASTRO_KPS5, landmarks=False)], src, s, StageTimes())
        changed[types[-1]] = int((out != astronaut).any(axis=2).sum())
        if types[-1] == "area":  # no 68 points: estimated from the 5, warned once
            notes = [m for m in stage.messages if "68-point" in m]
            assert len(notes) == 1
    assert changed["box"] > 10000
    for k in ("occlusion", "region", "area"):
        assert 0.2 * changed["box"] < changed[k] < 0.97 * changed["box"], (k, changed)


def test_source_latent_cached_per_source_and_model(identity_dir, astronaut):
    settings = Settings().with_changes({"swapper.model": "inswapper_128"})
    stage = _stage(identity_dir, settings)
    calls = []
    real = stage._swapper.prepare_source
    stage._swapper.prepare_source = lambda e: calls.append(1) or real(e)
    src = _source()
    for _ in range(3):
        stage.process(astronaut, [_face(ASTRO_KPS5)], src, settings, StageTimes())
    assert len(calls) == 1
    stage.process(astronaut, [_face(ASTRO_KPS5)], _source(seed=9), settings, StageTimes())
    assert len(calls) == 2


def test_model_switch_in_background_never_stalls(identity_dir, astronaut):
    import threading

    from livecam.errors import ModelError
    from livecam.inference.models import ModelLoader
    from livecam.swap.stage import SwapStage

    gate = threading.Event()

    class SlowLoader(ModelLoader):
        def session(self, name, fp16=None):
            if name == "inswapper_128":
                gate.wait(10)
            if name == "hyperswap_1c_256":
                raise ModelError("model 'hyperswap_1c_256' is corrupt", "livecam models pull hyperswap_1c_256")
            return super().session(name, fp16)

    settings = Settings()
    stage = SwapStage(SlowLoader(models_dir=identity_dir), settings)
    assert stage.active_model == "hyperswap_1a_256"
    new = settings.with_changes({"swapper.model": "inswapper_128"})
    src = _source()
    t0 = time.perf_counter()
    for _ in range(3):  # the new model is requested by the settings; frames keep coming
        stage.process(astronaut, [_face(ASTRO_KPS5)], src, new, StageTimes())
    assert time.perf_counter() - t0 < 8  # frames did not wait for the load (the gate holds it 10 s)
    assert stage.loading == "inswapper_128" and stage.active_model == "hyperswap_1a_256"
    gate.set()
    stage.wait_idle()
    stage.process(astronaut, [_face(ASTRO_KPS5)], src, new, StageTimes())
    assert stage.active_model == "inswapper_128" and stage.loading == ""
    # a model that cannot load leaves the current one running and says why
    stage.request_model("hyperswap_1c_256")
    stage.wait_idle()
    out = stage.process(astronaut, [_face(ASTRO_KPS5)], src, new, StageTimes())
    assert stage.active_model == "inswapper_128" and "hyperswap_1c_256" in stage.last_error
    assert out.shape == astronaut.shape
    # settings that keep naming the broken model do not retry it every frame
    broken = settings.with_changes({"swapper.model": "hyperswap_1c_256"})
    for _ in range(5):
        stage.process(astronaut, [_face(ASTRO_KPS5)], src, broken, StageTimes())
        stage.wait_idle()
    assert sum("hyperswap_1c_256" in m for m in stage.messages) == 1
    assert stage.loading == "" and stage.active_model == "inswapper_128"


def test_reset_track_and_new_ids_start_fresh(identity_dir, astronaut):
    settings = Settings()
    stage = _stage(identity_dir, settings)
    for _ in range(3):
        stage.process(astronaut, [_face(ASTRO_KPS5, tid=4)], _source(), settings, StageTimes())
    assert stage.temporal.tracks[4].prev is not None and stage.guard.last_good(4) is not None
    stage.reset_track(4)
    assert 4 not in stage.temporal.tracks and stage.guard.last_good(4) is None
    stage.process(astronaut, [_face(ASTRO_KPS5, tid=5)], _source(), settings, StageTimes())
    assert set(stage.temporal.tracks) == {5}  # gone tracks are dropped


def test_two_faces_are_cropped_from_the_untouched_input(tint_dir):
    from benchmarks.swap_measure import grid_frame

    frame, kps = grid_frame(2, size=(1280, 720), scale=1.2)
    s = Settings().with_changes({"composite.color_transfer": False, "temporal.enabled": False})
    stage = _stage(tint_dir, s)
    both = stage.process(frame, [_face(kps[0], 1), _face(kps[1], 2)], _source(), s, StageTimes())
    one = stage.process(frame, [_face(kps[1], 2)], _source(), s, StageTimes())
    x1, y1, x2, y2 = paste_rect(align_matrix(kps[1], "arcface_128", 256), 256, frame.shape)
    np.testing.assert_array_equal(both[y1:y2, x1:x2], one[y1:y2, x1:x2])
    assert (both != frame).any(axis=2).sum() > 1.8 * (one != frame).any(axis=2).sum()


@pytest.mark.gpu
def test_gpu_stage_matches_cpu(identity_dir, astronaut):
    from livecam.ops import get_backend, gpu_available

    if not gpu_available():
        pytest.skip("CuPy or a CUDA device is not available")
    gpu = get_backend("gpu")
    s = Settings().with_changes({"masks.types": ["box", "area"]})
    cpu_out = _stage(identity_dir, s, get_backend("cpu")).process(astronaut, [_face(ASTRO_KPS5)], _source(), s, StageTimes())
    stage = _stage(identity_dir, s, gpu)
    dev = gpu.asarray(astronaut)
    out = stage.process(dev, [_face(ASTRO_KPS5)], _source(), s, StageTimes())
    assert not isinstance(out, np.ndarray)  # stays on the device
    out = gpu.to_host(out)
    d = np.abs(out.astype(int) - cpu_out)
    assert d.mean() < 0.2 and np.percentile(d, 99.9) <= 4
    host_out = stage.process(astronaut, [_face(ASTRO_KPS5)], _source(), s, StageTimes())
    assert isinstance(host_out, np.ndarray)
