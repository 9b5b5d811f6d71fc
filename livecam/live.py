"""The live loop: capture, process and output threads with one-slot latest-frame hand-offs.

```
source ──capture thread──► [slot] ──process thread──► [slot] ──output thread (paced)──► sink
```

- Each hand-off holds one frame; a newer frame replaces an unread one and the
  replaced frame is counted in `dropped`. Added latency is bounded by one frame
  per hand-off whatever the load.
- The output thread sends at `output.fps` whether or not a new frame arrived
  (it repeats the last one), so a virtual camera never freezes. A sink that
  blocks or raises delays only the output thread; after it recovers the output
  resyncs to its clock instead of bursting.
- Camera lost: the capture thread closes the source and reopens it with
  back-off (0.2 s doubling to 2 s) until it works again; meanwhile the output
  thread shows the last good frame with a "camera lost" card.
- Any exception from one frame is logged once per kind, the frame passes
  through and `stage_errors` is counted.
- `stop()` ends all three threads within `timeout` (1 s) and releases the
  camera and the sink.
"""

from __future__ import annotations

import array
import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass

import numpy as np

from livecam.controls import Controls, Stats
from livecam.io.sources import EndOfStream

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.2, 0.4, 0.8, 1.6, 2.0)
LOST_AFTER_FAILED_READS = 3
STALL_S = 2.0  # no frame from a live source for this long: show the card (a read that hangs on unplug)
SINK_REOPEN_AFTER = 15  # consecutive failed sends (0.5 s at 30 fps) before re-creating the sink
SINK_REOPEN_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass
class Packet:
    frame: np.ndarray
    t_capture: float  # perf_counter when the source returned the frame
    seq: int


class LatestSlot:
    """A one-frame hand-off. `put` replaces an unread item and reports it as dropped."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._item = None
        self.puts = 0
        self.dropped = 0

    def put(self, item) -> bool:
        with self._cond:
            dropped = self._item is not None
            self._item = item
            self.puts += 1
            if dropped:
                self.dropped += 1
            self._cond.notify()
        return dropped

    def get(self, timeout: float | None = None):
        """The newest unread item, waiting up to `timeout`; None if none came."""
        with self._cond:
            if self._item is None and timeout:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def take(self):
        with self._cond:
            item, self._item = self._item, None
            return item

    def empty(self) -> bool:
        with self._cond:
            return self._item is None

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


def draw_card(frame: np.ndarray | None, text: str, size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    """A copy of `frame` (or a black frame of `size` (w, h)) with a dark band and `text`."""
    import cv2

    if frame is None:
        card = np.zeros((size[1], size[0], 3), np.uint8)
    else:
        card = frame.copy()
    h, w = card.shape[:2]
    band_h = max(24, h // 8)
    y0 = (h - band_h) // 2
    band = card[y0:y0 + band_h]
    band //= 3  # darken in place
    scale = max(0.4, band_h / 60.0)
    thick = max(1, int(round(scale * 2)))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    org = (max(4, (w - tw) // 2), y0 + (band_h + th) // 2)
    cv2.putText(card, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return card


# SIGTERM (kill, systemd, a container stop) and SIGHUP (the terminal closed) stop like Ctrl-C:
# threads joined, devices released, a file sink finalised. The default action kills at once and
# leaves an .mp4 without its index ("moov atom not found").
STOP_SIGNALS = ("SIGTERM", "SIGHUP")


STUCK_STOP_S = 5.0  # a repeat of the signal this long after the first kills (a stop that hangs)


@contextlib.contextmanager
def stop_on_signals(on_signal):
    """While inside: SIGTERM/SIGHUP call `on_signal(name)` once instead of killing the process.

    Repeats within STUCK_STOP_S are ignored (closing a terminal can deliver SIGHUP twice: from
    the kernel and from the shell); a repeat after that takes the default action, so a stop
    that hangs can still be killed. A signal that is ignored (`nohup`) stays ignored. Only the
    main thread can install handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved: dict[int, object] = {}
    first: dict[int, float] = {}

    def handle(signum, _frame):
        now = time.monotonic()
        if signum not in first:
            first[signum] = now
            on_signal(signal.Signals(signum).name)
        elif now - first[signum] > STUCK_STOP_S:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for name in STOP_SIGNALS:
        sig = getattr(signal, name, None)  # Windows has no SIGHUP
        if sig is None or signal.getsignal(sig) is signal.SIG_IGN:
            continue
        saved[sig] = signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


class LiveSession:
    """Camera in, processed frames out, until `stop()` (or a finite source ends)."""

    def __init__(self, settings, source, sink, bank=None, loader=None, controls: Controls | None = None,
                 stats: Stats | None = None, *, pipeline=None, record_latency: bool = False,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS):
        self.settings = settings
        self.source = source
        self.sink = sink
        self.bank = bank
        self.loader = loader
        self.controls = controls or Controls(settings)
        self.stats = stats or Stats()
        if pipeline is None:
            from livecam.pipeline import Pipeline

            pipeline = Pipeline(loader, settings, bank)
        self.pipeline = pipeline
        self.retry_delays = tuple(retry_delays)
        self.fps = float(settings.output.fps)
        self._in = LatestSlot()
        self._out = LatestSlot()
        self._stop = threading.Event()
        self._finished = threading.Event()  # a finite source ended and its last frame went out
        self._source_done = threading.Event()
        self._processed_done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._camera_lost = threading.Event()
        self.reconnects = 0
        self.sink_errors = 0
        self.sink_reopens = 0
        self.last_frame_t = 0.0  # perf_counter of the last captured frame
        self._stall_reported = False
        self.seq_in = 0
        # record_latency: keep every frame's capture→output latency and host ms (soak, tests)
        self.latencies = array.array("d") if record_latency else None
        self.host_times = array.array("d") if record_latency else None
        self.error: BaseException | None = None  # a fatal error that ended the session
        self._seen: set[str] = set()
        self._lost_text = "camera lost - reconnecting"

    # -- lifecycle -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads) and not self._stop.is_set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def start(self) -> "LiveSession":
        """Open the source and the sink (raising their errors here) and start the threads."""
        if self._threads:
            raise RuntimeError("LiveSession already started")
        if not self.source.is_open:
            self.source.open()
        if not self.sink.is_open:
            try:
                self.sink.open()
            except BaseException:
                self.source.close()
                raise
        self.stats.set(camera=self.source.describe(), camera_ok=True, output=self.sink.describe(),
                       providers=self.pipeline.providers())
        self._threads = [
            threading.Thread(target=self._guard, args=(self._capture_loop,), name="livecam-capture", daemon=True),
            threading.Thread(target=self._guard, args=(self._process_loop,), name="livecam-process", daemon=True),
            threading.Thread(target=self._guard, args=(self._output_loop,), name="livecam-output", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop the threads and release camera and sink. True if everything ended within `timeout`."""
        self._stop.set()
        self._in.wake()
        self._out.wake()
        deadline = time.monotonic() + timeout
        clean = True
        for t in self._threads:
            if t is threading.current_thread():
                continue
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                clean = False
                log.warning("thread %s did not stop within %.1f s (a blocked device?)", t.name, timeout)
        # Release devices even if a thread is stuck inside them: closing unblocks most drivers.
        for closer in (self.source.close, self.sink.close, getattr(self.pipeline, "close", lambda: None)):
            try:
                closer()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing: %s", exc)
        return clean

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the session stops by itself (finite source ended, sink asked to quit, fatal error)."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set():
            if self._finished.is_set() or self.sink.stop_requested.is_set() or self.error is not None:
                return True
            if end is not None and time.monotonic() >= end:
                return False
            self._stop.wait(0.05)
        return True

    def request_stop(self) -> None:
        self._stop.set()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------
    def _guard(self, loop) -> None:
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001 - a thread must never die silently
            self.error = exc
            log.exception("%s stopped: %s", threading.current_thread().name, exc)
            self.stats.warn(f"{threading.current_thread().name} stopped: {exc}")
            self._stop.set()

    def _once(self, kind: str, message: str) -> None:
        if kind not in self._seen:
            self._seen.add(kind)
            log.warning("%s", message)
            self.stats.warn(message)

    # -- capture ---------------------------------------------------------------------
    def _capture_loop(self) -> None:
        failures = 0
        attempt = 0
        source = self.source
        while not self._stop.is_set():
            if not source.is_open:
                try:
                    source.open()
                except Exception as exc:  # noqa: BLE001
                    delay = self.retry_delays[min(attempt, len(self.retry_delays) - 1)]
                    attempt += 1
                    self.stats.set(camera=f"camera lost (retry {attempt} in {delay:.1f}s)", camera_ok=False)
                    self._once(f"open:{type(exc).__name__}", f"camera reopen failed: {exc}")
                    self._stop.wait(delay)
                    continue
                attempt = 0
                failures = 0
                self.reconnects += 1
                self._camera_lost.clear()
                self.stats.set(camera=source.describe(), camera_ok=True)
                self.stats.warn(f"camera back: {source.describe()}")
            try:
                frame = source.read()
            except EndOfStream:
                self._source_done.set()
                return
            except Exception as exc:  # noqa: BLE001 - a failing device is "lost", not fatal
                self._once(f"read:{type(exc).__name__}", f"camera read failed: {exc}")
                frame = None
            if frame is None:
                failures += 1
                if failures >= LOST_AFTER_FAILED_READS:
                    self._lose_camera()
                continue
            failures = 0
            self.seq_in += 1
            self.last_frame_t = time.perf_counter()
            if self._stall_reported:
                self._stall_reported = False
                self.stats.set(camera=source.describe(), camera_ok=True)
            self.stats.frame_in()
            if self._in.put(Packet(frame, time.perf_counter(), self.seq_in)):
                self.stats.count("dropped")
            if self.seq_in % 30 == 0:
                self.stats.set(camera=source.describe())

    def _lose_camera(self) -> None:
        self._camera_lost.set()
        self.stats.set(camera="camera lost (reconnecting)", camera_ok=False)
        self.stats.warn(f"camera lost: {self.source.describe()}; reconnecting")
        log.warning("camera lost (%s); reconnecting with back-off", self.source.describe())
        try:
            self.source.close()
        except Exception as exc:  # noqa: BLE001
            log.debug("closing lost camera: %s", exc)
        self._stop.wait(self.retry_delays[0])

    # -- process ---------------------------------------------------------------------
    def _process_loop(self) -> None:
        pipeline = self.pipeline
        last_info = 0.0
        # Frames from a pool-backed source belong to this frame alone: let the swap write in place.
        inplace = bool(getattr(self.source, "owned_frames", False))
        while not self._stop.is_set():
            pkt = self._in.get(timeout=0.05)
            if pkt is None:
                if self._source_done.is_set() and self._in.take() is None:
                    self._processed_done.set()
                    return
                continue
            state = self.controls.current()
            try:
                out, report = pipeline.process(pkt.frame, state, time.monotonic(), inplace=inplace)
            except Exception as exc:  # noqa: BLE001 - pass the frame through
                self._once(f"pipeline:{type(exc).__name__}", f"frame failed ({type(exc).__name__}: {exc}); passing through")
                self.stats.count("stage_errors")
                out, report = pkt.frame, None
            if report is not None:
                self.stats.frame_processed(report.host_ms, report.stage_ms, len(report.faces))
                if self.host_times is not None:
                    self.host_times.append(report.host_ms)
                if report.errors:
                    self.stats.count("stage_errors", len(report.errors))
                    for kind in report.errors:
                        self._once(kind, f"stage error {kind}; frame passed through")
                if report.detector_calls:
                    self.stats.count("detector_calls", report.detector_calls)
                if report.guard_rejects:
                    self.stats.count("guard_rejects", report.guard_rejects)
            if self._out.put(Packet(out, pkt.t_capture, pkt.seq)):
                self.stats.count("dropped")
            now = time.monotonic()
            if now - last_info > 1.0:
                last_info = now
                self.stats.set(providers=pipeline.providers(), loading=pipeline.loading)
                for message in pipeline.drain_messages():
                    self.stats.warn(message)  # one log for plain mode and the TUI

    # -- output ----------------------------------------------------------------------
    def _stalled(self) -> bool:
        """A live source that delivered before has been silent for STALL_S (its read hangs)."""
        if not getattr(self.source, "live", True) or self.last_frame_t == 0.0 or self._source_done.is_set():
            return False
        if time.perf_counter() - self.last_frame_t < STALL_S:
            return False
        if not self._stall_reported:
            self._stall_reported = True
            self.stats.set(camera="camera stalled (no frames)", camera_ok=False)
            self.stats.warn("camera stalled: no frame for 2 s")
        return True

    def _reopen_sink(self) -> None:
        sink = self.sink
        try:
            sink.close()
        except Exception as exc:  # noqa: BLE001
            log.debug("closing failed sink: %s", exc)
        try:
            sink.open()
        except Exception as exc:  # noqa: BLE001
            self.stats.set(output=f"{sink.describe()} (failed: {str(exc).splitlines()[0]}; retrying)")
            return
        self.sink_reopens += 1
        self.stats.set(output=sink.describe())
        self.stats.warn(f"output reopened: {sink.describe()}")

    def _output_loop(self) -> None:
        sink = self.sink
        interval = 1.0 / self.fps
        next_t = time.perf_counter()
        last: Packet | None = None
        card: np.ndarray | None = None
        card_for: int = -1
        last_history = time.monotonic()
        out_size = (self.settings.output.width, self.settings.output.height)
        failures = reopens = 0
        reopen_at = 0.0
        while not self._stop.is_set():
            pkt = self._out.take()
            sent_new = False
            try:
                if pkt is not None:
                    last = pkt
                    sink.send(pkt.frame)
                    sent_new = True
                elif self._camera_lost.is_set() or self._stalled():
                    seq = last.seq if last is not None else -1
                    if card is None or card_for != seq:
                        card = draw_card(last.frame if last is not None else None, self._lost_text, out_size)
                        card_for = seq
                    sink.send(card)
                elif sink.repeats and last is not None:
                    sink.repeat()
                if sent_new:
                    latency = (time.perf_counter() - pkt.t_capture) * 1000.0
                    self.stats.frame_out(latency)
                    if self.latencies is not None:
                        self.latencies.append(latency)
                elif last is not None or card is not None:
                    self.stats.frame_out(None)
                failures = reopens = 0
            except Exception as exc:  # noqa: BLE001 - keep the clock running
                self.sink_errors += 1
                failures += 1
                self._once(f"sink:{type(exc).__name__}", f"output failed ({type(exc).__name__}: {exc}); retrying")
                if failures >= SINK_REOPEN_AFTER and time.monotonic() >= reopen_at:
                    # circuit breaker: re-create the device, with back-off between attempts
                    delay = SINK_REOPEN_DELAYS[min(reopens, len(SINK_REOPEN_DELAYS) - 1)]
                    reopens += 1
                    reopen_at = time.monotonic() + delay
                    self._reopen_sink()
            if sink.stop_requested.is_set():
                self._stop.set()
                return
            if pkt is None and self._processed_done.is_set() and self._out.empty():
                self._finished.set()
                return
            now = time.monotonic()
            if now - last_history >= 1.0:
                last_history = now
                self.stats.sample_history()
            # Pace: next tick on a fixed grid; after a stall (blocked sink) resync instead of bursting.
            next_t += interval
            now_p = time.perf_counter()
            if next_t < now_p - interval:
                next_t = now_p
            delay = next_t - now_p
            if delay > 0:
                self._stop.wait(delay)
