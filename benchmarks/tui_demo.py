"""A session without camera, GPU or models, to try and test the UI.

`DemoSession(frozen=True)` has fixed stats (for snapshot tests);
`DemoSession(frozen=False).start()` runs a synthetic frame loop thread that
does real per-frame work (a blur on a 720p frame), reads `controls.current()`
once per frame and writes `Stats` like the live loop does. `python -m
benchmarks.tui_demo [--frozen]` shows the UI over it (e.g. under tmux).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from livecam.controls import Controls, Stats, StatsSnapshot
from livecam.errors import SourceFaceError
from livecam.settings import Settings

DEMO_COLOURS = {"alice": (60, 120, 220), "bob": (200, 140, 60), "carol": (90, 200, 120)}


def demo_thumbnail(bgr: tuple[int, int, int], size: int = 48) -> np.ndarray:
    """A synthetic 'face' thumbnail: a coloured ellipse with eyes on a dark ground."""
    import cv2

    img = np.full((size, size, 3), 30, np.uint8)
    c = size // 2
    cv2.ellipse(img, (c, c), (size // 3, int(size * 0.42)), 0, 0, 360, bgr, -1)
    for dx in (-size // 7, size // 7):
        cv2.circle(img, (c + dx, int(size * 0.42)), max(1, size // 16), (20, 20, 20), -1)
    cv2.ellipse(img, (c, int(size * 0.66)), (size // 8, size // 20), 0, 0, 360, (40, 40, 160), -1)
    return img


@dataclass
class DemoFace:
    name: str
    thumbnail: np.ndarray | None = None
    paths: tuple = ()


@dataclass
class DemoBank:
    faces: list = field(default_factory=list)

    def names(self) -> list[str]:
        return [f.name for f in self.faces]

    def get(self, name: str):
        return next((f for f in self.faces if f.name == name), None)

    def add(self, path) -> DemoFace:
        import cv2
        from pathlib import Path

        image = cv2.imread(str(path))
        if image is None:
            raise SourceFaceError(f"cannot read image {path}", "give a JPEG or PNG face photo")
        face = DemoFace(Path(path).stem, cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA), (str(path),))
        self.faces.append(face)
        return face


class FrozenStats(Stats):
    """Stats whose snapshot is a fixed value (snapshot tests)."""

    def __init__(self, snap: StatsSnapshot):
        super().__init__()
        self.frozen = snap

    def snapshot(self) -> StatsSnapshot:
        return self.frozen


def frozen_snapshot() -> StatsSnapshot:
    return StatsSnapshot(
        fps_in=30.0, fps_out=29.9, fps_processed=29.9,
        latency_ms={"p50": 41.0, "p95": 58.0},
        host_ms={"p50": 21.4, "p95": 27.9},
        stage_ms={"track": {"p50": 2.1}, "align": {"p50": 0.4}, "swap": {"p50": 9.8}, "guard": {"p50": 0.2},
                  "masks": {"p50": 3.1}, "temporal": {"p50": 0.9}, "paste": {"p50": 1.6}},
        frames_in=9000, frames_processed=8990, frames_out=8990,
        detector_calls=1500, dropped=10, guard_rejects=2, faces=1,
        providers={"hyperswap_1a_256": "tensorrt", "scrfd_2.5g": "tensorrt", "2dfan4": "cuda", "arcface_w600k_r50": "cuda"},
        camera="webcam 0 1280x720@30.0 MJPG", camera_ok=True,
        output="/dev/video10 1280x720@30 I420",
        fps_history=[29.5, 30.0, 29.9, 28.0, 24.5, 27.0, 29.8, 30.0, 30.0, 29.7] * 4,
        latency_history=[40.0, 41.0, 43.0, 45.0, 52.0, 60.0, 48.0, 42.0, 41.0, 40.0] * 4,
        log=["10:14:03 guard: NaN output from hyperswap_1a_256 (track 1), held last good swap",
             "10:14:09 camera: 2 frames late (USB), dropped"],
    )


class DemoSession:
    """Controls, Stats and a face bank; optionally a synthetic frame loop."""

    def __init__(self, settings: Settings | None = None, *, frozen: bool = True, faces=("alice", "bob", "carol"),
                 frame_ms: float = 0.0, size=(1280, 720), profile_name: str = "default"):
        self.controls = Controls(settings or Settings())
        self.stats: Stats = FrozenStats(frozen_snapshot()) if frozen else Stats()
        self.bank = DemoBank([DemoFace(n, demo_thumbnail(DEMO_COLOURS.get(n, (128, 128, 128)))) for n in faces])
        self.profile_name = profile_name
        self.gpu_name = "NVIDIA GeForce RTX 4070 (demo)" if frozen else ""
        self.frame_ms = frame_ms
        self.size = size
        self.host_ms: list[float] = []
        self.seen_versions: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the synthetic loop (frozen=False) -------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="demo-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        import cv2

        w, h = self.size
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        out = np.empty_like(frame)
        period = 1.0 / max(1, self.controls.current().settings.camera.fps)
        next_t = time.perf_counter()
        self.stats.set(camera=f"demo {w}x{h}@{1 / period:.0f}", output="null sink", providers={"demo": "cpu"})
        while not self._stop.is_set():
            self.stats.frame_in()
            t0 = time.perf_counter()
            state = self.controls.current()
            if state.bypass:
                out[:] = frame
            else:
                cv2.GaussianBlur(frame, (9, 9), 0, dst=out)
            host_ms = (time.perf_counter() - t0) * 1000.0
            self.host_ms.append(host_ms)
            self.seen_versions.append(state.version)
            self.stats.frame_processed(host_ms, {"swap": host_ms}, faces=1)
            self.stats.frame_out(host_ms + 5.0)
            next_t += period
            delay = next_t - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_t = time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    import argparse

    from livecam.profiles import load_profile
    from livecam.tui.app import run_tui

    parser = argparse.ArgumentParser(prog="python -m benchmarks.tui_demo",
                                     description="the UI over a demo session (no camera, GPU or models)")
    parser.add_argument("--frozen", action="store_true", help="fixed stats (as in the snapshot tests)")
    parser.add_argument("--profile", default="default", help="profile to start from")
    args = parser.parse_args(argv)
    session = DemoSession(load_profile(args.profile), frozen=args.frozen, profile_name=args.profile)
    if not args.frozen:
        session.start()
    try:
        return run_tui(session, sample_history=not args.frozen)
    finally:
        session.stop()


if __name__ == "__main__":
    raise SystemExit(main())
