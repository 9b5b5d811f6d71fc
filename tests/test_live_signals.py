"""Never lose a recording: SIGTERM/SIGHUP stop `livecam run` like Ctrl-C, and sinks fail before the loop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import cv2
import pytest

from livecam.errors import CameraError
from livecam.io.sinks import FramesDirSink, VideoFileSink
from livecam.live import stop_on_signals


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from livecam.demo import write_demo_video

    return write_demo_video(tmp_path_factory.mktemp("clip") / "clip.avi", frames=60, size=(320, 240))


def _count_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def _run_until_stats(argv, env) -> tuple[subprocess.Popen, list[str]]:
    """Start `livecam run` and return once it printed its first stats line (the loop is running)."""
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    running = threading.Event()

    def read():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("fps in"):
                running.set()

    threading.Thread(target=read, daemon=True).start()
    if not running.wait(60):
        proc.kill()
        proc.wait()
        pytest.fail("livecam run never reached its loop:\n" + "\n".join(lines))
    return proc, lines


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_kill_leaves_a_playable_recording(clip, standins_dir, tmp_path, sig):
    out = tmp_path / "out.mp4"
    env = dict(os.environ, LIVECAM_MODELS_DIR=str(standins_dir))
    argv = [sys.executable, "-m", "livecam", "run", "--input", str(clip), "--sink", f"file:{out}", "--no-tui",
            "--set", "output.width=320", "--set", "output.height=240", "--stats-every", "0.5"]
    proc, lines = _run_until_stats(argv, env)
    time.sleep(0.5)  # some more frames
    proc.send_signal(sig)
    try:
        code = proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        time.sleep(0.2)
        pytest.fail(f"{sig.name} did not stop livecam run:\n" + "\n".join(lines[-30:]))
    time.sleep(0.2)  # let the reader thread take the last lines
    text = "\n".join(lines)
    assert code == 0, text
    assert f"stopped by {sig.name}" in text
    sent = int(re.search(r"^output: file .*, (\d+) frames$", text, re.M).group(1))
    assert sent >= 15  # at least 0.5 s at 30 fps went out
    assert out.stat().st_size > 0
    assert _count_frames(out) == sent  # playable (has its index) and holds every frame sent


def test_stop_on_signals_calls_back_once_and_restores(monkeypatch):
    seen = []
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(seen.append):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs on the main thread between bytecodes
        os.kill(os.getpid(), signal.SIGTERM)  # a repeat (the shell after the kernel): ignored
        time.sleep(0.05)
        assert seen == ["SIGTERM"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_ignored_by_nohup_stays_ignored():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_on_signals(lambda name: pytest.fail(f"{name} should stay ignored")):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
    finally:
        signal.signal(signal.SIGHUP, before)


def test_file_sink_on_unwritable_path_fails_at_open(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CameraError) as err:
        VideoFileSink(blocker / "out.mp4", size=(320, 240)).open()
    assert str(blocker) in err.value.message and err.value.fix
    with pytest.raises(CameraError) as err:
        VideoFileSink("/proc/livecam-out.mp4", size=(320, 240)).open()
    assert "/proc/livecam-out.mp4" in err.value.message and "writable" in err.value.fix


def test_frames_sink_bad_path_and_non_empty_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CameraError) as err:
        FramesDirSink(blocker).open()
    assert str(blocker) in err.value.message
    with pytest.raises(CameraError):
        FramesDirSink(blocker / "frames").open()

    old = tmp_path / "frames"
    old.mkdir()
    for i in range(3):
        (old / f"{i:06d}.png").write_bytes(b"old")
    with pytest.raises(CameraError) as err:
        FramesDirSink(old).open()
    assert "not empty" in err.value.message and "--overwrite" in err.value.fix
    assert len(list(old.iterdir())) == 3  # nothing removed without --overwrite
    sink = FramesDirSink(old, overwrite=True).open()
    assert list(old.iterdir()) == []
    sink.close()


def test_run_with_an_unwritable_file_sink_exits_before_the_loop(clip, standins_dir):
    env = dict(os.environ, LIVECAM_MODELS_DIR=str(standins_dir))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "livecam", "run", "--input", str(clip), "--sink",
                           "file:/proc/livecam/out.mp4", "--no-tui", "--duration", "5"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "/proc/livecam" in proc.stderr and "fix:" in proc.stderr and "Traceback" not in proc.stderr
    assert "fps in" not in proc.stderr  # the loop never started
    assert time.perf_counter() - t0 < 30  # generous: a loaded 2-core machine


def test_run_refuses_a_non_empty_frames_folder(clip, standins_dir, tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "000000.png").write_bytes(b"old")
    env = dict(os.environ, LIVECAM_MODELS_DIR=str(standins_dir))
    proc = subprocess.run([sys.executable, "-m", "livecam", "run", "--input", str(clip), "--sink", f"frames:{out}",
                           "--no-tui", "--once"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "livecam", "run", "--input", str(clip), "--sink", f"frames:{out}",
                           "--no-tui", "--once", "--overwrite"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (out / "000000.png").stat().st_size > 100  # a real frame replaced the old file


def test_sigterm_quits_the_tui_and_finalises_the_recording(clip, standins_dir, tmp_path, on_pty):
    """The TUI owns the terminal; SIGTERM must still end it like `q` and finalise the file."""
    out = tmp_path / "tui.mp4"
    argv = [sys.executable, "-m", "livecam", "run", "--input", str(clip), "--sink", f"file:{out}",
            "--set", "output.width=320", "--set", "output.height=240"]
    proc = on_pty(argv, {"LIVECAM_MODELS_DIR": str(standins_dir), "TERM": "xterm-256color"})
    assert proc.read_until((b"NO FACE", b"LIVE"), 60.0), proc.output[-2000:]  # the TUI is up
    time.sleep(1.0)  # frames go out
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(15.0) == 0
    assert _count_frames(out) >= 15  # playable, with the frames of the run
