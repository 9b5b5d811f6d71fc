"""YuNet 2023mar against CenterFace on the real clips: agreement and cost per detection.

    python -m benchmarks.detector_compare [--clips pexels,selfie,cut] [--size 640]

Both run on every frame at `detector.size` (longer side), score 0.5. Prints per clip:
frames where each finds a face, frames where they disagree on whether there is one,
the mean IoU of the largest faces and their mean 5-point distance (% of the eye
distance), and the median CPU time per detection (`time.process_time`, which counts
every thread the runtime uses: the machine is shared, so wall time is not used).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.footage import fetch
from benchmarks.real_footage import CLIPS, read_frames


def _detectors(size: int):
    from livecam.face.detect import CenterFaceDetector, YuNetDetector
    from livecam.inference.models import ModelLoader
    from livecam.settings import Settings

    settings = Settings()
    cf = CenterFaceDetector(ModelLoader(settings.runtime).session("centerface"), size=size, score=0.5)
    yn = YuNetDetector(fetch("face_detection_yunet_2023mar.onnx"), size=size, score=0.5)
    return {"centerface": cf, "yunet": yn}


def compare(clip: str, size: int = 640) -> dict:
    file, n = CLIPS[clip]
    frames = read_frames(fetch(file), n)
    dets, ms = {}, {}
    for name, det in _detectors(size).items():
        det.detect(frames[0])  # warm-up
        out, cpu = [], []
        for f in frames:
            t0 = time.process_time()
            out.append(det.detect(f))
            cpu.append((time.process_time() - t0) * 1000)
        dets[name], ms[name] = out, statistics.median(cpu)
    from livecam.face.detect import box_iou
    from livecam.face.geometry import interocular

    ious, dists, disagree = [], [], 0
    for a, b in zip(dets["centerface"], dets["yunet"]):
        if bool(a) != bool(b):
            disagree += 1
        if a and b:
            ious.append(float(box_iou(a[0].bbox, b[0].bbox)[0, 0]))
            dists.append(float(np.linalg.norm(a[0].kps5 - b[0].kps5, axis=1).mean() / max(interocular(a[0].kps5), 1)))
    return {
        "clip": clip, "frames": len(frames),
        "centerface_faces": sum(bool(d) for d in dets["centerface"]), "yunet_faces": sum(bool(d) for d in dets["yunet"]),
        "disagree": disagree, "iou": round(float(np.mean(ious)), 3) if ious else float("nan"),
        "kps_pct_iod": round(100 * float(np.mean(dists)), 2) if dists else float("nan"),
        "centerface_ms": round(ms["centerface"], 2), "yunet_ms": round(ms["yunet"], 2),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.detector_compare", description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default="pexels,selfie,cut")
    ap.add_argument("--size", type=int, default=640)
    args = ap.parse_args(argv)
    print("| clip | frames | faces CenterFace / YuNet | disagree | IoU | 5-point distance % IOD | "
          "CPU ms/detection CenterFace / YuNet |")
    print("|---|---|---|---|---|---|---|")
    for clip in args.clips.split(","):
        r = compare(clip.strip(), args.size)
        print(f"| {r['clip']} | {r['frames']} | {r['centerface_faces']} / {r['yunet_faces']} | {r['disagree']} | "
              f"{r['iou']:.2f} | {r['kps_pct_iod']:.1f} | {r['centerface_ms']:.1f} / {r['yunet_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
