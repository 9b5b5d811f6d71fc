"""One frame through the stages: track → select → swap (align, swap, guard, masks, temporal, paste).

`Pipeline.process(frame, state)` is the only per-frame entry point; `livecam
run` (process thread) and `livecam bench` both call it, so the benchmark
measures the code users run.

Failure policy: a stage that raises on one frame is logged once per kind
(stage + exception type), the frame passes through unchanged (or with the
faces found so far), and the report names the error so the loop can count
`stage_errors`. Nothing a single frame can throw stops the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from livecam.controls import ControlState
from livecam.timing import StageTimes, infer_seconds

if TYPE_CHECKING:
    from livecam.track.tracker import Tracker

log = logging.getLogger(__name__)


@dataclass
class FrameReport:
    faces: list = field(default_factory=list)  # faces found (tracked) this frame
    stage_ms: dict[str, float] = field(default_factory=dict)
    host_ms: float = 0.0  # wall time of process()
    infer_ms: float = 0.0  # time inside model calls
    detected: bool = False  # the detector ran on this frame
    swapped: int = 0  # faces handed to the swap stage
    detector_calls: int = 0  # detector runs during this frame
    guard_rejects: int = 0  # guard rejects during this frame
    errors: list[str] = field(default_factory=list)  # "stage: ExceptionType" per failure
    bypass: bool = False


class Pipeline:
    """Tracker → selector → swap stage, reconfigured from `ControlState` between frames.

    Components are built from the loader and settings unless passed in
    (tests pass fakes; `swap=False` means no swap stage). `bank` is a `FaceBank` (or None: no swap, faces are
    still tracked and reported).
    """

    def __init__(self, loader, settings, bank=None, *, tracker: Tracker | None = None, selector=None, swap=None,
                 badge=None):
        self.loader = loader
        self.settings = settings
        self.bank = bank
        self._own_tracker = tracker is None
        self.tracker = tracker if tracker is not None else self.make_tracker(loader, settings, bank is not None)
        self._calls_seen: int | None = None  # detector calls counted into reports so far
        self._tracker_switch = None  # detector/landmarker changes build a new tracker off the frame thread
        if self._own_tracker:
            from livecam.track.detect_worker import ModelSwitch

            self._tracker_switch = ModelSwitch(lambda s: self.make_tracker(self.loader, s, self.bank is not None))
        self.selector = selector if selector is not None else self._make_selector()
        # swap=False: no swap stage (track and report only)
        self.swap = None if swap is False else (swap if swap is not None else self._make_swap(loader, settings))
        self._badge = badge
        self._version = -1
        self._seen_errors: set[str] = set()
        self._reference = None
        self._reference_key: tuple | None = None
        self._reference_failed: tuple | None = None  # (key, exception) of a failed background reference load
        self._reference_thread: threading.Thread | None = None
        self.times = StageTimes()
        self.frames = 0

    # -- construction -----------------------------------------------------------
    @staticmethod
    def make_tracker(loader, settings, with_embedder: bool = False, detector=None, tuning=None):
        """The tracker `process` uses: the settings' detector and landmarker (or `detector`, for
        benchmarks that replay detections), their background twins for the worker."""
        from livecam.face.detect import make_detector
        from livecam.face.landmarks import make_landmarker
        from livecam.track.tracker import FaceTracker

        embedder = None
        if with_embedder:  # ArcFace is loaded for the source faces anyway; reference mode needs it per track
            try:
                from livecam.face.embed import ArcFaceEmbedder

                embedder = ArcFaceEmbedder(loader.session("arcface_w600k_r50"))
            except Exception as exc:  # noqa: BLE001 - reference mode then falls back to the selector's own logic
                log.warning("no ArcFace embedder for tracked faces (%s); selector mode 'reference' may not work", exc)
        from livecam.track.detect_worker import DetectWorker
        from livecam.track.tracker import TrackerModels

        def background_models() -> TrackerModels:  # the worker's own models, loaded by its first job
            twin = None
            if embedder is not None:
                from livecam.face.embed import ArcFaceEmbedder

                twin = ArcFaceEmbedder(loader.background_session(embedder.session))
            return TrackerModels(make_detector(loader, settings, background=True) if detector is None else detector,
                                 make_landmarker(loader, settings, background=True), twin)

        background = settings.detector.background
        # deferred snapshot: `process` calls `release_frame` before the frame is written or handed back
        return FaceTracker(make_detector(loader, settings) if detector is None else detector,
                           make_landmarker(loader, settings), settings, embedder=embedder, tuning=tuning,
                           worker=DetectWorker() if background else None, deferred_snapshot=True,
                           background_models=background_models if background else None)

    @staticmethod
    def _make_selector():
        from livecam.face.select import FaceSelector

        return FaceSelector()

    @staticmethod
    def _make_swap(loader, settings):
        from livecam.swap.stage import SwapStage

        return SwapStage(loader, settings)

    # -- state ------------------------------------------------------------------
    @property
    def swap_stage(self):
        """The swap stage (the UI reads `loading` and `active_model` from it)."""
        return self.swap

    @property
    def detector_calls(self) -> int:
        return int(self.tracker.detector_calls)

    @property
    def guard_rejects(self) -> int:
        return int(getattr(self.swap, "guard_rejects", 0)) if self.swap is not None else 0

    @property
    def loading(self) -> str:
        parts = [str(getattr(self.swap, "loading", "") or "") if self.swap is not None else ""]
        if self._tracker_switch is not None:
            parts.append(self._tracker_switch.loading)
        return ", ".join(p for p in parts if p)

    def drain_messages(self) -> list[str]:
        """Take the swap stage's new notes and load errors (newest last) for the stats log."""
        messages = getattr(self.swap, "messages", None) if self.swap is not None else None
        out: list[str] = []
        switch = self._tracker_switch.messages if self._tracker_switch is not None else None
        for queue in (messages, switch):
            while queue:
                try:
                    out.append(str(queue.popleft()))  # deque.popleft is atomic; the loader thread appends
                except IndexError:
                    break
        return out

    def _adopt_tracker(self) -> None:
        """Swap in a tracker built for new detector/landmarker settings, once it is ready."""
        new = self._tracker_switch.take() if self._tracker_switch is not None else None
        if new is not None:
            new.configure(self.settings)
            old, self.tracker = self.tracker, new
            old.close()

    def source_face(self, settings):
        """The active `SourceFace`: the bank entry named by swapper.source, else the first one."""
        bank = self.bank
        if bank is None:
            return None
        face = bank.get(settings.swapper.source) if settings.swapper.source else None
        if face is not None:
            return face
        faces = bank.faces
        return faces[0] if faces else None

    def _reference_for(self, settings):
        """Reference for selector mode=reference: a bank face by name, else None."""
        ref = settings.selector.reference
        key = (ref, id(self.bank))
        if self._reference_failed is not None and self._reference_failed[0] == key:
            exc, self._reference_failed = self._reference_failed[1], None
            raise exc  # counted once as a select-stage error by the caller
        if key == self._reference_key:
            return self._reference
        self._reference_key = key
        self._reference = None
        if ref and self.bank is not None:
            try:
                self._reference = self.bank.get(ref)
            except KeyError:
                self._reference = None
            if self._reference is None and hasattr(self.bank, "analyser"):
                # an image path: decoded and analysed off the frame thread (a big image takes seconds), by a
                # private bank so it does not join the source faces; selection falls back until it is ready
                self._reference_thread = threading.Thread(target=self._load_reference, args=(key, ref), daemon=True,
                                                          name="livecam-reference")
                self._reference_thread.start()
        return self._reference

    def wait_reference(self, settings, timeout: float = 120.0) -> None:
        """Offline runs (bench): have selector.reference loaded before the first frame, as every frame uses it."""
        try:
            self._reference_for(settings)
        except Exception:  # noqa: BLE001 - reported again on the first frame
            return
        if self._reference_thread is not None:
            self._reference_thread.join(timeout)

    def _load_reference(self, key: tuple, ref: str) -> None:
        try:
            face = type(self.bank)(self.bank.analyser).add(ref)
        except Exception as exc:  # noqa: BLE001 - reported on the next frame, selection falls back
            self._reference_failed = (key, exc)
            return
        if self._reference_key == key:  # not superseded by a newer setting meanwhile
            self._reference = face

    def apply(self, state: ControlState) -> None:
        """Take a new control state (between frames only)."""
        if state.version == self._version:
            return
        old, new = self.settings, state.settings
        self.settings = new
        self._version = state.version
        if old is new:
            return
        if self._tracker_switch is not None and (old.detector.model, old.detector.size, old.detector.score,
                                                 old.landmarker.model) != (
                new.detector.model, new.detector.size, new.detector.score, new.landmarker.model):
            # a different detector/landmarker: a new tracker (tracks restart), built off the frame
            # thread; the old one keeps running until it is ready (`_adopt_tracker`)
            self._tracker_switch.request(new)
        self.tracker.configure(new)
        if self.swap is not None and old.swapper.model != new.swapper.model and hasattr(self.swap, "request_model"):
            self.swap.request_model(new.swapper.model)

    def _error_once(self, stage: str, exc: BaseException) -> str:
        kind = f"{stage}: {type(exc).__name__}"
        if kind not in self._seen_errors:
            self._seen_errors.add(kind)
            log.error("stage %s failed (%s: %s); passing frames through, logged once", stage,
                      type(exc).__name__, exc, exc_info=exc)
        return kind

    # -- the frame ----------------------------------------------------------------
    def process(self, frame: np.ndarray, state: ControlState, timestamp: float | None = None, *,
                inplace: bool = False) -> tuple[np.ndarray, FrameReport]:
        """Run the stages on one frame. `inplace=True` lets the swap write into `frame` (the
        caller owns it and does not need the raw frame afterwards): saves a frame copy."""
        t0 = time.perf_counter()
        i0 = infer_seconds()
        report = FrameReport()
        times = self.times
        times.clear()
        self.apply(state)
        self._adopt_tracker()
        settings = self.settings
        ts = time.monotonic() if timestamp is None else timestamp
        self.frames += 1
        out = frame
        if state.bypass:
            report.bypass = True
            report.host_ms = (time.perf_counter() - t0) * 1000.0
            return frame, report

        calls0, rejects0 = self.detector_calls, self.guard_rejects
        faces: list = []
        try:
            with times.stage("track"):
                faces = list(self.tracker.update(frame, ts))
        except Exception as exc:  # noqa: BLE001 - one frame must not stop the loop
            report.errors.append(self._error_once("track", exc))
            try:
                self.tracker.reset()
            except Exception:  # noqa: BLE001
                pass
            faces = []
        report.faces = faces
        targets: list = []
        if faces:
            try:
                with times.stage("select"):
                    targets = list(self.selector.select(faces, settings.selector, self._reference_for(settings)))
            except Exception as exc:  # noqa: BLE001
                report.errors.append(self._error_once("select", exc))
                targets = []
        source = self.source_face(settings)
        if self.swap is not None and targets and source is not None:
            try:
                # the swap writes into `frame` (inplace) only after the tracker's worker has its copy
                out = self.swap.process(frame, targets, source, settings, times, inplace=inplace,
                                        before_write=self.tracker.release_frame)
                report.swapped = len(targets)
            except Exception as exc:  # noqa: BLE001
                report.errors.append(self._error_once("swap", exc))
                out = frame
        if out is None:  # a stage returned nothing: pass through
            out = frame
        self._release_frame(report)  # the caller may write to or reuse `frame` once we return
        if settings.output.badge:
            try:
                with times.stage("badge"):
                    if out is frame and not inplace:
                        out = frame.copy()  # never draw on a buffer the caller still needs
                    out = self._draw_badge(out)
            except Exception as exc:  # noqa: BLE001
                report.errors.append(self._error_once("badge", exc))
        # since the last frame's count, not this frame's start: background detections land between frames
        seen = self._calls_seen if self._calls_seen is not None and self._calls_seen <= calls0 else calls0
        self._calls_seen = self.detector_calls
        report.detector_calls = self._calls_seen - seen
        report.detected = report.detector_calls > 0
        report.guard_rejects = self.guard_rejects - rejects0
        report.stage_ms = dict(times.ms)
        report.infer_ms = (infer_seconds() - i0) * 1000.0
        report.host_ms = (time.perf_counter() - t0) * 1000.0
        return out, report

    def _release_frame(self, report: FrameReport) -> None:
        try:
            self.tracker.release_frame()
        except Exception as exc:  # noqa: BLE001 - one frame must not stop the loop
            report.errors.append(self._error_once("track", exc))

    def _draw_badge(self, frame: np.ndarray) -> np.ndarray:
        if self._badge is None:
            from livecam.swap.composite import draw_badge

            self._badge = draw_badge
        result = self._badge(frame)
        return frame if result is None else result

    def close(self) -> None:
        """Stop background work (the tracker's detection worker): a stopped session leaves no thread."""
        if self._tracker_switch is not None and self._tracker_switch.loading:
            self._tracker_switch.wait(0.5)
        self.tracker.close()

    def providers(self) -> dict[str, str]:
        try:
            return dict(self.loader.providers()) if self.loader is not None else {}
        except Exception:  # noqa: BLE001
            return {}

    def describe(self) -> dict[str, Any]:
        return {
            "detector_calls": self.detector_calls,
            "guard_rejects": self.guard_rejects,
            "active_model": getattr(self.swap, "active_model", ""),
        }
