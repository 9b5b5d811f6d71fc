"""ArcFace w600k_r50 identity embedding (model-contracts.md §4)."""

from __future__ import annotations

import cv2
import numpy as np

from livecam.face.geometry import align_matrix, warp_crop
from livecam.inference.session import serialised

# A unit-length embedding's raw vector from ArcFace has a norm of ~20; anything this
# close to zero has no direction and would make every cosine distance meaningless.
MIN_EMBEDDING_NORM = 1e-3


class ArcFaceEmbedder:
    """112x112 crop on the `arcface_112_v2` template, RGB, (x - 127.5) / 127.5 -> raw (512,).

    `embed` returns the raw vector (not unit length); `Face.normed_embedding`
    and `normalize` give the L2-normalised one used for cosine similarity.
    """

    size = 112
    template = "arcface_112_v2"

    def __init__(self, session):
        self.session = session
        self.name = getattr(session, "name", "arcface_w600k_r50")
        self._input = session.input_names[0]
        self._blob = np.zeros((1, 3, self.size, self.size), np.float32)

    def crop(self, frame: np.ndarray, kps5: np.ndarray) -> np.ndarray:
        m = align_matrix(np.asarray(kps5, np.float64), self.template, self.size)
        return warp_crop(frame, m, self.size, border=cv2.BORDER_CONSTANT)

    @serialised  # the blob is reused: the TUI's add-face thread and the frame thread may both embed
    def embed(self, frame: np.ndarray, kps5: np.ndarray) -> np.ndarray:
        crop = self.crop(frame, kps5)
        self._blob[0] = crop[..., ::-1].transpose(2, 0, 1)
        self._blob -= 127.5
        self._blob *= 1.0 / 127.5
        out = self.session.run({self._input: self._blob})[0]
        return np.asarray(out, np.float32).reshape(-1)[:512].copy()


def embedding_problem(v) -> str:
    """"" when `v` is a usable embedding (512 finite values, not ~zero), else what is wrong."""
    v = np.asarray(v, np.float32).reshape(-1)
    if v.size != 512:
        return f"has {v.size} values, not 512"
    if not np.isfinite(v).all():
        return "is not finite (NaN/Inf: a broken model output, e.g. FP16 overflow)"
    if float(np.linalg.norm(v)) < MIN_EMBEDDING_NORM:
        return "is all zero"
    return ""


def normalize(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FaceFusion's face distance: (1 - cosine) / 2, in [0, 1]; 0 = same direction."""
    return float((1.0 - float(np.dot(normalize(a), normalize(b)))) / 2.0)
