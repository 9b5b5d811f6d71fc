"""Bounded SE(2)+scale change of the alignment transform between frames.

The swap aligns with the similarity fitted to the face's 5 points. Between
two frames that similarity may change by the motion optical flow measured,
plus a correction (detector noise, a re-detect hand-off). `bound_correction`
decomposes the correction into rotation, scale and translation of the face
centre and clamps each to a per-frame limit (about 3°, 6 px, 2%), so the crop
never pops; a re-detect that says the face really moved skips the bound.
Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from livecam.face.geometry import compose_similarity, decompose_similarity, estimate_similarity, transform_points


@dataclass(frozen=True)
class Bounds:
    angle_deg: float = 3.0
    shift_px: float = 6.0
    scale: float = 0.02  # relative


def bound_correction(predicted: np.ndarray, target: np.ndarray, bounds: Bounds = Bounds()) -> tuple[np.ndarray, bool]:
    """Move `predicted` (N,2) toward `target` (N,2) by at most `bounds`.

    The correction is the similarity predicted -> target about the points'
    centroid. Returns (points, clamped) where `clamped` says a limit was hit.
    Non-rigid differences (what the similarity does not explain) pass through
    scaled by the same factor as the rigid part.
    """
    p = np.asarray(predicted, np.float64)
    q = np.asarray(target, np.float64)
    c = p.mean(axis=0)
    m = estimate_similarity(p - c, q - c)  # about the centroid
    angle, scale, tx, ty = decompose_similarity(m)
    max_a = math.radians(bounds.angle_deg)
    a2 = min(max(float(angle), -max_a), max_a)  # (np.clip on a scalar costs 5 us a call, every frame)
    s2 = min(max(float(scale), 1.0 - bounds.scale), 1.0 + bounds.scale)
    shift = math.hypot(tx, ty)
    k = 1.0 if shift <= bounds.shift_px else bounds.shift_px / shift
    clamped = (a2 != angle) or (s2 != scale) or k < 1.0
    if not clamped:
        return q.copy(), False
    m2 = compose_similarity(a2, s2, tx * k, ty * k)
    rigid = transform_points(p - c, m) + c
    residual = q - rigid
    # how much of the way we went, for the non-rigid part
    frac = min(1.0, k, abs(a2) / abs(angle) if angle else 1.0, abs(s2 - 1) / abs(scale - 1) if scale != 1 else 1.0)
    return transform_points(p - c, m2) + c + frac * residual, True


def pose_change(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(angle degrees, relative scale change, centroid shift px) from point set a to b."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ca, cb = a.mean(0), b.mean(0)
    angle, scale, _, _ = decompose_similarity(estimate_similarity(a - ca, b - cb))
    return math.degrees(angle), scale - 1.0, float(np.linalg.norm(cb - ca))
