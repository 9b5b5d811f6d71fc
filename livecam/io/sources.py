"""Frame sources: webcam, video file, still image.

A source is read by one thread (the live loop's capture thread, or `bench`).
`read()` blocks until the next frame and returns a BGR uint8 HxWx3 array, or
raises:

- `EndOfStream` when a finite source is exhausted (a non-looping file, a
  still image asked for a fixed number of frames);
- `CameraError` (or returns None) when the device failed; the capture thread
  then closes the source, shows "camera lost" and reopens it with back-off.

Sources reuse their frame buffers through a `FramePool`: a buffer is handed
out again only once no other thread holds a reference to it, so the process
and output threads can keep a frame as long as they like without copies.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from livecam.errors import CameraError
from livecam.settings import CameraSettings

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class EndOfStream(Exception):
    """A finite source has no more frames."""


class FramePool:
    """Reusable frame buffers for one producer thread.

    `acquire(shape)` returns a buffer nobody else references (CPython
    reference count), allocating a new one while fewer than `size` exist.
    Consumers simply drop their references when done; nothing is returned
    explicitly, so a consumer that keeps a frame (the output thread repeating
    the last one) can never see it overwritten.
    """

    def __init__(self, size: int = 6):
        self.size = size
        self._buffers: list[np.ndarray] = []
        self.allocations = 0

    def acquire(self, shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
        for buf in self._buffers:
            # 3 = the pool's list + the loop variable + getrefcount's argument
            if buf.shape == shape and buf.dtype == dtype and sys.getrefcount(buf) <= 3:
                return buf
        buf = np.empty(shape, dtype)
        self.allocations += 1
        if len(self._buffers) < self.size:
            self._buffers.append(buf)
        else:  # replace a buffer of the wrong shape, if any; else leave it untracked
            for i, old in enumerate(self._buffers):
                if old.shape != shape:
                    self._buffers[i] = buf
                    break
        return buf


class Source:
    """Base class. Subclasses implement `_open`, `_read`, `_close`."""

    kind = "source"
    live = True  # a live source drops frames when processing is slower
    owned_frames = False  # True: each read returns a buffer nobody else uses (pool-backed)

    def __init__(self) -> None:
        self.width = 0
        self.height = 0
        self.fps = 0.0  # nominal (requested or file) fps
        self.fourcc = ""
        self.is_open = False
        self.frames_read = 0
        self._times: list[float] = []

    # -- interface -------------------------------------------------------------
    def open(self) -> "Source":
        self._open()
        self.is_open = True
        self._times = []
        return self

    def read(self) -> np.ndarray | None:
        frame = self._read()
        if frame is not None:
            self.frames_read += 1
            now = time.perf_counter()
            self._times.append(now)
            if len(self._times) > 60:
                del self._times[:30]
            self.height, self.width = frame.shape[:2]
        return frame

    def close(self) -> None:
        if self.is_open:
            try:
                self._close()
            finally:
                self.is_open = False

    def measured_fps(self) -> float:
        """Frames per second actually delivered (last ~30 reads)."""
        t = self._times[-31:]
        if len(t) < 2:
            return 0.0
        return (len(t) - 1) / max(t[-1] - t[0], 1e-6)

    def describe(self) -> str:
        fps = self.measured_fps() or self.fps
        fmt = f" {self.fourcc}" if self.fourcc else ""
        return f"{self.name} {self.width}x{self.height}@{fps:.1f}{fmt}"

    @property
    def name(self) -> str:
        return self.kind

    def __enter__(self):
        return self.open() if not self.is_open else self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- subclass hooks ----------------------------------------------------------
    def _open(self) -> None:
        raise NotImplementedError

    def _read(self) -> np.ndarray | None:
        raise NotImplementedError

    def _close(self) -> None:
        pass


def _capture_backend() -> int:
    import cv2

    system = platform.system()
    if system == "Linux":
        return cv2.CAP_V4L2
    if system == "Windows":
        return cv2.CAP_DSHOW  # DShow locks the pixel format at open: set MJPG before size
    if system == "Darwin":
        return cv2.CAP_AVFOUNDATION
    return cv2.CAP_ANY


def resolve_camera(device: str) -> int | str:
    """A camera index, a device path, or a name matched against V4L2 card names."""
    device = str(device).strip()
    if device.isdigit():
        return int(device)
    if os.path.exists(device):
        return device
    sysfs = Path("/sys/class/video4linux")
    if sysfs.is_dir():
        for node in sorted(sysfs.glob("video*")):
            try:
                card = (node / "name").read_text().strip()
            except OSError:
                continue
            if device.lower() in card.lower():
                return int(node.name[len("video"):])
    raise CameraError(
        f"camera '{device}' not found (not an index, a device path or a camera name)",
        "run `livecam doctor` to list cameras, then pass --camera N or --set camera.device=N",
    )


def list_cameras(max_index: int = 10) -> list[dict]:
    """Cameras the OS lists (Linux: /sys/class/video4linux; elsewhere probe indices)."""
    cams: list[dict] = []
    sysfs = Path("/sys/class/video4linux")
    if sysfs.is_dir():
        for node in sorted(sysfs.glob("video*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 0):
            try:
                card = (node / "name").read_text().strip()
            except OSError:
                card = "?"
            cams.append({"index": int(node.name[5:]), "name": card, "path": f"/dev/{node.name}"})
        return cams
    if platform.system() == "Linux":
        return cams
    import cv2

    for i in range(max_index):
        cap = cv2.VideoCapture(i, _capture_backend())
        try:
            if cap.isOpened():
                cams.append({"index": i, "name": f"camera {i}", "path": str(i)})
        finally:
            cap.release()
    return cams


class WebcamSource(Source):
    """`cv2.VideoCapture` with MJPG, size and fps requested at open, buffer of 1.

    The real size comes from the frames, the real fps is measured from read
    times (cameras often ignore the request: `CAP_PROP_FPS` is not trusted).
    """

    kind = "webcam"
    owned_frames = True

    def __init__(self, settings: CameraSettings, capture_factory=None):
        super().__init__()
        self.settings = settings
        self.device = resolve_camera(settings.device)
        self.fps = float(settings.fps)
        self._factory = capture_factory  # tests pass a fake VideoCapture class
        self._cap = None
        self._pool = FramePool()

    @property
    def name(self) -> str:
        return f"webcam {self.device}"

    def _open(self) -> None:
        import cv2

        if self._factory is not None:
            cap = self._factory(self.device)
        else:
            cap = cv2.VideoCapture(self.device, _capture_backend())
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"camera {self.device} cannot be opened",
                "check it is plugged in and not used by another app (close Zoom/OBS previews); "
                "`livecam doctor` lists cameras; or use --input VIDEO",
            )
        s = self.settings
        if s.mjpg:  # before the size: DShow/V4L2 pick the mode from the format
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, s.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, s.height)
        cap.set(cv2.CAP_PROP_FPS, s.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # no 4-frame backlog of stale frames
        code = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
        self.fourcc = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ") if code else ""
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        self._cap = cap
        if (self.width, self.height) != (s.width, s.height) and self.width:
            log.info("camera %s gives %dx%d (asked %dx%d)", self.device, self.width, self.height, s.width, s.height)

    def _read(self) -> np.ndarray | None:
        cap = self._cap
        if cap is None:
            return None
        if self.width and self.height:
            buf = self._pool.acquire((self.height, self.width, 3))
            ok, frame = cap.read(buf)
        else:
            ok, frame = cap.read()
        if not ok or frame is None or frame.size == 0:
            return None
        if frame.ndim == 2:
            import cv2

            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        return frame

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class Pacer:
    """Releases one frame per 1/fps like a camera: deadline-based (no drift), and
    resynced after falling behind instead of bursting to catch up."""

    def __init__(self):
        self._next_t = 0.0

    def reset(self) -> None:
        self._next_t = 0.0

    def wait(self, fps: float) -> None:
        interval = 1.0 / fps
        now = time.perf_counter()
        if self._next_t == 0.0 or now - self._next_t > interval:  # first frame, or fell behind
            self._next_t = now
        elif self._next_t > now:
            time.sleep(self._next_t - now)
        self._next_t += interval


class VideoFileSource(Source):
    """A video file as a camera: optionally looping, optionally paced at its fps."""

    kind = "file"
    owned_frames = True

    def __init__(self, path: str | os.PathLike, *, loop: bool = False, paced: bool = True,
                 fps: float | None = None, frames: int | None = None, max_mp: float = 40.0):
        super().__init__()
        self.path = Path(path)
        self.max_mp = float(max_mp)
        self.declared_frames = 0
        self.skipped_frames = 0
        self.loop = loop
        self.paced = paced
        self.live = paced
        self._fps_override = fps
        self.max_frames = frames
        self._cap = None
        self._pool = FramePool()
        self._pacer = Pacer()
        self.loops = 0
        if not self.path.exists():
            raise CameraError(f"input video {self.path} does not exist", "check the path given to --input")

    @property
    def name(self) -> str:
        return f"file {self.path.name}"

    def _open(self) -> None:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"input video {self.path} cannot be decoded",
                              "convert it to an MP4 (H.264) or MJPG AVI, e.g. with ffmpeg")
        self._cap = cap
        file_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = float(self._fps_override or (file_fps if 1.0 <= file_fps <= 240.0 else 30.0))
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if self.width * self.height > self.max_mp * 1e6:
            cap.release()
            self._cap = None
            raise CameraError(f"input video {self.path} is {self.width}x{self.height}, above the {self.max_mp:g} MP "
                              "limit", "downscale it, or raise --set camera.max_image_mp=N")
        self.declared_frames = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        code = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
        self.fourcc = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ") if code else ""
        self._pacer.reset()

    def _grab(self) -> np.ndarray | None:
        cap = self._cap
        if self.width and self.height:
            ok, frame = cap.read(self._pool.acquire((self.height, self.width, 3)))
        else:
            ok, frame = cap.read()
        return frame if ok and frame is not None and frame.size else None

    def _read(self) -> np.ndarray | None:
        import cv2

        if self._cap is None:
            return None
        if self.max_frames is not None and self.frames_read >= self.max_frames:
            raise EndOfStream(str(self.path))
        frame = self._grab()
        if frame is None:
            frame = self._skip_damage()
        if frame is None:
            if not self.loop:
                raise EndOfStream(str(self.path))
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self.loops += 1
            frame = self._grab()
            if frame is None:
                raise CameraError(f"input video {self.path} has no readable frames", "check the file plays")
        if self.paced:
            self._pacer.wait(self.fps)  # deliver at the file's fps, like a camera
        return frame


    SKIP_TRIES = 8  # frames tried past a damaged one before calling it the end

    def _skip_damage(self) -> np.ndarray | None:
        """A read failed before the frame count the file declares: say so, and try to continue past it."""
        import cv2

        pos = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES) or 0)
        if not self.declared_frames or pos >= self.declared_frames - 1:
            return None  # the real end
        log.warning("input video %s: frame %d of %d cannot be decoded (damaged file?); skipping ahead",
                    self.path, pos, self.declared_frames)
        for step in range(1, self.SKIP_TRIES + 1):
            target = pos + step
            if target >= self.declared_frames:
                break
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, target)
            frame = self._grab()
            if frame is not None:
                self.skipped_frames += step
                return frame
        log.warning("input video %s ends early: %d of %d declared frames readable", self.path, pos,
                    self.declared_frames)
        return None

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageSource(Source):
    """A still image as a camera: the same frame, `frames` times (None = forever), paced at `fps`."""

    kind = "image"

    def __init__(self, path: str | os.PathLike, *, frames: int | None = None, fps: float = 30.0,
                 paced: bool = True, max_mp: float = 40.0):
        super().__init__()
        self.path = Path(path)
        self.max_mp = float(max_mp)
        self.max_frames = frames
        self.fps = float(fps)
        self.paced = paced
        self.live = paced
        self._image: np.ndarray | None = None
        self._pacer = Pacer()

    @property
    def name(self) -> str:
        return f"image {self.path.name}"

    def _open(self) -> None:
        from livecam.io.images import read_image_file
        from livecam.paths import printable

        # the pixel budget is checked from the header: a 30000x30000 PNG is refused, not decoded
        image = read_image_file(self.path, f"input image {printable(self.path)}", self.max_mp, CameraError)
        self._image = image
        self.height, self.width = image.shape[:2]
        self.fourcc = ""

    def _read(self) -> np.ndarray | None:
        if self.max_frames is not None and self.frames_read >= self.max_frames:
            raise EndOfStream(str(self.path))
        if self.paced:
            self._pacer.wait(self.fps)
        # Consumers must not modify frames in place; the still image is shared.
        return self._image


class ArraySource(Source):
    """Frames from memory (tests, synthetic scenes): a list or an iterator of BGR arrays."""

    kind = "frames"

    def __init__(self, frames, *, fps: float = 30.0, paced: bool = False, loop: bool = False):
        super().__init__()
        self._frames = frames
        self.fps = float(fps)
        self.paced = paced
        self.live = paced
        self.loop = loop
        self._it = None
        self._pacer = Pacer()

    def _open(self) -> None:
        self._it = iter(self._frames)

    def _read(self) -> np.ndarray | None:
        try:
            frame = next(self._it)
        except StopIteration:
            if not self.loop or not isinstance(self._frames, (list, tuple)):
                raise EndOfStream("frames") from None
            self._it = iter(self._frames)
            frame = next(self._it)
        if self.paced:
            self._pacer.wait(self.fps)
        return frame


def open_source(spec: str | int | None, settings, *, loop: bool = True, paced: bool = True,
                frames: int | None = None) -> Source:
    """Build (not yet open) a source from a spec.

    - None, "", "camera", "webcam" → the webcam of `settings.camera`;
    - an int or a digit string, "camera:N" → webcam N;
    - a path to an image → still camera; any other existing file → video file.
    `settings` is a `Settings` (or a `CameraSettings`).
    """
    import dataclasses

    cam = settings.camera if hasattr(settings, "camera") else settings
    if spec is None or spec == "" or spec in ("camera", "webcam"):
        return WebcamSource(cam)
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return WebcamSource(dataclasses.replace(cam, device=str(spec)))
    spec = str(spec)
    if spec.startswith("camera:"):
        return WebcamSource(dataclasses.replace(cam, device=spec.split(":", 1)[1]))
    path = Path(spec)
    if spec.startswith("/dev/video"):
        return WebcamSource(dataclasses.replace(cam, device=spec))
    if not path.exists():
        raise CameraError(f"input {spec} does not exist", "pass a video file, an image, or a camera index")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path, frames=frames, fps=float(cam.fps), paced=paced, max_mp=cam.max_image_mp)
    return VideoFileSource(path, loop=loop, paced=paced, frames=frames, max_mp=cam.max_image_mp)
