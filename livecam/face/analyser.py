"""FaceAnalyser: an image -> faces with 5/68 points and identity (for source images and checks)."""

from __future__ import annotations

import threading

import numpy as np

from livecam.face.detect import make_detector
from livecam.face.landmarks import alignment_kps5, make_landmarker
from livecam.face.types import Face


class FaceAnalyser:
    """Detector + landmarker (+ ArcFace on demand), built from settings; models load lazily.

    `analyse(image, embed=True) -> list[Face]`, largest first. A landmarker that
    cannot be loaded is skipped (detector points are used) and noted in
    `warnings`; a missing detector or embedder raises `ModelError`.

    Thread-safe: the TUI adds faces on a worker thread while the frame thread may
    analyse a reference image; the models load once and `analyse` runs one call at
    a time (its adapters reuse buffers).
    """

    def __init__(self, loader, settings):
        self.loader = loader
        self.settings = settings
        self._detector = None
        self._landmarker = None
        self._landmarker_loaded = False
        self._embedder = None
        self.warnings: list[str] = []
        self._lock = threading.RLock()

    @property
    def detector(self):
        with self._lock:
            if self._detector is None:
                self._detector = make_detector(self.loader, self.settings)
            return self._detector

    @property
    def landmarker(self):
        with self._lock:
            if not self._landmarker_loaded:
                try:
                    self._landmarker = make_landmarker(self.loader, self.settings)
                except Exception as exc:  # noqa: BLE001 - alignment falls back to the detector's points
                    self.warnings.append(f"landmarker '{self.settings.landmarker.model}' not used: {exc}")
                    self._landmarker = None
                self._landmarker_loaded = True
            return self._landmarker

    @property
    def embedder(self):
        with self._lock:
            if self._embedder is None:
                from livecam.face.embed import ArcFaceEmbedder

                self._embedder = ArcFaceEmbedder(self.loader.session("arcface_w600k_r50"))
            return self._embedder

    @property
    def embedder_key(self) -> str:
        """Identifies the embedding model's weights (cache key part): name + file hash prefix."""
        if not hasattr(self, "_embedder_key"):
            # The store recorded this hash when it verified the file: no second pass over 174 MB.
            self._embedder_key = f"arcface_w600k_r50-{self.loader.sha256('arcface_w600k_r50')[:16]}"
        return self._embedder_key

    def analyse(self, image: np.ndarray, embed: bool = True) -> list[Face]:
        with self._lock:  # one image at a time through the shared adapters
            return self._analyse(image, embed)

    def _analyse(self, image: np.ndarray, embed: bool) -> list[Face]:
        dets = self.detector.detect(image)
        faces = []
        for d in dets:
            pts, score = (None, 0.0)
            if self.landmarker is not None:
                pts, score = self.landmarker.landmarks(image, d.bbox, d.kps5)
            kps = alignment_kps5(d.kps5, pts, score, self.settings.landmarker.score)
            face = Face(bbox=d.bbox, kps5=kps, score=d.score,
                        landmarks68=pts if pts is not None and len(pts) == 68 else None,
                        landmark_score=float(score))
            if embed:
                face.embedding = self.embedder.embed(image, kps)
            faces.append(face)
        faces.sort(key=lambda f: -(f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        return faces
