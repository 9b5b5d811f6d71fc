"""Host cost per frame without model cost: `Pipeline.process` on a real talking head at 720p/1080p.

    python -m benchmarks.host_cost [--sizes 1280x720,1920x1080] [--frames 240] [--set k=v ...]
                                   [--baseline] [--rounds N] [--face scaled|native]
                                   [--detector replay|centerface|yunet] [--detection-work]
                                   [--pace FPS] [--ort-threads N]

The Pexels clip (640x360) is scaled up to each size (`--face scaled`: the face fills the
frame, 360 px tall at 720p) or placed at its own size in the middle of a frame of that size
(`--face native`: the face about 180 px tall, a webcam at arm's length), the border
replicated. Models are near-free: the identity
stand-ins for swapper/landmarker and `ReplayDetector`, which replays YuNet detections
made on the clip beforehand (so detection costs nothing but the tracker's own work).
Everything else is the default profile (tracking, temporal filters, colour transfer on).
Prints per size: host - infer per frame (p50, p95; what `livecam bench` reports as
`host_ms` minus `infer_ms`), the process thread's CPU time per frame (p50;
`time.thread_time`, robust to other processes on a shared machine), detector calls and
the per-stage p50. Wall-clock numbers on a loaded machine are noisy: compare the CPU times.

`--baseline` also runs Deep-Live-Cam's per-frame work on the same frames and replayed
detections (`benchmarks.dlc_baseline`), interleaved with livecam's in `--rounds` rounds,
and prints both medians: the comparison issue 9 asks for, on this machine.

`--detector centerface|yunet` runs a real detector instead (the Pipeline builds its own
tracker, as `livecam run` does; its background detections then compete for the cores), and
`--pace 30` feeds frames at a camera's pace instead of back to back, to both loops (the
background worker runs in the gaps, as live; each frame then starts on a machine that idled,
and both loops take 2-3x as long per frame here). `--ort-threads N` sets ONNX Runtime's intra-op threads of every
session (a harness-only experiment: livecam leaves ORT's default).

`--detection-work` counts what detecting costs the host around a near-free model: each
replayed detection first runs the SCRFD pre- and post-processing on the scrfd_2.5g stand-in,
livecam's own (`ScrfdDetector`, in its background worker or inline, wherever the tracker
detects) and Deep-Live-Cam's (insightface's `SCRFD.detect`, inline on every 2nd frame, as its
live loop calls it); the replayed detections still give the faces. Without it detecting is
free on both sides, so tracking can only cost more than it.

`ReplayDetector` has no `detect_native`, so the tracker's periodic detections run on
the whole frame here (`TrackerTuning(full_every=1)`): with real models the face-crop
re-measurement is the cheaper path, so this over-counts the tracker slightly.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.footage import fetch
from benchmarks.real_footage import read_frames, yunet_faces
from livecam.face.types import Detection


class ReplayDetector:
    """Detections computed beforehand, frame by frame; `index` says which frame is being processed
    (a background detection replays the frame it was submitted on: `index` is read when it runs,
    at most a frame or two later, which is what a real detector would also see). With `work` (a
    detector on a near-free model) each call first runs that detector on the frame, for its host
    cost only."""

    def __init__(self, per_frame: list[list[Detection]], work=None):
        self.per_frame = per_frame
        self.index = 0
        self.work = work

    def detect(self, frame: np.ndarray) -> list[Detection]:
        if self.work is not None:
            self.work.detect(frame)
        return list(self.per_frame[min(self.index, len(self.per_frame) - 1)])


def yunet_detections(frames: list[np.ndarray], scale: float, offset=(0.0, 0.0)) -> list[list[Detection]]:
    """YuNet (full resolution, score 0.5) on every frame, scaled by `scale` then moved by `offset`
    (x, y), largest first."""
    out = []
    off = np.asarray(offset, np.float32)
    for rows in yunet_faces(frames, score=0.5):
        dets = [Detection(bbox=np.r_[r[0:2], r[0:2] + r[2:4]].astype(np.float32) * scale + np.r_[off, off],
                          kps5=r[4:14].reshape(5, 2).astype(np.float32) * scale + off, score=float(r[14]))
                for r in rows]
        out.append(sorted(dets, key=lambda d: -d.size))
    return out


def measure(scaled: list[np.ndarray], models: Path, replay: list | None, extra=(), pace: float = 0.0,
            detection_work: bool = False) -> dict:
    """livecam's `Pipeline.process` on `scaled` (frames already at the measured size); `replay`
    None: the detector `extra` names, in the tracker the Pipeline builds; `pace`: frames per
    second to feed (0: back to back); `detection_work`: the replay also runs livecam's SCRFD
    on the stand-in (see the module's docstring)."""
    from livecam.settings import apply_overrides
    from livecam.controls import Controls, percentiles
    from livecam.face.analyser import FaceAnalyser  # noqa: F401 - (imports the model stack once, outside timing)
    from livecam.face.types import SourceFace
    from livecam.inference.models import ModelLoader
    from livecam.pipeline import Pipeline
    from livecam.settings import Settings
    from livecam.track.tracker import TrackerTuning

    settings = apply_overrides(Settings(), ["detector.model=centerface", *extra])
    loader = ModelLoader(settings.runtime, models_dir=models)
    detector = tracker = None
    if replay is not None:  # the Pipeline's own tracker (and background twins), on replayed detections
        work = None
        if detection_work:
            from livecam.face.detect import make_detector

            work = make_detector(loader, apply_overrides(settings, ["detector.model=scrfd"]))
        detector = ReplayDetector(replay, work)
        tracker = Pipeline.make_tracker(loader, settings, with_embedder=True, detector=detector,
                                        tuning=TrackerTuning(full_every=1))
    e = np.random.default_rng(1).normal(size=512).astype(np.float32)

    class Bank:
        faces = [SourceFace("replay", e, e / np.linalg.norm(e))]

        def get(self, name):
            return None

    pipe = Pipeline(loader, settings, Bank(), tracker=tracker)
    state = Controls(settings).current()
    host, cpu, stages, calls, det_frames = [], [], {}, 0, []
    t0 = time.perf_counter()
    for i, f in enumerate(scaled):
        if detector is not None:
            detector.index = i
        if pace:  # the camera's next frame is not there before its time
            time.sleep(max(0.0, i / pace - (time.perf_counter() - t0)))
        frame = f.copy()  # the camera hands over a fresh buffer
        c0 = time.thread_time()
        _, report = pipe.process(frame, state, i / 30.0, inplace=True)
        cpu.append((time.thread_time() - c0) * 1000)
        if i >= 10:  # warm-up
            host.append(report.host_ms - report.infer_ms)
            det_frames.append(report.detected)
            for k, v in report.stage_ms.items():
                stages.setdefault(k, []).append(v)
        calls += report.detector_calls
    pipe.close()
    with_det = [c for c, d in zip(cpu[10:], det_frames) if d]
    without = [c for c, d in zip(cpu[10:], det_frames) if not d]
    return {"size": _size(scaled), "host_minus_infer": _stats(host),
            "cpu_p50_detection_frames": round(statistics.median(with_det), 2) if with_det else float("nan"),
            "cpu_p50_other_frames": round(statistics.median(without), 2) if without else float("nan"),
            "cpu_ms_p95": percentiles(cpu[10:], 2)["p95"],
            "cpu_ms_p50": round(statistics.median(cpu[10:]), 2), "detector_pct": round(100 * calls / len(scaled), 1),
            "stages_p50": {k: round(statistics.median(v), 2) for k, v in stages.items()}}


def measure_baseline(scaled: list[np.ndarray], swapper: Path, replay: list, pace: float = 0.0,
                     detector: Path | None = None) -> dict:
    """Deep-Live-Cam's live-loop work per frame (`benchmarks.dlc_baseline`) on `scaled`: host - infer;
    `pace` as for `measure`; `detector`: an SCRFD model whose insightface host work runs on each
    detection frame (`--detection-work`)."""
    import onnxruntime as ort

    from benchmarks.dlc_baseline import DlcLoop, InsightfaceScrfd

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1

    def session(path: Path):
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    loop = DlcLoop(session(swapper), detector=None if detector is None else InsightfaceScrfd(session(detector)))
    host = []
    t0 = time.perf_counter()
    for i, f in enumerate(scaled):
        if pace:
            time.sleep(max(0.0, i / pace - (time.perf_counter() - t0)))
        frame = f.copy()
        loop.infer_ms = 0.0
        t = time.perf_counter()
        loop.step(frame, i, replay[i])
        if i >= 10:
            host.append((time.perf_counter() - t) * 1000 - loop.infer_ms)
    return {"size": _size(scaled), "host_minus_infer": _stats(host)}


def _stats(host: list[float]) -> dict:
    """p50, p95 and the mean: a loop that detects inline on every 2nd frame has two kinds of frame,
    half each, and its p50 falls anywhere between them; its mean is its cost per frame."""
    from livecam.controls import percentiles

    return {**percentiles(host, 2), "mean": round(statistics.fmean(host), 2)}


def _size(frames: list[np.ndarray]) -> str:
    h, w = frames[0].shape[:2]
    return f"{w}x{h}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.host_cost", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1280x720,1920x1080")
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--baseline", action="store_true", help="also run Deep-Live-Cam's per-frame work, interleaved")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds (medians of the per-round p50s)")
    ap.add_argument("--face", choices=("scaled", "native"), default="scaled",
                    help="scale the clip to the size (the face fills the frame) or place it at its own size")
    ap.add_argument("--detector", choices=("replay", "centerface", "yunet"), default="replay",
                    help="replayed YuNet detections (no model cost), or a real detector in the Pipeline's tracker")
    ap.add_argument("--detection-work", action="store_true",
                    help="replayed detections also run each side's SCRFD host work on a near-free stand-in")
    ap.add_argument("--pace", type=float, default=0.0, metavar="FPS", help="feed frames at this rate, to both loops (0: back to back)")
    ap.add_argument("--ort-threads", type=int, default=0, metavar="N",
                    help="ONNX Runtime intra-op threads for every session (0: ORT's default)")
    args = ap.parse_args(argv)
    if args.detection_work and args.detector != "replay":
        ap.error("--detection-work adds a stand-in's detection work to replayed detections: use it with --detector replay")
    import logging
    import os

    logging.disable(logging.WARNING)
    if args.ort_threads:
        import onnxruntime as ort

        class Options(ort.SessionOptions):  # every session livecam makes from here on
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                self.intra_op_num_threads = args.ort_threads

        ort.SessionOptions = Options
    extra = [*args.set] + ([] if args.detector == "replay" else [f"detector.model={args.detector}"])
    from livecam.testing.standins import write_standins

    frames = read_frames(fetch("WolfgangLanger_Pexels.mp4"), args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        models = write_standins(Path(tmp), swapper="identity")
        print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
        for spec in args.sizes.split(","):
            w, h = (int(v) for v in spec.split("x"))
            if args.face == "native":
                fh, fw = frames[0].shape[:2]
                if fw > w or fh > h:
                    ap.error(f"--face native needs sizes of at least {fw}x{fh}")
                top, left = (h - fh) // 2, (w - fw) // 2
                replay = yunet_detections(frames, 1.0, (left, top))
                scaled = [cv2.copyMakeBorder(f, top, h - fh - top, left, w - fw - left, cv2.BORDER_REPLICATE)
                          for f in frames]
            else:
                replay = yunet_detections(frames, w / frames[0].shape[1])
                scaled = [cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in frames]  # once: both loops copy
            ours, theirs = [], []
            for _ in range(args.rounds):
                r = measure(scaled, Path(tmp), replay if args.detector == "replay" else None, extra, args.pace,
                            args.detection_work)
                ours.append(r["host_minus_infer"])
                print(f"{r['size']}: host-infer p50 {r['host_minus_infer']['p50']:.2f} ms, p95 "
                      f"{r['host_minus_infer']['p95']:.2f} ms, mean {r['host_minus_infer']['mean']:.2f} ms; process-thread CPU p50 {r['cpu_ms_p50']:.2f} ms, p95 "
                      f"{r['cpu_ms_p95']:.2f} ms (frames with a detection {r['cpu_p50_detection_frames']:.2f}, "
                      f"others {r['cpu_p50_other_frames']:.2f}); detector calls {r['detector_pct']:.0f} %")
                print("   stages p50: " + ", ".join(f"{k} {v:.2f}" for k, v in r["stages_p50"].items()))
                if args.baseline:
                    b = measure_baseline(scaled, models["inswapper_128"], replay, args.pace,
                                         models["scrfd_2.5g"] if args.detection_work else None)
                    theirs.append(b["host_minus_infer"])
                    print(f"{b['size']}: Deep-Live-Cam's per-frame work: host-infer p50 "
                          f"{b['host_minus_infer']['p50']:.2f} ms, p95 {b['host_minus_infer']['p95']:.2f} ms, "
                          f"mean {b['host_minus_infer']['mean']:.2f} ms")
            if args.rounds > 1 or args.baseline:
                line = f"{w}x{h} median of {args.rounds} rounds: livecam p50 " \
                       f"{statistics.median(x['p50'] for x in ours):.2f} ms, p95 {statistics.median(x['p95'] for x in ours):.2f}, " \
                       f"mean {statistics.median(x['mean'] for x in ours):.2f}"
                if theirs:
                    line += f"; Deep-Live-Cam p50 {statistics.median(x['p50'] for x in theirs):.2f} ms, p95 " \
                            f"{statistics.median(x['p95'] for x in theirs):.2f}, mean {statistics.median(x['mean'] for x in theirs):.2f}"
                    # a shared machine's speed drifts (here by 25-40 % within minutes); the ratio of
                    # interleaved rounds drifts less (about 12 % here)
                    for key in ("p50", "mean"):
                        ratio = statistics.median(a[key] / b[key] for a, b in zip(ours, theirs))
                        line += f"; livecam / Deep-Live-Cam {key} {ratio:.1f}x"
                print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
