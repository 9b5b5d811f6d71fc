"""Detector and landmarker (re)built off the frame thread.

A change of `detector.*` or `landmarker.model` needs new model sessions: loading one
takes from a fraction of a second to seconds (a TensorRT engine build far longer).
`ModelSwitch` builds the replacement in a background thread; the frame loop keeps
running the old tracker, with its detector and landmarker, until the new one is ready,
then adopts it between two frames (one reference assignment). A request made while
another build runs is built next (the latest request wins); a failed build is
reported and the old models keep running.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import deque
from typing import Callable

log = logging.getLogger(__name__)

_RUNNING: "weakref.WeakSet[DetectWorker]" = weakref.WeakSet()  # workers whose thread was started


@atexit.register
def _close_at_exit() -> None:
    """Close every worker an owner left open: a daemon thread still inside a model call when the
    interpreter tears ONNX Runtime down takes the process with it (SIGABRT; `livecam bench`
    with CenterFace did). atexit runs after non-daemon threads are joined, before that."""
    for worker in list(_RUNNING):
        worker.close(timeout=5.0)  # (a detection takes milliseconds; this bounds a hung one)


class ModelSwitch:
    """Builds `build(settings)` in the background; `take()` hands the result over once."""

    def __init__(self, build: Callable[[object], object], name: str = "detector"):
        self._build = build
        self._name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wanted = None  # settings of the newest request not yet started
        self._ready = None
        self.messages: deque[str] = deque(maxlen=20)  # load errors, newest last

    @property
    def loading(self) -> str:
        with self._lock:
            return self._name if (self._thread is not None or self._wanted is not None) else ""

    def request(self, settings) -> None:
        """Build for `settings` next (replaces a request that has not started yet)."""
        with self._lock:
            self._wanted = settings
            if self._thread is None:
                self._start_locked()

    def _start_locked(self) -> None:
        settings, self._wanted = self._wanted, None
        self._thread = threading.Thread(target=self._run, args=(settings,), name=f"livecam-load-{self._name}",
                                        daemon=True)
        self._thread.start()

    def _run(self, settings) -> None:
        try:
            obj = self._build(settings)
        except Exception as exc:  # noqa: BLE001 - the old models keep running; say why
            log.warning("could not load the new %s: %s", self._name, exc)
            with self._lock:
                self.messages.append(f"could not load {self._name}: {exc}")
            obj = None
        with self._lock:
            if obj is not None and self._wanted is None:  # a newer request supersedes this result
                self._ready = obj
            self._thread = None
            if self._wanted is not None:
                self._start_locked()

    def take(self):
        """The newly built object (once), or None while nothing new is ready."""
        with self._lock:
            obj, self._ready = self._ready, None
        return obj

    def wait(self, timeout: float = 30.0) -> None:
        """Block until no build runs (tests, benchmarks; never the frame loop)."""
        with self._lock:
            t = self._thread
        while t is not None:
            t.join(timeout)
            with self._lock:
                if self._thread is t:
                    return
                t = self._thread


class DetectWorker:
    """Runs the tracker's detection jobs in the background, one at a time.

    The tracker submits a job (a callable over a private copy of the frame) when a
    periodic detection is due and no job is pending; the job's result is picked up by
    a later frame (`poll`) and folded in, carried forward by the motion since its frame.
    No frame waits for it. One thread runs the jobs; it is started by the first job and
    ends on `close` or after `idle_s` without a job (a later job starts it again), so
    nothing lingers after a session stops. Handing a job to a running thread costs the
    frame thread a notify; starting a thread per job cost it 0.25 ms p50 (3.6 ms at worst:
    `Thread.start` waits until the new thread runs). The Pipeline's tracker gives its jobs
    adapters of their own (`TrackerModels`); an adapter shared by two threads is serialised by
    its own lock (`inference.session.serialised`, the rule in docs/architecture.md).
    """

    def __init__(self, name: str = "livecam-detect", idle_s: float = 2.0):
        self.name = name
        self.idle_s = idle_s
        self._cv = threading.Condition()
        self._job: Callable[[], object] | None = None
        self._result = None
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        with self._cv:
            return self._busy or self._result is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def running(self) -> bool:
        """True while the worker's thread exists (tests: it ends on close and when idle)."""
        with self._cv:
            return self._thread is not None

    def submit(self, job: Callable[[], object]) -> bool:
        """Run `job` in the background; False (nothing done) while another job or result is pending."""
        with self._cv:
            if self._busy or self._result is not None or self._closed:
                return False
            self._busy, self._job = True, job
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
                _RUNNING.add(self)
            else:
                self._cv.notify_all()
        return True

    def poll(self):
        """The finished job's result (once), or None."""
        with self._cv:
            res, self._result = self._result, None
            return res

    def wait(self, timeout: float = 10.0) -> None:
        """Block until no job runs (tests; never the frame loop)."""
        with self._cv:
            self._cv.wait_for(lambda: not self._busy, timeout)

    def close(self, timeout: float = 0.5) -> None:
        """Take no more jobs; wait (up to `timeout`) for the running one and the thread to end."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            self._cv.wait_for(lambda: not self._busy and self._thread is None, timeout)

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cv:
                if self._job is None and not self._closed:
                    self._cv.wait_for(lambda: self._job is not None or self._closed, self.idle_s)
                job, self._job = self._job, None
                if job is None:  # closed, or idle for `idle_s`: the thread ends
                    if self._thread is me:
                        self._thread = None
                    self._cv.notify_all()
                    return
            try:
                res = job()
            except Exception as exc:  # noqa: BLE001 - one failed detection must not stop detecting
                log.warning("background detection failed: %s", exc)
                res = None
            with self._cv:
                self._result = None if self._closed else res
                self._busy = False
                self._cv.notify_all()
