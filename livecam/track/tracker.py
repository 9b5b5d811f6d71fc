"""FaceTracker: the detector every N frames, Lucas–Kanade in between, smoothed 5 points out.

Per frame, for each track:

1. **Motion.** LK (forward–backward checked) moves the track's points: its 5
   points and up to 40 texture corners inside the face box (re-seeded at each
   detection and when fewer than half survive). It runs on the grey image of
   the tracked region only, at a working scale (`lk.RoiGray`: the face about
   112 px wide), so its cost follows the face, not the frame. A robust
   similarity (RANSAC, then a refit on inliers) fitted to the surviving
   points is the face's frame-to-frame motion `D`; the 5 points and the 68
   landmarks follow `D` (the 5-point set is re-fitted, not moved point by
   point). The track is *healthy* when enough points survive (FB error under
   `tracker.fb_max` ROI pixels, RANSAC inliers), the fit residual is low, and
   a small aligned grey patch still matches the one stored at the last
   detection (NCC): that last check catches a track sliding onto the
   background (or a hard cut).
2. **Detection** runs every N frames (`detector.every_n`), on
   `request_detection()`, every 3rd frame while there is no track (a face
   that appears is found within 100 ms at 30 fps), and at once when a track
   is not healthy, mostly outside the frame (a box touching the frame edge is
   the normal laptop case, not an emergency), or its confidence has decayed.
   Urgent ones, and one periodic one in `full_every` (3), run on the whole
   frame; the other periodic ones re-measure each track in a crop around it
   at the detector's own input scale, built from the frame window under the
   crop only (an integer window on the detector's 32-px grid, so a still face
   gives the detector the same pixels as a whole-frame run). A face rolled
   beyond 10° is re-measured upright in such a crop, rotated back (detectors
   mislocate points on rolled faces). With a `DetectWorker`
   (`detector.background`), periodic detections of an existing track run in
   the background on a copy of the frame (with `deferred_snapshot`, the worker
   takes that copy itself while the frame thread goes on reading the frame;
   the owner calls `release_frame()` before it writes to or reuses the frame,
   so a detection frame costs the frame thread no frame copy); a later frame folds the result in,
   carried forward by each track's motion since that frame (`_Track.since`),
   so no frame waits for a model it does not need this frame. Detections
   match tracks by IoU (embedding cosine breaks ties); a lone lost track hands
   its id to a lone new detection of similar size (a jump).
3. **Measurement.** A per-track anchor: the 5 points carried by `D` every
   frame; a detection pulls it by a weight (0.25, rising with the
   disagreement beyond detector noise; 68-point refinement when the
   landmarker's score passes), so detector noise is averaged over several
   detections while LK carries the motion. A disagreement above 15% IOD is
   adopted at once; above 50% IOD the track snaps (the face moved).
4. **Smoothing.** A One Euro filter per track whose state is first moved by `D`
   (`OneEuro.predict`), so it smooths only what motion does not explain —
   detector noise and the tracked -> detected hand-off — and never lags real
   motion. Then the change beyond `D` is bounded per frame (3°, 6 px, 2%;
   `se2.bound_correction`) unless the detector says the pose was wrong or
   the face moved (the 15% / 50% IOD cases above).
5. **Death.** A track that is not healthy and not confirmed by a detection in
   the same frame is dropped from the output at once; its id is kept for
   `max_lost` (2) frames only for re-association. Missed detections decay a
   healthy track's confidence (x0.5 each); below 0.3 it is dropped.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

import cv2
import numpy as np

from livecam.face.detect import box_iou, detect_in_crop
from livecam.face.geometry import TEMPLATES, align_matrix, estimate_similarity, interocular, transform_points
from livecam.face.landmarks import alignment_kps5
from livecam.face.types import Detection, Face
from livecam.track.lk import LKParams, RoiGray, fit_similarity, seed_roi_points, track_roi_points
from livecam.track.one_euro import OneEuro
from livecam.track.se2 import Bounds, bound_correction

log = logging.getLogger(__name__)

_UNIT = TEMPLATES["arcface_128"]


@dataclass(frozen=True)
class TrackerTuning:
    """Internal thresholds (the user-facing ones are in `settings.tracker`)."""

    texture_points: int = 24  # LK corners per face: 40 cost 0.08 ms more a frame for the same accuracy (scenes, clips)
    min_points: int = 6  # surviving points needed for a motion fit
    min_survival: float = 0.4  # fraction of points that must survive FB + RANSAC
    max_residual: float = 0.02  # median fit residual, fraction of face size
    min_ncc: float = 0.55  # aligned patch vs the one at the last detection
    edge_margin: float = 0.08  # fraction of face size from the frame edge
    outside: float = 0.25  # fraction of the face box outside the frame that makes it a partial face
    no_face_every: int = 3  # with no track, detect on every this many frames (a face is found within 100 ms)
    min_confidence: float = 0.3
    miss_decay: float = 0.5
    snap_iod: float = 0.5  # detection this far from the prediction (x IOD): the face moved
    detection_weight: float = 0.25  # a detection's weight against the tracked points (1 = jump to it)
    reset_iod: float = 0.15  # a detection this far off is adopted at once (no smoothing, no bound)
    gain_slope: float = 4.0  # detection weight grows by this per IOD of innovation beyond `gain_floor`
    gain_floor: float = 0.05  # innovation (x IOD) that is detector noise
    match_iou: float = 0.3
    max_lost: int = 2  # frames a lost track's id is kept for re-association (never output)
    bounds: Bounds = field(default_factory=Bounds)
    lk: LKParams = field(default_factory=LKParams)
    patch: int = 24
    full_every: int = 3  # periodic detections: 1 in `full_every` on the whole frame, the others on face crops
    roi_roll_deg: float = 10.0  # after a whole-frame detection, re-measure faces rolled beyond this upright
    roi_context: float = 2.6  # face crop side, in face sizes


@dataclass
class _Track:
    id: int
    out: np.ndarray  # (5,2) smoothed points (what alignment uses)
    meas: np.ndarray  # (5,2) last measurement carried by motion
    bbox_canon: np.ndarray  # box corners in the unit face frame
    det_score: float
    filt: OneEuro
    points: np.ndarray  # (K,2) LK points (texture corners)
    patch: np.ndarray | None = None
    landmarks68: np.ndarray | None = None  # in measurement frame, moved by motion
    landmark_score: float = 0.0
    embedding: np.ndarray | None = None
    confidence: float = 1.0
    healthy: bool = True
    lost: int = 0
    detected: bool = True
    t: float = 0.0
    edge_checks: int = 0  # a new face at the frame edge is re-detected on this many more frames
    since: np.ndarray = field(default_factory=lambda: np.eye(3))  # motion since the pending background job's frame

    box_key: tuple = field(default=(None, None), repr=False)  # the (out, bbox_canon) arrays `box_cached` is of
    box_cached: np.ndarray | None = field(default=None, repr=False)

    @property
    def size(self) -> float:
        return max(interocular(self.out) * 2.2, 1.0)

    def box(self) -> np.ndarray:
        """`bbox_from_kps(out, bbox_canon)`, kept while neither array is replaced (they never
        change in place): the box at the end of a frame is the next frame's first."""
        if self.box_key[0] is not self.out or self.box_key[1] is not self.bbox_canon:
            self.box_cached = bbox_from_kps(self.out, self.bbox_canon)
            self.box_key = (self.out, self.bbox_canon)
        return self.box_cached


@dataclass(frozen=True)
class TrackerModels:
    """The models a detection runs: the tracker's own (inline), or background twins whose
    ONNX Runtime sessions leave the frame thread a core (`ModelLoader.background_session`)."""

    detector: object
    landmarker: object | None = None
    embedder: object | None = None


@dataclass
class _View:
    """What a background detection needs of a track, copied at its frame."""

    id: int
    out: np.ndarray
    bbox_canon: np.ndarray
    healthy: bool


@dataclass
class _Job:
    """A background detection's result: 'full' (whole frame) or 'crops' (one per track)."""

    kind: str
    gen: int
    views: list
    dets: list = field(default_factory=list)  # full: Detection; crops: Detection | None per view
    measured: list = field(default_factory=list)
    embs: list = field(default_factory=list)
    upright: dict = field(default_factory=dict)  # full: track id -> (Detection, measured) re-measured upright


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float32).ravel()
    b = b.astype(np.float32).ravel()
    a = a - a.mean()
    b = b - b.mean()
    d = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 1e-6 else 0.0


def bbox_from_kps(kps5: np.ndarray, canon: np.ndarray) -> np.ndarray:
    """Axis-aligned box of the canonical box corners placed by the 5 points' similarity."""
    m = estimate_similarity(_UNIT, kps5)
    c = transform_points(canon, m)
    return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], dtype=np.float32)


def canon_box(bbox: np.ndarray, kps5: np.ndarray) -> np.ndarray:
    """The box's centre and size in the unit face frame of `kps5` (4 corners, upright)."""
    m = estimate_similarity(kps5, _UNIT)
    scale = math.hypot(m[0, 0], m[1, 0])
    cx, cy = transform_points(np.array([[(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2]]), m)[0]
    hw, hh = (bbox[2] - bbox[0]) * scale / 2, (bbox[3] - bbox[1]) * scale / 2
    return np.array([[cx - hw, cy - hh], [cx + hw, cy - hh], [cx + hw, cy + hh], [cx - hw, cy + hh]])


class Tracker(Protocol):
    """What the Pipeline needs of a tracker (`FaceTracker`; the tests' fakes implement it too)."""

    detector_calls: int

    def update(self, frame: np.ndarray, timestamp: float) -> list[Face]:
        """This frame's faces. The tracker may still read `frame` until `release_frame()`."""

    def release_frame(self) -> None:
        """Return once the tracker no longer reads the last `update`'s frame (then it may be written)."""

    def configure(self, settings) -> None:
        """Take new settings between frames."""

    def reset(self) -> None:
        """Forget every track."""

    def close(self) -> None:
        """Stop background work."""


class FaceTracker:
    """Faces per frame with stable ids; counts `detector_calls`.

    `embedder` (optional, an `ArcFaceEmbedder`) computes embeddings of
    detected faces on detection frames when `selector.mode == "reference"`;
    they ride on the track until the next detection.
    """

    def __init__(self, detector, landmarker, settings, embedder=None, tuning: TrackerTuning | None = None,
                 worker=None, deferred_snapshot: bool = False,
                 background_models: TrackerModels | Callable[[], TrackerModels] | None = None):
        self.detector = detector
        # the worker's detections use these when given (their own sessions: no thread contention
        # with the frame thread's models, no lock shared with inline detections); a callable is
        # called by the first background job, in the worker (no frame waits for a model load)
        self.background_models = background_models
        self.worker = worker  # a DetectWorker: periodic detections in the background (None: inline)
        self._gen = 0  # bumped by every inline detection and reset: a background result from before is stale
        self._job_buf: np.ndarray | None = None
        # True: a background job copies the frame itself, and the frame's owner calls `release_frame()`
        # before writing to it (the Pipeline does); False: `update` copies it before returning
        self.deferred_snapshot = deferred_snapshot
        self._snapshot: threading.Event | None = None  # set once the pending job has its copy
        self.landmarker = landmarker
        self.embedder = embedder
        self.tuning = tuning or TrackerTuning()
        self.detector_calls = 0  # every detector run (whole frame or face crop)
        self.roi_calls = 0  # of which on face crops
        self.frames = 0
        self._since_full = 0
        self._frame_hw: tuple[int, int] | None = None
        self._gray = RoiGray()
        self._frame: np.ndarray | None = None  # this frame, during update() only
        self._tracks: list[_Track] = []
        self._lost: list[_Track] = []
        self._next_id = 0
        self._since_detect = 1 << 30  # the first frame detects
        self._requested = False
        self.configure(settings)

    # -- control ------------------------------------------------------------
    def configure(self, settings) -> None:
        """Take new settings live (between frames): detector.every_n, tracker.*, landmarker.score, selector.mode."""
        self.every_n = int(settings.detector.every_n)
        ts = settings.tracker
        if bool(ts.enabled) != getattr(self, "enabled", bool(ts.enabled)):
            self._gray.reset()  # a stale previous frame must not feed LK
        self.enabled = bool(ts.enabled)
        self.smoothing = bool(ts.smoothing)
        self.min_cutoff = float(ts.min_cutoff)
        self.beta = float(ts.beta)
        self.fb_max = float(ts.fb_max)
        self.landmark_score = float(settings.landmarker.score)
        self.background = bool(getattr(settings.detector, "background", False))
        self.embed = self.embedder is not None and settings.selector.mode == "reference"
        for tr in self._tracks:
            tr.filt.min_cutoff, tr.filt.beta = self.min_cutoff, self.beta

    def close(self) -> None:
        """Stop the background worker (a replaced tracker)."""
        self.release_frame()
        if self.worker is not None:
            self.worker.close()

    def release_frame(self, timeout: float = 1.0) -> None:
        """Return once no background job still has to copy the last `update`'s frame (at once
        unless `deferred_snapshot` left one pending): after this the caller may write to the frame."""
        taken, self._snapshot = self._snapshot, None
        if taken is not None and not taken.wait(timeout):  # (the copy is the job's first step)
            log.warning("the background detection had not copied its frame after %.0f s; going on", timeout)

    def request_detection(self) -> None:
        self._requested = True

    def reset(self) -> None:
        self._gen += 1
        self._tracks.clear()
        self._lost.clear()
        self._gray.reset()
        self._since_detect = 1 << 30  # the next frame detects
        self._since_full = 0
        self._requested = False

    @property
    def tracks(self) -> int:
        return len(self._tracks)

    # -- per frame ------------------------------------------------------------
    def update(self, frame: np.ndarray, timestamp: float) -> list[Face]:
        tu = self.tuning
        h, w = frame.shape[:2]
        self._frame_hw = (h, w)
        self.frames += 1
        self._frame = frame
        if self.enabled:  # grey of the tracked region only, at a working scale
            self._gray.build(frame, [tr.box() for tr in self._tracks])
        urgent = (not self.enabled) or self._requested
        periodic = self._since_detect + 1 >= (self.every_n if self._tracks else min(self.every_n, tu.no_face_every))
        # 1. motion
        if self.enabled and self._tracks:
            urgent |= self._move_tracks(w, h)
        # 2. detection: urgent ones on the whole frame, now; periodic ones mostly on face crops, in
        # the background worker when there is one (folded in when done, carried by the motion since)
        detected_ids: set[int] = set()
        # (a frame without a track detects inline: finding a face is what that frame needs)
        use_worker = self.worker is not None and self.background and self.enabled and not self.worker.closed
        if use_worker:
            done = self.worker.poll()
            if done is not None and done.gen == self._gen and not urgent:
                detected_ids = self._fold_job(done, timestamp)
        if urgent or periodic:
            crops = not urgent and self._tracks and self._since_full + 1 < tu.full_every
            if urgent or not use_worker or not self._tracks:
                if use_worker:
                    self._gen += 1  # a pending background result is stale now
                # the adapters serialise model use with a background job (their own locks)
                detected_ids = self._detect_crops(frame, timestamp) if crops else self._detect(frame, timestamp)
            elif not self._submit(frame, "crops" if crops else "full"):
                crops = None  # the worker is busy: try again next frame
            if crops is not None:
                self._since_full = self._since_full + 1 if crops else 0
                self._since_detect = 0
                self._requested = False
            else:
                self._since_detect += 1
        else:
            self._since_detect += 1
        # 3. death of unhealthy, unconfirmed tracks
        keep = []
        for tr in self._tracks:
            ok = tr.id in detected_ids or (self.enabled and tr.healthy and tr.confidence >= tu.min_confidence)
            if ok:
                keep.append(tr)
            else:
                tr.lost = 1
                self._lost.append(tr)
        self._tracks = keep
        self._lost = [t for t in self._lost if t.lost <= tu.max_lost]
        for t in self._lost:
            t.lost += 1
        # 4. smoothing and output
        faces = []
        for tr in self._tracks:
            self._smooth(tr, timestamp)
            faces.append(self._face(tr))
        faces.sort(key=lambda f: -f.size)
        self._frame = None  # the caller may reuse its buffer
        return faces

    # -- steps ----------------------------------------------------------------
    def _move_tracks(self, w: int, h: int) -> bool:
        """LK all tracks' points at once; returns True when a detection is needed now."""
        tu = self.tuning
        if self._gray.prev is None or self._gray.cur is None:
            for tr in self._tracks:
                tr.healthy = False
            return True
        sets = []
        for tr in self._tracks:
            pts = [tr.points, tr.out.astype(np.float32)]
            sets.append(np.concatenate(pts, axis=0))
        allp = np.concatenate(sets, axis=0)
        new, ok, fb = track_roi_points(self._gray.prev, self._gray.cur, allp, tu.lk)
        ok &= fb < self.fb_max
        ok &= (new[:, 0] >= 0) & (new[:, 1] >= 0) & (new[:, 0] < w) & (new[:, 1] < h)
        need = False
        start = 0
        for tr, s in zip(self._tracks, sets):
            sl = slice(start, start + len(s))
            start += len(s)
            p0, p1, good = s[ok[sl]], new[sl][ok[sl]], ok[sl]
            size = tr.size
            healthy = False
            m = None
            if len(p0) >= tu.min_points:
                m, inl, res = fit_similarity(p0, p1, threshold=max(1.0, 0.01 * size))
                if m is not None:
                    survive = inl.sum() / max(len(s), 1)
                    healthy = (survive >= tu.min_survival and res <= tu.max_residual * size
                               and inl.sum() >= tu.min_points)
                    # keep the texture points that survived as inliers
                    n_tex = len(tr.points)
                    keep = np.zeros(len(s), bool)
                    keep[np.nonzero(good)[0][inl]] = True
                    tr.points = new[sl][:n_tex][keep[:n_tex]]
            if m is not None and healthy:
                tr.since = np.vstack([m, [0.0, 0.0, 1.0]]) @ tr.since
                tr.filt.predict(m)
                tr.meas = transform_points(tr.meas, m)
                tr.out = transform_points(tr.out, m)
                if tr.landmarks68 is not None:
                    tr.landmarks68 = transform_points(tr.landmarks68, m)
                tr.healthy = self._patch_ok(tr)
                tr.detected = False
                if len(tr.points) < tu.texture_points // 2:
                    more = seed_roi_points(self._gray.cur, tr.box(),
                                           tu.texture_points - len(tr.points))
                    tr.points = np.concatenate([tr.points, more])
            else:
                tr.healthy = False
            # a box touching the frame edge is the normal laptop case; only a face mostly out of
            # the frame (or unhealthy, or unconfirmed) needs the detector now
            need |= (not tr.healthy) or self._partial(tr.box()) or tr.confidence < 0.99
        return need

    def _patch_of(self, kps5: np.ndarray) -> np.ndarray:
        roi = self._gray.cur
        m = align_matrix(kps5, "arcface_112_v2", self.tuning.patch) @ roi.from_frame_matrix()  # ROI -> patch
        return cv2.warpAffine(roi.image, m, (self.tuning.patch, self.tuning.patch), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

    def _patch_ok(self, tr: _Track) -> bool:
        if tr.patch is None:
            return True
        return _ncc(self._patch_of(tr.out), tr.patch) >= self.tuning.min_ncc

    def _models(self) -> TrackerModels:
        return TrackerModels(self.detector, self.landmarker, self.embedder)

    def _background_models(self) -> TrackerModels:
        """The worker's models (built on first use, in the worker: it runs one job at a time, so
        no lock); the tracker's own when there are none or they cannot be built."""
        bm = self.background_models
        if callable(bm):
            try:
                bm = bm()
            except Exception as exc:  # noqa: BLE001 - detections then share the frame thread's models
                log.warning("no models of its own for background detection (%s): sharing the tracker's", exc)
                bm = None
            self.background_models = bm
        return bm if bm is not None else self._models()

    def _measure(self, frame: np.ndarray, det: Detection, models: TrackerModels):
        """Detector points refined by the landmarker; (kps5, landmarks68, landmark score)."""
        pts, score = None, 0.0
        if models.landmarker is not None:
            pts, score = models.landmarker.landmarks(frame, det.bbox, det.kps5)
        kps = alignment_kps5(det.kps5, pts, score, self.landmark_score)
        lm68 = pts if pts is not None and len(pts) == 68 else None
        return kps.astype(np.float64), lm68, float(score)

    def _detect(self, frame: np.ndarray, t: float) -> set[int]:
        """Whole-frame detection, inline."""
        return self._fold_full(self._run_full(frame, self._views(), self._models()), t)

    def _views(self) -> list[_View]:
        return [_View(tr.id, tr.out.copy(), tr.bbox_canon.copy(), tr.healthy) for tr in self._tracks]

    def _run_full(self, frame: np.ndarray, views: list[_View], models: TrackerModels) -> _Job:
        """The models' part of a whole-frame detection (runs inline or in the worker)."""
        job = _Job("full", self._gen, views)
        job.dets = models.detector.detect(frame)
        self.detector_calls += 1
        job.measured = [self._measure(frame, d, models) for d in job.dets]
        job.embs = [models.embedder.embed(frame, m[0]) for m in job.measured] if self.embed else [None] * len(job.dets)
        for v in views:  # a rolled face is re-measured upright (detectors mislocate points on rolled faces)
            if self.enabled and v.healthy and abs(_roll_deg(v.out)) > self.tuning.roi_roll_deg:
                upright = self._crop_detection(frame, v, models)
                if upright is not None:
                    job.upright[v.id] = (upright, self._measure(frame, upright, models))
        return job

    def _fold_full(self, job: _Job, t: float) -> set[int]:
        tu = self.tuning
        dets, measured, embs = job.dets, job.measured, job.embs
        confirmed: set[int] = set()
        # IoU matching, best pairs first; ties broken by embedding similarity
        pairs = []
        if self._tracks and dets:
            tboxes = np.stack([tr.box() for tr in self._tracks])
            iou = box_iou(tboxes, np.stack([d.bbox for d in dets]))
            for ti in range(len(self._tracks)):
                for di in range(len(dets)):
                    if iou[ti, di] >= tu.match_iou:
                        sim = 0.0
                        te, de = self._tracks[ti].embedding, embs[di]
                        if te is not None and de is not None:
                            sim = _cosine(te, de)
                        ambiguous = (iou[ti] >= tu.match_iou).sum() > 1 or (iou[:, di] >= tu.match_iou).sum() > 1
                        key = sim + iou[ti, di] if ambiguous else 2.0 + iou[ti, di]
                        pairs.append((key, ti, di))
        pairs.sort(reverse=True)
        used_t, used_d = set(), set()
        for _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            tr = self._tracks[ti]
            det, meas, emb = dets[di], measured[di], embs[di]
            if tr.id in job.upright:
                det, meas = job.upright[tr.id]
            self._apply_detection(tr, det, meas, emb, t)
            confirmed.add(tr.id)
        for ti, tr in enumerate(self._tracks):
            if ti not in used_t:
                tr.confidence *= tu.miss_decay
        # unmatched detections: new tracks (a lone lost track hands over its id)
        orphans = [tr for tr in self._tracks if tr.id not in confirmed and not tr.healthy] + self._lost
        new_dets = [di for di in range(len(dets)) if di not in used_d]
        for di in new_dets:
            tid = None
            if len(orphans) == 1 and len(new_dets) == 1:
                o = orphans[0]
                ratio = dets[di].size / max(bbox_size(bbox_from_kps(o.out, o.bbox_canon)), 1.0)
                similar = True
                if o.embedding is not None and embs[di] is not None:
                    similar = _cosine(o.embedding, embs[di]) > 0.4
                if 0.6 < ratio < 1.66 and similar:
                    tid = o.id
                    if o in self._tracks:
                        self._tracks.remove(o)
                    if o in self._lost:
                        self._lost.remove(o)
            tr = self._new_track(dets[di], measured[di], embs[di], t, tid)
            self._tracks.append(tr)
            confirmed.add(tr.id)
        return confirmed

    @staticmethod
    def _input_scale(frame: np.ndarray, detector) -> float:
        """Detector input pixels per frame pixel (at most 1)."""
        scale_fn = getattr(detector, "input_scale", None)
        return min(1.0, float(scale_fn(frame.shape[:2]))) if scale_fn else 1.0

    def _crop_matrix(self, tr: _Track, s: float) -> tuple[np.ndarray, int]:
        """Small-frame -> face crop: face centred, upright when rolled (else an integer window,
        so a still face gives the detector the very pixels of a whole-frame detection)."""
        box = bbox_from_kps(tr.out, tr.bbox_canon) * s
        side = max(96, int(math.ceil(self.tuning.roi_context * bbox_size(box) / 32.0)) * 32)
        c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        roll = _roll_deg(tr.out)
        if abs(roll) <= self.tuning.roi_roll_deg:
            # the window's origin on the detector's 32-px grid: the network sees the face at
            # the same phase as in a whole-frame detection (CNNs are shift-equivariant only
            # by multiples of their stride), so the crop adds no noise of its own
            origin = np.round((c - side / 2) / 32.0) * 32.0
            return np.array([[1.0, 0.0, -origin[0]], [0.0, 1.0, -origin[1]]]), side
        a = -math.radians(roll)
        r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        t = np.array([side / 2, side / 2]) - r @ c
        return np.hstack([r, t[:, None]]), side

    def _crop_detection(self, frame: np.ndarray, tr: _Track, models: TrackerModels) -> Detection | None:
        """The track's face detected in a crop around it (upright when rolled), or None.

        The detector's input is built from the crop itself: only the frame window under
        the crop is scaled to the detector's input scale (INTER_AREA, as a whole-frame
        detection would scale it), never the whole frame.
        """
        s = self._input_scale(frame, models.detector)
        m, side = self._crop_matrix(tr, s)  # detector-scale frame -> crop
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0], [side, 0], [0, side], [side, side]], np.float64) @ inv[:, :2].T + inv[:, 2]
        h, w = frame.shape[:2]
        x0, y0 = (max(0, int(np.floor(v))) for v in corners.min(0) / s)
        x1, y1 = min(w, int(np.ceil(corners[:, 0].max() / s))), min(h, int(np.ceil(corners[:, 1].max() / s)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        window = frame[y0:y1, x0:x1]
        ww, wh = max(1, int(round((x1 - x0) * s))), max(1, int(round((y1 - y0) * s)))
        if (ww, wh) != (x1 - x0, y1 - y0):
            window = cv2.resize(window, (ww, wh), interpolation=cv2.INTER_AREA)
        sx, sy = ww / (x1 - x0), wh / (y1 - y0)
        to_small = np.array([[s / sx, 0.0, x0 * s], [0.0, s / sy, y0 * s], [0.0, 0.0, 1.0]])  # window -> scaled frame
        dets = detect_in_crop(models.detector, window, m @ to_small, side)
        self.detector_calls += 1
        self.roi_calls += 1
        if not dets:
            return None
        k = np.array([1.0 / sx, 1.0 / sy])
        o = np.array([x0, y0], np.float64)
        dets = [Detection(bbox=(d.bbox.reshape(2, 2) * k + o).reshape(4).astype(np.float32),
                          kps5=(d.kps5 * k + o).astype(np.float32), score=d.score) for d in dets]
        iod = max(interocular(tr.out), 1.0)
        best = min(dets, key=lambda d: np.linalg.norm(d.kps5.mean(0) - tr.out.mean(0)))
        if np.linalg.norm(best.kps5.mean(0) - tr.out.mean(0)) > self.tuning.snap_iod * iod:
            return None
        return best

    def _detect_crops(self, frame: np.ndarray, t: float) -> set[int]:
        """Periodic re-measure of every (healthy) track in a crop around it, inline."""
        return self._fold_crops(self._run_crops(frame, self._views(), self._models()), t)

    def _run_crops(self, frame: np.ndarray, views: list[_View], models: TrackerModels) -> _Job:
        job = _Job("crops", self._gen, views)
        for v in views:
            det = self._crop_detection(frame, v, models)
            meas = self._measure(frame, det, models) if det is not None else None
            job.dets.append(det)
            job.measured.append(meas)
            job.embs.append(models.embedder.embed(frame, meas[0]) if (self.embed and meas is not None) else None)
        return job

    def _fold_crops(self, job: _Job, t: float) -> set[int]:
        confirmed = set()
        by_id = {tr.id: tr for tr in self._tracks}
        for v, det, meas, emb in zip(job.views, job.dets, job.measured, job.embs):
            tr = by_id.get(v.id)
            if tr is None:
                continue
            if det is None:
                tr.confidence *= self.tuning.miss_decay
                continue
            self._apply_detection(tr, det, meas, emb, t)
            confirmed.add(tr.id)
        return confirmed

    # -- background detection ------------------------------------------------------
    def _submit(self, frame: np.ndarray, kind: str) -> bool:
        """Hand a periodic detection of this frame to the worker (a private copy of the frame,
        made here, or by the job itself with `deferred_snapshot`)."""
        if self.worker.busy:
            return False
        if self._job_buf is None or self._job_buf.shape != frame.shape or self._job_buf.dtype != frame.dtype:
            self._job_buf = np.empty_like(frame)
        views, buf, gen = self._views(), self._job_buf, self._gen
        taken = threading.Event() if self.deferred_snapshot else None
        if taken is None:
            np.copyto(buf, frame)
        run = self._run_crops if kind == "crops" else self._run_full

        def job():
            if taken is not None:
                try:  # the frame thread only reads `frame` until `release_frame` has seen this
                    np.copyto(buf, frame)
                finally:
                    taken.set()
            res = run(buf, views, self._background_models())
            res.gen = gen
            return res

        if not self.worker.submit(job):
            return False
        self._snapshot = taken
        for tr in self._tracks:
            tr.since = np.eye(3)
        return True

    def _fold_job(self, job: _Job, t: float) -> set[int]:
        """A background result, carried from its frame to this one by each track's motion since."""
        since = {tr.id: tr.since for tr in self._tracks}
        if job.kind == "crops":
            job.dets, job.measured = zip(*[(None, None) if d is None or v.id not in since else
                                           _carry(d, m, since[v.id]) for v, d, m in
                                           zip(job.views, job.dets, job.measured)]) if job.views else ([], [])
            return self._fold_crops(job, t)
        # whole frame: a detection matched to a track's box at the job's frame moves with that track
        if job.views and job.dets:
            boxes = np.stack([bbox_from_kps(v.out, v.bbox_canon) for v in job.views])
            iou = box_iou(boxes, np.stack([d.bbox for d in job.dets]))
            carried_d, carried_m = list(job.dets), list(job.measured)
            for di in range(len(job.dets)):
                vi = int(np.argmax(iou[:, di]))
                if iou[vi, di] >= self.tuning.match_iou and job.views[vi].id in since:
                    carried_d[di], carried_m[di] = _carry(job.dets[di], job.measured[di], since[job.views[vi].id])
            job.dets, job.measured = carried_d, carried_m
        job.upright = {tid: _carry(d, m, since[tid]) for tid, (d, m) in job.upright.items() if tid in since}
        return self._fold_full(job, t)

    def _new_track(self, det: Detection, measured, emb, t: float, tid: int | None) -> _Track:
        kps, lm68, lscore = measured
        if tid is None:
            tid = self._next_id
            self._next_id += 1
        tr = _Track(id=tid, out=kps.copy(), meas=kps.copy(), bbox_canon=canon_box(det.bbox, kps), det_score=det.score,
                    filt=OneEuro(self.min_cutoff, self.beta), points=np.zeros((0, 2), np.float32),
                    landmarks68=None if lm68 is None else np.asarray(lm68, np.float64), landmark_score=lscore,
                    embedding=emb, t=t)
        tr.filt.reset(kps, t)
        tr.confidence = self._detection_confidence(det, new=True)
        tr.edge_checks = 2 if tr.confidence < 1.0 else 0
        self._reseed(tr, det.bbox)
        return tr

    def _reseed(self, tr: _Track, bbox) -> None:
        if not self.enabled:
            return
        if self._gray.ensure(self._frame, bbox) is None:  # a box (almost) outside the frame
            tr.points, tr.patch = np.zeros((0, 2), np.float32), None
            return
        tr.points = seed_roi_points(self._gray.cur, bbox, self.tuning.texture_points)
        tr.patch = self._patch_of(tr.out)

    def _apply_detection(self, tr: _Track, det: Detection, measured, emb, t: float) -> None:
        kps, lm68, lscore = measured
        tu = self.tuning
        innovation = float(np.linalg.norm(kps - tr.meas, axis=1).mean() / max(interocular(tr.meas), 1.0))
        moved = innovation > tu.snap_iod
        gain = min(1.0, tu.detection_weight + tu.gain_slope * max(0.0, innovation - tu.gain_floor))
        tr.meas = tr.meas + gain * (kps - tr.meas)
        if innovation > tu.reset_iod and not moved and self.smoothing:  # the pose was wrong: adopt now
            tr.filt.reset(tr.meas, t)
            tr.out = tr.meas.copy()
        tr.landmarks68 = None if lm68 is None else np.asarray(lm68, np.float64)
        tr.landmark_score = lscore
        tr.det_score = det.score
        tr.bbox_canon = canon_box(det.bbox, kps)
        if emb is not None:
            tr.embedding = emb
        if moved or not tr.healthy or not self.smoothing:
            tr.filt.reset(kps, t)
            tr.out = kps.copy()
            tr.meas = kps.copy()
        tr.confidence = self._detection_confidence(det, new=tr.edge_checks > 0)
        tr.edge_checks = max(0, tr.edge_checks - 1)
        tr.healthy = True
        tr.detected = True
        self._reseed(tr, det.bbox)

    def _partial(self, box: np.ndarray) -> bool:
        """More than `outside` of the box lies outside the frame (a face leaving it)."""
        if self._frame_hw is None:
            return False
        h, w = self._frame_hw
        bw, bh = max(box[2] - box[0], 1e-3), max(box[3] - box[1], 1e-3)
        inside = max(0.0, min(box[2], w) - max(box[0], 0)) * max(0.0, min(box[3], h) - max(box[1], 0))
        return inside < (1.0 - self.tuning.outside) * bw * bh

    def _detection_confidence(self, det: Detection, new: bool = False) -> float:
        """1, or 0.5 (check again next frame) for a face mostly out of the frame, or a new face at
        the frame edge (likely entering: its first box may be partial)."""
        if self._partial(det.bbox):
            return 0.5
        if new and self._frame_hw is not None:
            h, w = self._frame_hw
            m, b = self.tuning.edge_margin * det.size, det.bbox
            if b[0] < m or b[1] < m or b[2] > w - m or b[3] > h - m:
                return 0.5
        return 1.0

    def _smooth(self, tr: _Track, t: float) -> None:
        if not self.smoothing:
            tr.out = tr.meas.copy()
            tr.t = t
            return
        if tr.filt.t is not None and t <= tr.filt.t:  # output already set this frame (a new or snapped track)
            tr.out = tr.filt.x.copy()
            tr.t = t
            return
        target = tr.filt(tr.meas, t, scale=tr.size)
        bounded, clamped = bound_correction(tr.out, target, self.tuning.bounds)
        if clamped:
            tr.filt.x = bounded.copy()
        tr.out = bounded
        tr.t = t

    def _face(self, tr: _Track) -> Face:
        bbox = tr.box().copy()  # (the Face is the caller's)
        lm = None
        if tr.landmarks68 is not None:
            lm = transform_points(tr.landmarks68, estimate_similarity(tr.meas, tr.out)).astype(np.float32)
        return Face(bbox=bbox, kps5=tr.out.astype(np.float32), score=float(tr.det_score * tr.confidence),
                    landmarks68=lm, landmark_score=tr.landmark_score, embedding=tr.embedding, track_id=tr.id,
                    detected=tr.detected)


def _carry(det: Detection, measured, m3: np.ndarray):
    """A detection (and its measurement) moved by the 3x3 similarity `m3`."""
    m = m3[:2]
    scale = math.hypot(m[0, 0], m[1, 0])
    c = transform_points(np.array([[(det.bbox[0] + det.bbox[2]) / 2, (det.bbox[1] + det.bbox[3]) / 2]]), m)[0]
    hw, hh = (det.bbox[2] - det.bbox[0]) * scale / 2, (det.bbox[3] - det.bbox[1]) * scale / 2
    moved = Detection(bbox=np.array([c[0] - hw, c[1] - hh, c[0] + hw, c[1] + hh], np.float32),
                      kps5=transform_points(det.kps5, m).astype(np.float32), score=det.score)
    kps, lm68, score = measured
    return moved, (transform_points(kps, m), None if lm68 is None else transform_points(lm68, m), score)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _roll_deg(kps5: np.ndarray) -> float:
    d = np.asarray(kps5[1], np.float64) - np.asarray(kps5[0], np.float64)
    return math.degrees(math.atan2(d[1], d[0]))


def bbox_size(b: np.ndarray) -> float:
    return float((b[2] - b[0] + b[3] - b[1]) / 2)
