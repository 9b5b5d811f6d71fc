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

import logging
import threading
from collections import deque
from typing import Callable

log = logging.getLogger(__name__)


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
