"""Pyramidal Lucas–Kanade with a forward–backward check, and a robust similarity fit."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class LKParams:
    win: int = 21
    levels: int = 3
    iters: int = 20
    eps: float = 0.03

    @property
    def criteria(self):
        return (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, self.iters, self.eps)


@dataclass
class GrayRoi:
    """A grey image of the frame region `origin` + (w, h) / `scale`: roi = (frame - origin) * scale."""

    image: np.ndarray
    origin: np.ndarray  # (2,) frame pixels of the ROI's top-left
    scale: np.ndarray  # (2,) ROI pixels per frame pixel, x and y

    def to_roi(self, pts: np.ndarray) -> np.ndarray:
        return ((np.asarray(pts, np.float64) - self.origin) * self.scale).astype(np.float32)

    def to_frame(self, pts: np.ndarray) -> np.ndarray:
        return (np.asarray(pts, np.float64) / self.scale + self.origin).astype(np.float32)

    def from_frame_matrix(self) -> np.ndarray:
        """3x3: ROI pixels -> frame pixels (compose with a frame -> X matrix to read X from the ROI)."""
        return np.array([[1.0 / self.scale[0], 0.0, self.origin[0]], [0.0, 1.0 / self.scale[1], self.origin[1]],
                         [0.0, 0.0, 1.0]])

    def covers(self, box, margin: float = 0.0) -> bool:
        h, w = self.image.shape[:2]
        x1, y1 = self.origin
        x2, y2 = x1 + w / self.scale[0], y1 + h / self.scale[1]
        return box[0] >= x1 - margin and box[1] >= y1 - margin and box[2] <= x2 + margin and box[3] <= y2 + margin


class RoiGray:
    """The previous and current grey image of only the tracked region, at a working scale.

    The track stage's cost then follows the face, not the frame: the region is the
    tracked faces' boxes plus `context` face sizes around them (how far a face may move
    in one frame), resized so the largest face is about `face_px` wide (LK needs texture,
    not resolution), and only that is converted to grey. The working scale changes only
    when the face size changes by more than `hysteresis`; then the previous image is
    resized to the new scale so the two stay comparable.
    """

    def __init__(self, face_px: int = 112, context: float = 0.6, hysteresis: float = 0.25):
        self.face_px = face_px
        self.context = context
        self.hysteresis = hysteresis
        self.prev: GrayRoi | None = None
        self.cur: GrayRoi | None = None

    def reset(self) -> None:
        self.prev = self.cur = None

    def _scale_for(self, size: float) -> float:
        want = min(1.0, self.face_px / max(size, 1.0))
        if self.cur is not None:
            old = float(self.cur.scale.mean())
            if abs(want / old - 1.0) <= self.hysteresis and old <= 1.0:
                return old
        return want

    def _extract(self, frame: np.ndarray, boxes: list, scale: float) -> GrayRoi | None:
        h, w = frame.shape[:2]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        size = float(np.max(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
        pad = self.context * size
        x1 = int(max(0, np.floor(boxes[:, 0].min() - pad)))
        y1 = int(max(0, np.floor(boxes[:, 1].min() - pad)))
        x2 = int(min(w, np.ceil(boxes[:, 2].max() + pad)))
        y2 = int(min(h, np.ceil(boxes[:, 3].max() + pad)))
        if x2 - x1 < 8 or y2 - y1 < 8:
            return None
        sub = frame[y1:y2, x1:x2]
        nw, nh = max(8, int(round((x2 - x1) * scale))), max(8, int(round((y2 - y1) * scale)))
        # INTER_AREA by a large non-integer factor costs ms at 1080p: below half size, linear to twice
        # the size first (2x2 taps per pixel), then an exact 2:1 area step (no aliasing of the final grid)
        twice = (2 * nw, 2 * nh) if scale < 0.5 else None
        if twice is not None and scale < 0.25:  # the region has over 4x the linear step's pixels: that
            sub = cv2.resize(sub, twice, interpolation=cv2.INTER_LINEAR)  # first, then grey on fewer
        # grey before the other steps: the same image to 1 level (grey is a weighted sum, the steps
        # weighted means) for a third of their work (0.71 -> 0.32 ms for an area step 440 -> 246 px)
        sub = cv2.cvtColor(sub, cv2.COLOR_BGR2GRAY) if sub.ndim == 3 else sub
        if twice is not None and sub.shape[:2] != (twice[1], twice[0]):
            sub = cv2.resize(sub, twice, interpolation=cv2.INTER_LINEAR)
        if sub.shape[:2] != (nh, nw):
            sub = cv2.resize(sub, (nw, nh), interpolation=cv2.INTER_AREA)
        img = np.ascontiguousarray(sub)
        return GrayRoi(img, np.array([x1, y1], np.float64), np.array([nw / (x2 - x1), nh / (y2 - y1)]))

    def build(self, frame: np.ndarray, boxes: list) -> None:
        """This frame's region around `boxes` (frame pixels); the last one becomes `prev`."""
        self.prev = self.cur
        if not boxes:
            self.cur = None
            return
        size = max(max(b[2] - b[0], b[3] - b[1]) for b in boxes)
        self.cur = self._extract(frame, boxes, self._scale_for(size))
        if self.prev is not None and self.cur is not None and not _close(self.prev.scale, self.cur.scale, 0.02):
            p = self.prev
            ph, pw = p.image.shape[:2]
            nw = max(8, int(round(pw / p.scale[0] * self.cur.scale[0])))
            nh = max(8, int(round(ph / p.scale[1] * self.cur.scale[1])))
            img = cv2.resize(p.image, (nw, nh), interpolation=cv2.INTER_AREA)
            self.prev = GrayRoi(img, p.origin, p.scale * np.array([nw / pw, nh / ph]))
        if self.prev is not None and self.cur is not None and self.prev.image.shape != self.cur.image.shape:
            # OpenCV's LK wants two images of one size: cut or extend (replicated) the previous
            # one at its bottom/right; points in an extension fail the forward-backward check
            p, (h, w) = self.prev, self.cur.image.shape[:2]
            img = p.image[:h, :w]
            ph, pw = img.shape[:2]
            if (ph, pw) != (h, w):
                img = cv2.copyMakeBorder(img, 0, h - ph, 0, w - pw, cv2.BORDER_REPLICATE)
            self.prev = GrayRoi(np.ascontiguousarray(img), p.origin, p.scale)

    def ensure(self, frame: np.ndarray, box) -> GrayRoi | None:
        """`cur`, rebuilt to take in `box` too when it does not cover it (a new face)."""
        if self.cur is not None and self.cur.covers(box):
            return self.cur
        boxes = [box]
        if self.cur is not None:
            h, w = self.cur.image.shape[:2]
            o = self.cur.origin
            boxes.append([o[0], o[1], o[0] + w / self.cur.scale[0], o[1] + h / self.cur.scale[1]])
            scale = float(self.cur.scale.mean())
        else:
            scale = min(1.0, self.face_px / max(box[2] - box[0], box[3] - box[1], 1.0))
        self.cur = self._extract(frame, boxes, scale)
        return self.cur


def _close(a, b, rtol: float) -> bool:
    """`np.allclose(a, b, rtol)` for two short vectors in Python floats (np.allclose: 20 us)."""
    return all(abs(x - y) <= 1e-8 + rtol * abs(y) for x, y in zip(a.tolist(), b.tolist()))


def track_roi_points(prev: GrayRoi, cur: GrayRoi, points: np.ndarray, params: LKParams = LKParams()):
    """Forward-backward LK of (N,2) frame points between two grey regions; frame pixels out,
    FB error in ROI pixels."""
    p0 = prev.to_roi(points)
    guess = cur.to_roi(points)
    new, ok, fb = track_points(prev.image, cur.image, p0, params, guess=guess)
    return cur.to_frame(new), ok, fb


def track_points(prev_gray, cur_gray, points: np.ndarray, params: LKParams = LKParams(), guess=None):
    """Forward-backward LK of (N,2) points. Returns (new (N,2) float32, status (N,) bool, fb_error (N,)).

    `guess`: initial positions in `cur_gray` (when the two images are different windows)."""
    p0 = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 1, 2)
    if len(p0) == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, bool), np.zeros(0, np.float32)
    win = (params.win, params.win)
    flags, init = 0, None
    if guess is not None:
        flags, init = cv2.OPTFLOW_USE_INITIAL_FLOW, np.ascontiguousarray(guess, np.float32).reshape(-1, 1, 2).copy()
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev_gray, cur_gray, p0, init, winSize=win, maxLevel=params.levels,
                                          criteria=params.criteria, flags=flags)
    back = None if guess is None else (p1 - init + p0).astype(np.float32)  # prev-window guess: same offset back
    p0r, st2, _ = cv2.calcOpticalFlowPyrLK(cur_gray, prev_gray, p1, back, winSize=win, maxLevel=params.levels,
                                           criteria=params.criteria, flags=flags)
    fb = np.linalg.norm((p0 - p0r).reshape(-1, 2), axis=1)
    ok = (st1.reshape(-1) == 1) & (st2.reshape(-1) == 1) & np.isfinite(fb)
    return p1.reshape(-1, 2), ok, fb


def fit_similarity(src: np.ndarray, dst: np.ndarray, threshold: float):
    """Robust 4-DOF similarity src -> dst (RANSAC, then refit on inliers).

    Returns (matrix 2x3 or None, inlier mask (N,), median inlier residual px).
    """
    src = np.asarray(src, np.float32).reshape(-1, 2)
    dst = np.asarray(dst, np.float32).reshape(-1, 2)
    if len(src) < 3:
        return None, np.zeros(len(src), bool), float("inf")
    m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=float(threshold),
                                         maxIters=500, confidence=0.995, refineIters=10)
    if m is None or inl is None:
        return None, np.zeros(len(src), bool), float("inf")
    inl = inl.reshape(-1).astype(bool)
    res = np.linalg.norm(src[inl] @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32) - dst[inl], axis=1)
    return m.astype(np.float64), inl, float(np.median(res)) if res.size else float("inf")


def seed_roi_points(roi: GrayRoi, box, max_points: int = 40) -> np.ndarray:
    """`seed_points` in a grey region; frame pixels in and out."""
    b = np.asarray(box, np.float64)
    rb = np.r_[(b[:2] - roi.origin) * roi.scale, (b[2:] - roi.origin) * roi.scale]
    pts = seed_points(roi.image, rb, max_points)
    return roi.to_frame(pts) if len(pts) else pts


def seed_points(gray: np.ndarray, box, max_points: int = 40, shrink: float = 0.15) -> np.ndarray:
    """Corners to track inside the central part of a face box (frame pixels, (K,2) float32)."""
    h, w = gray.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    ix1, iy1 = int(max(0, x1 + shrink * bw)), int(max(0, y1 + shrink * bh))
    ix2, iy2 = int(min(w, x2 - shrink * bw)), int(min(h, y2 - shrink * bh))
    if ix2 - ix1 < 8 or iy2 - iy1 < 8:
        return np.zeros((0, 2), np.float32)
    roi = gray[iy1:iy2, ix1:ix2]
    min_dist = max(3.0, min(bw, bh) / 14.0)
    pts = cv2.goodFeaturesToTrack(roi, maxCorners=max_points, qualityLevel=0.01, minDistance=min_dist, blockSize=5)
    if pts is None:
        return np.zeros((0, 2), np.float32)
    return (pts.reshape(-1, 2) + np.array([ix1, iy1], np.float32)).astype(np.float32)
