"""What the UI costs the frame loop: host_ms per frame without, with, and again without the TUI.

    python -m benchmarks.tui_measure --models-dir DIR --paired 1 --seconds 121      # in a terminal
    python -m benchmarks.tui_measure --models-dir DIR --seconds 8 --rounds 3 [--headless]

Runs a real `LiveSession` (CenterFace + the models in DIR, e.g. stand-ins written
by `--write-standins DIR` or `python -m livecam.testing.standins --out DIR`) on a
paced still image (default: the astronaut photo) or video into a null sink, and
reads the loop's own per-frame host_ms (`record_latency=True`).

- `--paired W`: one app run whose stats refresh is switched off/on every W seconds;
  each on-window is compared with the off-windows either side (drift cancels);
  prints the mean difference with a 95% confidence half-width.
- otherwise: alternating phases of `--seconds` each (`--rounds` pairs): no UI, the
  TUI attached, ..., no UI again; per phase host_ms p50/p95/mean, fps, process CPU,
  and the UI thread's CPU time (1 s after start-up to the end).

The UI runs in this terminal (run it in tmux) or headless with --headless.
Without --models-dir it measures the synthetic demo loop instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import numpy as np


def build_session(models_dir: str, input_path: str, overrides: list[str], source_image: str | None = None):
    from livecam.inference.models import ModelLoader
    from livecam.io.sinks import NullSink
    from livecam.io.sources import ImageSource, VideoFileSource
    from livecam.live import LiveSession
    from livecam.pipeline import Pipeline
    from livecam.settings import Settings, apply_overrides

    from livecam.face.analyser import FaceAnalyser
    from livecam.face.bank import FaceBank

    settings = apply_overrides(Settings(), ["detector.model=centerface", *overrides])
    loader = ModelLoader(settings.runtime, models_dir=models_dir)
    bank = FaceBank(FaceAnalyser(loader, settings))
    bank.add(source_image or input_path)  # the camera's own face as the source: the swap runs
    pipeline = Pipeline(loader, settings, bank)
    if input_path.lower().endswith((".png", ".jpg", ".jpeg", ".bmp")):
        source = ImageSource(input_path, fps=settings.camera.fps)
    else:
        source = VideoFileSource(input_path, loop=True, paced=True)
    return LiveSession(settings, source, NullSink(keep_last=False), bank, loader, pipeline=pipeline,
                       record_latency=True)


def _summary(values) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"frames": 0}
    return {"frames": int(arr.size), "p50": round(float(np.percentile(arr, 50)), 3),
            "p95": round(float(np.percentile(arr, 95)), 3), "mean": round(float(arr.mean()), 3)}


def main(argv: list[str] | None = None) -> int:
    from livecam.cli import positive

    parser = argparse.ArgumentParser(prog="python -m benchmarks.tui_measure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", help="models (e.g. stand-ins); omit for the synthetic demo loop")
    parser.add_argument("--write-standins", metavar="DIR", help="write tinting stand-in models to DIR and use them")
    parser.add_argument("--input", help="still image or video (default: the astronaut photo from scikit-image)")
    parser.add_argument("--seconds", type=positive(float), default=10.0, help="length of each phase")
    parser.add_argument("--rounds", type=positive(int), default=1, help="repeat no-UI / TUI pairs (noisy machines)")
    parser.add_argument("--warmup", type=positive(float, zero=True), default=3.0, help="seconds before the first phase")
    parser.add_argument("--headless", action="store_true", help="run the UI headless (no terminal needed)")
    parser.add_argument("--refresh-hz", type=positive(float), default=4.0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", metavar="OUT", help="also write the result here")
    parser.add_argument("--paired", type=positive(float, zero=True), default=0.0, metavar="WINDOW_S",
                        help="instead of phases: keep the app up and switch its refresh on/off every WINDOW_S "
                             "seconds for --seconds in all; paired differences cancel the machine's drift")
    args = parser.parse_args(argv)

    if args.write_standins:
        from livecam.testing.standins import write_standins

        write_standins(args.write_standins, swapper="tint")
        args.models_dir = args.write_standins
    if args.models_dir:
        input_path = args.input
        if not input_path:
            import tempfile

            import cv2

            from livecam.demo import astronaut

            input_path = tempfile.mkstemp(suffix=".png")[1]
            cv2.imwrite(input_path, astronaut())
        session = build_session(args.models_dir, input_path, args.overrides)
        host = session.host_times
        what = f"LiveSession {input_path} models {args.models_dir}"
    else:
        from benchmarks.tui_demo import DemoSession

        session = DemoSession(frozen=False)
        host = session.host_ms
        what = "demo loop (GaussianBlur 9x9 on 1280x720 per frame)"

    from livecam.tui.app import LivecamApp

    session.start()
    time.sleep(args.warmup)

    phases: list[tuple[str, dict]] = []

    class MeasuredApp(LivecamApp):
        """Records the UI thread's CPU time from 1 s after start (start-up excluded) to the end."""

        cpu = wall = None

        def on_mount(self) -> None:  # Textual also calls LivecamApp.on_mount (handlers run per class)
            self.set_timer(1.0, self._mark)

        def _mark(self) -> None:
            self._t = (time.thread_time(), time.perf_counter())

        def finish(self) -> None:
            if hasattr(self, "_t"):
                self.cpu = time.thread_time() - self._t[0]
                self.wall = time.perf_counter() - self._t[1]
            self.exit(0)

    def phase(name: str, with_ui: bool) -> None:
        snap0 = session.stats.snapshot()
        i0, t0, c0 = len(host), time.perf_counter(), time.process_time()
        ui = {}
        if with_ui:
            app = MeasuredApp(session, refresh_hz=args.refresh_hz)
            timer = threading.Timer(args.seconds, lambda: app.call_from_thread(app.finish))
            timer.start()
            app.run(headless=args.headless)
            timer.cancel()
            ui = {"refresh_ms": {k: round(v, 3) for k, v in app.refresh_ms.summary().items()},
                  "refreshes": app.refreshes,
                  "ui_thread_cpu_ms_per_s": round(1000.0 * app.cpu / app.wall, 3) if app.wall else None}
        else:
            time.sleep(args.seconds)
        dt = time.perf_counter() - t0
        snap1 = session.stats.snapshot()
        processed = (snap1.frames_processed - snap0.frames_processed) / dt
        phases.append((name, {
            "host_ms": _summary(list(host)[i0:]),
            "fps_out": round((snap1.frames_out - snap0.frames_out) / dt, 2),
            "fps_processed": round(processed, 2),
            "process_cpu_ms_per_s": round(1000.0 * (time.process_time() - c0) / dt, 1),
            **ui,
        }))

    if args.paired:
        try:
            result = paired(session, host, MeasuredApp, args)
        finally:
            session.stop()
        result["what"] = what
        return _emit(result, args)

    try:
        for r in range(args.rounds):
            phase(f"no_ui_{r}", False)
            phase(f"tui_{r}", True)
        phase(f"no_ui_{args.rounds}", False)
    finally:
        session.stop()
    no_ui = [v for k, v in phases if k.startswith("no_ui")]
    tui = [v for k, v in phases if k.startswith("tui")]

    def pooled(group, key):
        return round(float(np.median([p["host_ms"][key] for p in group if p["host_ms"]["frames"]])), 3)

    result = {
        "what": what, "seconds_per_phase": args.seconds, "rounds": args.rounds, "headless": args.headless,
        "refresh_hz": args.refresh_hz,
        "host_ms_no_ui": {"p50": pooled(no_ui, "p50"), "mean": pooled(no_ui, "mean"), "p95": pooled(no_ui, "p95")},
        "host_ms_tui": {"p50": pooled(tui, "p50"), "mean": pooled(tui, "mean"), "p95": pooled(tui, "p95")},
        "phases": dict(phases),
    }
    ui_cpu = float(np.median([p["ui_thread_cpu_ms_per_s"] for p in tui if p.get("ui_thread_cpu_ms_per_s")]))
    fps = float(np.median([p["fps_processed"] for p in tui]))
    result["ui_thread_cpu_ms_per_s"] = round(ui_cpu, 3)
    result["process_cpu_ms_per_s_no_ui"] = round(float(np.median([p["process_cpu_ms_per_s"] for p in no_ui])), 1)
    result["process_cpu_ms_per_s_tui"] = round(float(np.median([p["process_cpu_ms_per_s"] for p in tui])), 1)
    # Upper bound of what the UI can take from the loop per processed frame: all of the UI
    # thread's CPU time, as if it always held the GIL while the loop wanted it.
    result["ui_cpu_ms_per_processed_frame"] = round(ui_cpu / max(fps, 1e-6), 3)
    result["tui_cost_ms_per_frame_p50"] = round(result["host_ms_tui"]["p50"] - result["host_ms_no_ui"]["p50"], 3)
    result["tui_cost_ms_per_frame_mean"] = round(result["host_ms_tui"]["mean"] - result["host_ms_no_ui"]["mean"], 3)
    return _emit(result, args)


def _emit(result: dict, args) -> int:
    text = json.dumps(result, indent=2)
    print(text, file=sys.stdout)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


def paired(session, host, app_class, args) -> dict:
    """One app run; its stats refresh alternates on/off every `args.paired` seconds.

    Each on-window is compared with the mean of the off-windows either side of it,
    so slow drifts of the machine's load cancel. Returns the mean difference of the
    loop's mean host_ms (on - off) with a 95% confidence half-width.
    """
    marks: list[tuple[bool, int]] = []  # (refresh on?, index into host at window start)
    app = app_class(session, refresh_hz=args.refresh_hz)
    window = args.paired
    n_windows = max(3, int(args.seconds / window) | 1)  # odd: off, on, off, ..., off

    def driver():
        time.sleep(1.5)  # app start-up
        for k in range(n_windows):
            on = k % 2 == 1
            app.call_from_thread(app.poll_timer.resume if on else app.poll_timer.pause)
            marks.append((on, len(host)))
            time.sleep(window)
        marks.append((False, len(host)))
        app.call_from_thread(app.finish)

    threading.Thread(target=driver, daemon=True).start()
    app.run(headless=args.headless)
    values = list(host)
    means = [(on, float(np.mean(values[a:b])) if b > a else float("nan"))
             for (on, a), (_, b) in zip(marks[:-1], marks[1:])]
    diffs = [means[i][1] - (means[i - 1][1] + means[i + 1][1]) / 2
             for i in range(1, len(means) - 1) if means[i][0]]
    diffs = [d for d in diffs if np.isfinite(d)]
    arr = np.asarray(diffs)
    half = float(1.96 * arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return {
        "mode": "paired", "window_s": window, "windows": n_windows, "headless": args.headless,
        "refresh_hz": args.refresh_hz,
        "host_ms_mean_refresh_off": round(float(np.mean([m for on, m in means if not on])), 3),
        "host_ms_mean_refresh_on": round(float(np.mean([m for on, m in means if on])), 3),
        "tui_cost_ms_per_frame": round(float(arr.mean()), 3) if len(arr) else None,
        "ci95_ms": round(half, 3),
        "pairs": len(arr),
        "refresh_ms": {k: round(v, 3) for k, v in app.refresh_ms.summary().items()},
    }


if __name__ == "__main__":
    raise SystemExit(main())
