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
"""

from __future__ import annotations

import time

import cv2
import numpy as np

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


class DlcLoop:
    """One live-loop step per frame; `infer_ms` of the last step is the swapper's `session.run`."""

    def __init__(self, session, emap: np.ndarray | None = None, every: int = 2):
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]
        self.emap = np.eye(512, dtype=np.float32) if emap is None else emap
        self.every = every
        self.alpha = soft_alpha()
        self.face = None
        self.infer_ms = 0.0
        self.embedding = np.random.default_rng(1).normal(size=512).astype(np.float32)
        self.embedding /= np.linalg.norm(self.embedding)

    def step(self, frame: np.ndarray, index: int, detections: list) -> np.ndarray:
        if index % self.every == 0:
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
        self.infer_ms = (time.perf_counter() - t) * 1000.0
        fake = np.clip(255 * pred.transpose((0, 2, 3, 1))[0], 0, 255).astype(np.uint8)[:, :, ::-1]
        paste_back(frame, fake, matrix, self.alpha)
        return frame
