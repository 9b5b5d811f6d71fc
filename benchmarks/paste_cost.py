"""Paste-back's cost on the CPU, 8-bit against float alpha, measured in one process.

    python -m benchmarks.paste_cost [--rounds 300]

`Compositor.paste` of a 256-px crop (the default swapper's) through the default box mask into
a 720p / 1080p frame, with the face at arm's length (a 348-px rectangle, as the Pexels clip at
its own size) and filling the frame (695 / 1015 px), seam reuse on as on a still face. The two
alphas alternate call by call, so a machine whose speed drifts over minutes (this 2-core one
does, by 25-40 %) moves both alike; which goes first alternates too. Prints the median ms of each and how far the 8-bit frame is
from the float one (levels).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import cv2
import numpy as np

from livecam.face.geometry import TEMPLATES, align_matrix
from livecam.ops.cpu import CpuBackend
from livecam.swap.composite import Compositor
from livecam.swap.masks import box_mask
from livecam.swap.temporal import TrackState

CASES = (("arm's length, 720p", 320, (1280, 720)), ("face fills 720p", 650, (1280, 720)),
         ("face fills 1080p", 950, (1920, 1080)))


def _matrix(face_px: int, size: tuple[int, int]) -> np.ndarray:
    t = TEMPLATES["arcface_128"] * face_px
    a = math.radians(4)  # a slight roll: a general warp, not an axis-aligned one
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    kps = (t - t.mean(0)) @ rot.T + [size[0] / 2, size[1] / 2]
    return align_matrix(kps, "arcface_128", 256)


def measure(rounds: int) -> list[dict]:
    rng = np.random.default_rng(0)
    mask = box_mask(256, 0.3)
    crop = cv2.GaussianBlur(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), (0, 0), 1.5)
    rows = []
    for name, face_px, size in CASES:
        m = _matrix(face_px, size)
        frame = cv2.GaussianBlur(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), (0, 0), 1.5)
        kinds = {"8-bit": np.uint8, "float": np.float32}
        be = {k: CpuBackend() for k in kinds}
        for k, t in kinds.items():
            be[k].paste_alpha = t  # (an instance attribute: the class's stays as shipped)
        comp = {k: Compositor(be[k]) for k in kinds}
        state = {k: TrackState() for k in kinds}
        times = {k: [] for k in kinds}
        outs = {}
        for i in range(rounds + 5):
            for k in (("8-bit", "float") if i % 2 else ("float", "8-bit")):  # neither always first
                out = frame.copy()
                state[k].motion = 0.5  # a still face: the seam is reused
                t0 = time.perf_counter()
                rect = comp[k].paste(out, crop, mask, m, state[k], seam=True)
                if i >= 5:
                    times[k].append((time.perf_counter() - t0) * 1000)
                outs[k] = out
        d = np.abs(outs["8-bit"].astype(int) - outs["float"])
        rows.append({"case": name, "rect": f"{rect[2] - rect[0]}x{rect[3] - rect[1]}",
                     **{k: round(statistics.median(v), 3) for k, v in times.items()},
                     "max_levels": int(d.max()), "mean_levels": round(float(d.mean()), 4)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.paste_cost", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args(argv)
    print("| case | rectangle | 8-bit alpha ms | float alpha ms | frame difference max / mean (levels) |")
    print("|---|---|---|---|---|")
    for r in measure(args.rounds):
        print(f"| {r['case']} | {r['rect']} | {r['8-bit']:.2f} | {r['float']:.2f} | "
              f"{r['max_levels']} / {r['mean_levels']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
