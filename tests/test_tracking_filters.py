"""Pure tracking parts: One Euro numbers, bounded SE(2) correction, LK + similarity fit."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from livecam.face.geometry import compose_similarity, transform_points
from livecam.track.lk import fit_similarity, seed_points, track_points
from livecam.track.one_euro import OneEuro, one_euro_step, smoothing_factor
from livecam.track.se2 import Bounds, bound_correction, pose_change


def test_smoothing_factor_formula():
    # fc = 1 Hz at 30 fps: tau = 1/(2 pi), alpha = 1 / (1 + 30 / (2 pi))
    assert smoothing_factor(1.0, 1 / 30) == pytest.approx(1 / (1 + 30 / (2 * math.pi)))
    assert smoothing_factor(1e6, 1 / 30) == pytest.approx(1.0, abs=1e-4)


def test_one_euro_step_by_hand():
    x_hat, dx_hat = one_euro_step(np.array([10.0]), np.array([0.0]), np.array([0.0]), dt=0.1, min_cutoff=1.0, beta=0.0)
    a = 1 / (1 + (1 / (2 * math.pi)) / 0.1)
    assert x_hat[0] == pytest.approx(a * 10)
    assert dx_hat[0] == pytest.approx(a * 100)  # d_cutoff 1 Hz, same alpha
    # beta raises the cutoff with speed (per scale): less lag
    fast, _ = one_euro_step(np.array([10.0]), np.array([0.0]), np.array([0.0]), 0.1, 1.0, beta=1.0, scale=1.0)
    assert fast[0] > x_hat[0]
    scaled, _ = one_euro_step(np.array([10.0]), np.array([0.0]), np.array([0.0]), 0.1, 1.0, beta=1.0, scale=100.0)
    assert x_hat[0] < scaled[0] < fast[0]


def test_one_euro_first_sample_passes_then_smooths_noise():
    f = OneEuro(min_cutoff=0.3, beta=5.0)
    rng = np.random.default_rng(0)
    truth = np.array([[100.0, 50.0]] * 5)
    first = truth + rng.normal(0, 1, truth.shape)
    assert np.array_equal(f(first, 0.0, scale=100), first)
    outs = [f(truth + rng.normal(0, 1, truth.shape), (i + 1) / 30, scale=100) for i in range(60)]
    raw_jitter = 1.0 * math.sqrt(2)
    out_jitter = np.std(np.diff(np.array(outs)[20:, :, 0], axis=0))
    assert out_jitter < raw_jitter / 5


def test_one_euro_predict_removes_motion_lag():
    """With the motion fed to `predict`, a moving target is followed with no lag at all."""
    moving = OneEuro(min_cutoff=0.3, beta=0.0)
    plain = OneEuro(min_cutoff=0.3, beta=0.0)
    pts = np.array([[0.0, 0.0], [10.0, 0.0]])
    shift = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 0.0]])  # 5 px per frame
    moving(pts, 0.0)
    plain(pts, 0.0)
    for i in range(1, 20):
        pts = transform_points(pts, shift)
        moving.predict(shift)
        out_m = moving(pts, i / 30)
        out_p = plain(pts, i / 30)
    assert np.abs(out_m - pts).max() < 1e-9
    assert np.abs(out_p - pts).max() > 10  # the plain filter lags several frames of motion


def test_bound_correction_limits_rotation_shift_scale():
    p = np.array([[0, 0], [40, 0], [20, 20], [5, 40], [35, 40]], np.float64) + 300
    c = p.mean(0)
    # a small correction passes unchanged
    small = transform_points(p - c, compose_similarity(math.radians(1), 1.01, 2, -1)) + c
    out, clamped = bound_correction(p, small)
    assert not clamped and np.allclose(out, small)
    # a big one is clamped to 3 degrees, 2 % and 6 px
    big = transform_points(p - c, compose_similarity(math.radians(10), 1.10, 30, 40)) + c
    out, clamped = bound_correction(p, big, Bounds(3.0, 6.0, 0.02))
    assert clamped
    ang, ds, shift = pose_change(p, out)
    assert ang == pytest.approx(3.0, abs=1e-6)
    assert ds == pytest.approx(0.02, abs=1e-9)
    assert shift == pytest.approx(6.0, abs=1e-6)


def _textured(h=240, w=320, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (h, w), dtype=np.uint8), (0, 0), 1.5)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def test_lk_follows_a_known_similarity_and_fit_recovers_it():
    img = _textured()
    m = compose_similarity(math.radians(4), 1.03, 0, 0)
    c = np.array([160.0, 120.0])
    m[:, 2] = c - m[:, :2] @ c + [3.5, -2.25]
    moved = cv2.warpAffine(img, m, (320, 240), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    pts = seed_points(img, (80, 60, 240, 180), 40)  # grey images: LK's own input
    assert len(pts) >= 20
    new, ok, fb = track_points(img, moved, pts)
    assert ok.mean() > 0.9 and np.median(fb[ok]) < 0.2
    fit, inl, res = fit_similarity(pts[ok], new[ok], threshold=1.0)
    assert res < 0.2 and inl.mean() > 0.9
    # the fitted motion maps the face region within 0.2 px of the true one
    grid = np.stack(np.meshgrid(np.linspace(80, 240, 9), np.linspace(60, 180, 7)), -1).reshape(-1, 2)
    assert np.abs(transform_points(grid, fit) - transform_points(grid, m)).max() < 0.2
    # a wrong point (occluder) is an outlier, not a bias
    bad = new.copy()
    bad[0] += 25
    fit2, inl2, _ = fit_similarity(pts, bad, threshold=1.0)
    assert not inl2[0]
    assert np.abs(transform_points(grid, fit2) - transform_points(grid, fit)).max() < 0.1


def test_lk_forward_backward_flags_a_scene_change():
    prev, cur = _textured(seed=1), _textured(seed=2)  # unrelated content
    pts = seed_points(prev, (60, 40, 260, 200), 40)
    _, ok, fb = track_points(prev, cur, pts)
    assert (ok & (fb < 1.0)).mean() < 0.3


def test_roi_grey_tracks_in_frame_pixels_across_moving_windows_and_a_scale_change():
    """LK on the tracked region only, at a working scale: two different windows (and, once, two
    scales) still give frame-pixel motion within a fraction of a frame pixel."""
    from livecam.track.lk import RoiGray, seed_roi_points, track_roi_points

    big = cv2.resize(_textured(seed=3), (1280, 960), interpolation=cv2.INTER_CUBIC)
    frame0 = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR) if big.ndim == 2 else big
    shift = np.float64([[1, 0, 6.0], [0, 1, -4.0]])
    frame1 = cv2.warpAffine(frame0, shift, (1280, 960), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    roi = RoiGray(face_px=112)
    box0 = np.array([500.0, 400.0, 780.0, 680.0])
    roi.build(frame0, [box0])
    assert roi.cur.image.shape[1] < 0.5 * 1280  # only the region, scaled down (face ~112 px)
    pts = seed_roi_points(roi.cur, box0, 40)
    assert len(pts) >= 20 and (pts[:, 0] > 500).all() and (pts[:, 0] < 780).all()
    roi.build(frame1, [box0 + [20, -10, 20, -10]])  # the window follows the predicted box
    new, ok, fb = track_roi_points(roi.prev, roi.cur, pts)
    assert ok.mean() > 0.8
    err = np.abs(new[ok] - (pts[ok] + [6.0, -4.0]))
    assert np.median(err) < 0.25  # frame pixels (LK ran at ~0.4x)
    # the face doubles in size: a new working scale, the previous image is rescaled to match
    roi.build(frame1, [np.array([400.0, 300.0, 960.0, 860.0])])
    assert roi.prev.image.shape == roi.cur.image.shape
    again, ok2, _ = track_roi_points(roi.prev, roi.cur, new[ok])
    assert ok2.mean() > 0.8 and np.median(np.abs(again[ok2] - new[ok][ok2])) < 0.5
