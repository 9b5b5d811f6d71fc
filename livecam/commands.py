"""`livecam run`, `livecam bench`, `livecam doctor`.

Heavy imports stay inside the handlers so `livecam --help` is instant.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    from livecam.cli import add_common, positive

    p = subparsers.add_parser("run", help="webcam → face swap → virtual camera (the main job)",
                              description="Start the live face swap. Starts the TUI on a terminal; "
                                          "plain logging to stderr with --no-tui or when not a terminal.")
    add_common(p)
    p.add_argument("--source", metavar="IMG|DIR", help="source face image, or a folder of images (named by file stem)")
    p.add_argument("--camera", metavar="N", help="webcam index, device path or name (sets camera.device)")
    p.add_argument("--input", metavar="VIDEO", help="use a video file (or image) instead of the webcam")
    p.add_argument("--sink", default="vcam", metavar="SPEC",
                   help="vcam (default), vcam:/dev/videoN, file:PATH, frames:DIR, preview, null")
    p.add_argument("--overwrite", action="store_true",
                   help="with --sink frames:DIR: replace the frames of a folder that is not empty")
    p.add_argument("--fit", choices=("contain", "cover"), default="contain",
                   help="fit the frame into the output size: letterbox (contain) or crop to fill (cover)")
    p.add_argument("--no-tui", action="store_true", help="no terminal UI: log stats to stderr")
    p.add_argument("--once", action="store_true", help="with --input: stop at the end of the file (default: loop)")
    p.add_argument("--duration", type=positive(float), metavar="S", help="stop after S seconds")
    p.add_argument("--stats-every", type=positive(float), default=5.0, metavar="S", help="plain mode: print stats every S s")
    p.set_defaults(func=cmd_run)

    b = subparsers.add_parser("bench", help="benchmark the process stage on a file (JSON, tracks, frames)")
    add_common(b)
    b.add_argument("--input", required=True, metavar="VIDEO|IMAGE", help="video file, or an image (a still camera)")
    b.add_argument("--source", metavar="IMG|DIR", help="source face image or folder")
    b.add_argument("--frames", type=positive(int), metavar="N", help="frames to process (image: repeats, default 1)")
    b.add_argument("--json", dest="json_out", metavar="OUT", help="write the result JSON here (also printed)")
    b.add_argument("--tracks", dest="tracks_out", metavar="OUT.jsonl", help="write per-frame faces as JSON lines")
    b.add_argument("--output-frames", metavar="DIR", help="write output frames as lossless PNG 000000.png, ...")
    b.add_argument("--overwrite", action="store_true", help="replace the frames of an --output-frames folder that is not empty")
    b.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    b.set_defaults(func=cmd_bench)

    d = subparsers.add_parser("doctor", help="check Python, packages, GPU, models, cameras, virtual camera")
    add_common(d)
    d.add_argument("--json", action="store_true", help="print the checks as JSON")
    d.set_defaults(func=cmd_doctor)


# -- shared setup -------------------------------------------------------------------------
def load_settings(args):
    """Profile + --set (via livecam.cli), with --camera folded in."""
    from livecam.cli import settings_from_args

    settings = settings_from_args(args)
    if getattr(args, "camera", None) is not None:
        settings = settings.with_changes({"camera.device": str(args.camera)}, origin="--camera")
    return settings


def build_runtime(args, settings, *, always_bank: bool = False):
    """(loader, bank) for the settings: models from --models-dir, source faces from --source.

    `always_bank`: an (empty) bank even without --source, so the TUI can add faces live.
    """
    from livecam.inference.models import ModelLoader

    loader = ModelLoader(settings.runtime, models_dir=getattr(args, "models_dir", None))
    bank = None
    source = getattr(args, "source", None)
    if always_bank and not source:
        from livecam.face.analyser import FaceAnalyser
        from livecam.face.bank import FaceBank

        bank = FaceBank(FaceAnalyser(loader, settings))
    if source:
        from livecam.face.analyser import FaceAnalyser
        from livecam.face.bank import FaceBank
        from livecam.paths import embeddings_cache_dir

        bank = FaceBank(FaceAnalyser(loader, settings), cache_dir=embeddings_cache_dir())
        for warning in bank.load(source) or []:
            log.warning("%s", warning)
        if not bank.faces:
            from livecam.errors import SourceFaceError

            raise SourceFaceError(f"no usable source face in {source}",
                                  "give a clear, front-facing photo with one face (PNG or JPEG)")
    return loader, bank


def refuse_overwrite(outputs: dict, input_path, source) -> None:
    """CameraError when an output (option -> path) is the input file or a source-face file."""
    from pathlib import Path

    from livecam.errors import CameraError
    from livecam.paths import printable

    protected = [Path(p) for p in (input_path,) if p and not str(p).isdigit()]
    if source:
        src = Path(source).expanduser()
        protected += sorted(src.rglob("*")) if src.is_dir() else [src]
    for option, out in outputs.items():
        if not out:
            continue
        target = Path(out).expanduser()
        for p in protected:
            same = target.exists() and p.exists() and os.path.samefile(target, p)
            if same or target.resolve() == p.resolve():
                raise CameraError(f"{option} {printable(out)} is the input {printable(p)}: it would be overwritten",
                                  f"write the output somewhere else, e.g. {option} {printable(target.stem)}-out"
                                  f"{printable(target.suffix)}")


def format_stats(snap) -> str:
    stages = " ".join(f"{k}={v['p50']:.1f}" for k, v in snap.stage_ms.items())
    return (
        f"fps in {snap.fps_in:.1f} proc {snap.fps_processed:.1f} out {snap.fps_out:.1f} | "
        f"latency p50 {snap.latency_ms['p50']:.0f} p95 {snap.latency_ms['p95']:.0f} ms | "
        f"host p50 {snap.host_ms['p50']:.1f} p95 {snap.host_ms['p95']:.1f} ms | faces {snap.faces} | "
        f"det {snap.detector_calls} drop {snap.dropped} guard {snap.guard_rejects} err {snap.stage_errors} | "
        f"{snap.camera}" + (f" | {snap.loading}" if snap.loading else "") + (f" | {stages}" if stages else "")
        + (f" | remote p50 {snap.remote_rtt_ms['p50']:.1f} p95 {snap.remote_rtt_ms['p95']:.1f} ms "
           f"failed {snap.remote_rtt_ms['failed']}" if snap.remote_rtt_ms else "")
    )


class StatsLogHandler(logging.Handler):
    """While the TUI owns the terminal: warnings go to the stats log the TUI shows."""

    def __init__(self, stats):
        super().__init__(level=logging.WARNING)
        self.stats = stats

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stats.warn(record.getMessage().splitlines()[0])
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class KeyWatcher:
    """Plain mode on a terminal: `q` on stdin stops the session (cbreak mode, restored on exit)."""

    def __init__(self, on_quit, stream=None):
        self.on_quit = on_quit
        self.stream = stream or sys.stdin
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved = None

    def start(self) -> "KeyWatcher":
        try:
            import termios
            import tty

            fd = self.stream.fileno()
            if not os.isatty(fd):
                return self
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except (ImportError, OSError, ValueError, AttributeError):
            return self
        self._thread = threading.Thread(target=self._loop, name="livecam-keys", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        import select

        fd = self.stream.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                ch = os.read(fd, 1)
                if ch in (b"q", b"Q", b"\x1b"):
                    self.on_quit()
                    return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(0.5)
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None


def say_line(text: str, stream) -> None:
    """Print a status line; after SIGHUP the terminal is gone and writing to it fails (EIO)."""
    try:
        # one write: Ctrl-C (KeyboardInterrupt) between print's text and its newline would glue
        # the next line ("stopped in ...") onto this one
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def run_plain(session, *, duration: float | None = None, stats_every: float = 5.0, stream=None) -> int:
    """Run until the session ends, Ctrl-C, `q`, or `duration`; print stats to stderr."""
    stream = stream or sys.stderr
    end = None if duration is None else time.monotonic() + duration
    watcher = KeyWatcher(session.request_stop).start()
    next_print = time.monotonic() + stats_every
    try:
        while True:
            now = time.monotonic()
            timeout = next_print - now
            if end is not None:
                timeout = min(timeout, end - now)
            if session.wait(timeout=max(0.0, timeout)) or not session.running:
                break
            now = time.monotonic()
            if end is not None and now >= end:
                break
            if now >= next_print:
                say_line(format_stats(session.stats.snapshot()), stream)
                next_print = now + stats_every
    except KeyboardInterrupt:
        pass
    finally:
        watcher.close()
        t0 = time.monotonic()
        clean = session.stop(timeout=1.0)
        say_line(f"stopped in {time.monotonic() - t0:.2f} s" + ("" if clean else " (a device did not release)"), stream)
        say_line(f"output: {session.sink.describe()}, {session.sink.frames_sent} frames", stream)
        say_line(format_stats(session.stats.snapshot()), stream)
    if session.error is not None:
        from livecam.errors import LivecamError

        if isinstance(session.error, LivecamError):
            raise session.error
        return 1
    return 0


class StopRequest:
    """What SIGTERM/SIGHUP do during `run`: exactly what Ctrl-C does at that moment.

    By default KeyboardInterrupt, as Ctrl-C: setup closes what it opened, plain mode leaves its
    loop and stops the session (threads joined, sink finalised). While the TUI runs (it reads
    Ctrl-C as a key), `target()` schedules the app's exit instead. A handler must never take a
    lock the interrupted code may hold (an Event's, a logger's), so neither path does.
    """

    def __init__(self) -> None:
        self.target = None
        self.signal: str | None = None

    def __call__(self, name: str) -> None:
        self.signal = name
        if self.target is None:
            raise KeyboardInterrupt
        self.target()


def _exit_app_soon(app) -> None:
    """Called from a signal handler on the app's (main) thread: schedule the exit on its loop."""
    import asyncio

    try:
        asyncio.get_running_loop().call_soon_threadsafe(app.exit, 0)  # lock-free: a deque and a self-pipe
    except RuntimeError:  # the app's loop is not running (not started yet, or ending)
        try:
            app.exit(0)
        except Exception:  # noqa: BLE001 - the app is gone already: nothing to stop
            pass


def cmd_run(args) -> int:
    from livecam.io.sinks import open_sink
    from livecam.io.sources import open_source

    settings = load_settings(args)
    sink_path = args.sink.split(":", 1)[1] if args.sink and args.sink.startswith(("file:", "frames:")) else None
    refuse_overwrite({"--sink": sink_path}, args.input, args.source)
    sink = open_sink(args.sink, settings, fit=args.fit, overwrite=args.overwrite)
    source = open_source(args.input, settings, loop=not args.once, paced=True)
    return run_session(args, settings, source, sink)


def run_session(args, settings, source, sink) -> int:
    """Open `sink` then `source`, load the models, run the live loop (TUI or plain) until it
    ends, and stop it. SIGTERM/SIGHUP act like Ctrl-C throughout (`StopRequest`)."""
    from livecam.live import stop_on_signals

    stop = StopRequest()
    with stop_on_signals(stop):
        return _run(args, settings, source, sink, stop)


def missing_models(settings, models_dir: str | None = None) -> list[str]:
    """The models the settings need that are neither in --models-dir nor in the cache."""
    from livecam.doctor import required_models
    from livecam.inference.store import ModelStore

    store = ModelStore(models_dir=models_dir)
    return [name for name in required_models(settings) if store.status(name)[0] == "missing"]


def all_missing_error(exc, settings, args):
    """One error naming every missing model and one pull command, instead of one per run."""
    import re

    from livecam.errors import ModelError

    try:
        missing = missing_models(settings, getattr(args, "models_dir", None))
    except Exception:  # noqa: BLE001 - keep the original error
        return exc
    if len(missing) < 2:
        return exc
    why = re.search(r"\((hub unreachable[^)]*)\)", exc.message)
    profile = getattr(args, "profile", None) or "default"
    return ModelError(
        f"{len(missing)} models the '{profile}' profile needs are missing: {', '.join(missing)}"
        + (f" ({why.group(1)})" if why else ""),
        f"livecam models pull --profile {profile}   (fetches all of them; on an offline machine run it "
        f"elsewhere with --models-dir DIR, copy DIR here and run with --models-dir DIR)")


def _run(args, settings, source, sink, stop: StopRequest) -> int:
    from livecam.errors import ModelError
    from livecam.live import LiveSession

    # Output first: a missing virtual camera or an unwritable file is reported before any
    # model loads (< 5 s) and before the loop starts.
    if not sink.is_open:
        sink.open()
    try:
        source.open()
        try:
            from livecam.doctor import no_gpu_note

            note = no_gpu_note(settings)
            if note:
                print(f"livecam: {note}", file=sys.stderr, flush=True)
            try:
                loader, bank = build_runtime(args, settings, always_bank=True)
                from livecam.pipeline import Pipeline

                pipeline = Pipeline(loader, settings, bank)
            except ModelError as exc:
                raise all_missing_error(exc, settings, args) from exc
            if bank is None or not bank.faces:
                print("livecam: no source face (--source): nothing is swapped until you add one "
                      "(in the TUI: type an image path in 'add a face')", file=sys.stderr, flush=True)
            session = LiveSession(settings, source, sink, bank, loader, pipeline=pipeline)
            session.start()
        except BaseException:
            source.close()
            raise
    except BaseException:
        sink.close()
        raise
    try:
        return _loop(args, session, source, sink, pipeline, stop)
    except KeyboardInterrupt:  # a stop signal before the loop's own handling took over
        session.stop(timeout=1.0)
        return 0


def _loop(args, session, source, sink, pipeline, stop: StopRequest) -> int:
    """The running session: the TUI on a terminal, else plain mode; stops it at the end."""
    print(f"livecam: {source.describe()} → {sink.describe()}; providers: {pipeline.providers()}",
          file=sys.stderr, flush=True)
    use_tui = not args.no_tui and sys.stdout.isatty() and sys.stdin.isatty()
    if use_tui:
        try:
            from livecam.tui.app import run_tui
        except ImportError as exc:
            log.warning("terminal UI unavailable (%s); plain mode", exc)
        else:
            root = logging.getLogger()
            saved = root.handlers[:]
            root.handlers = [StatsLogHandler(session.stats)]  # stderr would tear the TUI

            def on_app(app) -> None:
                stop.target = lambda: _exit_app_soon(app)

            try:
                return int(run_tui(session, profile_name=getattr(args, "profile", None) or "default",
                                   on_app=on_app) or 0)
            finally:
                stop.target = None
                root.handlers = saved
                session.stop(timeout=1.0)
    code = run_plain(session, duration=args.duration, stats_every=args.stats_every)
    if stop.signal:
        say_line(f"livecam: stopped by {stop.signal}", sys.stderr)
    return code


def cmd_bench(args) -> int:
    from livecam.bench import run_bench
    from livecam.pipeline import Pipeline

    settings = load_settings(args)
    refuse_overwrite({"--json": args.json_out, "--tracks": args.tracks_out, "--output-frames": args.output_frames},
                     args.input, args.source)
    loader, bank = build_runtime(args, settings)
    pipeline = Pipeline(loader, settings, bank)
    try:
        pipeline.wait_reference(settings)  # loaded off the frame thread; a benchmark uses it from frame one
        result = run_bench(args.input, pipeline, settings, frames=args.frames, json_out=args.json_out,
                           tracks_out=args.tracks_out, output_frames=args.output_frames,
                           progress=not args.no_progress, overwrite=args.overwrite)
    finally:
        # the detection worker may be inside a model call: left running into interpreter exit,
        # ONNX Runtime's threads were torn down under it (SIGABRT, exit code 134, with CenterFace)
        pipeline.close()
    print(json.dumps(result, indent=2))
    return 0


def cmd_doctor(args) -> int:
    from livecam.doctor import run_doctor

    return run_doctor(args)
