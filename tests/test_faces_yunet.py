"""YuNet 2023mar (the real 232 KB file from the footage cache) as `detector.model = "yunet"`."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from livecam.face.detect import YUNET_MODEL, YuNetDetector, box_iou, detect_in_crop, make_detector
from livecam.inference.models import ModelLoader
from livecam.inference.store import write_hash_file
from livecam.settings import Settings


@pytest.fixture(scope="module")
def yunet_file(tmp_path_factory):
    from benchmarks.footage import fetch

    src = fetch("face_detection_yunet_2023mar.onnx")
    d = tmp_path_factory.mktemp("yunet_models")
    dst = d / f"{YUNET_MODEL}.onnx"
    shutil.copyfile(src, dst)
    write_hash_file(dst)
    return dst


def test_yunet_finds_the_selfie_face_with_points_in_order(yunet_file, footage):
    frame = cv2.imread(str(footage("single_face.jpg")))
    dets = YuNetDetector(yunet_file, score=0.8).detect(frame)
    assert len(dets) == 1
    d = dets[0]
    k = d.kps5
    assert d.score > 0.8
    assert k[0, 0] < k[2, 0] < k[1, 0] and k[3, 0] < k[4, 0]  # eyes and mouth corners image-left to right
    assert k[0, 1] < k[2, 1] < k[3, 1]  # eyes above the nose above the mouth
    x1, y1, x2, y2 = d.bbox
    assert all(x1 < x < x2 and y1 < y < y2 for x, y in k)


def test_yunet_agrees_with_centerface_on_the_group_photo(yunet_file, footage, standins_dir):
    frame = cv2.imread(str(footage("multi_face.jpg")))
    yn = YuNetDetector(yunet_file, size=1280, score=0.6).detect(frame)
    settings = Settings().with_changes({"detector.model": "centerface", "detector.size": 1280})
    cf = make_detector(ModelLoader(settings.runtime, models_dir=standins_dir), settings).detect(frame)
    assert len(yn) == len(cf) == 5
    iou = box_iou(np.stack([d.bbox for d in yn]), np.stack([d.bbox for d in cf]))
    assert (iou.max(axis=1) > 0.5).all()


def test_make_detector_and_crop_detection(yunet_file, footage):
    settings = Settings().with_changes({"detector.model": "yunet"})
    det = make_detector(ModelLoader(settings.runtime, models_dir=yunet_file.parent), settings)
    assert isinstance(det, YuNetDetector)
    frame = cv2.imread(str(footage("single_face.jpg")))
    whole = det.detect(frame)[0]
    s = det.input_scale(frame.shape[:2])
    small = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    cx, cy = (whole.bbox[:2] + whole.bbox[2:]) / 2 * s
    side = int(2.6 * (whole.bbox[2] - whole.bbox[0]) * s)
    m = np.array([[1.0, 0, side / 2 - cx], [0, 1.0, side / 2 - cy]])
    crop = detect_in_crop(det, small, m, side)
    assert len(crop) == 1
    assert np.abs(crop[0].kps5 / s - whole.kps5).max() < 0.05 * (whole.bbox[2] - whole.bbox[0])
