"""Alignment geometry: templates, similarity fits, crop warps and their inverses.

Pure functions. Points are (N, 2) float arrays in (x, y). An affine is a 2x3
float64 matrix mapping frame -> crop unless the name says otherwise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# 5-point templates normalised to [0, 1] (model-contracts.md §0). Point order:
# left eye (image-left), right eye, nose tip, left mouth corner, right mouth corner.
TEMPLATES: dict[str, np.ndarray] = {
    "arcface_112_v1": np.array(
        [[0.35473214, 0.45658929], [0.64526786, 0.45658929], [0.5, 0.61154464],
         [0.37913393, 0.776875], [0.62086607, 0.776875]], dtype=np.float64),
    "arcface_112_v2": np.array(
        [[0.34191607, 0.46157411], [0.65653393, 0.45983393], [0.50022500, 0.64050536],
         [0.37097589, 0.82469196], [0.63151696, 0.82325089]], dtype=np.float64),
    "arcface_128": np.array(
        [[0.36167656, 0.40387734], [0.63696719, 0.40235469], [0.50019687, 0.56044219],
         [0.38710391, 0.72160547], [0.61507734, 0.72034453]], dtype=np.float64),
    "ffhq_512": np.array(
        [[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
         [0.39308822, 0.72541100], [0.61150205, 0.72490465]], dtype=np.float64),
}


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 4-DOF similarity (rotation, uniform scale, translation) src -> dst.

    Umeyama's solution without reflection, in its 2-D closed form (no SVD: the
    tracker calls this several times a frame): with the centred point sets, the best
    rotation has angle atan2(c21 - c12, c11 + c22) of the cross-covariance c, and
    scale * R = [[a, -b], [b, a]] / var(src) with a = c11 + c22, b = c21 - c12.
    Deterministic (no RANSAC). A handful of points (the 5-point sets, called several times a
    frame) is summed in Python floats: NumPy's per-call overhead was three quarters of the cost.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if 0 < len(src) <= 16:
        return _similarity_few(src.reshape(-1, 2).tolist(), dst.reshape(-1, 2).tolist())
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = max(float((s0 * s0).sum()), 1e-12 * len(src))
    a = float((d0 * s0).sum())  # n * (c11 + c22)
    b = float((d0[:, 1] * s0[:, 0]).sum() - (d0[:, 0] * s0[:, 1]).sum())  # n * (c21 - c12)
    a, b = a / var_s, b / var_s
    m = np.empty((2, 3))
    m[0, 0], m[0, 1], m[1, 0], m[1, 1] = a, -b, b, a
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def _similarity_few(src: list, dst: list) -> np.ndarray:
    """`estimate_similarity` on lists of (x, y) (same maths, same result to rounding)."""
    n = len(src)
    sx, sy = sum(p[0] for p in src) / n, sum(p[1] for p in src) / n
    dx, dy = sum(p[0] for p in dst) / n, sum(p[1] for p in dst) / n
    var = a = b = 0.0
    for (x, y), (u, v) in zip(src, dst):
        x, y, u, v = x - sx, y - sy, u - dx, v - dy
        var += x * x + y * y
        a += u * x + v * y  # n * (c11 + c22)
        b += v * x - u * y  # n * (c21 - c12)
    var = max(var, 1e-12 * n)
    a, b = a / var, b / var
    return np.array([[a, -b, dx - (a * sx - b * sy)], [b, a, dy - (b * sx + a * sy)]])


def align_matrix(kps5: np.ndarray, template: str, size: int) -> np.ndarray:
    """Frame -> crop similarity putting the 5 points on `template` scaled to `size`."""
    return estimate_similarity(kps5, TEMPLATES[template] * size)


def warp_crop(frame: np.ndarray, matrix: np.ndarray, size: int, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Crop `size`x`size` from `frame` through `matrix` (frame -> crop), bilinear."""
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def paste_rect(matrix: np.ndarray, size: int, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Frame rectangle (x1, y1, x2, y2), clipped, covering the crop's four corners.

    Paste-back touches only this rectangle (model-contracts.md §9).
    """
    inv = invert_affine(matrix)
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float64)
    pts = transform_points(corners, inv)
    h, w = frame_shape[:2]
    xs, ys = pts[:, 0].tolist(), pts[:, 1].tolist()  # (Python scalars: np.clip on one costs 5 us)
    x1 = min(max(math.floor(min(xs)), 0), w)
    y1 = min(max(math.floor(min(ys)), 0), h)
    x2 = min(max(math.ceil(max(xs)), 0), w)
    y2 = min(max(math.ceil(max(ys)), 0), h)
    return x1, y1, x2, y2


def decompose_similarity(matrix: np.ndarray) -> tuple[float, float, float, float]:
    """(angle radians, scale, tx, ty) of a similarity matrix."""
    a, b = matrix[0, 0], matrix[1, 0]
    return math.atan2(b, a), math.hypot(a, b), float(matrix[0, 2]), float(matrix[1, 2])


def compose_similarity(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]], dtype=np.float64)


def interocular(kps5: np.ndarray) -> float:
    """Distance between the eye points: the normaliser of landmark errors."""
    return float(np.linalg.norm(np.asarray(kps5[1]) - np.asarray(kps5[0])))
