"""`livecam demo`: the whole pipeline with no webcam, GPU, network or downloaded model."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from livecam import demo
from livecam.settings import Settings


def test_the_astronaut_ships_with_the_package():
    image = demo.astronaut()
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    assert 80 < image.mean() < 180  # a real photo, not a blank


def test_desk_scene_moves_smoothly_and_loops():
    scene = demo.DeskScene((640, 360), period=240)  # the demo's 8 s loop at 30 fps
    xs = [scene.position(i)[0] for i in range(241)]
    assert np.array_equal(scene.frame(0), scene.frame(240))  # one period loops without a jump
    assert max(xs) - min(xs) > 50  # it sways
    assert max(abs(a - b) for a, b in zip(xs, xs[1:])) <= 6  # smoothly, like a person at a desk


def test_sink_falls_back_to_a_file_without_vcam_or_display(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("platform.system", lambda: "Linux")
    from livecam.errors import VirtualCameraError
    from livecam.io import sinks

    def no_vcam(self):
        raise VirtualCameraError("no virtual camera here", "load v4l2loopback")

    monkeypatch.setattr(sinks.VirtualCameraSink, "open", no_vcam)
    sink, to_file = demo.pick_sink(Settings(), None)
    assert to_file and sink.kind == "file" and sink.path.name == demo.DEMO_FILE
    sink.close()


def test_livecam_demo_writes_a_labelled_swapped_video(tmp_path):
    out = tmp_path / "demo.mp4"
    env = {k: v for k, v in os.environ.items() if k not in ("LIVECAM_MODELS_DIR", "DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-m", "livecam", "demo", "--sink", f"file:{out}", "--duration", "3",
                           "--no-tui", "--stats-every", "1"], capture_output=True, text=True, timeout=180, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "stand-in models, not a real face swap" in proc.stderr
    assert "faces 1" in proc.stderr  # the real detector found the moving face
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) >= 30
    # The tint stand-in swap changed the face: compare each output frame with the closest
    # input frame of the scene (the same motion, no swap).
    h, w = frames[-1].shape[:2]
    scene = demo.DeskScene((w, h), period=8 * 30, caption=demo.CAPTION)
    last = frames[-1].astype(int)
    best = min(range(scene.period), key=lambda i: np.abs(scene.frame(i).astype(int) - last).mean())
    raw = scene.frame(best).astype(int)
    diff = np.abs(raw - last).sum(axis=2)
    x, y = scene.position(best)
    fh, fw = scene.face.shape[:2]
    inside = diff[y:y + fh, x:x + fw]
    assert diff[: max(1, y - 5)].mean() < 12  # background above the photo untouched (codec noise only)
    assert (inside > 60).mean() > 0.005  # part of the photo (the face) visibly tinted
