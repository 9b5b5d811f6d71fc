"""YuNet ships inside livecam: the cpu profile and `livecam demo` detect faces with no download."""

from __future__ import annotations

import cv2

from benchmarks.footage import ASSETS
from livecam.inference.store import sha256_hex
from livecam.face.detect import YUNET_MODEL, make_detector
from livecam.inference.models import ModelLoader
from livecam.profiles import load_profile


def test_yunet_resolves_from_the_package_verified_and_offline(tmp_path):
    loader = ModelLoader(models_dir=tmp_path)  # an empty models dir: nothing downloaded
    path = loader.path(YUNET_MODEL)
    assert path.parent.name == "assets" and path.parent.parent.name == "livecam"
    assert sha256_hex(path) == ASSETS["face_detection_yunet_2023mar.onnx"].sha256
    assert (path.parent / "LICENSE-yunet.txt").read_text().count("MIT License") == 1


def test_cpu_profile_finds_the_selfie_face_with_the_shipped_yunet(tmp_path, footage):
    settings = load_profile("cpu")
    assert settings.detector.model == "yunet"
    det = make_detector(ModelLoader(models_dir=tmp_path), settings)
    frame = cv2.imread(str(footage("single_face.jpg")))
    faces = det.detect(frame)
    assert len(faces) == 1 and faces[0].score >= 0.8
