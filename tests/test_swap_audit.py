"""Corrections from comparing the adapters with FaceFusion 3.8.1 and InsightFace, and the
reference formulas small enough to restate here as regression tests (issue 13).

Each reference formula below is restated from the source named in its test, not imported.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from livecam.face.geometry import transform_points
from livecam.face.landmarks import Fan68, face_angle, fan_crop_matrix, upright_matrix
from livecam.ops import get_backend
from livecam.swap import masks as Mk
from livecam.swap.swappers import InswapperSwapper

BE = get_backend("cpu")


class _Sess:
    """A fake ONNX session: records its feeds, returns `out(feeds)`."""

    def __init__(self, out, name, inputs, outputs=("output",)):
        self.out, self.name, self.input_names, self.output_names = out, name, list(inputs), list(outputs)
        self.provider, self.feeds = "cpu", None

    def run(self, feeds):
        self.feeds = {k: np.array(v) for k, v in feeds.items()}
        return self.out(feeds)


# -- 1. area mask: one hull over all selected areas' points ------------------------------------

def _ff_area_mask(points68_crop, areas, size):
    """FaceFusion 3.8.1 face_masker.create_area_mask, restated."""
    idx = [i for a in areas for i in Mk.AREA_POINTS[a]]
    hull = cv2.convexHull(points68_crop[idx].astype(np.int32))
    m = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(m, hull, 1.0)
    return (cv2.GaussianBlur(m.clip(0, 1), (0, 0), 5).clip(0.5, 1) - 0.5) * 2


def test_area_mask_covers_the_cheeks_between_upper_and_lower_face():
    s = 256
    pts = Mk.MEAN_SHAPE68 * s
    both = BE.to_host(Mk.area_mask(BE, pts, ["upper-face", "lower-face"], s))
    upper = BE.fill_convex((s, s), pts[Mk.AREA_POINTS["upper-face"]])
    lower = BE.fill_convex((s, s), pts[Mk.AREA_POINTS["lower-face"]])
    pooled = BE.fill_convex((s, s), pts[Mk.area_points(["upper-face", "lower-face"])])
    # the cheek wedges: inside the pooled hull, outside both per-area hulls
    wedges = (pooled > 0) & (upper == 0) & (lower == 0)
    assert wedges.mean() > 0.01  # the holes the per-area union left (about 2 % of this crop)
    ys, xs = np.nonzero(wedges)
    assert (xs < s / 2).sum() > 300 and (xs > s / 2).sum() > 300  # one on each cheek
    old = BE.to_host(Mk.harden(BE, np.maximum(upper, lower)))  # the former union of hulls
    assert old[wedges].mean() < 0.05  # the user's own cheeks showed through there
    assert both[wedges].mean() > 0.8  # now the swap covers them
    # and the mask is FaceFusion's, up to the sub-pixel hull edge
    ff = _ff_area_mask(pts, ["upper-face", "lower-face"], s)
    assert np.abs(both - ff).mean() < 0.01
    assert ((both > 0.5) != (ff > 0.5)).mean() < 0.005


def test_area_points_pool_in_facefusion_order():
    assert Mk.area_points(["upper-face", "mouth"]) == Mk.AREA_POINTS["upper-face"] + list(range(48, 68))
    # FaceFusion 3.8.1 choices.face_mask_area_set, restated
    assert Mk.AREA_POINTS["upper-face"] == [0, 1, 2, 31, 32, 33, 34, 35, 14, 15, 16, 26, 25, 24, 23, 22, 21, 20,
                                            19, 18, 17]
    assert Mk.AREA_POINTS["lower-face"] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 35, 34, 33, 32, 31]


# -- 2. inswapper latent: normalised as the model author does ------------------------------------

def test_inswapper_latent_has_unit_norm_as_in_insightface(caplog):
    rng = np.random.default_rng(3)
    emap = (rng.normal(size=(512, 512)) * 0.2).astype(np.float32)  # not orthogonal: |e . emap| != 1
    with caplog.at_level(logging.INFO, logger="livecam.swap.swappers"):
        sw = InswapperSwapper(_Sess(lambda f: [f["target"]], "inswapper_128", ("target", "source")), emap)
    assert any("|normed . emap|" in r.getMessage() for r in caplog.records)  # a real run shows the factor
    assert sw.projected_norm == pytest.approx(np.sqrt(512) * 0.2, rel=0.1)
    emb = rng.normal(size=512).astype(np.float32)
    normed = emb / np.linalg.norm(emb)
    latent = sw.prepare_source(normed)
    assert latent.shape == (1, 512) and latent.dtype == np.float32
    assert np.linalg.norm(latent) == pytest.approx(1.0, abs=1e-5)
    # InsightFace model_zoo/inswapper.py INSwapper.get, restated
    ref = normed.reshape(1, -1) @ emap
    ref /= np.linalg.norm(ref)
    np.testing.assert_allclose(latent, ref, atol=1e-6)
    # FaceFusion's latent (raw . emap / |raw|) points the same way; only its length differs
    ff = emb.reshape(1, -1) @ emap / np.linalg.norm(emb)
    assert float((ff @ latent.T).item() / np.linalg.norm(ff)) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(ff) > 2  # so the two conventions really differ with this emap


# -- 3. 2DFAN4 on rolled faces: the model sees an upright crop ---------------------------------------

def _ff_face_angle(p0, p16):
    """FaceFusion 3.8.1 face_helper.estimate_face_angle, restated (from 68-point #0 and #16)."""
    theta = np.degrees(np.arctan2(p16[1] - p0[1], p16[0] - p0[0])) % 360
    angles = np.linspace(0, 360, 5)
    return int(angles[np.argmin(np.abs(angles - theta))] % 360)


def test_face_angle_snaps_like_facefusion():
    for deg in (0, 10, 44, 46, 60, 89, 135.5, 170, 200, 260, 300, 314, 316, 359):
        t = np.radians(deg)
        kps = np.array([[0, 0], [np.cos(t), np.sin(t)], [0, 1], [0, 2], [1, 2]]) * 40 + 200
        assert face_angle(kps) == _ff_face_angle(kps[0], kps[1]), deg
    # FaceFusion create_rotation_matrix_and_size for a square crop: plain rotation about the centre
    r = upright_matrix(90, 256)
    np.testing.assert_allclose(r, cv2.getRotationMatrix2D((128, 128), 90, 1))


def _rolled_face_frame(deg):
    """A 640x480 frame with a cartoon face rolled by `deg` (eyes red, mouth blue) and its 5 points."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    centre = np.array([320.0, 240.0])
    upright = np.array([[-30, -20], [30, -20], [0, 5], [-22, 35], [22, 35]], np.float64)
    t = np.radians(deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    kps = upright @ rot.T + centre
    cv2.circle(frame, tuple(int(v) for v in centre), 80, (150, 170, 200), -1)
    for p in kps[:2]:
        cv2.circle(frame, tuple(int(round(v)) for v in p), 7, (0, 0, 255), -1)
    for p in kps[3:]:
        cv2.circle(frame, tuple(int(round(v)) for v in p), 7, (255, 0, 0), -1)
    bbox = np.r_[centre - 80, centre + 80]
    return frame, kps, bbox


def test_fan68_rotates_a_face_rolled_60_degrees_upright():
    frame, kps, bbox = _rolled_face_frame(60)
    heat = np.zeros((1, 68, 64, 64), np.float32)
    sess = _Sess(lambda f: [np.zeros((1, 68, 3), np.float32), heat], "2dfan4", ("input",), ("landmarks", "heatmaps"))
    fan = Fan68(sess)
    assert face_angle(kps) == 90
    fan.landmarks(frame, bbox, kps)
    up = _tilt_from_upright(sess.feeds["input"][0])  # (3, 256, 256), BGR planes /255, what the model saw
    assert up == pytest.approx(30, abs=3)  # 60 degrees rolled, turned by 90: 30 degrees from upright
    eyes = transform_points(kps[:2], fan.last_matrix)
    roll = np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))
    assert roll == pytest.approx(-30, abs=0.5)  # the eye line in the crop, as FaceFusion's rotation gives
    # without the 5 points the crop is FaceFusion's unrotated one, and the model would see the roll
    fan.landmarks(frame, bbox)
    np.testing.assert_allclose(fan.last_matrix, fan_crop_matrix(bbox))
    assert _tilt_from_upright(sess.feeds["input"][0]) == pytest.approx(60, abs=3)
    # an upright face is not turned
    frame0, kps0, bbox0 = _rolled_face_frame(20)
    fan.landmarks(frame0, bbox0, kps0)
    np.testing.assert_allclose(fan.last_matrix, fan_crop_matrix(bbox0))


def _tilt_from_upright(blob):
    """Degrees between 'up' (mouth -> eyes, from the painted colours) and the crop's up."""
    red = (blob[2] > 0.9) & (blob[0] < 0.1)
    blue = (blob[0] > 0.9) & (blob[2] < 0.1)
    assert red.sum() > 50 and blue.sum() > 50
    ry, rx = np.nonzero(red)
    by, bx = np.nonzero(blue)
    v = np.array([rx.mean() - bx.mean(), ry.mean() - by.mean()])
    return float(np.degrees(np.arccos(-v[1] / np.linalg.norm(v))))


def test_fan68_points_map_back_through_the_rotation(standins_dir):
    from livecam.inference.models import ModelLoader
    from livecam.settings import Settings
    from livecam.testing.standins import fan68_points_crop

    fan = Fan68(ModelLoader(Settings().runtime, models_dir=standins_dir).session("2dfan4"))
    frame, kps, bbox = _rolled_face_frame(60)
    pts, score = fan.landmarks(frame, bbox, kps)
    # FaceFusion: crop points -> inverse rotation -> inverse crop matrix
    m = fan_crop_matrix(bbox)
    r = cv2.getRotationMatrix2D((128, 128), 90, 1)
    expected = transform_points(transform_points(fan68_points_crop(), cv2.invertAffineTransform(r)),
                                cv2.invertAffineTransform(m))
    assert np.abs(pts - expected).max() < 0.05 and score > 0.9
    # the stand-in's upright face comes back rolled 90 degrees, as the snapped angle says
    assert face_angle(np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])) == 90


# -- 4. catalog text: SCRFD is fed RGB ------------------------------------------------------------------

def test_scrfd_catalog_says_rgb_and_the_detector_feeds_rgb():
    from livecam.face.detect import ScrfdDetector
    from livecam.inference.catalog import load_catalog

    spec = load_catalog().get("scrfd_2.5g").contract["inputs"][0]
    assert spec["color"] == "RGB" and spec["norm"] == "(x-127.5)/128"
    outs = [np.zeros((n, w), np.float32) for w in (1, 4, 10) for n in (12800, 3200, 800)]
    sess = _Sess(lambda f: outs, "scrfd_2.5g", ("input",))
    frame = np.zeros((640, 640, 3), np.uint8)
    frame[..., 2] = 255  # red in BGR
    assert ScrfdDetector(sess).detect(frame) == []
    blob = sess.feeds["input"][0]
    # InsightFace scrfd.py: blobFromImage(img, 1/128, size, (127.5,)*3, swapRB=True), restated
    ref = cv2.dnn.blobFromImage(frame, 1.0 / 128, (640, 640), (127.5, 127.5, 127.5), swapRB=True)[0]
    np.testing.assert_allclose(blob, ref, atol=1e-6)
    assert blob[0].min() > 0.99 and blob[2].max() < -0.99  # the first plane is red


# -- reference comparisons kept as regression tests (FaceFusion 3.8.1 formulas, restated) ---------------

def _ff_box_mask(size, blur, padding):
    """FaceFusion 3.8.1 face_masker.create_box_mask (padding: top, right, bottom, left)."""
    blur_amount = int(size * 0.5 * blur)
    blur_area = max(blur_amount // 2, 1)
    m = np.ones((size, size), np.float32)
    m[:max(blur_area, int(size * padding[0] / 100)), :] = 0
    m[-max(blur_area, int(size * padding[2] / 100)):, :] = 0
    m[:, :max(blur_area, int(size * padding[3] / 100))] = 0
    m[:, -max(blur_area, int(size * padding[1] / 100)):] = 0
    if blur_amount > 0:
        m = cv2.GaussianBlur(m, (0, 0), blur_amount * 0.25)
    return m


@pytest.mark.parametrize("size,blur,padding", [(128, 0.3, (0, 0, 0, 0)), (256, 0.3, (0, 0, 0, 0)),
                                               (256, 0.5, (10, 5, 20, 0)), (256, 0.0, (0, 30, 0, 12))])
def test_box_mask_equals_facefusion(size, blur, padding):
    np.testing.assert_allclose(Mk.box_mask(size, blur, padding), _ff_box_mask(size, blur, padding), atol=1e-6)


def _ff_paste_back(frame, crop, mask, m):
    """FaceFusion 3.8.1 face_helper.paste_back + calculate_paste_area."""
    blended, (x1, y1, x2, y2) = _ff_blend(frame, crop, mask, m)
    out = frame.copy()
    out[y1:y2, x1:x2] = blended.astype(frame.dtype)  # FaceFusion's cast truncates
    return out, (x1, y1, x2, y2)


def _ff_blend(frame, crop, mask, m):
    """FaceFusion's paste-back blend inside its rectangle, in float (before the cast)."""
    h, w = frame.shape[:2]
    s = crop.shape[0]
    inv = cv2.invertAffineTransform(m)
    corners = transform_points(np.array([[0, 0], [s, 0], [s, s], [0, s]], np.float64), inv)
    x1, y1 = np.clip(np.floor(corners.min(0)).astype(int), 0, [w, h])
    x2, y2 = np.clip(np.ceil(corners.max(0)).astype(int), 0, [w, h])
    pm = inv.copy()
    pm[0, 2] -= x1
    pm[1, 2] -= y1
    a = cv2.warpAffine(mask, pm, (x2 - x1, y2 - y1)).clip(0, 1)[..., None]
    c = cv2.warpAffine(crop, pm, (x2 - x1, y2 - y1), borderMode=cv2.BORDER_REPLICATE)
    return frame[y1:y2, x1:x2] * (1 - a) + c * a, (x1, y1, x2, y2)


def test_paste_back_matches_facefusion(astronaut):
    from livecam.face.geometry import align_matrix, paste_rect
    from livecam.swap.composite import Compositor

    kps = np.array([[203.6, 102.0], [247.8, 104.1], [224.0, 124.9], [204.2, 143.2], [241.9, 144.8]])
    for template, size in (("arcface_128", 128), ("arcface_112_v1", 256)):
        m = align_matrix(kps, template, size)
        crop = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
        mask = Mk.box_mask(size, 0.3)
        ref, rect = _ff_paste_back(astronaut, crop, mask, m)
        assert paste_rect(m, size, astronaut.shape) == rect
        out = astronaut.copy()
        assert Compositor(BE).paste(out, crop, mask, m, None) == rect
        d = np.abs(out.astype(int) - ref)
        # livecam rounds where FaceFusion truncates, and on the CPU its alpha is 8-bit
        assert d.max() <= 2 and d.mean() < 0.05 and (d == 2).mean() < 1e-3
        # against FaceFusion's float blend rounded instead of truncated: within 1 level
        x1, y1, x2, y2 = rect
        exact = np.rint(_ff_blend(astronaut, crop, mask, m)[0])
        assert np.abs(out[y1:y2, x1:x2] - exact).max() <= 1
        # the backend's float alpha (the pyramid blend's, the GPU's) is FaceFusion's to 1 level
        back = cv2.invertAffineTransform(m)
        back[:, 2] -= (x1, y1)
        color, alpha, _ = BE.warp_color_alpha(crop, mask, back, (x2 - x1, y2 - y1),
                                              np.empty((y2 - y1, x2 - x1, 3), np.uint8),
                                              np.empty((y2 - y1, x2 - x1), np.float32))
        out = astronaut.copy()
        BE.blend(out[y1:y2, x1:x2], color, alpha, out[y1:y2, x1:x2])
        d = np.abs(out.astype(int) - ref)
        assert d.max() <= 1 and d.mean() < 0.05


def test_alignment_matches_facefusion_estimate():
    from livecam.face.geometry import TEMPLATES, align_matrix

    rng = np.random.default_rng(4)
    for template, size in (("arcface_128", 128), ("arcface_112_v1", 256), ("arcface_112_v2", 112)):
        kps = TEMPLATES[template] * 180 + [300, 200] + rng.normal(0, 2.0, (5, 2))  # a slightly non-rigid face
        # FaceFusion 3.8.1 estimate_matrix_by_face_landmark_5
        ff = cv2.estimateAffinePartial2D(kps, TEMPLATES[template] * size, method=cv2.RANSAC,
                                         ransacReprojThreshold=100)[0]
        ours = align_matrix(kps, template, size)
        grid = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
        frame_pts = transform_points(grid, cv2.invertAffineTransform(ff))
        assert np.abs(transform_points(frame_pts, ours) - grid).max() < 0.5  # < half a crop pixel anywhere


def _ff_harden(m):
    return (cv2.GaussianBlur(m.clip(0, 1), (0, 0), 5).clip(0.5, 1) - 0.5) * 2


def test_occlusion_and_region_masks_match_facefusion():
    rng = np.random.default_rng(6)
    crop = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    crop = cv2.GaussianBlur(crop, (0, 0), 6)  # smooth, so the fake models' outputs have shape
    # xseg: NHWC BGR /255 in; a fake whose output depends on the pixels
    xs = [_Sess(lambda f, k=k: [np.clip(f["input"][..., 1:2] * (2.0 + k) - 0.3 * k, 0, 1)], f"xseg_{k}", ("input",))
          for k in (1, 2)]
    ours = BE.to_host(Mk.OcclusionMasker(xs).mask(BE, crop))
    small = cv2.resize(crop, (256, 256))[None].astype(np.float32) / 255.0  # FaceFusion create_occlusion_mask
    ff = np.minimum.reduce([cv2.resize(x.out({"input": small})[0][0].clip(0, 1).astype(np.float32), (256, 256))
                            for x in xs])
    np.testing.assert_allclose(ours, _ff_harden(ff), atol=1e-4)
    np.testing.assert_allclose(xs[0].feeds["input"], small, atol=1e-6)
    # bisenet: RGB, ImageNet mean/std, 512; argmax, isin(regions), resize back, harden
    crop = np.full((256, 256, 3), 60, np.uint8)
    cv2.ellipse(crop, (128, 140), (80, 100), 0, 0, 360, (90, 200, 120), -1)  # a green "face"
    cv2.circle(crop, (128, 150), 18, (90, 200, 230), -1)  # a red "nose" on it
    crop = cv2.GaussianBlur(crop, (0, 0), 3)
    w = np.zeros((19, 3), np.float32)
    w[1, 1] = 2.0  # skin where the (normalised) green is above average, background elsewhere
    w[10, 0] = 1.0  # nose where red is high
    b = np.full((19, 1, 1), -5.0, np.float32)
    b[0] = b[1] = 0.0
    b[10] = -1.0
    parser = _Sess(lambda f: [np.einsum("kc,bchw->bkhw", w, f["input"]) + b], "bisenet_resnet_34", ("input",))
    regions = ["skin", "nose", "upper-lip"]
    ours = BE.to_host(Mk.RegionMasker(parser).mask(BE, crop, regions))
    x = cv2.resize(crop, (512, 512))[:, :, ::-1].astype(np.float32) / 255.0  # create_region_mask
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    blob = x[None].transpose(0, 3, 1, 2)
    np.testing.assert_allclose(parser.feeds["input"], blob, atol=1e-5)
    labels = parser.out({"input": blob})[0][0].argmax(0)
    keep = np.isin(labels, [Mk.REGION_CLASSES[r] for r in regions]).astype(np.float32)
    ff = _ff_harden(cv2.resize(keep, (256, 256)))
    assert np.abs(ours - ff).mean() < 1e-3 and 0.05 < ff.mean() < 0.95


def test_fan68_input_matches_facefusion_two_step_warp():
    frame, kps, bbox = _rolled_face_frame(60)
    frame = cv2.GaussianBlur(frame, (0, 0), 2)
    sess = _Sess(lambda f: [np.zeros((1, 68, 3), np.float32), np.zeros((1, 68, 64, 64), np.float32)], "2dfan4",
                 ("input",), ("landmarks", "heatmaps"))
    Fan68(sess).landmarks(frame, bbox, kps)
    # FaceFusion 3.8.1 detect_with_2dfan4: translate/scale warp, then the rotation warp, contrast, /255
    scale = 195 / np.subtract(bbox[2:], bbox[:2]).max().clip(1, None)
    t = (256 - np.add(bbox[2:], bbox[:2]) * scale) * 0.5
    crop = cv2.warpAffine(frame, np.array([[scale, 0, t[0]], [0, scale, t[1]]]), (256, 256))
    crop = cv2.warpAffine(crop, cv2.getRotationMatrix2D((128, 128), 90, 1), (256, 256))
    ff = crop.transpose(2, 0, 1).astype(np.float32) / 255.0
    ours = sess.feeds["input"][0]
    # FaceFusion's second warp samples one pixel past the first crop's edge: its first row is black
    assert np.abs(ours[:, 1:, :] - ff[:, 1:, :]).max() <= 1 / 255 + 1e-6
    assert ff[:, 0, :].max() == 0


def test_arcface_input_matches_insightface(astronaut):
    from livecam.face.embed import ArcFaceEmbedder

    kps = np.array([[203.6, 102.0], [247.8, 104.1], [224.0, 124.9], [204.2, 143.2], [241.9, 144.8]])
    sess = _Sess(lambda f: [np.ones((1, 512), np.float32)], "arcface_w600k_r50", ("input",))
    ArcFaceEmbedder(sess).embed(astronaut, kps)
    # InsightFace face_align.norm_crop (least-squares similarity to arcface_dst, border 0) and
    # ArcFaceONNX.get_feat (blobFromImage 1/127.5, mean 127.5, swapRB), restated
    dst = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                    [70.7299, 92.2041]])
    mu_s, mu_d = kps.mean(0), dst.mean(0)
    a, b = kps - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(kps))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = np.trace(np.diag(sig) @ d) / a.var(0).sum()
    m = np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])
    crop = cv2.warpAffine(astronaut, m, (112, 112), borderValue=0.0)
    ref = cv2.dnn.blobFromImage(crop, 1.0 / 127.5, (112, 112), (127.5, 127.5, 127.5), swapRB=True)
    assert np.abs(sess.feeds["input"] - ref).max() <= 1.01 / 127.5  # one level of interpolation rounding


def test_inswapper_pre_and_post_match_facefusion():
    emap = np.eye(512, dtype=np.float32)

    def model(f):
        return [np.clip(f["target"] * 1.1 - 0.05, -0.2, 1.2)]  # leaves [0, 1] on both sides: the clip shows

    sess = _Sess(model, "inswapper_128", ("target", "source"))
    sw = InswapperSwapper(sess, emap)
    crop = np.random.default_rng(8).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    out = sw.swap(crop, sw.prepare_source(np.ones(512, np.float32) / np.sqrt(512)))
    # FaceFusion 3.8.1 prepare_crop_frame (mean 0, std 1) and normalize_crop_frame (no de-normalising)
    x = np.expand_dims(((crop[:, :, ::-1] / 255.0 - 0.0) / 1.0).transpose(2, 0, 1), 0).astype(np.float32)
    np.testing.assert_allclose(sess.feeds["target"], x, atol=1e-7)
    ref = model({"target": x})[0][0].transpose(1, 2, 0).clip(0, 1)[:, :, ::-1] * 255
    assert np.abs(out - ref).max() < 1e-3
