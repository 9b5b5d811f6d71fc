"""Sources: webcam (fake capture), video file (looping, paced), image, frame pool."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from livecam.errors import CameraError
from livecam.io.fakes import FakeCapture
from livecam.io.sources import (
    EndOfStream,
    FramePool,
    ImageSource,
    VideoFileSource,
    WebcamSource,
    open_source,
    resolve_camera,
)
from livecam.settings import CameraSettings, Settings


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    """20 frames 320x240 at 30 fps, frame i filled with value 10*i (MJPG AVI)."""
    path = tmp_path_factory.mktemp("video") / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    for i in range(20):
        writer.write(np.full((240, 320, 3), 10 * i, np.uint8))
    writer.release()
    return path


def test_frame_pool_reuses_only_unreferenced_buffers():
    pool = FramePool(size=3)
    a = pool.acquire((4, 4, 3))
    b = pool.acquire((4, 4, 3))
    assert a is not b
    held = a
    del a
    c = pool.acquire((4, 4, 3))  # `held` still references the first buffer
    assert c is not held and c is not b
    del c
    d = pool.acquire((4, 4, 3))  # the third buffer is free again
    assert d is not held and d is not b
    assert pool.allocations == 3
    view = b[1:2]  # a view keeps its base alive: not free
    del b, d
    e = pool.acquire((4, 4, 3))
    assert e.base is None and not np.shares_memory(e, view) and not np.shares_memory(e, held)


def test_webcam_requests_mjpg_size_fps_and_buffer_of_one():
    fakes = []

    def factory(device):
        fakes.append(FakeCapture(device, frame_size=(640, 480)))
        return fakes[-1]

    src = WebcamSource(CameraSettings(device="2", width=1280, height=720, fps=30), capture_factory=factory)
    src.open()
    cap = fakes[0]
    assert cap.device == 2
    props = [p for p, _ in cap.sets]
    assert props.index(cv2.CAP_PROP_FOURCC) < props.index(cv2.CAP_PROP_FRAME_WIDTH)  # MJPG before size
    assert dict(cap.sets)[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"MJPG")
    assert dict(cap.sets)[cv2.CAP_PROP_BUFFERSIZE] == 1
    assert dict(cap.sets)[cv2.CAP_PROP_FPS] == 30
    frames = [src.read() for _ in range(5)]
    assert frames[0].shape == (720, 1280, 3)
    assert src.describe().startswith("webcam 2 1280x720")
    src.close()
    assert cap.released


def test_webcam_reports_the_real_size_not_the_requested_one():
    src = WebcamSource(CameraSettings(width=1920, height=1080),
                       capture_factory=lambda d: FakeCapture(d, frame_size=(640, 480), honour_size=False))
    src.open()
    assert src.read().shape == (480, 640, 3)
    assert (src.width, src.height) == (640, 480)


def test_webcam_that_cannot_open_names_the_camera_and_the_fix():
    src = WebcamSource(CameraSettings(device="3"), capture_factory=lambda d: FakeCapture(d, opened=False))
    with pytest.raises(CameraError) as err:
        src.open()
    assert "camera 3" in err.value.message and "--input" in err.value.fix


def test_unknown_camera_name_is_an_error_with_fix():
    with pytest.raises(CameraError) as err:
        resolve_camera("no such camera xyz")
    assert "livecam doctor" in err.value.fix


def test_failed_read_returns_none():
    cap = FakeCapture(0)
    src = WebcamSource(CameraSettings(), capture_factory=lambda d: cap)
    src.open()
    assert src.read() is not None
    cap.fail = True
    assert src.read() is None


def test_video_file_reads_all_frames_then_ends(small_video):
    src = VideoFileSource(small_video, loop=False, paced=False).open()
    values = []
    with pytest.raises(EndOfStream):
        while True:
            values.append(int(src.read()[120, 160, 0]))
    assert len(values) == 20
    assert abs(values[5] - 50) <= 3 and abs(values[19] - 190) <= 3  # MJPG: near-lossless on flat frames
    assert src.fps == pytest.approx(30.0)


def test_video_file_loops(small_video):
    src = VideoFileSource(small_video, loop=True, paced=False).open()
    frames = [src.read() for _ in range(45)]
    assert src.loops == 2
    assert abs(int(frames[20][0, 0, 0]) - int(frames[0][0, 0, 0])) <= 3


def test_video_file_paced_at_its_fps(small_video):
    src = VideoFileSource(small_video, loop=True, paced=True).open()
    src.read()
    t0 = time.perf_counter()
    for _ in range(15):
        src.read()
    elapsed = time.perf_counter() - t0
    assert 0.45 <= elapsed <= 1.5  # 15 frames at 30 fps = 0.5 s: never faster (generous upper: loaded CI)
    assert 10 <= src.measured_fps() <= 33


def test_image_source_is_a_still_camera(tmp_path, astronaut):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), astronaut)
    src = ImageSource(path, frames=3, paced=False).open()
    frames = [src.read() for _ in range(3)]
    assert all(np.array_equal(f, astronaut) for f in frames)
    with pytest.raises(EndOfStream):
        src.read()


def test_open_source_dispatch(tmp_path, small_video, astronaut):
    settings = Settings()
    img = tmp_path / "a.jpg"
    cv2.imwrite(str(img), astronaut)
    assert isinstance(open_source(str(img), settings), ImageSource)
    assert isinstance(open_source(str(small_video), settings), VideoFileSource)
    assert isinstance(open_source(None, settings), WebcamSource)
    assert open_source("1", settings).device == 1
    with pytest.raises(CameraError) as err:
        open_source(str(tmp_path / "missing.mp4"), settings)
    assert "missing.mp4" in err.value.message


def test_undecodable_video_is_a_camera_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(CameraError) as err:
        VideoFileSource(bad).open()
    assert "bad.mp4" in err.value.message and err.value.fix
