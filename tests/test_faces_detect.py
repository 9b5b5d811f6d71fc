"""Detectors: decode numbers by hand, the SCRFD stand-in's known face, real CenterFace on a photo."""

from __future__ import annotations

import numpy as np
import pytest

from livecam.face.detect import (
    CenterFaceDetector,
    ScrfdDetector,
    box_iou,
    centerface_decode,
    detect_in_crop,
    make_detector,
    nms,
    scrfd_anchor_centers,
    scrfd_decode,
)
from livecam.settings import Settings
from livecam.testing.scenes import REFERENCE_BBOX, REFERENCE_KPS5


def test_anchor_centers_row_major_two_per_location():
    c = scrfd_anchor_centers(64, 96, 32, 2)  # 2 rows x 3 cols x 2 anchors
    assert c.shape == (12, 2)
    centres = [(x, y) for y in (0, 32) for x in (0, 32, 64)]
    assert c.tolist() == [[float(x), float(y)] for x, y in centres for _ in range(2)]
    assert len(scrfd_anchor_centers(640, 640, 8)) == 12800
    assert len(scrfd_anchor_centers(640, 640, 16)) == 3200
    assert len(scrfd_anchor_centers(640, 640, 32)) == 800


def _scrfd_outputs(h, w, hits):
    """9 SCRFD outputs with `hits` = {(stride, row): (score, ltrb, kps10)} (raw, stride units)."""
    scores, boxes, kps = [], [], []
    for s in (8, 16, 32):
        n = (h // s) * (w // s) * 2
        sc, bb, kp = np.zeros((n, 1), np.float32), np.zeros((n, 4), np.float32), np.zeros((n, 10), np.float32)
        for (hs, row), (score, ltrb, k) in hits.items():
            if hs == s:
                sc[row], bb[row], kp[row] = score, ltrb, k
        scores.append(sc)
        boxes.append(bb)
        kps.append(kp)
    return scores + boxes + kps


def test_scrfd_decode_hand_computed():
    # stride 16, location x=3, y=2 on a 128x128 input -> row (2*8+3)*2 + 1 = 39, centre (48, 32)
    kps10 = np.array([-0.5, -0.25, 0.5, -0.25, 0, 0.25, -0.25, 0.75, 0.25, 0.75])
    hits = {(16, 39): (0.9, (1.0, 0.5, 2.0, 1.5), kps10)}
    out = _scrfd_outputs(128, 128, hits)
    boxes, kps, scores = scrfd_decode(out, (128, 128), 0.5)
    assert scores.tolist() == pytest.approx([0.9])
    assert boxes[0].tolist() == pytest.approx([48 - 16, 32 - 8, 48 + 32, 32 + 24])
    assert np.allclose(kps[0], [[40, 28], [56, 28], [48, 36], [44, 44], [52, 44]])
    # a batched (3-D) output decodes the same
    boxes3, kps3, _ = scrfd_decode([o[None] for o in out], (128, 128), 0.5)
    assert np.allclose(boxes3, boxes) and np.allclose(kps3, kps)
    # below the threshold: nothing
    assert scrfd_decode(out, (128, 128), 0.95)[2].size == 0


def test_nms_and_iou():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    assert box_iou(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(81 / 119)
    keep = nms(boxes, np.array([0.8, 0.9, 0.7]), 0.4)
    assert keep.tolist() == [1, 2]
    assert nms(boxes, np.array([0.8, 0.9, 0.7]), 0.9).tolist() == [1, 0, 2]


def test_centerface_decode_hand_computed():
    h = w = 8
    heat = np.zeros((1, 1, h, w), np.float32)
    heat[0, 0, 2, 3] = 0.8
    scale = np.zeros((1, 2, h, w), np.float32)
    scale[0, 0, 2, 3] = np.log(10.0)  # box height 40
    scale[0, 1, 2, 3] = np.log(5.0)  # box width 20
    off = np.zeros((1, 2, h, w), np.float32)
    off[0, 0, 2, 3], off[0, 1, 2, 3] = 0.25, -0.5
    lms = np.zeros((1, 10, h, w), np.float32)
    lms[0, 0, 2, 3], lms[0, 1, 2, 3] = 0.5, 0.25  # point 0: y 0.5 of height, x 0.25 of width
    boxes, kps, scores = centerface_decode(heat, scale, off, lms, 0.5)
    cx, cy = (3 - 0.5 + 0.5) * 4, (2 + 0.25 + 0.5) * 4  # 12, 11
    assert boxes[0].tolist() == pytest.approx([cx - 10, cy - 20, cx + 10, cy + 20])
    assert np.allclose(kps[0, 0], [cx - 10 + 0.25 * 20, cy - 20 + 0.5 * 40])
    assert scores.tolist() == pytest.approx([0.8])


@pytest.fixture(scope="module")
def loader(standins_dir):
    from livecam.inference.models import ModelLoader

    return ModelLoader(Settings().runtime, models_dir=standins_dir)


def test_scrfd_standin_known_face_and_letterbox(loader):
    from livecam.testing.standins import SCRFD_BOX, SCRFD_SCORE, scrfd_kps5

    det = make_detector(loader, Settings())
    assert isinstance(det, ScrfdDetector)
    # a 16:9 frame letterboxed top-left into 640x640 at scale 1 -> the stand-in's box as is
    found = det.detect(np.zeros((360, 640, 3), np.uint8))
    assert len(found) == 1  # the anchor-1 twin is suppressed by NMS, the 0.30 one is below threshold
    assert found[0].bbox.tolist() == pytest.approx(SCRFD_BOX, abs=1e-3)
    assert np.allclose(found[0].kps5, scrfd_kps5(), atol=1e-3)
    assert found[0].score == pytest.approx(SCRFD_SCORE)
    # 1280x720 -> scale 0.5: frame coordinates are twice the input's
    big = det.detect(np.zeros((720, 1280, 3), np.uint8))
    assert big[0].bbox.tolist() == pytest.approx([2 * v for v in SCRFD_BOX], abs=1e-3)


def test_scrfd_preprocess_rgb_normalised(loader):
    det = ScrfdDetector(loader.session("scrfd_2.5g"), size=64)
    frame = np.zeros((32, 64, 3), np.uint8)
    frame[..., 0] = 255  # blue
    blob, scale = det.preprocess(frame)
    assert scale == 1.0 and blob.shape == (1, 3, 64, 64)
    assert blob[0, 2, 0, 0] == pytest.approx((255 - 127.5) / 128)  # blue is the last RGB plane
    assert blob[0, 0, 0, 0] == pytest.approx(-127.5 / 128)
    assert blob[0, 2, 40, 0] == pytest.approx(-127.5 / 128)  # letterbox padding


def test_planar_rgb_blob_is_the_arithmetic():
    """The detectors' blob from a split and per-plane tables: bit for bit what the arithmetic
    gives ((x - 127.5) / 128 for SCRFD, x for CenterFace), RGB planes from a BGR canvas."""
    from livecam.ops.cpu import planar_rgb, value_table

    canvas = np.random.default_rng(3).integers(0, 256, (96, 160, 3), dtype=np.uint8)
    planes = [np.empty((96, 160), np.uint8) for _ in range(3)]
    for table, expected in ((value_table(1.0 / 128.0, -127.5), (canvas.astype(np.float32) - 127.5) / 128.0),
                            (value_table(), canvas.astype(np.float32))):
        blob = planar_rgb(canvas, table, np.full((1, 3, 96, 160), np.nan, np.float32), planes)
        assert np.array_equal(blob[0], expected[..., ::-1].transpose(2, 0, 1))


@pytest.fixture(scope="module")
def centerface():
    from livecam.inference.models import ModelLoader

    s = Settings().with_changes({"detector.model": "centerface"})
    det = make_detector(ModelLoader(s.runtime), s)
    assert isinstance(det, CenterFaceDetector)
    return det


def test_centerface_finds_the_astronaut(centerface, astronaut):
    faces = centerface.detect(astronaut)
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.8
    assert box_iou(f.bbox[None], REFERENCE_BBOX[None])[0, 0] > 0.85
    iod = np.linalg.norm(REFERENCE_KPS5[1] - REFERENCE_KPS5[0])
    assert np.linalg.norm(f.kps5 - REFERENCE_KPS5, axis=1).max() < 0.1 * iod


def test_centerface_input_multiple_of_32(centerface):
    ch, cw, scale, nh, nw = centerface.input_shape((720, 1280))
    assert (ch, cw) == (384, 640) and scale == 0.5 and (nh, nw) == (360, 640)
    assert centerface.input_shape((500, 333))[:2] == (640, 448)


def test_centerface_scale_and_shift_equivariant(centerface, astronaut):
    """The same photo twice as large, shifted, in a bigger frame: points follow (within 5% IOD)."""
    import cv2

    base = centerface.detect(astronaut)[0]
    frame = np.full((1024, 1400, 3), 90, np.uint8)
    frame[100:924, 300:1324] = cv2.resize(astronaut, (1024, 1024))[:824]
    f = centerface.detect(frame)[0]
    expected = base.kps5 * 2 + [300, 100]
    iod = np.linalg.norm(expected[1] - expected[0])
    assert np.linalg.norm(f.kps5 - expected, axis=1).mean() < 0.05 * iod


def test_detect_in_crop_maps_back(centerface, astronaut):
    """An upright crop of a rotated face, detected and mapped back, lands on the rotated points."""
    import cv2

    c = REFERENCE_KPS5.mean(0)
    rot = cv2.getRotationMatrix2D(tuple(c), 20, 1.0)  # rotates the image by +20° (counter-clockwise)
    rotated = cv2.warpAffine(astronaut, rot, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    truth = REFERENCE_KPS5 @ rot[:, :2].T + rot[:, 2]
    # frame -> crop: undo the rotation about the face centre, centre it in a 320 crop
    back = cv2.getRotationMatrix2D(tuple(c), -20, 1.0)
    back[:, 2] += 160 - c
    dets = detect_in_crop(centerface, rotated, back, 320)
    assert len(dets) == 1
    iod = np.linalg.norm(truth[1] - truth[0])
    assert np.linalg.norm(dets[0].kps5 - truth, axis=1).mean() < 0.06 * iod
