"""Crop-space masks, combined by element-wise minimum (model-contracts.md §7-§9).

All masks are float32 (S, S) in [0, 1] at the swapper's crop size S, on the
backend's device. Model maskers (XSeg, BiSeNet) own their pre/post-processing;
the geometric masks (box, area, mouth) are functions.
"""

from __future__ import annotations

import math

import numpy as np

from livecam.face.geometry import TEMPLATES, estimate_similarity, transform_points

# BiSeNet (CelebAMask-HQ) class index per region name (model-contracts.md §8).
REGION_CLASSES = {
    "skin": 1, "left-eyebrow": 2, "right-eyebrow": 3, "left-eye": 4, "right-eye": 5,
    "glasses": 6, "nose": 10, "mouth": 11, "upper-lip": 12, "lower-lip": 13,
}

# 68-point (iBUG, 0-based) hull indices per area (model-contracts.md §8).
AREA_POINTS = {
    "upper-face": [0, 1, 2, 31, 32, 33, 34, 35, 14, 15, 16, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17],
    "lower-face": [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 35, 34, 33, 32, 31],
    "mouth": list(range(48, 68)),
}
INNER_MOUTH = list(range(60, 68))

_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def box_mask(size: int, blur: float, padding=(0, 0, 0, 0)) -> np.ndarray:
    """FaceFusion's box mask: ones, zero bands per side (top, right, bottom, left), blurred.

    Host float32 (size, size); it depends only on settings, so callers cache it.
    """
    import cv2

    blur_amount = int(size * 0.5 * blur)
    blur_area = max(blur_amount // 2, 1)
    m = np.ones((size, size), dtype=np.float32)
    top, right, bottom, left = (max(blur_area, int(size * p / 100)) for p in padding)
    m[:top, :] = 0
    m[size - bottom:, :] = 0
    m[:, :left] = 0
    m[:, size - right:] = 0
    if blur_amount > 0:
        sigma = 0.25 * blur_amount
        k = 2 * int(4.0 * sigma + 0.5) + 1
        m = cv2.GaussianBlur(m, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)
    return m


def harden(backend, mask):
    """Blur (sigma 5) then map [0.5, 1] -> [0, 1]: pulls a soft edge inward (§7, §8)."""
    xp = backend.xp
    m = backend.gaussian_blur(mask.astype(xp.float32, copy=False), 5.0)
    return xp.clip((m - 0.5) * 2.0, 0.0, 1.0)


# Approximate 68-point face in arcface_128 unit coordinates: used only when the
# landmarker gave no 68 points, so the area/mouth masks still cover the face. It
# is built around the template's 5 points (eyes, nose, mouth corners).
def _mean_shape68() -> np.ndarray:
    t = TEMPLATES["arcface_128"]
    pts = np.zeros((68, 2))
    for i in range(17):  # jaw: lower half-ellipse from ear to ear through the chin
        th = math.pi - math.pi * i / 16
        pts[i] = (0.5 + 0.33 * math.cos(th), 0.40 + 0.52 * math.sin(th))
    for i in range(5):  # brows
        pts[17 + i] = (0.23 + 0.05 * i, 0.33 - 0.025 * math.sin(math.pi * i / 4))
        pts[22 + i] = (0.57 + 0.05 * i, 0.33 - 0.025 * math.sin(math.pi * (i + 1) / 4))
    for i in range(4):  # nose bridge
        pts[27 + i] = (0.5, 0.41 + 0.05 * i)
    for i in range(5):  # nostrils
        pts[31 + i] = (0.44 + 0.03 * i, 0.59 if i in (0, 4) else 0.60)
    for base, (cx, cy) in ((36, t[0]), (42, t[1])):  # eyes: hexagons
        for j, (dx, dy) in enumerate([(-0.06, 0), (-0.03, -0.02), (0.03, -0.02), (0.06, 0), (0.03, 0.02), (-0.03, 0.02)]):
            pts[base + j] = (cx + dx, cy + dy)
    mc = (t[3] + t[4]) / 2
    half = (t[4][0] - t[3][0]) / 2
    for j in range(12):  # outer lips, 48 = left corner, 54 = right corner
        th = math.pi + 2 * math.pi * j / 12
        pts[48 + j] = (mc[0] + half * math.cos(th), mc[1] + 0.045 * math.sin(th))
    for j in range(8):  # inner lips: a closed mouth (upper and lower inner lip meet)
        th = math.pi + 2 * math.pi * j / 8
        pts[60 + j] = (mc[0] + 0.7 * half * math.cos(th), mc[1])
    return pts


MEAN_SHAPE68 = _mean_shape68()
MEAN_SHAPE68.flags.writeable = False


def estimate_landmarks68(kps5: np.ndarray) -> np.ndarray:
    """Rough 68 points in frame pixels from the 5 points (fallback without a landmarker)."""
    m = estimate_similarity(TEMPLATES["arcface_128"], np.asarray(kps5, dtype=np.float64))
    return transform_points(MEAN_SHAPE68, m)


def area_points(areas) -> list[int]:
    """The 68-point indices of the chosen areas, pooled in the order given (FaceFusion's order)."""
    return [i for area in areas for i in AREA_POINTS[area]]


def area_mask(backend, points68_crop: np.ndarray, areas, size: int):
    """One convex hull over all chosen areas' points, hardened. Points in crop pixels.

    FaceFusion 3.8.1 `create_area_mask` pools the areas' points into a single hull;
    a union of one hull per area would leave wedges on the cheeks between
    upper-face and lower-face where the user's own cheeks show through.
    """
    m = backend.fill_convex((size, size), points68_crop[area_points(areas)])
    return harden(backend, m)


def mouth_mask(backend, points68_crop: np.ndarray, size: int):
    """0 over the user's open mouth interior (so their own mouth shows), 1 elsewhere.

    The inner-lip hull is grown by a blur rather than a morphological dilation so the
    edge stays soft; a closed mouth has an almost empty hull and the mask stays ~1.
    """
    inner = backend.fill_convex((size, size), points68_crop[INNER_MOUTH])
    grown = backend.gaussian_blur(inner, max(size / 128.0, 1.0))
    return backend.xp.clip(1.0 - grown * 1.5, 0.0, 1.0)


class OcclusionMasker:
    """XSeg 1/2/3, or several of them intersected (`many`), on the target crop (§7)."""

    size = 256

    def __init__(self, sessions: list):
        self.sessions = sessions
        self._blob = np.empty((1, self.size, self.size, 3), dtype=np.float32)

    def mask(self, backend, crop_u8):
        """crop (S, S, 3) uint8 BGR on the backend -> hardened (S, S) float32 on the backend."""
        s = crop_u8.shape[0]
        small = backend.to_host(backend.resize(crop_u8, (self.size, self.size)))
        np.multiply(small, 1.0 / 255.0, out=self._blob[0])  # NHWC, BGR, [0, 1]
        out = None
        for sess in self.sessions:
            m = np.asarray(sess.run({sess.input_names[0]: self._blob})[0], dtype=np.float32).reshape(self.size, self.size)
            out = m if out is None else np.minimum(out, m)
        m = backend.asarray(np.clip(out, 0.0, 1.0))
        if s != self.size:
            m = backend.resize(m, (s, s))
        return harden(backend, m)


class RegionMasker:
    """BiSeNet face parser (r34/r18) on the swapped crop: keep the chosen regions (§8)."""

    size = 512

    def __init__(self, session):
        self.session = session
        self._blob = np.empty((1, 3, self.size, self.size), dtype=np.float32)

    def mask(self, backend, crop_u8, regions):
        s = crop_u8.shape[0]
        small = backend.to_host(backend.resize(crop_u8, (self.size, self.size)))
        rgb = small[:, :, ::-1].astype(np.float32) * (1.0 / 255.0)
        self._blob[0] = ((rgb - _IMAGENET_MEAN) / _IMAGENET_STD).transpose(2, 0, 1)
        logits = np.asarray(self.session.run({self.session.input_names[0]: self._blob})[0])[0]
        labels = logits.argmax(axis=0)
        keep = np.isin(labels, [REGION_CLASSES[r] for r in regions]).astype(np.float32)
        m = backend.asarray(keep)
        if s != self.size:
            m = backend.resize(m, (s, s))
        return harden(backend, m)
