"""Dense landmarkers run on detection frames: 2DFAN4 (68 points) and 2d106det (fallback).

`landmarks(frame, bbox) -> (points (N, 2) frame pixels, score 0..1)`.
`refine_kps5(points68)` gives the 5 alignment points (FaceFusion's `5/68`),
used instead of the detector's when the score passes `landmarker.score`.
(model-contracts.md §5, §6.)
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from livecam.face.geometry import invert_affine, transform_points, warp_crop
from livecam.inference.session import serialised


class Landmarker(Protocol):
    def landmarks(self, frame: np.ndarray, bbox: np.ndarray,
                  kps5: np.ndarray | None = None) -> tuple[np.ndarray, float]: ...


def refine_kps5(points68: np.ndarray) -> np.ndarray:
    """68 iBUG points -> 5 (eye centres = mean of 36-41 / 42-47, nose 30, mouth 48 / 54)."""
    p = np.asarray(points68, dtype=np.float64).reshape(68, 2)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]]).astype(np.float32)


def fan_crop_matrix(bbox: np.ndarray, size: int = 256, span: float = 195.0) -> np.ndarray:
    """Frame -> crop: the box centre to the crop centre, its longer side to `span` px."""
    x1, y1, x2, y2 = (float(v) for v in bbox[:4])
    s = span / max(x2 - x1, y2 - y1, 1.0)
    tx = (size - (x1 + x2) * s) * 0.5
    ty = (size - (y1 + y2) * s) * 0.5
    return np.array([[s, 0.0, tx], [0.0, s, ty]], dtype=np.float64)


def face_angle(kps5: np.ndarray) -> int:
    """The face's roll snapped to 0, 90, 180 or 270 degrees (image y down).

    FaceFusion 3.8.1 `estimate_face_angle` takes the line from 68-point #0 to #16
    (of the 68 points estimated from the detector's 5); the eye line of the 5
    points runs the same way. So faces rolled less than 45 degrees get 0.
    """
    k = np.asarray(kps5, dtype=np.float64).reshape(5, 2)
    dx, dy = k[1] - k[0]
    theta = np.degrees(np.arctan2(dy, dx)) % 360
    return int(round(theta / 90.0)) % 4 * 90


def upright_matrix(angle: int, size: int) -> np.ndarray:
    """Crop -> upright crop: rotation by `angle` about the square crop's centre
    (FaceFusion `create_rotation_matrix_and_size`; a square keeps its size)."""
    return cv2.getRotationMatrix2D((size / 2, size / 2), float(angle), 1.0)


def fan_score(heatmaps: np.ndarray) -> float:
    """Mean over points of each heatmap's maximum, mapped [0, 0.9] -> [0, 1]."""
    peaks = np.asarray(heatmaps).reshape(heatmaps.shape[-3], -1).max(axis=1)
    return float(np.clip(np.mean(peaks) / 0.9, 0.0, 1.0))


class Fan68:
    """2DFAN4: 256x256 crop (box's longer side -> 195 px), BGR /255; 64x64 heatmap grid."""

    size = 256

    def __init__(self, session):
        self.session = session
        self._input = session.input_names[0]
        self._blob = np.zeros((1, 3, self.size, self.size), np.float32)
        self.last_matrix: np.ndarray | None = None

    @serialised  # reused blob: a detection worker and the frame thread may share the adapter
    def landmarks(self, frame: np.ndarray, bbox: np.ndarray,
                  kps5: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        m = fan_crop_matrix(bbox, self.size)
        angle = face_angle(kps5) if kps5 is not None else 0
        if angle:  # a face rolled >= 45 degrees: the model sees it upright (FaceFusion does so too)
            r = upright_matrix(angle, self.size)
            m = r @ np.vstack([m, [0.0, 0.0, 1.0]])
        self.last_matrix = m  # frame -> model input, for tests and debugging
        crop = warp_crop(frame, m, self.size, border=cv2.BORDER_CONSTANT)
        lab = cv2.cvtColor(crop, cv2.COLOR_RGB2Lab)  # as FaceFusion does (RGB2Lab on the BGR crop)
        if lab[:, :, 0].mean() < 30:
            lab[:, :, 0] = cv2.createCLAHE(clipLimit=2).apply(lab[:, :, 0])
            crop = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        self._blob[0] = crop.transpose(2, 0, 1)
        self._blob *= 1.0 / 255.0
        out = self.session.run({self._input: self._blob})
        xy = np.asarray(out[0]).reshape(-1, np.asarray(out[0]).shape[-1])[:, :2] * (self.size / 64.0)
        points = transform_points(xy, invert_affine(m)).astype(np.float32)
        score = fan_score(np.asarray(out[1])[0]) if len(out) > 1 else 0.0
        return points, score


def l106_crop_matrix(bbox: np.ndarray, size: int = 192) -> np.ndarray:
    """Frame -> crop: box centre to the crop centre, scale size / (1.5 * longer side)."""
    x1, y1, x2, y2 = (float(v) for v in bbox[:4])
    s = size / (1.5 * max(x2 - x1, y2 - y1, 1.0))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy]], dtype=np.float64)


class Landmark106:
    """InsightFace 2d106det: 192x192 crop (1.5x the box), RGB 0..255; output in [-1, 1].

    The model has no confidence output; the score is 1 when every point is
    finite and inside the crop, else 0. Its 106 -> 5 map is not published, so
    alignment keeps the detector's 5 points with this landmarker.
    """

    size = 192

    def __init__(self, session):
        self.session = session
        self._input = session.input_names[0]
        self._blob = np.zeros((1, 3, self.size, self.size), np.float32)

    @serialised  # reused blob: a detection worker and the frame thread may share the adapter
    def landmarks(self, frame: np.ndarray, bbox: np.ndarray,
                  kps5: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        # InsightFace crops 2d106det with rotation 0; the points are not used for alignment.
        m = l106_crop_matrix(bbox, self.size)
        crop = warp_crop(frame, m, self.size, border=cv2.BORDER_CONSTANT)
        self._blob[0] = crop[..., ::-1].transpose(2, 0, 1)
        out = np.asarray(self.session.run({self._input: self._blob})[0]).reshape(-1)
        pts = (out[:212].reshape(106, 2) + 1.0) * (self.size // 2)
        ok = bool(np.all(np.isfinite(pts)) and pts.min() >= 0 and pts.max() <= self.size)
        return transform_points(pts, invert_affine(m)).astype(np.float32), 1.0 if ok else 0.0


def make_landmarker(loader, settings, background: bool = False) -> Landmarker | None:
    """The landmarker named by `settings.landmarker.model`, or None for 'none'.

    `background`: an adapter of its own for a background worker (`make_detector`'s rule)."""
    name = settings.landmarker.model
    if name == "none":
        return None
    if name not in ("2dfan4", "2d106det"):
        raise ValueError(f"unknown landmarker {name!r}")
    sess = loader.session(name)
    if background:
        sess = loader.background_session(sess)
    return Fan68(sess) if name == "2dfan4" else Landmark106(sess)


def alignment_kps5(det_kps5: np.ndarray, points: np.ndarray | None, score: float, threshold: float) -> np.ndarray:
    """FaceFusion's `5/68`: from 68 points when their score passes, else the detector's."""
    if points is not None and len(points) == 68 and score > threshold and np.all(np.isfinite(points)):
        return refine_kps5(points)
    return np.asarray(det_kps5, np.float32)
