"""`livecam bench`: the process stage as fast as it can on a file, with numbers.

Runs the same `Pipeline` as `livecam run`, one frame at a time on the calling
thread (no hand-offs, so nothing is dropped), and writes (ARCHITECTURE.md,
"Interfaces that stay stable"):

- JSON: frames, fps, host_ms{p50,p95}, infer_ms{p50,p95}, stage_ms{<stage>{p50,p95}},
  detector_calls, latency_ms{p50,p95} (frame read → frame written), providers,
  dropped, guard_rejects (plus stage_errors, input, size, and remote_rtt_ms{p50,p95,calls,failed}:
  the round trip of each remote model call, i.e. per face for a swapper, with `runtime.remote`);
- tracks JSONL, one line a frame: {"frame", "faces": [{"track", "bbox", "kps5",
  "detected", "score"}]} in frame pixels;
- output frames as lossless PNG `000000.png`, ...

An image input is a still camera repeated `frames` times (default 1).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from livecam.controls import Controls, percentiles

log = logging.getLogger(__name__)


def face_record(face) -> dict[str, Any]:
    return {
        "track": int(getattr(face, "track_id", -1)),
        "bbox": [round(float(v), 2) for v in np.asarray(face.bbox, dtype=np.float64).reshape(4)],
        "kps5": [[round(float(x), 2), round(float(y), 2)] for x, y in np.asarray(face.kps5, dtype=np.float64).reshape(5, 2)],
        "detected": bool(getattr(face, "detected", True)),
        "score": round(float(getattr(face, "score", 0.0)), 4),
    }


def run_bench(input_path: str, pipeline, settings, *, frames: int | None = None, json_out: str | None = None,
              tracks_out: str | None = None, output_frames: str | None = None, progress: bool = True,
              controls: Controls | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Benchmark `pipeline` on `input_path` (video or image). Returns the result dict."""
    from livecam.io.sinks import FramesDirSink
    from livecam.io.sources import EndOfStream, ImageSource, open_source

    path = Path(input_path)
    is_image = isinstance(open_source(str(path), settings, paced=False, loop=False), ImageSource)
    n = frames if frames is not None else (1 if is_image else None)
    source = open_source(str(path), settings, paced=False, loop=False, frames=n)
    controls = controls or Controls(settings)
    sink = FramesDirSink(output_frames, overwrite=overwrite).open() if output_frames else None
    tracks = open(tracks_out, "w", encoding="utf-8") if tracks_out else None  # noqa: SIM115
    from livecam.remote.rtt import ROUND_TRIPS, summarize

    rtt_mark = ROUND_TRIPS.mark()
    host, infer, latency = [], [], []
    stages: dict[str, list[float]] = {}
    detector_calls = guard_rejects = stage_errors = 0
    count = 0
    size = None
    bar = None
    try:
        source.open()
        fps_in = source.fps or 30.0
        total = n
        if total is None:
            import cv2

            cap_total = 0
            if hasattr(source, "_cap") and source._cap is not None:
                cap_total = int(source._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            total = cap_total or None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="frame", file=sys.stderr, desc="bench", leave=False, dynamic_ncols=True)
        t_start = time.perf_counter()
        while True:
            t_read = time.perf_counter()
            try:
                frame = source.read()
            except EndOfStream:
                break
            if frame is None:
                break
            size = (int(frame.shape[1]), int(frame.shape[0]))
            state = controls.current()
            out, report = pipeline.process(frame, state, count / fps_in)
            if tracks is not None:
                tracks.write(json.dumps({"frame": count, "faces": [face_record(f) for f in report.faces]}) + "\n")
            if sink is not None:
                sink.send(out)
            latency.append((time.perf_counter() - t_read) * 1000.0)
            host.append(report.host_ms)
            infer.append(report.infer_ms)
            for name, ms in report.stage_ms.items():
                stages.setdefault(name, []).append(ms)
            detector_calls += report.detector_calls
            guard_rejects += report.guard_rejects
            stage_errors += len(report.errors)
            count += 1
            if bar is not None:
                bar.update(1)
        wall = time.perf_counter() - t_start
    finally:
        if bar is not None:
            bar.close()
        source.close()
        if tracks is not None:
            tracks.close()
        if sink is not None:
            sink.close()
    result: dict[str, Any] = {
        "frames": count,
        "fps": round(count / wall, 3) if wall > 0 and count else 0.0,
        "host_ms": percentiles(host, 3),
        "infer_ms": percentiles(infer, 3),
        "stage_ms": {name: percentiles(v, 3) for name, v in stages.items()},
        "detector_calls": detector_calls,
        "latency_ms": percentiles(latency, 3),
        "providers": pipeline.providers(),
        "dropped": 0,  # sequential: every frame is processed
        "guard_rejects": guard_rejects,
        "stage_errors": stage_errors,
        "input": str(path),
        "size": list(size) if size else None,
        "remote_rtt_ms": summarize(*ROUND_TRIPS.since(rtt_mark)),
    }
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
