"""Deep-Live-Cam's per-frame host work on the same frames, for `benchmarks.host_cost --baseline`.

Issue 9 asks for livecam's host time per frame to be at most Deep-Live-Cam's on the
same machine. This re-states, as the same sequence of OpenCV/NumPy operations, what
Deep-Live-Cam's live loop does per frame on a CPU with one face and default options
(hacksider/Deep-Live-Cam at bdeeb3a, `modules/processors/frame/face_swapper.py`:
`process_frame` -> `swap_face` -> insightface `INSwapper.get(paste_back=False)` ->
`_fast_paste_back`, its CPU branch). It is written from that description, not copied:

- a detection every 2nd frame (the replayed one, as for livecam), the last face reused
  in between (no tracking);
- insightface's crop: a similarity from the 5 points to the 128-px ArcFace template,
  one `warpAffine`, `cv2.dnn.blobFromImage` (scale 1/255, swapRB), the latent
  `normed_embedding @ emap` normalised per call;
- the swapper (the identity stand-in; its `session.run` is model time, not counted);
- the output to uint8 BGR (`clip(255 * x)`, channel flip);
- `_fast_paste_back`: the crop's bounding box + 2 px, the colour crop warped with a
  replicated border and a cached feathered uint8 ellipse alpha (Gaussian 31, sigma 12)
  with a zero border into that box, then `cv2.merge` of the alpha to 3 channels,
  `255 - alpha`, two `cv2.multiply(scale=1/255)` and a `cv2.add`, written back.

It has no temporal filters, no colour transfer, no seam handling, no guard and no
tracking, so it is a floor for "a swap pasted back", not a like-for-like product.

With `InsightfaceScrfd` (`host_cost --detection-work`) each detection frame also does the
host work of the detection Deep-Live-Cam's live loop makes there (`detect_one_face_fast` ->
insightface `SCRFD.detect` at det_size 640, threshold 0.5, NMS 0.4) around a near-free
stand-in's `session.run`; the replayed detection still gives the face.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from livecam.face.detect import scrfd_anchor_centers
from livecam.face.geometry import align_matrix

SIZE = 128


def soft_alpha(size: int = SIZE) -> np.ndarray:
    """The feathered elliptical alpha template (uint8), made once."""
    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.ellipse(mask, (size // 2, size // 2), (int(size * 0.44), int(size * 0.44)), 0, 0, 360, 255, -1)
    return cv2.GaussianBlur(mask, (31, 31), 12)


def paste_back(frame: np.ndarray, fake: np.ndarray, matrix: np.ndarray, alpha: np.ndarray) -> None:
    """The uint8 paste-back into the face's bounding box (+2 px), in place."""
    h, w = frame.shape[:2]
    inv = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [SIZE, 0], [SIZE, SIZE], [0, SIZE]], dtype=np.float32)
    t = corners @ inv[:, :2].T + inv[:, 2]
    x1, x2 = int(np.floor(t[:, 0].min())), int(np.ceil(t[:, 0].max()))
    y1, y2 = int(np.floor(t[:, 1].min())), int(np.ceil(t[:, 1].max()))
    if x1 >= x2 or y1 >= y2:
        return
    y1p, y2p, x1p, x2p = max(0, y1 - 2), min(h, y2 + 3), max(0, x1 - 2), min(w, x2 + 3)
    m = inv.copy()
    m[0, 2] -= x1p
    m[1, 2] -= y1p
    size = (x2p - x1p, y2p - y1p)
    colour = cv2.warpAffine(fake, m, size, borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpAffine(alpha, m, size, borderValue=0)
    target = frame[y1p:y2p, x1p:x2p]
    a3 = cv2.merge([a, a, a])
    inv_a = 255 - a3
    frame[y1p:y2p, x1p:x2p] = cv2.add(cv2.multiply(colour, a3, scale=1.0 / 255.0),
                                      cv2.multiply(target, inv_a, scale=1.0 / 255.0))


class InsightfaceScrfd:
    """The host side of insightface's `SCRFD.detect` (9-output SCRFD, 640 x 640), as restated
    here: the frame scaled to fit the square (aspect kept, `cv2.resize`'s default bilinear) at
    the top-left of a fresh black canvas, `cv2.dnn.blobFromImage` (1/128, mean 127.5, swapRB),
    then per stride (8, 16, 32; two anchors per cell, centres cached) every anchor's box and 5
    points decoded and the ones scoring >= 0.5 kept, stacked, ordered by score, scaled back
    to the frame, and a greedy NMS (IoU 0.4, +1-pixel areas: insightface's, not livecam's `nms`).
    `infer_ms`: the last call's `session.run`."""

    STRIDES = (8, 16, 32)

    def __init__(self, session, size: int = 640, threshold: float = 0.5, nms_iou: float = 0.4):
        self.session = session
        self.input = session.get_inputs()[0].name
        self.size, self.threshold, self.nms_iou = size, threshold, nms_iou
        self.centers: dict[int, np.ndarray] = {}
        self.infer_ms = 0.0

    def _anchor_centers(self, stride: int) -> np.ndarray:
        if stride not in self.centers:  # made once, as insightface caches them (the same centres as livecam's)
            self.centers[stride] = scrfd_anchor_centers(self.size, self.size, stride, 2)
        return self.centers[stride]

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 5) boxes with scores and (N, 5, 2) points in frame pixels, best first."""
        h, w = frame.shape[:2]
        if h > w:
            nh, nw = self.size, int(self.size * w / h)
        else:
            nw, nh = self.size, int(self.size * h / w)
        scale = nh / h
        canvas = np.zeros((self.size, self.size, 3), np.uint8)
        canvas[:nh, :nw] = cv2.resize(frame, (nw, nh))
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128.0, (self.size, self.size), (127.5, 127.5, 127.5), swapRB=True)
        t = time.perf_counter()
        outs = self.session.run(None, {self.input: blob})
        self.infer_ms = (time.perf_counter() - t) * 1000.0
        scores_l, boxes_l, kps_l = [], [], []
        for i, stride in enumerate(self.STRIDES):
            c = self._anchor_centers(stride)
            scores = outs[i].reshape(len(c), -1)
            dist = outs[i + 3].reshape(len(c), 4) * stride
            kdist = outs[i + 6].reshape(len(c), 10) * stride
            hits = np.where(scores >= self.threshold)[0]
            boxes = np.stack([c[:, 0] - dist[:, 0], c[:, 1] - dist[:, 1], c[:, 0] + dist[:, 2], c[:, 1] + dist[:, 3]],
                             axis=-1)
            points = np.stack([c[:, j % 2] + kdist[:, j] for j in range(10)], axis=-1).reshape(len(c), 5, 2)
            scores_l.append(scores[hits])
            boxes_l.append(boxes[hits])
            kps_l.append(points[hits])
        scores = np.vstack(scores_l)
        order = scores.ravel().argsort()[::-1]
        dets = np.hstack((np.vstack(boxes_l) / scale, scores)).astype(np.float32, copy=False)[order]
        points = (np.vstack(kps_l) / scale)[order]
        keep = self._nms(dets)
        return dets[keep], points[keep]

    def _nms(self, dets: np.ndarray) -> list[int]:
        x1, y1, x2, y2, s = dets.T
        areas = (x2 - x1 + 1) * (y2 - y1 + 1)
        order = s.argsort()[::-1]
        keep = []
        while order.size:
            i, rest = order[0], order[1:]
            keep.append(int(i))
            iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
            ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
            inter = iw * ih
            order = rest[inter / (areas[i] + areas[rest] - inter) <= self.nms_iou]
        return keep


class DlcLoop:
    """One live-loop step per frame; `infer_ms` of the last step is the models' `session.run`s
    (the swapper's, and with a `detector` its own on detection frames)."""

    def __init__(self, session, emap: np.ndarray | None = None, every: int = 2,
                 detector: InsightfaceScrfd | None = None):
        self.session = session
        self.detector = detector
        self.inputs = [i.name for i in session.get_inputs()]
        self.emap = np.eye(512, dtype=np.float32) if emap is None else emap
        self.every = every
        self.alpha = soft_alpha()
        self.face = None
        self.infer_ms = 0.0
        self.embedding = np.random.default_rng(1).normal(size=512).astype(np.float32)
        self.embedding /= np.linalg.norm(self.embedding)

    def step(self, frame: np.ndarray, index: int, detections: list) -> np.ndarray:
        self.infer_ms = 0.0
        if index % self.every == 0:
            if self.detector is not None:  # its host work; the replayed detection gives the face
                self.detector.detect(frame)
                self.infer_ms += self.detector.infer_ms
            self.face = detections[0] if detections else None
        if self.face is None:
            return frame
        matrix = align_matrix(np.asarray(self.face.kps5, dtype=np.float64), "arcface_128", SIZE)
        crop = cv2.warpAffine(frame, matrix, (SIZE, SIZE), borderValue=0.0)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / 255.0, (SIZE, SIZE), (0.0, 0.0, 0.0), swapRB=True)
        latent = self.embedding.reshape((1, -1)) @ self.emap
        latent /= np.linalg.norm(latent)
        t = time.perf_counter()
        pred = self.session.run(None, {self.inputs[0]: blob, self.inputs[1]: latent.astype(np.float32)})[0]
        self.infer_ms += (time.perf_counter() - t) * 1000.0
        fake = np.clip(255 * pred.transpose((0, 2, 3, 1))[0], 0, 255).astype(np.uint8)[:, :, ::-1]
        paste_back(frame, fake, matrix, self.alpha)
        return frame
