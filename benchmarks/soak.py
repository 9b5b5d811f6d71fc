"""Long-run measurement of the live loop: `python -m benchmarks.soak --minutes 10`.

Runs a `LiveSession` on a looping video file paced at its fps (a synthetic one
made from the astronaut photo unless `--input` is given) with stand-in models
(written to a temp dir unless `--models-dir` is given) and the real CenterFace
detector, into a null sink. Every `--sample` seconds it records resident
memory, thread count, fps in/processed/out and latency; at the end it reports:

- rss_slope_mb_per_min (least squares over samples after the warm-up),
- fps per minute (processed and output; no decay expected),
- threads at start and end (no leak),
- capture→output latency p50/p95/max overall and per minute, the bound
  `2 frame intervals + host p95`, and whether p95 is within it,
- dropped frames and stage errors, and the time `stop()` took.

The result is printed as JSON (and written to `--json OUT`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from livecam.controls import percentiles
from livecam.demo import astronaut, write_demo_video

log = logging.getLogger("benchmarks.soak")


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def os_threads() -> int:
    import psutil

    return psutil.Process().num_threads()


def slope_per_min(t_s: list[float], values: list[float]) -> float:
    if len(t_s) < 3:
        return 0.0
    t = np.asarray(t_s) / 60.0
    v = np.asarray(values)
    return float(np.polyfit(t, v, 1)[0])


def build_session(input_path: str, models_dir: str, source_image: str | None, overrides: list[str],
                  sink=None, record_latency: bool = True):
    """A LiveSession with the real pipeline (stand-ins + CenterFace) on a looping, paced file."""
    from livecam.inference.models import ModelLoader
    from livecam.io.sinks import NullSink
    from livecam.io.sources import VideoFileSource
    from livecam.live import LiveSession
    from livecam.pipeline import Pipeline
    from livecam.settings import Settings, apply_overrides

    settings = apply_overrides(Settings(), ["detector.model=centerface", *overrides])
    loader = ModelLoader(settings.runtime, models_dir=models_dir)
    bank = None
    if source_image:
        from livecam.face.analyser import FaceAnalyser
        from livecam.face.bank import FaceBank

        bank = FaceBank(FaceAnalyser(loader, settings))
        bank.load(source_image)
    pipeline = Pipeline(loader, settings, bank)
    source = VideoFileSource(input_path, loop=True, paced=True)
    return LiveSession(settings, source, sink or NullSink(keep_last=False), bank, loader, pipeline=pipeline,
                       record_latency=record_latency)


def summarize(session, samples: list[dict], warmup_s: float, stop_s: float, threads_before: int,
              threads_after: int) -> dict[str, Any]:
    lat = np.asarray(session.latencies, dtype=np.float64)
    host = np.asarray(session.host_times, dtype=np.float64)
    interval_ms = 1000.0 / session.source.fps
    host_ms = percentiles(host)
    lat_ms = percentiles(lat)
    bound = 2 * interval_ms + host_ms["p95"]
    lat_p95 = lat_ms["p95"]
    steady = [s for s in samples if s["t_s"] >= warmup_s]
    # per-minute rates from counters
    per_min = []
    for m in range(int(samples[-1]["t_s"] // 60) if samples else 0):
        a = [s for s in samples if s["t_s"] >= m * 60]
        b = [s for s in samples if s["t_s"] >= (m + 1) * 60]
        if not a or not b:
            continue
        s0, s1 = a[0], b[0]
        dt = s1["t_s"] - s0["t_s"]
        per_min.append({
            "minute": m + 1,
            "fps_processed": round((s1["frames_processed"] - s0["frames_processed"]) / dt, 2),
            "fps_out": round((s1["frames_out"] - s0["frames_out"]) / dt, 2),
            "rss_mb": round(s1["rss_mb"], 1),
        })
    # latency per minute: latencies are in output order at ~fps_processed per second
    n = lat.size
    lat_minutes = []
    if samples and n:
        total_t = samples[-1]["t_s"]
        chunks = max(1, int(total_t // 60))
        for i, chunk in enumerate(np.array_split(lat, chunks)):
            if chunk.size:
                lat_minutes.append({"minute": i + 1, **percentiles(chunk, 2)})
    snap = session.stats.snapshot()
    return {
        "duration_s": round(samples[-1]["t_s"], 1) if samples else 0.0,
        "input_fps": session.source.fps,
        "frames_in": snap.frames_in,
        "frames_processed": snap.frames_processed,
        "frames_out": snap.frames_out,
        "dropped": snap.dropped,
        "stage_errors": snap.stage_errors,
        "detector_calls": snap.detector_calls,
        "latency_ms": {
            "p50": round(lat_ms["p50"], 2),
            "p95": round(lat_p95, 2),
            "max": round(float(lat.max()), 2) if n else 0.0,
        },
        "host_ms": percentiles(host, 2),
        "latency_bound_ms": round(bound, 2),
        "latency_within_bound": bool(lat_p95 <= bound),
        "latency_per_minute": lat_minutes,
        "rss_mb": {"start": round(steady[0]["rss_mb"], 1) if steady else 0.0,
                   "end": round(samples[-1]["rss_mb"], 1) if samples else 0.0},
        "rss_slope_mb_per_min": round(slope_per_min([s["t_s"] for s in steady], [s["rss_mb"] for s in steady]), 3),
        "fps_per_minute": per_min,
        "fps_processed_slope_per_min": round(slope_per_min([s["t_s"] for s in steady],
                                                           [s["fps_processed"] for s in steady]), 3),
        "threads": {"before": threads_before, "start": samples[0]["threads"] if samples else 0,
                    "end": samples[-1]["threads"] if samples else 0, "after_stop": threads_after},
        "os_threads": {"start": samples[0]["os_threads"] if samples else 0,
                       "end": samples[-1]["os_threads"] if samples else 0},
        "stop_s": round(stop_s, 3),
        "cpu_count": os.cpu_count(),
        "load1": {"min": min((s["load1"] for s in samples if s.get("load1") is not None), default=None),
                  "max": max((s["load1"] for s in samples if s.get("load1") is not None), default=None)},
        "reconnects": session.reconnects,
    }


def soak(minutes: float, *, input_path: str | None = None, models_dir: str | None = None,
         source_image: str | None = None, overrides: list[str] | None = None, sample_s: float = 10.0,
         warmup_s: float | None = None, workdir: str | None = None, echo=None) -> dict[str, Any]:
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="livecam-soak-")
        workdir = tmp.name
    work = Path(workdir)
    try:
        if models_dir is None:
            from livecam.testing.standins import write_standins

            models_dir = str(work / "models")
            write_standins(models_dir, swapper="identity")
        if input_path is None:
            input_path = str(write_demo_video(work / "soak.avi", frames=90))
        if source_image is None:
            import cv2

            source_image = str(work / "astronaut.png")
            cv2.imwrite(source_image, astronaut())
        threads_before = threading.active_count()
        session = build_session(input_path, models_dir, source_image, overrides or [])
        session.start()
        t0 = time.monotonic()
        samples: list[dict] = []
        end = t0 + minutes * 60.0
        warmup = warmup_s if warmup_s is not None else min(60.0, minutes * 60.0 * 0.2)
        while True:
            now = time.monotonic()
            snap = session.stats.snapshot()
            sample = {
                "t_s": round(now - t0, 2), "rss_mb": round(rss_mb(), 2), "threads": threading.active_count(),
                "os_threads": os_threads(), "fps_in": round(snap.fps_in, 2),
                "fps_processed": round(snap.fps_processed, 2), "fps_out": round(snap.fps_out, 2),
                "latency_p95": round(snap.latency_ms["p95"], 2), "frames_in": snap.frames_in,
                "frames_processed": snap.frames_processed, "frames_out": snap.frames_out,
                "dropped": snap.dropped, "stage_errors": snap.stage_errors,
                "load1": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            }
            samples.append(sample)
            if echo:
                echo(json.dumps(sample))
            if now >= end or session.error is not None:
                break
            time.sleep(min(sample_s, max(0.0, end - time.monotonic())))
        t_stop = time.perf_counter()
        session.stop(timeout=1.0)
        stop_s = time.perf_counter() - t_stop
        time.sleep(0.2)
        result = summarize(session, samples, warmup, stop_s, threads_before, threading.active_count())
        result["samples"] = samples
        if session.error is not None:
            result["error"] = repr(session.error)
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    from livecam.cli import positive

    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=positive(float), default=10.0)
    parser.add_argument("--input", help="video file to loop (default: synthetic astronaut video)")
    parser.add_argument("--models-dir", help="models dir (default: stand-ins written to a temp dir)")
    parser.add_argument("--source", help="source face image (default: the astronaut photo)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--sample", type=positive(float), default=10.0, help="seconds between samples")
    parser.add_argument("--json", dest="json_out", help="write the result here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each sample to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    echo = (lambda line: print(line, file=sys.stderr, flush=True)) if args.verbose else None
    result = soak(args.minutes, input_path=args.input, models_dir=args.models_dir, source_image=args.source,
                  overrides=args.overrides, sample_s=args.sample, echo=echo)
    text = json.dumps(result, indent=2)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n", encoding="utf-8")
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    return 0 if result.get("latency_within_bound") and "error" not in result else 1


if __name__ == "__main__":
    raise SystemExit(main())
