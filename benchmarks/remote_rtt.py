"""Remote round trip vs local, on loopback: `livecam bench` on the real selfie clip, local and through
`livecam serve` (Triton, 127.0.0.1), with the stand-in models (identity swapper, so the model itself
costs ~nothing and the numbers are the cost of going remote).

    python -m benchmarks.remote_rtt [--frames 150] [--repeats 3] [--models hyperswap_1a_256,inswapper_128]

Prints one JSON object: per swapper model and mode (local / remote), the medians over the repeats of
fps, swap stage p50/p95 (ms per frame, one face), remote_rtt_ms p50/p95 (ms per call = per face) and
the bytes one call moves. Timings are wall clock on whatever machine runs it: on a shared, loaded
machine repeat and compare medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def _bench(models_dir: Path, clip: Path, face: Path, frames: int, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "livecam", "bench", "--input", str(clip), "--source", str(face), "--frames",
           str(frames), "--models-dir", str(models_dir), "--json", str(out), "--no-progress", *extra]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"bench failed:\n{run.stderr[-3000:]}")
    return json.loads(out.read_text())


def _median(results: list[dict], *path: str) -> float:
    values = []
    for r in results:
        v = r
        for p in path:
            v = v.get(p, {}) if isinstance(v, dict) else {}
        values.append(float(v) if isinstance(v, (int, float)) else 0.0)
    return round(statistics.median(values), 3)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.footage import fetch
    from livecam.inference.catalog import load_catalog
    from livecam.remote.wire import model_wire
    from livecam.testing.remote_server import ServerProcess
    from livecam.testing.standins import write_standins

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="hyperswap_1a_256,inswapper_128")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    clip, face = fetch("single_face.mp4"), fetch("single_face.jpg")
    report: dict = {"clip": clip.name, "frames": args.frames, "repeats": args.repeats, "models": {}}
    with tempfile.TemporaryDirectory(prefix="livecam-rtt-") as tmp:
        tmp_path = Path(tmp)
        written = write_standins(tmp_path / "models", swapper="identity")
        with ServerProcess(tmp_path / "models", models, log_path=tmp_path / "serve.log") as srv:
            for model in models:
                wire = model_wire(model, written[model], load_catalog().get(model).contract)
                common = ["--set", f"swapper.model={model}"]
                runs: dict[str, list[dict]] = {"local": [], "remote": []}
                for i in range(args.repeats):  # interleaved, so load drifts hit both modes alike
                    runs["local"].append(_bench(tmp_path / "models", clip, face, args.frames,
                                                tmp_path / f"l{i}.json", common))
                    runs["remote"].append(_bench(tmp_path / "models", clip, face, args.frames,
                                                 tmp_path / f"r{i}.json",
                                                 [*common, "--set", f"runtime.remote={srv.url}",
                                                  "--set", "runtime.remote_deadline_ms=2000"]))
                entry = {"wire_bytes_per_call": wire.bytes_per_call}
                for mode, results in runs.items():
                    entry[mode] = {
                        "fps": _median(results, "fps"),
                        "swap_ms": {"p50": _median(results, "stage_ms", "swap", "p50"),
                                    "p95": _median(results, "stage_ms", "swap", "p95")},
                        "host_ms_p50": _median(results, "host_ms", "p50"),
                        "remote_rtt_ms": {"p50": _median(results, "remote_rtt_ms", "p50"),
                                          "p95": _median(results, "remote_rtt_ms", "p95"),
                                          "failed": max(r["remote_rtt_ms"]["failed"] for r in results)},
                        "provider": results[0]["providers"].get(model, ""),
                    }
                entry["added_ms_per_face_p50"] = round(entry["remote"]["swap_ms"]["p50"]
                                                       - entry["local"]["swap_ms"]["p50"], 3)
                report["models"][model] = entry
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
