"""`livecam demo`: the whole live pipeline with no webcam, GPU, network or downloaded model.

- Input: a built-in moving face, the public-domain astronaut photo (NASA, Eileen Collins;
  shipped as `livecam/assets/astronaut.jpg`) swaying and nodding slowly like a person at a
  desk, with a "DEMO" caption burnt into every frame.
- Detector: the real YuNet shipped in livecam (the `cpu` profile's detector).
- Swapper and the other models: the contract-true stand-ins of `livecam.testing.standins`,
  written to a temp folder on the fly; the `tint` swapper colours the face by the source's
  identity, so the swap region is visible. It is not a face swap: only the plumbing is real.
- Output: the virtual camera when one opens (so Zoom/OBS can be checked for "livecam" before
  any download), else a preview window when there is a display, else `demo.mp4` (10 s).

`write_demo_video` writes the same moving face to a file (benchmarks and tests use it).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CAPTION = "livecam demo - stand-in models, not a real face swap"
DEMO_FILE = "demo.mp4"
DEMO_FILE_SECONDS = 10.0


def astronaut() -> np.ndarray:
    """The public-domain astronaut photo shipped with the package, BGR uint8 512x512."""
    import cv2

    data = resources.files("livecam.assets").joinpath("astronaut.jpg").read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:  # pragma: no cover - a broken install
        raise RuntimeError("livecam/assets/astronaut.jpg is unreadable: reinstall livecam")
    return image


class DeskScene:
    """The photo on a gradient backdrop, swaying and nodding on a loop of `period` frames.

    The motion is smooth and periodic (frame `period` equals frame 0), so a video of one
    period loops without a jump. Frame i is a pure function of i.
    """

    def __init__(self, size: tuple[int, int] = (1280, 720), period: int = 90, face: np.ndarray | None = None,
                 caption: str | None = None):
        import cv2

        face = astronaut() if face is None else face
        w, h = size
        self.size = size
        self.period = max(1, int(period))
        fh = min(face.shape[0], int(h * 0.8))
        fw = int(face.shape[1] * fh / face.shape[0])
        self.face = cv2.resize(face, (fw, fh), interpolation=cv2.INTER_AREA)
        grad = np.linspace(40, 160, w, dtype=np.float32)[None, :, None]
        self.background = np.broadcast_to(grad, (h, w, 3)).astype(np.uint8).copy()
        if caption:
            scale = max(0.4, h / 900)
            thick = max(1, round(scale * 2))
            (_, th), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            cv2.putText(self.background, caption, (10, h - th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                        thick, cv2.LINE_AA)
        self.span = max(0, (w - fw) // 2 - 10)

    def position(self, i: int) -> tuple[int, int]:
        """Top-left corner of the photo in frame i: a slow sway and a nod at twice its rate."""
        w, h = self.size
        fh, fw = self.face.shape[:2]
        phase = 2 * math.pi * (i % self.period) / self.period
        x = (w - fw) // 2 + int(round(self.span * 0.5 * math.sin(phase)))
        y = (h - fh) // 2 + int(round(10 * math.sin(2 * phase)))
        return x, y

    def frame(self, i: int, out: np.ndarray | None = None) -> np.ndarray:
        out = self.background.copy() if out is None else out
        if out is not self.background:
            out[:] = self.background
        x, y = self.position(i)
        fh, fw = self.face.shape[:2]
        out[y:y + fh, x:x + fw] = self.face
        return out

    def frames(self):
        """Endless fresh frames (the live loop may hold a frame while the next one is drawn)."""
        i = 0
        while True:
            yield self.frame(i)
            i += 1


def write_demo_video(path: str | Path, frames: int = 90, size: tuple[int, int] = (1280, 720), fps: float = 30.0,
                     face: np.ndarray | None = None, caption: str | None = None) -> Path:
    """An MJPG AVI of one loop of the desk scene (`frames` frames; it loops seamlessly)."""
    import cv2

    scene = DeskScene(size, period=frames, face=face, caption=caption)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), size)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    buf = scene.background.copy()
    try:
        for i in range(frames):
            writer.write(scene.frame(i, buf))
    finally:
        writer.release()
    return path


# -- the command ---------------------------------------------------------------------------
def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="try the whole pipeline now: no webcam, GPU, network or model download",
        description="A built-in moving face (a public-domain photo) through the real detector and stand-in "
                    "swap models, to the virtual camera if one exists, else a preview window, else demo.mp4. "
                    "The stand-ins tint the face: this checks the setup, not the swap quality.")
    p.add_argument("--sink", metavar="SPEC", help="where to send it (default: vcam, else preview, else "
                                                  f"file:{DEMO_FILE}); same specs as `livecam run --sink`")
    p.add_argument("--duration", type=float, metavar="S",
                   help=f"stop after S seconds (default: {DEMO_FILE_SECONDS:g} s into a file, else until q/Ctrl-C)")
    p.add_argument("--no-tui", action="store_true", help="no terminal UI: log stats to stderr")
    p.add_argument("--stats-every", type=float, default=5.0, metavar="S", help="plain mode: print stats every S s")
    p.set_defaults(func=cmd_demo)


def pick_sink(settings, spec: str | None):
    """The sink to use and whether it is a file: `spec` if given, else the first that opens of
    the virtual camera, a preview window (with a display) and demo.mp4."""
    from livecam.errors import VirtualCameraError
    from livecam.io.sinks import display_available, open_sink

    if spec:
        sink = open_sink(spec, settings)
        return sink.open(), spec.startswith("file:")
    try:
        return open_sink("vcam", settings).open(), False
    except VirtualCameraError as exc:
        log.info("no virtual camera (%s); trying the next output", exc.message)
    if display_available():
        try:
            return open_sink("preview", settings).open(), False
        except VirtualCameraError:
            pass
    return open_sink(f"file:{DEMO_FILE}", settings).open(), True


def demo_source(settings):
    """The live loop's source: the desk scene at the output size, paced like a camera."""
    from livecam.io.sources import ArraySource

    size = (settings.output.width, settings.output.height)
    scene = DeskScene(size, period=int(settings.output.fps * 8), caption=CAPTION)
    source = ArraySource(scene.frames(), fps=float(settings.output.fps), paced=True)
    source.kind = "demo"
    return source


def cmd_demo(args) -> int:
    import cv2

    from livecam.commands import load_settings, run_session
    from livecam.testing.standins import write_standins

    with tempfile.TemporaryDirectory(prefix="livecam-demo-") as tmp:
        models = Path(tmp) / "models"
        write_standins(models, swapper="tint")
        face = Path(tmp) / "astronaut.png"
        cv2.imwrite(str(face), astronaut())
        run_args = argparse.Namespace(
            # colour transfer would match the stand-in's tint back to the scene: off, so the
            # swapped face region shows
            profile="cpu", overrides=["composite.color_transfer=false"], models_dir=str(models), source=str(face), camera=None,
            no_tui=args.no_tui, duration=args.duration, stats_every=args.stats_every, fit="contain",
        )
        settings = load_settings(run_args)
        sink, to_file = pick_sink(settings, args.sink)
        if to_file and run_args.duration is None:
            run_args.duration = DEMO_FILE_SECONDS
        print(f"livecam demo: {CAPTION}; output {sink.describe()}"
              + ("" if run_args.duration else " (q or Ctrl-C to stop)"), file=sys.stderr, flush=True)
        code = run_session(run_args, settings, demo_source(settings), sink)
        if to_file and code == 0:
            print(f"livecam demo: wrote {sink.describe()} ({sink.frames_sent} frames); play it with any video player",
                  file=sys.stderr, flush=True)
        return code
