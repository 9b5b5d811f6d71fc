"""What the user changes while live (`Controls`) and what the loop reports (`Stats`).

Both are shared between threads: the process thread, the TUI and the CLI.
`Controls` holds one immutable `ControlState`; a change builds a new state and
swaps the reference under a lock, so the process thread, which reads
`controls.current()` once per frame, sees a change on the next frame and never
half of one. `Stats` is written by the loop's threads and read by the UI a few
times a second; reading costs a lock and a copy, never the frame loop's time.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from livecam.settings import Settings


@dataclass(frozen=True)
class ControlState:
    settings: Settings
    bypass: bool = False
    version: int = 0  # increments on every change

    @property
    def source(self) -> str:
        return self.settings.swapper.source


class Controls:
    """Atomic, validated changes to the live pipeline from any thread."""

    def __init__(self, settings: Settings):
        self._lock = threading.Lock()
        self._state = ControlState(settings=settings)
        self._listeners: list[Callable[[ControlState], None]] = []

    def current(self) -> ControlState:
        return self._state  # a reference read is atomic; states are immutable

    def change(self, changes: dict[str, Any] | None = None, *, bypass: bool | None = None,
               settings: Settings | None = None, origin: str = "controls") -> ControlState:
        """Apply dotted-key changes (validated), a whole new Settings, and/or bypass.

        Raises SettingsError and leaves the state untouched if any change is invalid.
        """
        with self._lock:
            state = self._state
            new_settings = settings if settings is not None else state.settings
            if changes:
                new_settings = new_settings.with_changes(changes, origin=origin)
            state = ControlState(
                settings=new_settings,
                bypass=state.bypass if bypass is None else bypass,
                version=state.version + 1,
            )
            self._state = state
            listeners = list(self._listeners)
        for listener in listeners:
            listener(state)
        return state

    def toggle_bypass(self) -> bool:
        with self._lock:
            bypass = not self._state.bypass
        self.change(bypass=bypass)
        return bypass

    def set_source(self, name: str) -> ControlState:
        return self.change({"swapper.source": name})

    def subscribe(self, listener: Callable[[ControlState], None]) -> None:
        """Call `listener(state)` after each change (on the changing thread)."""
        with self._lock:
            self._listeners.append(listener)


class RollingPercentiles:
    """p50/p95 over the last `window` samples."""

    def __init__(self, window: int = 120):
        self._values: collections.deque[float] = collections.deque(maxlen=window)

    def add(self, value: float) -> None:
        self._values.append(value)

    def values(self) -> list[float]:
        return list(self._values)

    def summary(self) -> dict[str, float]:
        return percentiles(self._values)

    def __len__(self) -> int:
        return len(self._values)


def percentiles(values, ndigits: int | None = None) -> dict[str, float]:
    """{"p50", "p95"} of a sequence of numbers (zeros when empty), optionally rounded."""
    if not len(values):
        return {"p50": 0.0, "p95": 0.0}
    p50, p95 = (float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), [50, 95]))
    if ndigits is not None:
        p50, p95 = round(p50, ndigits), round(p95, ndigits)
    return {"p50": p50, "p95": p95}


class RateMeter:
    """Events per second over the last `seconds`."""

    def __init__(self, seconds: float = 2.0):
        self.seconds = seconds
        self._times: collections.deque[float] = collections.deque()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        while self._times and now - self._times[0] > self.seconds:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] > self.seconds:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], 1e-6)
        return (len(self._times) - 1) / span


@dataclass
class StatsSnapshot:
    fps_in: float = 0.0
    fps_out: float = 0.0
    fps_processed: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=lambda: {"p50": 0.0, "p95": 0.0})
    stage_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    host_ms: dict[str, float] = field(default_factory=lambda: {"p50": 0.0, "p95": 0.0})
    frames_in: int = 0
    frames_processed: int = 0
    frames_out: int = 0
    detector_calls: int = 0
    dropped: int = 0
    guard_rejects: int = 0
    stage_errors: int = 0
    faces: int = 0
    providers: dict[str, str] = field(default_factory=dict)
    camera: str = ""  # e.g. "webcam 0 1280x720@30.0 MJPG" or "camera lost (retrying)"
    camera_ok: bool = True
    output: str = ""  # e.g. "vcam /dev/video10 1280x720@30 I420"
    loading: str = ""  # e.g. "loading hyperswap_1b_256 40%"
    fps_history: list[float] = field(default_factory=list)
    latency_history: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # most recent warnings, newest last
    remote_rtt_ms: dict = field(default_factory=dict)  # remote model round trips {p50, p95, calls, failed}; {} = none


class Stats:
    """Thread-safe counters and rolling timings of the live loop."""

    def __init__(self, window: int = 120, history: int = 60, log_lines: int = 50):
        self._lock = threading.Lock()
        self._snap = StatsSnapshot()
        self._in = RateMeter()
        self._out = RateMeter()
        self._proc = RateMeter()
        self._latency = RollingPercentiles(window)
        self._host = RollingPercentiles(window)
        self._stages: dict[str, RollingPercentiles] = {}
        self._window = window
        self._fps_hist: collections.deque[float] = collections.deque(maxlen=history)
        self._lat_hist: collections.deque[float] = collections.deque(maxlen=history)
        self._log: collections.deque[str] = collections.deque(maxlen=log_lines)
        from livecam.remote.rtt import ROUND_TRIPS  # light (no client import): count this session's calls only

        self._rtt_mark = ROUND_TRIPS.mark()

    # -- writers (loop threads) ----------------------------------------------
    def frame_in(self) -> None:
        with self._lock:
            self._snap.frames_in += 1
            self._in.tick()

    def frame_processed(self, host_ms: float, stage_ms: dict[str, float], faces: int = 0) -> None:
        with self._lock:
            self._snap.frames_processed += 1
            self._snap.faces = faces
            self._proc.tick()
            self._host.add(host_ms)
            for name, ms in stage_ms.items():
                self._stages.setdefault(name, RollingPercentiles(self._window)).add(ms)

    def frame_out(self, latency_ms: float | None = None) -> None:
        with self._lock:
            self._snap.frames_out += 1
            self._out.tick()
            if latency_ms is not None:
                self._latency.add(latency_ms)

    def count(self, name: str, n: int = 1) -> None:
        """Add to a counter: dropped, guard_rejects, detector_calls, stage_errors."""
        with self._lock:
            setattr(self._snap, name, getattr(self._snap, name) + n)

    def set(self, **values: Any) -> None:
        """Set descriptive fields: camera, camera_ok, output, loading, providers, ..."""
        with self._lock:
            for k, v in values.items():
                setattr(self._snap, k, v)

    def warn(self, message: str) -> None:
        with self._lock:
            self._log.append(time.strftime("%H:%M:%S ") + message)

    def sample_history(self) -> None:
        """Append current fps-out and latency p50 to the sparkline history (call ~1 Hz)."""
        with self._lock:
            self._fps_hist.append(self._out.rate())
            self._lat_hist.append(self._latency.summary()["p50"])

    # -- reader (UI, plain-mode printer, bench) ------------------------------
    def snapshot(self) -> StatsSnapshot:
        # Copy raw samples under the lock; compute percentiles outside it so a
        # reader (the UI) never holds up the loop's writers.
        with self._lock:
            snap = dataclasses.replace(
                self._snap,
                fps_in=self._in.rate(),
                fps_out=self._out.rate(),
                fps_processed=self._proc.rate(),
                providers=dict(self._snap.providers),
                fps_history=list(self._fps_hist),
                latency_history=list(self._lat_hist),
                log=list(self._log),
            )
            latency = self._latency.values()
            host = self._host.values()
            stages = {k: v.values() for k, v in self._stages.items()}
        snap.latency_ms = percentiles(latency)
        snap.host_ms = percentiles(host)
        snap.stage_ms = {k: percentiles(v) for k, v in stages.items()}
        from livecam.remote.rtt import ROUND_TRIPS

        snap.remote_rtt_ms = ROUND_TRIPS.summary(since=self._rtt_mark)
        return snap
