"""The Deep-Live-Cam yardstick of `benchmarks.host_cost`: its restated insightface SCRFD host work
decodes the SCRFD stand-in's face as livecam's own `ScrfdDetector` does, and runs on every 2nd
frame only, its `session.run` counted as model time."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from benchmarks.dlc_baseline import DlcLoop, InsightfaceScrfd
from livecam.face.detect import make_detector
from livecam.settings import Settings


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def scrfd_pair(standins_dir):
    from livecam.inference.models import ModelLoader

    ours = make_detector(ModelLoader(Settings().runtime, models_dir=standins_dir), Settings())
    theirs = InsightfaceScrfd(_session(standins_dir / "scrfd_2.5g.onnx"))
    return ours, theirs


@pytest.mark.parametrize("hw", [(360, 640), (720, 1280), (1080, 1920), (640, 480)])
def test_restated_scrfd_finds_what_livecam_finds(scrfd_pair, hw):
    ours, theirs = scrfd_pair
    frame = np.zeros((*hw, 3), np.uint8)
    expected = ours.detect(frame)
    dets, points = theirs.detect(frame)
    assert len(expected) == 1 and dets.shape == (1, 5) and points.shape == (1, 5, 2)  # the twin anchor: NMS
    assert dets[0, :4].tolist() == pytest.approx(expected[0].bbox.tolist(), abs=1e-2)
    assert dets[0, 4] == pytest.approx(expected[0].score)
    assert np.allclose(points[0], expected[0].kps5, atol=1e-2)
    assert theirs.infer_ms > 0.0


class _CountingDetector:
    def __init__(self):
        self.calls, self.infer_ms = 0, 0.0

    def detect(self, frame):
        self.calls += 1
        self.infer_ms = 1000.0  # stands out in the loop's model time
        return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)


def test_detection_work_every_second_frame_counted_as_model_time(standins_dir):
    from livecam.face.types import Detection

    det = _CountingDetector()
    loop = DlcLoop(_session(standins_dir / "inswapper_128.onnx"), detector=det)
    frame = np.full((360, 640, 3), 90, np.uint8)
    face = Detection(bbox=np.array([250, 100, 390, 260], np.float32), score=0.9,
                     kps5=np.array([[290, 160], [350, 160], [320, 195], [295, 225], [345, 225]], np.float32))
    for i in range(6):
        loop.step(frame.copy(), i, [face])
        assert loop.infer_ms >= (1000.0 if i % 2 == 0 else 0.0)
        assert loop.infer_ms < (1000.0 if i % 2 else 2000.0)
    assert det.calls == 3
