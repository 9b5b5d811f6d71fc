"""The live loop with fake stages: latency bound, pacing, bypass, controls, faults, shutdown."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from livecam.face.types import Face, SourceFace
from livecam.io.fakes import FlakySource, StallingSink
from livecam.io.sinks import NullSink
from livecam.io.sources import ArraySource, Source
from livecam.live import LatestSlot, LiveSession, draw_card
from livecam.pipeline import Pipeline
from livecam.settings import Settings

FPS = 30.0
INTERVAL_MS = 1000.0 / FPS


class FakeTracker:
    def __init__(self, every_n=6, fail_every=0):
        self.detector_calls = 0
        self.n = 0
        self.every_n = every_n
        self.fail_every = fail_every
        self.configured = []

    def update(self, frame, ts):
        self.n += 1
        if self.fail_every and self.n % self.fail_every == 0:
            raise RuntimeError("tracker exploded")
        if self.n % self.every_n == 1:
            self.detector_calls += 1
        h, w = frame.shape[:2]
        kps = np.array([[w * .4, h * .4], [w * .6, h * .4], [w * .5, h * .5], [w * .42, h * .6], [w * .58, h * .6]],
                       np.float32)
        return [Face(bbox=np.array([w * .3, h * .3, w * .7, h * .7], np.float32), kps5=kps, score=0.9,
                     track_id=1, detected=self.n % self.every_n == 1)]

    def configure(self, settings):
        self.configured.append(settings)

    def reset(self):
        pass

    def release_frame(self):
        pass

    def close(self):
        pass

    def request_detection(self):
        pass


class FakeSelector:
    def select(self, faces, settings, reference):
        return faces[:1]


class FakeSwap:
    """Returns a copy with pixel (0,0) marked; optional delay and failures."""

    def __init__(self, delay=0.0, fail_every=0):
        self.delay = delay
        self.fail_every = fail_every
        self.calls = 0
        self.guard_rejects = 0
        self.loading = ""
        self.active_model = "hyperswap_1a_256"
        self.requested = []

    def process(self, frame, faces, source, settings, times, inplace=False, before_write=None):
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise ValueError("swap exploded")
        with times.stage("swap"):
            if self.delay:
                time.sleep(self.delay)
            out = frame.copy()
            out[0, 0] = (1, 2, 3)
        return out

    def request_model(self, name):
        self.requested.append(name)


class FakeBank:
    def __init__(self):
        e = np.ones(512, np.float32)
        self.faces = [SourceFace("me", e, e / np.linalg.norm(e))]

    def get(self, name):
        return next((f for f in self.faces if f.name == name), None)

    def add(self, path):
        raise NotImplementedError


class RecordingSink(NullSink):
    """Keeps send times, new-frame flags and the last few frames."""

    def __init__(self):
        super().__init__()
        self.events: list[tuple[float, bool]] = []
        self.frames: list[np.ndarray] = []
        self.timed: list[tuple[float, np.ndarray]] = []

    def send(self, frame):
        super().send(frame)
        self.events.append((time.perf_counter(), True))
        self.frames.append(frame)
        self.timed.append((time.perf_counter(), frame))
        del self.frames[:-200], self.timed[:-200]

    def repeat(self):
        super().repeat()
        self.events.append((time.perf_counter(), False))


def make_session(source=None, sink=None, *, delay=0.0, swap=None, tracker=None, settings=None, **kw):
    settings = settings or Settings()
    pipeline = Pipeline(None, settings, FakeBank(), tracker=tracker or FakeTracker(), selector=FakeSelector(),
                        swap=swap or FakeSwap(delay=delay))
    source = source or FlakySource(fps=FPS)
    sink = sink or RecordingSink()
    return LiveSession(settings, source, sink, pipeline.bank, None, pipeline=pipeline, record_latency=True, **kw)


def live_threads():
    return [t for t in threading.enumerate() if t.name.startswith("livecam-")]


def test_latest_slot_replaces_and_counts():
    slot = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.get(0.01) == 2 and slot.get(0.01) is None
    assert slot.dropped == 1


def test_latency_within_two_intervals_plus_processing_and_no_queueing():
    session = make_session(delay=0.008).start()
    time.sleep(4.0)
    assert session.stop()
    lat = np.asarray(session.latencies)
    host = np.asarray(session.host_times)
    # 2 frame intervals + host p95, plus 2 more intervals of scheduling delay a loaded 2-core
    # machine adds (CI); the tight bound is measured in benchmarks (docs/benchmarks.md).
    bound = 4 * INTERVAL_MS + np.percentile(host, 95)
    assert len(lat) > 60
    assert np.percentile(lat, 95) <= bound, (np.percentile(lat, 95), bound)
    # nothing queues: the last second is no slower than the first (medians: robust to preemption)
    n = len(lat) // 4
    assert np.median(lat[-n:]) <= np.median(lat[:n]) + 2 * INTERVAL_MS
    snap = session.stats.snapshot()
    assert 20 <= snap.fps_out <= 34 and 20 <= snap.fps_in <= 34  # generous lower bound: a loaded 2-core machine wakes the output thread late (ratios in benchmarks)
    assert snap.detector_calls >= 15 and snap.stage_errors == 0
    assert "swap" in snap.stage_ms and "track" in snap.stage_ms
    assert snap.frames_out >= 100
    assert not live_threads()


def test_output_keeps_its_pace_when_processing_is_slow():
    session = make_session(delay=0.15).start()
    time.sleep(2.0)
    snap = session.stats.snapshot()
    session.stop()
    sink = session.sink
    assert 20 <= snap.fps_out <= 34  # repeats fill the gaps (lower bound generous: loaded CI)
    assert snap.fps_processed < 8
    assert snap.dropped >= 30  # stale camera frames dropped, not queued
    assert sink.frames_sent - sink.frames_new >= 30
    lat = np.asarray(session.latencies)
    # latest-frame hand-offs: at most one frame waits per slot
    assert np.percentile(lat, 95) <= 2 * 150 + 2 * INTERVAL_MS + 30


def test_bypass_sends_the_raw_frame_and_skips_stages():
    swap = FakeSwap()
    session = make_session(swap=swap).start()
    time.sleep(0.4)
    assert session.sink.frames[-1][0, 0].tolist() == [1, 2, 3]
    session.controls.toggle_bypass()
    time.sleep(0.2)
    calls = swap.calls
    time.sleep(0.4)
    session.stop()
    assert swap.calls == calls  # no swap while bypassed
    assert session.sink.frames[-1][0, 0].tolist() != [1, 2, 3]


def test_control_changes_reach_the_stages_on_the_next_frame():
    tracker, swap = FakeTracker(), FakeSwap()
    session = make_session(tracker=tracker, swap=swap).start()
    time.sleep(0.2)
    session.controls.change({"detector.every_n": 3, "swapper.model": "inswapper_128"})
    time.sleep(0.3)
    session.stop()
    assert tracker.configured and tracker.configured[-1].detector.every_n == 3
    assert swap.requested == ["inswapper_128"]


def test_a_stage_that_raises_passes_frames_through_and_logs_once(caplog):
    caplog.set_level(logging.ERROR, logger="livecam.pipeline")
    swap = FakeSwap(fail_every=3)
    session = make_session(swap=swap, tracker=FakeTracker(fail_every=7)).start()
    time.sleep(2.0)
    snap = session.stats.snapshot()
    session.stop()
    assert snap.stage_errors >= 15
    assert 20 <= snap.fps_out <= 34  # the output kept its pace (lower bound generous: loaded CI)
    assert snap.frames_processed >= 50
    logged = [r for r in caplog.records if "passing frames through" in r.getMessage()]
    assert len(logged) == 2  # once for swap: ValueError, once for track: RuntimeError
    assert any(f[0, 0].tolist() == [1, 2, 3] for f in session.sink.frames)  # good frames still swapped


def test_a_pipeline_that_raises_everything_still_outputs():
    class Broken:
        loading = ""

        def process(self, frame, state, ts):
            raise MemoryError("boom")

        def providers(self):
            return {}

        def drain_messages(self):
            return []

    sink = RecordingSink()
    session = LiveSession(Settings(), FlakySource(fps=FPS), sink, None, None, pipeline=Broken()).start()
    time.sleep(1.0)
    snap = session.stats.snapshot()
    session.stop()
    assert snap.stage_errors >= 20 and snap.frames_out >= 25
    assert sink.frames_new >= 20  # raw frames passed through


def test_camera_lost_then_back_without_restart():
    source = FlakySource(fps=FPS)
    sink = RecordingSink()
    session = make_session(source=source, sink=sink, retry_delays=(0.1, 0.2)).start()
    time.sleep(0.6)
    t_down = time.perf_counter()
    source.down.set()
    time.sleep(0.2)  # reads fail now; the last good frame went out
    # the last live frame sent (live frames are flat; cards have a dark band in the middle)
    good = [f for _, f in sink.timed if f[f.shape[0] // 2, 5, 0] == f[5, 5, 0]][-1].copy()
    time.sleep(0.3)
    lost = session.stats.snapshot()
    out_before = lost.frames_out
    time.sleep(1.0)
    during = session.stats.snapshot()
    card = sink.frames[-1]
    source.down.clear()
    t_up = time.perf_counter()
    time.sleep(1.0)
    after = session.stats.snapshot()
    session.stop()
    assert not lost.camera_ok and "camera lost" in lost.camera
    assert source.open_failures >= 2  # kept retrying
    assert during.frames_out - out_before >= 18  # ~30 fps kept during the outage (generous: loaded CI)
    # the card: last good frame, darkened band with text in the middle
    h = card.shape[0]
    assert card.shape == good.shape
    assert np.array_equal(card[:10], good[:10])
    band = card[h // 2 - 4:h // 2 + 4]
    assert band.max() >= 200 and np.median(band) < np.median(good[h // 2 - 4:h // 2 + 4])
    assert after.camera_ok and after.frames_in > during.frames_in + 15
    assert session.reconnects >= 1
    new_after_up = [t for t, new in sink.events if new and t > t_up]
    new_during = [t for t, new in sink.events if new and t_down + 0.2 < t < t_up]
    assert len(new_after_up) >= 15
    assert all(not np.array_equal(f, card) for f in sink.frames[-3:])  # live frames again
    assert t_up - t_down > 1.0 and len(new_during) >= 25  # card frames are sent as new frames


def test_a_sink_that_blocks_does_not_stall_processing_and_recovers():
    sink = StallingSink(after=10, stall_s=0.5)
    session = make_session(sink=sink).start()
    time.sleep(2.0)
    snap = session.stats.snapshot()
    session.stop()
    assert sink.stalled_at is not None
    resumed = [t for t in sink.send_times if t > sink.stalled_at + 0.5]
    gaps = np.diff(resumed)
    assert len(resumed) >= 20  # ~30 fps after the stall (generous: loaded CI)
    assert (gaps < 0.010).sum() <= 1  # resynced, no burst of catch-up frames
    processed_during = snap.frames_processed
    assert processed_during >= 50  # processing never waited for the sink
    assert snap.dropped >= 10


def test_a_sink_that_raises_keeps_the_clock():
    class Failing(RecordingSink):
        def send(self, frame):
            if len(self.events) % 4 == 0:
                self.events.append((time.perf_counter(), True))
                raise OSError("device went away")
            super().send(frame)

    sink = Failing()
    session = make_session(sink=sink).start()
    time.sleep(1.0)
    session.stop()
    assert session.sink_errors >= 5
    assert 25 <= len(sink.events) <= 36


def test_stop_is_fast_and_releases_devices_even_with_a_slow_read():
    class SlowSource(Source):
        def _open(self):
            self.closed = False

        def _read(self):
            time.sleep(0.3)
            return np.zeros((120, 160, 3), np.uint8)

        def _close(self):
            self.closed = True

    source = SlowSource()
    session = make_session(source=source).start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    clean = session.stop(timeout=1.0)
    assert time.perf_counter() - t0 < 2.0  # joins bounded by the 1 s timeout, plus closing devices
    assert clean and source.closed and not session.sink.is_open and not session.running
    assert not live_threads()


def test_a_finite_source_finishes_with_its_last_frame_out():
    frames = [np.full((60, 80, 3), i, np.uint8) for i in range(10)]
    sink = RecordingSink()
    session = make_session(source=ArraySource(frames, fps=FPS, paced=True), sink=sink).start()
    assert session.wait(timeout=5.0) and session.finished
    session.stop()
    assert sink.frames[-1][5, 5, 0] == 9  # last frame out (pixel (0,0) is the swap marker)
    assert 5 <= sink.frames_new <= 10  # latest-frame hand-offs may drop a few under load


def test_stats_describe_camera_and_output():
    session = make_session().start()
    time.sleep(0.3)
    snap = session.stats.snapshot()
    session.stop()
    assert snap.camera.startswith("flaky 320x240") and snap.output == "null" and snap.camera_ok


def test_draw_card_without_a_frame_is_black_with_text():
    card = draw_card(None, "camera lost", (640, 360))
    assert card.shape == (360, 640, 3) and card.max() == 255 and card[:50].max() == 0


def test_a_sink_that_keeps_failing_is_reopened_with_back_off():
    class DroppingDevice(RecordingSink):
        def __init__(self):
            super().__init__()
            self.broken = False
            self.opens = 0

        def open(self):
            self.opens += 1
            self.broken = False if self.opens >= 2 else self.broken
            return super().open()

        def send(self, frame):
            if self.broken:
                raise OSError("No such device")
            super().send(frame)

        def repeat(self):
            if self.broken:
                raise OSError("No such device")
            super().repeat()

    sink = DroppingDevice()
    session = make_session(sink=sink).start()
    time.sleep(0.3)
    sink.broken = True
    t_broken = time.perf_counter()
    time.sleep(1.2)
    session.stop()
    assert sink.opens >= 2 and session.sink_reopens >= 1
    after = [t for t, _ in sink.events if t > t_broken + 0.5]
    assert len(after) >= 15  # sending again after the re-open


def test_a_read_that_hangs_shows_the_card_then_recovers():
    class Hanging(FlakySource):
        def __init__(self):
            super().__init__(fps=FPS)
            self.hang = threading.Event()

        def _read(self):
            if self.hang.is_set():
                self.hang.clear()
                time.sleep(2.6)  # a driver that blocks instead of failing
            return super()._read()

    source = Hanging()
    sink = RecordingSink()
    session = make_session(source=source, sink=sink).start()
    time.sleep(0.4)
    source.hang.set()
    time.sleep(2.4)
    stalled = session.stats.snapshot()
    card = sink.frames[-1]
    time.sleep(0.8)
    after = session.stats.snapshot()
    session.stop()
    assert not stalled.camera_ok and "stalled" in stalled.camera
    h = card.shape[0]
    assert card[h // 2, 5, 0] < card[5, 5, 0]  # the dark band of the card
    assert 15 <= stalled.fps_out <= 34  # the output never froze (a freeze reads 0; generous: loaded CI)
    assert after.camera_ok and after.frames_in > stalled.frames_in + 5


def test_swap_stage_messages_reach_the_stats_log_once():
    """Model-load failures land in the one log that plain mode and the TUI both show."""
    from collections import deque

    swap = FakeSwap()
    swap.messages = deque(maxlen=50)
    session = make_session(swap=swap).start()
    swap.messages.append("could not load hyperswap_1b_256: file missing")
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and not any("could not load" in m for m in session.stats.snapshot().log):
        time.sleep(0.05)
    time.sleep(1.2)  # one more forwarding round must not repeat it
    session.stop()
    log = session.stats.snapshot().log
    assert len([m for m in log if "could not load hyperswap_1b_256" in m]) == 1
    assert not swap.messages
