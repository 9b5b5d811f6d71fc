"""Swap-area building blocks: masks, guard, temporal filters, colour transfer,
paste-back, badge and the swapper adapters (with fake sessions)."""

from __future__ import annotations

import numpy as np
import pytest

from livecam.face.geometry import TEMPLATES, align_matrix, paste_rect
from livecam.ops import get_backend
from livecam.settings import TemporalSettings
from livecam.swap import composite as C
from livecam.swap import masks as Mk
from livecam.swap.guard import SwapGuard, check_swap
from livecam.swap.swappers import FP16_MAX_MEAN_ABS, HyperswapSwapper, InswapperSwapper, fp16_error, make_swapper
from livecam.swap.temporal import TemporalFilter, TrackState

BE = get_backend("cpu")


# -- masks -----------------------------------------------------------------------------

def test_similarity_few_points_path_matches_the_array_path():
    """A few points take a Python-float path; the same points repeated (same least-squares
    solution) take the NumPy one: both give one matrix, and it maps the template exactly."""
    from livecam.face.geometry import estimate_similarity

    rng = np.random.default_rng(5)
    for _ in range(20):
        src = rng.random((5, 2)) * 300
        dst = rng.random((5, 2)) * 300
        few = estimate_similarity(src, dst)
        many = estimate_similarity(np.tile(src, (4, 1)), np.tile(dst, (4, 1)))
        np.testing.assert_allclose(few, many, rtol=1e-10, atol=1e-9)
    t = TEMPLATES["arcface_128"] * 256
    m = np.array([[0.8, -0.3, 12.0], [0.3, 0.8, -7.0]])
    moved = t @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(estimate_similarity(t, moved), m, atol=1e-9)


def test_box_mask_matches_facefusion_numbers():
    m = Mk.box_mask(256, 0.3, (0, 0, 0, 0))  # blur_amount 38, bands 19 px, sigma 9.5
    assert m.shape == (256, 256) and m.dtype == np.float32
    assert m[128, 128] == pytest.approx(1.0, abs=1e-4)
    assert m[0, 128] < 0.1 and m[128, 0] < 0.1 and m[0, 0] < 0.01
    assert 0.3 < m[19, 128] < 0.7  # the band edge sits mid-transition
    padded = Mk.box_mask(256, 0.0, (20, 0, 0, 0))  # no blur: hard bands
    assert padded[:51].max() == 0 and padded[51:-1, 1:-1].min() == 1  # 20% of 256 = 51 rows on top
    assert padded[:, :1].max() == 0  # blur 0 still zeroes a 1 px band (max(blur_area, pad))


def test_estimated_landmarks_follow_the_five_points():
    kps = TEMPLATES["arcface_128"] * 300 + [50, 20]
    pts = Mk.estimate_landmarks68(kps)
    assert pts.shape == (68, 2)
    assert np.linalg.norm(pts[36:42].mean(0) - kps[0]) < 2
    assert np.linalg.norm(pts[42:48].mean(0) - kps[1]) < 2
    assert np.linalg.norm(pts[48] - kps[3]) < 2 and np.linalg.norm(pts[54] - kps[4]) < 2
    assert pts[8, 1] > kps[3, 1] + 40  # chin below the mouth


def test_area_masks_cover_the_right_parts():
    s = 256
    pts = Mk.MEAN_SHAPE68 * s
    both = BE.to_host(Mk.area_mask(BE, pts, ["upper-face", "lower-face"], s))
    upper = BE.to_host(Mk.area_mask(BE, pts, ["upper-face"], s))
    nose, chin = pts[30].astype(int), pts[8].astype(int)
    assert both[nose[1], nose[0]] > 0.99 and both[0, 0] == 0
    assert upper[int(pts[20, 1]) + 12, int(pts[20, 0])] > 0.9  # under the brow
    assert upper[chin[1] - 10, chin[0]] == 0  # the chin is lower face
    assert both[chin[1] - 10, chin[0]] > 0.5


def test_mouth_mask_opens_only_for_an_open_mouth():
    s = 256
    closed = Mk.MEAN_SHAPE68 * s
    m_closed = BE.to_host(Mk.mouth_mask(BE, closed, s))
    opened = closed.copy()
    opened[61:64, 1] -= 10  # upper inner lip up
    opened[65:68, 1] += 10  # lower inner lip down: mouth open
    centre = opened[60:68].mean(0)
    m_open = BE.to_host(Mk.mouth_mask(BE, opened, s))
    c = centre.astype(int)
    assert m_open[c[1], c[0]] == 0.0  # the user's own mouth interior shows
    assert m_open[int(closed[30, 1]), int(closed[30, 0])] == 1.0  # nose still swapped
    assert m_closed.min() > 0.5  # a closed mouth: nothing of the user's mouth is kept


class _Sess:
    """A fake ModelSession returning a fixed output and recording its feeds."""

    def __init__(self, out, name="fake", inputs=("input",), provider="cpu"):
        self.out, self.name, self.input_names, self.provider = out, name, list(inputs), provider
        self.feeds = None

    def run(self, feeds):
        self.feeds = feeds
        return [self.out(feeds) if callable(self.out) else self.out]


def test_occlusion_many_is_the_intersection_and_hardened():
    a = np.ones((1, 256, 256, 1), np.float32)
    a[0, :, :128] = 0  # left half occluded
    b = np.ones((1, 256, 256, 1), np.float32)
    b[0, :128] = 0  # top half occluded
    crop = np.full((128, 128, 3), 100, np.uint8)
    s1, s2 = _Sess(a), _Sess(b)
    m = BE.to_host(Mk.OcclusionMasker([s1, s2]).mask(BE, crop))
    assert m.shape == (128, 128)
    assert m[100, 100] == 1.0 and m[10, 100] == 0.0 and m[100, 10] == 0.0
    blob = s1.feeds["input"]
    assert blob.shape == (1, 256, 256, 3) and blob.max() == pytest.approx(100 / 255)  # NHWC [0, 1]


def test_region_mask_keeps_only_chosen_classes():
    logits = np.zeros((1, 19, 512, 512), np.float32)
    logits[0, 1, :, :256] = 5  # skin on the left
    logits[0, 17, :, 256:] = 5  # hair on the right
    sess = _Sess(logits)
    crop = np.zeros((256, 256, 3), np.uint8)
    crop[..., 2] = 255  # red in BGR
    m = BE.to_host(Mk.RegionMasker(sess).mask(BE, crop, ["skin"]))
    assert m[128, 40] == 1.0 and m[128, 220] == 0.0
    blob = sess.feeds["input"]
    # RGB order, ImageNet normalisation: channel 0 is red (1 - 0.485) / 0.229
    assert blob[0, 0, 0, 0] == pytest.approx((1 - 0.485) / 0.229, rel=1e-4)
    assert blob[0, 2, 0, 0] == pytest.approx((0 - 0.406) / 0.225, rel=1e-4)


# -- guard -------------------------------------------------------------------------------

def _face_crop(seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:128, 0:128]
    base = np.stack([80 + 0.5 * y, 100 + 0.4 * x, 140 + 0.2 * (x + y)], -1)
    return np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.float32)


def test_guard_checks():
    good, target = _face_crop(), _face_crop(1).astype(np.uint8)
    assert check_swap(np, good, target) == ""
    bad = good.copy()
    bad[5, 7, 1] = np.nan
    assert check_swap(np, bad, target) == "non-finite"
    bad[5, 7, 1] = np.inf
    assert check_swap(np, bad, target) == "non-finite"
    assert check_swap(np, np.zeros_like(good), target) == "near-black"
    assert check_swap(np, np.full_like(good, 255), target) == "saturated"
    assert check_swap(np, np.full_like(good, 128), target) == "flat"
    assert check_swap(np, np.clip(good + 130, 0, 240), target) == "implausible-mean"
    dark_room = (target * 0.1).astype(np.uint8)  # a dark face in a dark room is fine
    assert check_swap(np, good * 0.1 + 2, dark_room) == ""


def test_guard_holds_then_passes_and_counts():
    g = SwapGuard()
    good, target = _face_crop(), _face_crop(1).astype(np.uint8)
    nan = np.full_like(good, np.nan)
    assert g.decide(np, 1, good, target, hold=3).use == "swap"
    uses = [g.decide(np, 1, nan, target, hold=3).use for _ in range(5)]
    assert uses == ["hold", "hold", "hold", "pass", "pass"]
    np.testing.assert_array_equal(g.last_good(1), good)
    assert g.rejects == 5 and g.reasons == {"non-finite": 5}
    assert g.decide(np, 2, nan, target, hold=3).use == "pass"  # nothing to hold for a new track
    assert g.decide(np, 1, good, target, hold=3).use == "swap"  # recovers, misses reset
    assert g.decide(np, 1, nan, target, hold=3).use == "hold"
    g.reset(1)
    assert g.last_good(1) is None and g.rejects == 7


# -- temporal ------------------------------------------------------------------------------

def _run_temporal(cams, swaps, ts=None):
    tf, ts = TemporalFilter(), ts or TemporalSettings()
    kps = TEMPLATES["arcface_128"] * 300
    outs = []
    for cam, swap in zip(cams, swaps):
        st = tf.begin(1, kps, 128, source="a")
        outs.append(tf.stabilize(BE, st, swap.astype(np.float32).copy(), ts, camera=cam.astype(np.uint8)).copy())
    return outs, st


def test_snap_calms_jitter_on_a_still_camera():
    rng = np.random.default_rng(0)
    base = _face_crop()
    cams = [base] * 12
    swaps = [base + rng.normal(0, 2, base.shape) for _ in range(12)]
    outs, st = _run_temporal(cams, swaps)
    assert st.last_action == "filtered"
    jitter_on = np.mean([np.abs(a - b).mean() for a, b in zip(outs[2:], outs[1:])])
    assert jitter_on < 0.6 * 2 * 2 / np.sqrt(np.pi)  # unfiltered: E|n1-n2| = 2*sigma/sqrt(pi) = 2.26


def test_real_motion_passes_and_invented_change_is_held():
    """The mouth opens in the camera: the swap's mouth follows at once. The swap flickers
    where the camera is still: that change is held (a third or less passes)."""
    rng = np.random.default_rng(1)
    base = _face_crop()
    cams, idents, flick = [], [], []
    for t in range(16):
        cam = np.clip(base + rng.normal(0, 1, base.shape), 0, 255).round()
        if t >= 8:
            cam[84:108, 40:88] = 30.0  # a real change: the mouth opens
        cams.append(cam)
        idents.append(cam.copy())
        f = cam.copy()
        f[24:56, 24:104] += rng.choice([-15.0, 15.0])  # the swap invents a flicker over the eyes
        flick.append(f)
    outs, _ = _run_temporal(cams, idents)
    assert np.abs(outs[8][84:108, 40:88] - 30.0).max() < 1.0  # the mouth is there on its first frame
    assert np.abs(outs[-1] - cams[-1]).mean() < 1.0  # identity stays the camera
    outs, st = _run_temporal(cams, flick)
    change = [np.abs(a[24:56, 24:104] - b[24:56, 24:104]).mean() for a, b in zip(outs[1:], outs)]
    raw = [np.abs(a[24:56, 24:104] - b[24:56, 24:104]).mean() for a, b in zip(flick[1:], flick)]
    assert np.mean(change) <= np.mean(raw) / 3
    assert np.abs(outs[8][84:108, 40:88] - 30.0).max() < 1.0  # still follows the real change
    assert float(st.hold[7:13, 7:25].mean()) > 0.6  # the flicker's blocks are held


def test_temporal_switches_and_resets():
    tf = TemporalFilter()
    kps = TEMPLATES["arcface_128"] * 300
    base = _face_crop()
    off = TemporalSettings(enabled=False)
    st = tf.begin(1, kps, 128)
    crop = base.copy()
    assert tf.stabilize(BE, st, crop, off) is crop and st.prev is None
    no_snap = TemporalSettings(snap=False, anomaly=False)
    st = tf.begin(1, kps, 128)
    tf.stabilize(BE, st, base.copy(), no_snap)
    st = tf.begin(1, kps + 0.5, 128)
    assert st.motion == pytest.approx(np.hypot(0.5, 0.5))
    x = base + 3
    np.testing.assert_array_equal(tf.stabilize(BE, st, x.copy(), no_snap), x)  # nothing blended
    # a large motion (more than half the eye distance) starts the track afresh
    st = tf.begin(1, kps + 60, 128)
    assert st.prev is None and st.motion == float("inf")
    # a crop size change (model switch) too
    tf.stabilize(BE, st, base.copy(), TemporalSettings())
    assert tf.begin(1, kps + 60, 256).prev is None
    # and a new source face
    tf.stabilize(BE, tf.begin(1, kps + 60, 256, source="a"), np.zeros((256, 256, 3), np.float32), TemporalSettings())
    assert tf.begin(1, kps + 60, 256, source="a").prev is not None
    assert tf.begin(1, kps + 60, 256, source="b").prev is None
    tf.reset(1)
    assert 1 not in tf.tracks
    tf.begin(2, kps, 128)
    tf.retain({3})
    assert tf.tracks == {}


# -- colour transfer and paste-back ------------------------------------------------------------

def test_colour_lut_and_params():
    np.testing.assert_array_equal(C.IDENTITY_LUT, np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1))
    brighter = C.color_lut(np.array([2.0, 1.0, 1.0]), np.zeros(3))
    assert brighter[128, 0] > 170 and brighter[128, 1] == 128 and brighter[255, 0] == 255
    gain, bias = C.transfer_params((np.full(3, 0.2), np.full(3, 0.05)), (np.full(3, 0.3), np.full(3, 0.1)))
    np.testing.assert_allclose(gain, 2.0) and np.testing.assert_allclose(bias, 0.3 - 0.4)
    gain, _ = C.transfer_params((np.full(3, 0.2), np.full(3, 0.01)), (np.full(3, 0.3), np.full(3, 0.5)))
    assert gain.max() == C.GAIN_RANGE[1]  # clamped
    assert C.quantize(np.array([0.5 + 1 / 700])).item() == 0.5  # below half a 1/256 step: no change


def test_colour_smoothing_with_momentum():
    st = TrackState()
    g, b = C.smooth_color(st, np.ones(3), np.zeros(3), 0.1)
    assert (g == 1).all() and (b == 0).all()
    for _ in range(3):
        g, b = C.smooth_color(st, np.full(3, 2.0), np.zeros(3), 0.1)
    assert g[0] == C.quantize(1 + (1 - 0.9 ** 3)).item()  # 3 steps of momentum 0.1 toward 2
    # noise below the quantization step never changes what is applied
    applied = {C.smooth_color(st, st.gain + d, st.bias, 0.1)[0][0] for d in np.linspace(-1e-3, 1e-3, 9)}
    assert len(applied) == 1


def test_colour_stats_are_mask_weighted():
    crop = np.zeros((128, 128, 3), np.uint8)
    crop[:, 64:] = 255
    mask = np.zeros((128, 128), np.float32)
    mask[:, 64:] = 1
    mean, std = C.color_stats(BE, crop, mask)
    np.testing.assert_allclose(mean, 1.0) and np.testing.assert_allclose(std, 0.0, atol=1e-6)


@pytest.mark.parametrize("blend", ["feather", "pyramid"])
def test_paste_touches_only_the_rectangle(astronaut, blend):
    frame = astronaut.copy()
    kps = np.array([[203.6, 102.0], [247.8, 104.1], [224.0, 124.9], [204.2, 143.2], [241.9, 144.8]])
    m = align_matrix(kps, "arcface_128", 128)
    color = np.full((128, 128, 3), 200, np.uint8)
    mask = Mk.box_mask(128, 0.3)
    rect = C.Compositor(BE).paste(frame, color, mask, m, TrackState(), blend=blend)
    assert rect == paste_rect(m, 128, frame.shape)
    x1, y1, x2, y2 = rect
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    np.testing.assert_array_equal(frame[outside], astronaut[outside])
    centre = frame[int(kps[2, 1]), int(kps[2, 0])].astype(int)
    assert np.abs(centre - 200).max() <= 2  # mask 1 at the nose: the pasted colour
    changed = (frame != astronaut).any(axis=2)
    assert changed[y1:y2, x1:x2].mean() > 0.3
    if blend == "feather":  # where the warped mask is 0, pixels are bit-identical
        corner = frame[y1, x1], astronaut[y1, x1]
        np.testing.assert_array_equal(*corner)


def test_seam_reuse_keeps_last_seam_when_still():
    comp = C.Compositor(BE)
    kps = TEMPLATES["arcface_128"] * 160 + [40, 30]
    m = align_matrix(kps, "arcface_128", 128)
    mask = Mk.box_mask(128, 0.3)
    rng = np.random.default_rng(0)
    bg = rng.integers(60, 200, (300, 300, 3)).astype(np.uint8)
    st = TrackState()
    st.motion = 0.5
    f1 = bg.copy()
    comp.paste(f1, np.full((128, 128, 3), 150, np.uint8), mask, m, st, seam=True)
    f2 = np.clip(bg.astype(int) + rng.integers(-4, 5, bg.shape), 0, 255).astype(np.uint8)  # sensor noise
    out2 = f2.copy()
    comp.paste(out2, np.full((128, 128, 3), 152, np.uint8), mask, m, st, seam=True)
    st_off = TrackState()
    st_off.motion = 0.5
    ref = f2.copy()
    comp.paste(ref, np.full((128, 128, 3), 152, np.uint8), mask, m, st_off, seam=False)
    import cv2

    from livecam.face.geometry import invert_affine

    alpha = cv2.warpAffine(mask, invert_affine(m), (300, 300))
    inner = cv2.erode((alpha > 0.02).astype(np.uint8), np.ones((25, 25), np.uint8))
    band = (alpha > 0.02) & (alpha < 0.98) & (inner == 0)  # the outer 12 px of the feather
    same = lambda out: (out == f1).all(axis=2)[band].mean()  # noqa: E731
    assert band.sum() > 2000
    assert same(out2) > 0.8 and same(ref) < 0.2  # the seam kept last frame's pixels
    np.testing.assert_array_equal(out2[~band & (alpha > 0.99)], ref[~band & (alpha > 0.99)])
    st.motion = 10.0  # moved: no reuse
    out3 = f2.copy()
    comp.paste(out3, np.full((128, 128, 3), 152, np.uint8), mask, m, st, seam=True)
    np.testing.assert_array_equal(out3, ref)


@pytest.mark.parametrize("face_px", [110, 420])
def test_seam_band_is_12_frame_pixels_wide_at_any_magnification(face_px):
    """The band is made on the crop and warped with it: `SEAM_BAND_PX` frame pixels from the
    crop's edge whether the 128-px crop is pasted at 1.2x or at 4.6x."""
    from livecam.face.geometry import invert_affine, transform_points

    comp = C.Compositor(BE)
    kps = TEMPLATES["arcface_128"] * face_px + [60, 40]
    m = align_matrix(kps, "arcface_128", 128)
    size = int(face_px * 1.4) + 120
    bg = np.full((size, size, 3), 90, np.uint8)
    mask = Mk.box_mask(128, 0.3)
    st, st_off = TrackState(), TrackState()
    st.motion = st_off.motion = 0.5
    f1 = bg.copy()
    comp.paste(f1, np.full((128, 128, 3), 150, np.uint8), mask, m, st, seam=True)
    out2, ref = bg.copy(), bg.copy()
    comp.paste(out2, np.full((128, 128, 3), 154, np.uint8), mask, m, st, seam=True)
    comp.paste(ref, np.full((128, 128, 3), 154, np.uint8), mask, m, st_off, seam=False)
    (left, row), (right, _) = transform_points(np.array([[0.0, 64.0], [128.0, 64.0]]), invert_affine(m))
    y = int(round(row))
    kept = (out2[y] == f1[y]).all(axis=1) & (out2[y] != ref[y]).any(axis=1)  # last frame's pixel, and it differs
    xs = np.nonzero(kept)[0]
    assert len(xs) > 0
    reach_left = xs[xs < (left + right) / 2].max() - left
    reach_right = right - xs[xs > (left + right) / 2].min()
    assert abs(reach_left - C.SEAM_BAND_PX) <= 2.5 and abs(reach_right - C.SEAM_BAND_PX) <= 2.5, (reach_left, reach_right)
    centre = int(round((left + right) / 2))
    assert (out2[y, centre] == 154).all()  # the face itself is this frame's


def test_badge_drawn_bottom_left_only():
    frame = np.full((720, 1280, 3), 128, np.uint8)
    C.draw_badge(frame)
    changed = (frame != 128).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 1000
    assert ys.min() > 720 * 0.85 and xs.max() < 1280 * 0.3
    assert frame[changed].max() > 200 and frame[changed].min() < 60  # light text on a darkened box


# -- swappers -------------------------------------------------------------------------------------

def test_inswapper_pre_and_post_processing():
    emap = np.random.default_rng(0).normal(size=(512, 512)).astype(np.float32)
    sess = _Sess(lambda f: f["target"].copy(), "inswapper_128", ("target", "source"))
    sw = InswapperSwapper(sess, emap)
    crop = np.zeros((128, 128, 3), np.uint8)
    crop[..., 0] = 255  # blue
    crop[..., 1] = 51
    emb = np.random.default_rng(1).normal(size=512).astype(np.float32)
    emb /= np.linalg.norm(emb)
    latent = sw.prepare_source(emb)
    ref = emb[None] @ emap  # InsightFace inswapper.py: normed . emap, then / its norm
    np.testing.assert_allclose(latent, ref / np.linalg.norm(ref), rtol=1e-5, atol=1e-7)
    out = sw.swap(crop, latent)
    t = sess.feeds["target"]
    assert t.shape == (1, 3, 128, 128)
    assert t[0, 2].max() == 1.0 and t[0, 0].max() == 0.0 and t[0, 1, 0, 0] == pytest.approx(0.2)  # RGB [0,1]
    np.testing.assert_allclose(out, crop.astype(np.float32), atol=1e-4)  # identity round trip
    with pytest.raises(ValueError):
        InswapperSwapper(sess, emap[:10])


def test_hyperswap_range_and_nan_passthrough():
    sess = _Sess(lambda f: f["target"].copy(), "hyperswap_1a_256", ("source", "target"))
    sw = HyperswapSwapper(sess)
    crop = np.full((256, 256, 3), 255, np.uint8)
    crop[..., 2] = 0
    out = sw.swap(crop, sw.prepare_source(np.ones(512, np.float32)))
    t = sess.feeds["target"]
    assert t[0, 0].max() == -1.0 and t[0, 2].min() == 1.0  # red channel first, [-1, 1]
    np.testing.assert_allclose(out, crop.astype(np.float32), atol=1e-3)
    sess.out = lambda f: np.full((1, 3, 256, 256), np.nan, np.float32)
    assert np.isnan(sw.swap(crop, np.ones((1, 512), np.float32))).all()  # the guard must see NaN


class _Loader:
    """Fake loader with TensorRT-like FP16 sessions and remembered decisions."""

    def __init__(self, fp16_out):
        self.fp16_out, self.memory, self.built = fp16_out, {}, []

    def session(self, name, fp16=None):
        self.built.append((name, fp16))
        out = self.fp16_out if fp16 else (lambda f: f["target"].copy())
        return _Sess(out, name, ("source", "target"), provider="tensorrt")

    def path(self, name):
        return name

    def initializer(self, name, index=-1):
        return np.eye(512, dtype=np.float32)

    def release(self, name, fp16=None):  # ModelLoader's: nothing cached here
        return 0

    def remember(self, name, key, value):
        self.memory[(name, key)] = value

    def recall(self, name, key, default=None):
        return self.memory.get((name, key), default)


def test_fp16_checked_once_against_fp32():
    good = _Loader(lambda f: f["target"] + np.float32(1e-3))
    sw = make_swapper(good, "hyperswap_1a_256", fp16=True)
    assert sw.note == "" and good.memory == {("hyperswap_1a_256", "fp16_matches_fp32"): True}
    bad = _Loader(lambda f: -f["target"])  # a distorted FP16 engine
    sw = make_swapper(bad, "hyperswap_1a_256", fp16=True)
    assert "using FP32" in sw.note and sw.session.name == "hyperswap_1a_256"
    assert bad.memory[("hyperswap_1a_256", "fp16_matches_fp32")] is False
    bad.built.clear()
    sw = make_swapper(bad, "hyperswap_1a_256", fp16=True)  # remembered: no second comparison
    assert "using FP32" in sw.note and bad.built[-1] == ("hyperswap_1a_256", False)
    ident = HyperswapSwapper(_Sess(lambda f: f["target"].copy(), "x", ("source", "target")))
    flipped = HyperswapSwapper(_Sess(lambda f: -f["target"], "x", ("source", "target")))
    assert fp16_error(flipped, ident) > 10 * FP16_MAX_MEAN_ABS
    assert fp16_error(ident, HyperswapSwapper(_Sess(lambda f: f["target"].copy(), "y", ("source", "target")))) == 0.0
