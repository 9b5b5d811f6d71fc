"""GHOST swappers (ghost_1/2/3_256 + arcface_converter_ghost): catalog, adapter pre/post against
FaceFusion's formulas restated, stand-ins, the identity round trip, `livecam run` and live switching."""

from __future__ import annotations

import argparse
import threading
import time

import cv2
import numpy as np
import pytest

from livecam.face.geometry import TEMPLATES
from livecam.face.types import Face, SourceFace
from livecam.settings import SWAPPER_MODELS, Settings
from livecam.swap.swappers import GhostSwapper, make_swapper
from livecam.timing import StageTimes

GHOSTS = ("ghost_1_256", "ghost_2_256", "ghost_3_256")
ASTRO_KPS5 = np.array([[203.59, 101.95], [247.78, 104.07], [223.99, 124.90], [204.23, 143.20], [241.87, 144.79]])


class _Sess:
    def __init__(self, out, name, inputs):
        self.out, self.name, self.input_names, self.output_names = out, name, list(inputs), ["output"]
        self.provider, self.feeds = "cpu", None

    def run(self, feeds):
        self.feeds = {k: np.array(v) for k, v in feeds.items()}
        return self.out(feeds)


def _source(seed=1, scale=23.0):
    e = (np.random.default_rng(seed).normal(size=512) * scale / np.sqrt(512)).astype(np.float32)  # raw, |e| ~ 23
    return SourceFace("src", e, e / np.linalg.norm(e))


# -- catalog and settings ----------------------------------------------------------------------------

def test_catalog_has_the_ghost_models_and_converter_with_licences():
    from livecam.inference.catalog import load_catalog

    cat = load_catalog()
    for name in GHOSTS:
        m = cat.get(name)
        assert (m.kind, m.repo, m.file, m.hash_file) == ("swapper", "facefusion/models-3.0.0", f"{name}.onnx",
                                                         f"{name}.hash")
        assert m.license == "Apache-2.0" and m.commercial and "ai-forever" in m.vendor  # FaceFusion 3.8.1 metadata
        ins = m.contract["inputs"]
        assert [(i["name"], i["shape"]) for i in ins] == [("target", [1, 3, 256, 256]), ("source", [1, 512])]
        assert ins[0]["template"] == "arcface_112_v1" and ins[0]["color"] == "RGB" and ins[0]["norm"].endswith("/0.5")
        assert m.contract["outputs"][0]["range"] == "[-1,1]" and m.contract["converter"] == GhostSwapper.CONVERTER
        assert name in SWAPPER_MODELS
    assert [cat.get(n).size_mb for n in GHOSTS] == [515, 739, 856]
    conv = cat.get("arcface_converter_ghost")
    assert conv.kind == "converter" and conv.repo == "facefusion/models-3.0.0"
    assert conv.hash_file == "arcface_converter_ghost.hash" and "unconfirmed" in conv.license
    assert not conv.commercial  # a licence not confirmed from a primary source is not claimed commercial
    assert [(i["name"], i["shape"]) for i in conv.contract["inputs"]] == [("input", [1, 512])]


def test_models_list_shows_ghost_and_converter_with_licences(standins_dir, capsys):
    from livecam.inference import cli as icli

    parser = argparse.ArgumentParser()
    icli.register(parser.add_subparsers())
    args = parser.parse_args(["models", "list", "--models-dir", str(standins_dir)])
    assert args.func(args) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.strip()}
    for name in GHOSTS:
        assert "swapper" in lines[name] and "Apache-2.0" in lines[name] and "[non-commercial]" not in lines[name]
    conv = lines["arcface_converter_ghost"]
    assert "converter" in conv and "MIT (unconfirmed) [non-commercial]" in conv and "models-dir:" in conv


# -- adapter: FaceFusion 3.3.2 prepare_crop_frame / normalize_crop_frame / convert_embedding, restated -------

def _ff_prepare_crop(crop):
    x = crop[:, :, ::-1] / 255.0
    x = (x - [0.5, 0.5, 0.5]) / [0.5, 0.5, 0.5]
    return np.expand_dims(x.transpose(2, 0, 1), 0).astype(np.float32)


def _ff_normalize_crop(pred):
    x = pred.transpose(1, 2, 0) * [0.5, 0.5, 0.5] + [0.5, 0.5, 0.5]
    return x.clip(0, 1)[:, :, ::-1] * 255


def test_ghost_adapter_matches_facefusion_pre_and_post():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(512, 512)).astype(np.float32) * 0.1
    conv = _Sess(lambda f: [f["input"] @ w], "arcface_converter_ghost", ("input",))

    def generator(f):  # a non-trivial image function that reads both inputs
        return [np.tanh(1.3 * f["target"] + 0.05 * float(f["source"].sum())).astype(np.float32)]

    gen = _Sess(generator, "ghost_2_256", ("target", "source"))
    sw = GhostSwapper(gen, conv)
    assert (sw.template, sw.size, sw.source_embedding) == ("arcface_112_v1", 256, "raw")
    src = _source()
    latent = sw.prepare_source(src.embedding)
    # the converter gets the RAW embedding; its output goes to the generator as is (not re-normalised)
    np.testing.assert_array_equal(conv.feeds["input"], src.embedding.reshape(1, 512))
    np.testing.assert_allclose(latent, src.embedding.reshape(1, 512) @ w, rtol=1e-6)
    assert abs(np.linalg.norm(latent) - 1) > 0.1
    crop = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    out = sw.swap(crop, latent).copy()
    np.testing.assert_allclose(gen.feeds["target"], _ff_prepare_crop(crop), atol=1e-6)
    np.testing.assert_array_equal(gen.feeds["source"], latent)
    ref = _ff_normalize_crop(generator({"target": _ff_prepare_crop(crop), "source": latent})[0][0])
    assert np.abs(out - ref).max() < 2e-3  # float32 vs float64 arithmetic, in 8-bit levels
    # arcface_112_v1 as in FaceFusion 3.3.2 face_helper.WARP_TEMPLATE_SET, restated
    np.testing.assert_allclose(TEMPLATES["arcface_112_v1"], [[0.35473214, 0.45658929], [0.64526786, 0.45658929],
                                                             [0.50000000, 0.61154464], [0.37913393, 0.77687500],
                                                             [0.62086607, 0.77687500]], atol=1e-8)


def test_make_swapper_loads_ghost_with_its_converter(standins_dir):
    from livecam.inference.models import ModelLoader

    loader = ModelLoader(Settings().runtime, models_dir=standins_dir)
    for name in GHOSTS:
        sw = make_swapper(loader, name)
        assert isinstance(sw, GhostSwapper) and sw.name == name and sw.converter.name == "arcface_converter_ghost"
    from livecam.testing.standins import GHOST_CONVERTER_GAIN

    e = _source().embedding
    latent = sw.prepare_source(e)
    assert np.linalg.norm(latent) == pytest.approx(GHOST_CONVERTER_GAIN, rel=1e-5)  # the stand-in's own length


def test_missing_converter_is_a_clear_error(standins_dir, tmp_path, monkeypatch):
    import shutil

    from livecam.errors import ModelError
    from livecam.inference.models import ModelLoader

    d = tmp_path / "m"
    shutil.copytree(standins_dir, d)
    (d / "arcface_converter_ghost.onnx").unlink()
    (d / "arcface_converter_ghost.hash").unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as exc:
        make_swapper(ModelLoader(Settings().runtime, models_dir=d), "ghost_1_256")
    assert "arcface_converter_ghost" in exc.value.message and exc.value.fix


# -- stand-ins ------------------------------------------------------------------------------------------

def _run_model(path, **feeds):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def test_ghost_standins_identity_tint_nan_flicker(tmp_path):
    from livecam.testing import standins as si

    rng = np.random.default_rng(2)
    target = rng.uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)
    source = rng.normal(size=(1, 512)).astype(np.float32)
    outs = {}
    for mode in ("identity", "tint", "nan", "flicker"):
        p = si._ghost_generator(tmp_path / f"{mode}.onnx", "ghost_1_256", mode)
        outs[mode] = _run_model(p, target=target, source=source)
        assert [o.shape for o in outs[mode]] == [(1, 3, 256, 256)]
    np.testing.assert_array_equal(outs["identity"][0], target)
    shift = (outs["tint"][0] - target)[0, :, 100:156, 100:156].mean(axis=(1, 2))
    assert np.abs(shift).max() > 0.1 and outs["tint"][0].min() >= -1 and outs["tint"][0].max() <= 1
    assert np.isnan(outs["nan"][0]).all()
    # flicker: deterministic, but one level of sensor noise changes the face a lot, the corners not at all
    p = tmp_path / "flicker.onnx"
    again = _run_model(p, target=target, source=source)[0]
    np.testing.assert_array_equal(again, outs["flicker"][0])
    noisy = np.clip(target + rng.normal(0, 1 / 127.5, target.shape), -1, 1).astype(np.float32)
    moved = _run_model(p, target=noisy, source=source)[0] - noisy - (outs["flicker"][0] - target)
    assert np.abs(moved[0, :, 96:160, 96:160]).mean() > 5 * np.abs(noisy - target).mean()
    assert np.abs(moved[0, :, :8, :8]).max() < 1e-6
    with pytest.raises(ValueError):
        si._ghost_generator(tmp_path / "x.onnx", "ghost_1_256", "nope")
    # the converter: normalises its input, output of fixed length
    conv = si._ghost_converter(tmp_path / "conv.onnx")
    a = _run_model(conv, input=source)[0]
    b = _run_model(conv, input=source * 7)[0]
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.linalg.norm(a) == pytest.approx(si.GHOST_CONVERTER_GAIN, rel=1e-5)


# -- end to end ------------------------------------------------------------------------------------------

def test_ghost_identity_round_trip_720p(standins_dir):
    from livecam.ops import get_backend
    from benchmarks.swap_measure import measure_identity

    r = measure_identity(standins_dir, get_backend("cpu"), "ghost_2_256")
    assert r["outside_identical"], r
    assert r["psnr_face_db"] >= 32.0, r
    assert r["guard_rejects"] == 0


def test_ghost_nan_standin_never_reaches_the_output(nan_standins_dir, astronaut):
    from livecam.swap.stage import SwapStage
    from livecam.inference.models import ModelLoader

    s = Settings().with_changes({"swapper.model": "ghost_3_256", "masks.types": ["box"]})
    stage = SwapStage(ModelLoader(models_dir=nan_standins_dir), s)
    face = _face(ASTRO_KPS5)
    for _ in range(3):
        out = stage.process(astronaut, [face], _source(), s, StageTimes())
        np.testing.assert_array_equal(out, astronaut)
    assert stage.guard_rejects == 3


def _face(kps, tid=1):
    from livecam.swap.masks import estimate_landmarks68

    kps = np.asarray(kps, dtype=np.float64)
    return Face(bbox=np.r_[kps.min(0) - 30, kps.max(0) + 30], kps5=kps, score=1.0,
                landmarks68=estimate_landmarks68(kps), track_id=tid)


def test_run_with_set_swapper_ghost(tint_standins_dir, tmp_path, astronaut, capsys, monkeypatch):
    from livecam import commands
    from livecam.demo import write_demo_video as make_test_video

    video = make_test_video(tmp_path / "scene.avi", frames=20, size=(640, 360), face=astronaut)
    face = tmp_path / "astronaut.png"
    cv2.imwrite(str(face), astronaut)
    calls = []
    real_swap = GhostSwapper.swap
    monkeypatch.setattr(GhostSwapper, "swap", lambda self, c, l: calls.append(self.name) or real_swap(self, c, l))
    parser = argparse.ArgumentParser(prog="livecam")
    commands.register(parser.add_subparsers())
    out = tmp_path / "frames"
    args = parser.parse_args(["run", "--sink", f"frames:{out}", "--input", str(video), "--source", str(face),
                              "--no-tui", "--models-dir", str(tint_standins_dir), "--set", "detector.model=centerface",
                              "--set", "swapper.model=ghost_2_256", "--once"])
    assert args.func(args) == 0
    assert len(calls) >= 3 and set(calls) == {"ghost_2_256"}  # every swap went through GHOST (paced: frames drop)
    pngs = sorted(out.iterdir())
    cap = cv2.VideoCapture(str(video))
    raw = cap.read()[1]
    cap.release()
    diff = np.abs(cv2.imread(str(pngs[0])).astype(int) - raw.astype(int)).sum(axis=2)
    assert diff[:20].mean() < 3 and diff.max() > 30  # the face tinted, the background not


def test_live_switch_to_and_from_ghost_never_stalls(tint_standins_dir, astronaut):
    from livecam.inference.models import ModelLoader
    from livecam.swap.stage import SwapStage

    gate = threading.Event()

    class SlowLoader(ModelLoader):
        def session(self, name, fp16=None):
            if name == "ghost_2_256":
                gate.wait(10)
            return super().session(name, fp16)

    base = Settings().with_changes({"masks.types": ["box"], "composite.color_transfer": False,
                                    "temporal.enabled": False})
    stage = SwapStage(SlowLoader(models_dir=tint_standins_dir), base)
    src, face = _source(), _face(ASTRO_KPS5)
    hyper = stage.process(astronaut, [face], src, base, StageTimes())
    to_ghost = base.with_changes({"swapper.model": "ghost_2_256"}, origin="key")
    t0 = time.perf_counter()
    outs = [stage.process(astronaut, [face], src, to_ghost, StageTimes()) for _ in range(3)]
    assert time.perf_counter() - t0 < 5  # frames keep coming while GHOST loads
    assert stage.loading == "ghost_2_256" and stage.active_model == "hyperswap_1a_256"
    assert all(np.array_equal(o, hyper) for o in outs)  # the old model keeps swapping meanwhile
    gate.set()
    stage.wait_idle()
    ghost = stage.process(astronaut, [face], src, to_ghost, StageTimes())
    assert stage.active_model == "ghost_2_256" and "swapper: ghost_2_256" in stage.messages
    changed = np.abs(ghost.astype(int) - hyper).max(axis=2) > 0
    assert changed.sum() > 1000  # a different model (own template and latent): a different swap
    # and back again, straight to a 128 px model
    back = to_ghost.with_changes({"swapper.model": "inswapper_128"}, origin="key")
    stage.process(astronaut, [face], src, back, StageTimes())
    stage.wait_idle()
    ins = stage.process(astronaut, [face], src, back, StageTimes())
    assert stage.active_model == "inswapper_128" and stage.last_error == ""
    assert ins.shape == astronaut.shape and np.abs(ins.astype(int) - ghost).max() > 0


def test_stage_gives_ghost_the_raw_embedding_and_others_the_normed(standins_dir, astronaut):
    from livecam.inference.models import ModelLoader
    from livecam.swap.stage import SwapStage

    src, face = _source(), _face(ASTRO_KPS5)
    for model, expected in (("ghost_1_256", src.embedding), ("hyperswap_1a_256", src.normed_embedding)):
        s = Settings().with_changes({"swapper.model": model})
        stage = SwapStage(ModelLoader(models_dir=standins_dir), s)
        seen = []
        real = stage._swapper.prepare_source
        stage._swapper.prepare_source = lambda e, real=real: seen.append(np.array(e)) or real(e)
        stage.process(astronaut, [face], src, s, StageTimes())
        assert len(seen) == 1 and np.array_equal(seen[0], expected), model
