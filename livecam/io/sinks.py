"""Frame sinks: virtual camera, video file, PNG frames directory, preview window, null.

A sink is written by one thread (the live loop's output thread, or `bench`):
`open()`, then `send(frame)` for a new frame, `repeat()` to send the previous
frame again (the output never freezes: call apps show black or a frozen
picture when a virtual camera stops receiving), `close()`.

`VirtualCameraSink` sends a fixed size (default 1280x720@30, even dimensions)
whatever the camera gives: the frame is letterboxed (`fit="contain"`) or
cropped to fill (`fit="cover"`) into a preallocated canvas, then converted to
the format that costs least (I420 on v4l2loopback, with `cv2.cvtColor`
BGR→YUV_I420 into a preallocated buffer; BGR elsewhere, where the OBS backends
convert). A repeat re-sends the already converted buffer.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
from pathlib import Path

import numpy as np

from livecam.errors import CameraError, VirtualCameraError

log = logging.getLogger(__name__)

MODPROBE = 'sudo modprobe v4l2loopback devices=1 video_nr=10 card_label="livecam" exclusive_caps=1'


class Sink:
    kind = "sink"
    repeats = True  # re-send the last frame on output ticks without a new frame

    def __init__(self) -> None:
        self.frames_sent = 0
        self.frames_new = 0
        self.is_open = False
        self.stop_requested = threading.Event()  # a sink may ask the app to quit (preview 'q')

    def open(self) -> "Sink":
        self.is_open = True
        return self

    def send(self, frame: np.ndarray) -> None:
        self.frames_sent += 1
        self.frames_new += 1

    def repeat(self) -> None:
        self.frames_sent += 1

    def close(self) -> None:
        self.is_open = False

    def describe(self) -> str:
        return self.kind

    def __enter__(self):
        return self.open() if not self.is_open else self

    def __exit__(self, *exc) -> None:
        self.close()


class NullSink(Sink):
    """Discards frames (benchmarks, soak runs, headless tests). Keeps the last one for inspection."""

    kind = "null"

    def __init__(self, keep_last: bool = True):
        super().__init__()
        self.keep_last = keep_last
        self.last: np.ndarray | None = None

    def send(self, frame: np.ndarray) -> None:
        super().send(frame)
        if self.keep_last:
            self.last = frame


class Fitter:
    """Letterbox (contain) or crop-to-fill (cover) frames into a fixed canvas, reusing buffers."""

    def __init__(self, width: int, height: int, fit: str = "contain"):
        if fit not in ("contain", "cover"):
            raise ValueError(f"fit must be 'contain' or 'cover', not {fit!r}")
        self.width, self.height, self.fit = width, height, fit
        self.canvas = np.zeros((height, width, 3), np.uint8)
        self._geom: tuple | None = None  # input shape the geometry was computed for

    def _plan(self, h: int, w: int) -> None:
        W, H = self.width, self.height
        if self.fit == "contain":
            scale = min(W / w, H / h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            x, y = (W - nw) // 2, (H - nh) // 2
            self._geom = ((h, w), None, (x, y, nw, nh))
        else:
            scale = max(W / w, H / h)
            cw, ch = min(w, max(1, round(W / scale))), min(h, max(1, round(H / scale)))  # never an empty crop
            cx, cy = (w - cw) // 2, (h - ch) // 2
            self._geom = ((h, w), (cx, cy, cw, ch), (0, 0, W, H))
        self.canvas[:] = 0  # clear old bars when the input size changes

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        h, w = frame.shape[:2]
        if (h, w) == (self.height, self.width):
            return frame
        if self._geom is None or self._geom[0] != (h, w):
            self._plan(h, w)
        _, crop, (x, y, nw, nh) = self._geom
        if crop is not None:
            cx, cy, cw, ch = crop
            frame = frame[cy:cy + ch, cx:cx + cw]
        dst = self.canvas[y:y + nh, x:x + nw]
        interp = cv2.INTER_AREA if frame.shape[1] > nw else cv2.INTER_LINEAR
        out = cv2.resize(frame, (nw, nh), dst=dst, interpolation=interp)
        if out is not dst:  # OpenCV allocated; copy in
            dst[:] = out
        return self.canvas


def vcam_fix(system: str | None = None) -> str:
    """The per-OS fix for a missing virtual camera."""
    system = system or platform.system()
    if system == "Linux":
        return (
            "install v4l2loopback (`sudo apt install v4l2loopback-dkms`) and load it: "
            f"`{MODPROBE}`, then pass --set output.device=/dev/video10. "
            "exclusive_caps=1 is needed for Chrome/Meet/Teams-web to list the camera; "
            "the Zoom snap may only see it without exclusive_caps (reload the module without it if Zoom "
            "does not list it). Make sure your user is in the 'video' group. "
            "Or run with another sink: --sink preview, --sink file:out.mp4, --sink null"
        )
    if system in ("Windows", "Darwin"):
        return (
            "install OBS Studio (30 or later) and start its virtual camera once (Start Virtual Camera, "
            "then Stop) so the device is registered; restart the meeting app afterwards. "
            "Or run with another sink: --sink preview, --sink file:out.mp4, --sink null"
        )
    return "no virtual camera backend exists for this OS; use --sink preview, file:PATH or null"


class VirtualCameraSink(Sink):
    """pyvirtualcam output at a fixed size and fps."""

    kind = "vcam"

    def __init__(self, width: int = 1280, height: int = 720, fps: float = 30.0, device: str | None = None,
                 *, fit: str = "contain", fmt: str | None = None, backend: str | None = None):
        super().__init__()
        if width % 2 or height % 2:
            raise VirtualCameraError(
                f"virtual camera size {width}x{height} has an odd dimension",
                "use even width and height (Chrome rejects odd-width YUV420): --set output.width=1280 "
                "--set output.height=720",
            )
        self.width, self.height, self.fps = width, height, fps
        self.device = device or None
        self.backend = backend
        self.fmt_name = fmt or ("I420" if platform.system() == "Linux" else "BGR")
        self._fitter = Fitter(width, height, fit)
        self._yuv = np.empty((height * 3 // 2, width), np.uint8) if self.fmt_name == "I420" else None
        self._last: np.ndarray | None = None
        self._cam = None

    def open(self) -> "VirtualCameraSink":
        try:
            import pyvirtualcam
        except ImportError as exc:  # pragma: no cover - dependency of the package
            raise VirtualCameraError("pyvirtualcam is not installed", "pip install pyvirtualcam") from exc
        fmt = getattr(pyvirtualcam.PixelFormat, self.fmt_name)
        from pyvirtualcam.camera import BACKENDS

        if self.backend is not None and self.backend not in BACKENDS:
            raise VirtualCameraError(f"unknown virtual camera backend {self.backend!r}",
                                     f"use one of: {', '.join(BACKENDS) or 'none on this OS'}")
        if not BACKENDS:
            raise VirtualCameraError(f"virtual camera unavailable: no pyvirtualcam backend for {platform.system()}",
                                     vcam_fix())
        try:
            self._cam = pyvirtualcam.Camera(self.width, self.height, self.fps, fmt=fmt,
                                            device=self.device, backend=self.backend)
        except (RuntimeError, KeyError, ValueError, OSError) as exc:
            detail = str(exc).strip() or f"no virtual camera backend for {platform.system()}"
            if isinstance(exc, KeyError):
                detail = f"unknown virtual camera backend {self.backend!r}"
            where = f" {self.device}" if self.device else ""
            raise VirtualCameraError(f"virtual camera{where} unavailable: {detail}", vcam_fix()) from exc
        self.device = self._cam.device
        self.is_open = True
        return self

    def describe(self) -> str:
        dev = self.device or "?"
        backend = self._cam.backend if self._cam is not None else (self.backend or "")
        return f"vcam {dev} {self.width}x{self.height}@{self.fps:g} {self.fmt_name} ({backend})"

    def convert(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        fitted = self._fitter(frame)
        if self._yuv is not None:
            return cv2.cvtColor(fitted, cv2.COLOR_BGR2YUV_I420, dst=self._yuv)
        return fitted

    def send(self, frame: np.ndarray) -> None:
        out = self.convert(frame)
        if out is not self._yuv and out is not self._fitter.canvas:
            out = np.ascontiguousarray(out)
        self._cam.send(out)
        self._last = out
        super().send(frame)

    def repeat(self) -> None:
        if self._last is None:
            return
        self._cam.send(self._last)
        self.frames_sent += 1

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.close()
            finally:
                self._cam = None
        self.is_open = False


class VideoFileSink(Sink):
    """A video file of what the virtual camera would show, at a fixed fps (repeats included)."""

    kind = "file"
    FOURCCS = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".mov": "mp4v"}

    def __init__(self, path: str | os.PathLike, fps: float = 30.0, size: tuple[int, int] | None = None):
        super().__init__()
        self.path = Path(path)
        self.fps = fps
        self.size = size  # (w, h); None = the first frame's size
        self._writer = None
        self._fitter: Fitter | None = None
        self._last: np.ndarray | None = None

    def open(self) -> "VideoFileSink":
        """Create the folder and, when the size is known, the file: an unwritable path fails here,
        before the live loop starts, not silently on the first frame."""
        if self.path.suffix.lower() not in self.FOURCCS:
            raise CameraError(f"output file {self.path}: unknown video type '{self.path.suffix}'",
                              "use a .mp4, .avi or .mkv file name")
        if self.path.is_dir():
            raise CameraError(f"output file {self.path} is a folder", "give a file name, e.g. --sink file:out.mp4")
        make_output_dir(self.path.parent, what="output file's folder")
        if self.size is not None and self._writer is None:
            self._open_writer(*self.size)
        self.is_open = True
        return self

    def _open_writer(self, w: int, h: int) -> None:
        import cv2

        w, h = w - w % 2, h - h % 2
        self.size = (w, h)
        self._fitter = Fitter(w, h, "contain")
        fourcc = cv2.VideoWriter_fourcc(*self.FOURCCS[self.path.suffix.lower()])
        writer = cv2.VideoWriter(str(self.path), fourcc, float(self.fps), (w, h))
        if not writer.isOpened() or not os.access(self.path, os.W_OK):
            writer.release()
            raise CameraError(f"output file {self.path} cannot be written",
                              "check the folder exists and is writable (or pick another path), "
                              "or use an .avi name (MJPG)")
        self._writer = writer

    def send(self, frame: np.ndarray) -> None:
        if self._writer is None:
            w, h = self.size or (frame.shape[1], frame.shape[0])
            self._open_writer(w, h)
        out = self._fitter(frame)
        self._writer.write(out)
        self._last = out
        super().send(frame)

    def repeat(self) -> None:
        if self._writer is not None and self._last is not None:
            self._writer.write(self._last)
            self.frames_sent += 1

    def describe(self) -> str:
        size = f" {self.size[0]}x{self.size[1]}" if self.size else ""
        return f"file {self.path}{size}@{self.fps:g}"

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self.is_open = False


class FramesDirSink(Sink):
    """Lossless PNG per new frame: `000000.png`, `000001.png`, ... (no repeats)."""

    kind = "frames"
    repeats = False

    def __init__(self, directory: str | os.PathLike, compression: int = 1, *, overwrite: bool = False):
        super().__init__()
        self.directory = Path(directory)
        self.compression = compression
        self.overwrite = overwrite
        self.index = 0

    def open(self) -> "FramesDirSink":
        """Create the folder; a folder with files in it is refused (old frames would mix with
        new ones) unless `overwrite`, which removes the old numbered frames first."""
        make_output_dir(self.directory, what="frames folder")
        old = [p for p in self.directory.iterdir() if not p.name.startswith(".")]
        if old and not self.overwrite:
            raise CameraError(f"frames folder {self.directory} is not empty ({len(old)} entries)",
                              "pick a new folder, or pass --overwrite to replace its frames")
        for path in old:
            if path.is_file() and path.suffix == ".png" and path.stem.isdigit():
                path.unlink()
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise CameraError(f"frames folder {self.directory} is not writable",
                              "pick a folder you can write to")
        self.is_open = True
        return self

    def path_for(self, index: int) -> Path:
        return self.directory / f"{index:06d}.png"

    def send(self, frame: np.ndarray) -> None:
        import cv2

        path = self.path_for(self.index)
        if not cv2.imwrite(str(path), frame, [cv2.IMWRITE_PNG_COMPRESSION, self.compression]):
            raise CameraError(f"cannot write {path}", "check the output folder is writable and has space")
        self.index += 1
        super().send(frame)

    def describe(self) -> str:
        return f"frames {self.directory}"


def make_output_dir(path: Path, *, what: str) -> None:
    """`mkdir -p` with an error that names the path and the fix instead of a traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise CameraError(f"{what} {path} cannot be created: a file of that name exists",
                          "pick another path") from exc
    except OSError as exc:
        raise CameraError(f"{what} {path} cannot be created: {exc.strerror or exc}",
                          "pick a path you can write to") from exc


def display_available() -> bool:
    if platform.system() in ("Windows", "Darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class PreviewSink(Sink):
    """An OpenCV window. Pressing `q` or Esc in it asks the app to quit."""

    kind = "preview"

    def __init__(self, title: str = "livecam", max_width: int = 1280):
        super().__init__()
        self.title = title
        self.max_width = max_width

    def open(self) -> "PreviewSink":
        if not display_available():
            raise VirtualCameraError("preview needs a display and none is available (DISPLAY is not set)",
                                     "run in a desktop session, or use --sink vcam, file:out.mp4 or null")
        self.is_open = True
        return self

    def _show(self, frame: np.ndarray) -> None:
        import cv2

        cv2.imshow(self.title, frame)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            self.stop_requested.set()

    def send(self, frame: np.ndarray) -> None:
        self._last = frame
        self._show(frame)
        super().send(frame)

    def repeat(self) -> None:
        last = getattr(self, "_last", None)
        if last is not None:
            self._show(last)
            self.frames_sent += 1

    def close(self) -> None:
        if self.is_open:
            import cv2

            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
        self.is_open = False


def open_sink(spec: str | None, settings, *, fit: str = "contain", backend: str | None = None,
              overwrite: bool = False) -> Sink:
    """Build (not yet open) a sink: `null`, `vcam`, `vcam:/dev/video10`, `file:PATH`, `frames:DIR`, `preview`.

    `overwrite`: a `frames:` folder with files in it is emptied instead of refused."""
    spec = (spec or "vcam").strip()
    out = settings.output
    kind, _, arg = spec.partition(":")
    if kind == "null":
        return NullSink()
    if kind == "vcam":
        return VirtualCameraSink(out.width, out.height, out.fps, arg or out.device or None, fit=fit, backend=backend)
    if kind == "file":
        if not arg:
            raise CameraError("--sink file needs a path", "use --sink file:out.mp4")
        return VideoFileSink(arg, fps=out.fps, size=(out.width, out.height))
    if kind == "frames":
        if not arg:
            raise CameraError("--sink frames needs a folder", "use --sink frames:out_frames")
        return FramesDirSink(arg, overwrite=overwrite)
    if kind == "preview":
        return PreviewSink()
    raise CameraError(f"unknown sink '{spec}'", "use one of: vcam, vcam:/dev/videoN, file:PATH, frames:DIR, preview, null")
