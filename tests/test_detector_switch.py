"""Detector/landmarker changes load off the frame thread (issue 12 point 4, in the issue-9 worker).

The new detector's load is made artificially slow (the loader sleeps 1.5 s); frames keep
flowing on the old detector, none of them waits for the load, and the new detector is
used as soon as it is ready.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
from livecam.controls import Controls
from livecam.face.detect import CenterFaceDetector, ScrfdDetector
from livecam.inference.models import ModelLoader
from livecam.pipeline import Pipeline
from livecam.settings import Settings

SLEEP = 1.5


class SlowLoader(ModelLoader):
    """The real loader on the stand-ins, but loading CenterFace takes SLEEP seconds longer."""

    def session(self, name, fp16=None, input_size=None):
        if name == "centerface":
            time.sleep(SLEEP)
        return super().session(name, fp16, input_size)


def test_detector_switch_loads_in_the_background(standins_dir, astronaut):
    settings = Settings().with_changes({"detector.model": "scrfd", "landmarker.model": "none"})
    pipe = Pipeline(SlowLoader(settings.runtime, models_dir=standins_dir), settings, None, swap=False)
    controls = Controls(settings)
    frame = np.ascontiguousarray(cv2.copyMakeBorder(astronaut[:360], 0, 0, 64, 64, cv2.BORDER_CONSTANT))  # 640x360
    _, report = pipe.process(frame, controls.current(), 0.0)
    assert isinstance(pipe.tracker.detector, ScrfdDetector) and report.faces  # the SCRFD stand-in's face
    controls.change({"detector.model": "centerface"})
    t_switch = time.perf_counter()
    slowest, frames_during = 0.0, 0
    while (frames_during == 0 or pipe.loading) and time.perf_counter() - t_switch < 30:
        t0 = time.perf_counter()
        pipe.process(frame, controls.current(), time.perf_counter() - t_switch)
        slowest = max(slowest, time.perf_counter() - t0)
        frames_during += 1
        time.sleep(0.005)
    assert time.perf_counter() - t_switch >= SLEEP * 0.9  # the load really took that long ...
    assert frames_during >= 5 and slowest < SLEEP / 3  # ... and no frame waited for it
    pipe.process(frame, controls.current(), 10.0)
    assert isinstance(pipe.tracker.detector, CenterFaceDetector)
    _, report = pipe.process(frame, controls.current(), 10.1)
    assert report.faces and pipe.loading == ""


def test_a_failed_detector_load_keeps_the_old_one(standins_dir, tmp_path):
    settings = Settings().with_changes({"detector.model": "scrfd", "landmarker.model": "none"})
    pipe = Pipeline(ModelLoader(settings.runtime, models_dir=standins_dir), settings, None, swap=False)
    controls = Controls(settings)
    controls.change({"detector.model": "yunet"})
    pipe._tracker_switch._build = lambda s: (_ for _ in ()).throw(RuntimeError("broken file"))
    frame = np.zeros((360, 640, 3), np.uint8)
    pipe.process(frame, controls.current(), 0.0)
    pipe._tracker_switch.wait()
    pipe.process(frame, controls.current(), 0.1)
    assert isinstance(pipe.tracker.detector, ScrfdDetector)
    assert any("broken file" in m for m in pipe.drain_messages())
