"""Measured numbers of the swap area: `python -m benchmarks.swap_measure [--backend cpu|gpu]`.

Prints, from one run (medians):
1. identity stand-in, box mask only, the test photo at 720p: pixels outside the
   paste rectangle bit-identical; PSNR inside the face (pasted mask >= 0.5);
2. NaN stand-in: output equals input after the hold period; every reject counted;
3. host time per frame excluding model inference (host - infer) at 1080p, box +
   area masks, temporal filters on: p50 for 1, 2 and 4 faces, per stage;
4. temporal filters on vs off on a still scene with sensor noise (tint stand-in):
   ratio of the frame-to-frame change of the swapped region.

Stand-in models come from `livecam.testing.standins`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from livecam.face.geometry import align_matrix, invert_affine, paste_rect
from livecam.face.types import Face, SourceFace
from livecam.settings import Settings
from livecam.swap.masks import box_mask, estimate_landmarks68
from livecam.timing import StageTimes, infer_seconds

# astronaut() 5 points (eyes, nose, mouth corners) in photo pixels
ASTRO_KPS5 = np.array([[203.59, 101.95], [247.78, 104.07], [223.99, 124.90], [204.23, 143.20], [241.87, 144.79]])
STAGES = ("align", "swap", "guard", "masks", "temporal", "paste")


def standins(out: Path, kind: str) -> Path:
    """The shared stand-in models with swapper `kind` (identity/tint/nan) in `out`."""
    from livecam.testing.standins import write_standins

    out.mkdir(parents=True, exist_ok=True)
    write_standins(out, swapper=kind)
    return out


def _photo() -> np.ndarray:
    from livecam.demo import astronaut

    return astronaut()


def _source(seed: int = 1) -> SourceFace:
    e = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return SourceFace("measure", e, e / np.linalg.norm(e))


def _face(kps5, track_id=1) -> Face:
    kps5 = np.asarray(kps5, dtype=np.float64)
    lo, hi = kps5.min(0), kps5.max(0)
    return Face(bbox=np.r_[lo - 30, hi + 30], kps5=kps5, score=1.0,
                landmarks68=estimate_landmarks68(kps5), track_id=track_id)


def photo_frame(size=(1280, 720)) -> tuple[np.ndarray, np.ndarray]:
    """The test photo scaled to the frame height, centred on a grey frame, and its 5 points."""
    w, h = size
    photo = _photo()
    s = h / photo.shape[0]
    frame = np.full((h, w, 3), 96, np.uint8)
    x0 = (w - h) // 2
    frame[:, x0:x0 + h] = cv2.resize(photo, (h, h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    return frame, ASTRO_KPS5 * s + [x0, 0]


def grid_frame(n_faces: int, size=(1920, 1080), scale=1.8, seed=0) -> tuple[np.ndarray, list]:
    """`n_faces` copies of the photo's head (IOD ~80 px at 1080p) in a 2x2 grid."""
    w, h = size
    rng = np.random.default_rng(seed)
    frame = np.clip(rng.normal(110, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    frame = cv2.GaussianBlur(frame, (0, 0), 3)
    photo = _photo()
    x1, y1, x2, y2 = 95, 0, 355, 300  # head and collar
    head = cv2.resize(photo[y1:y2, x1:x2], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    hh, hw = head.shape[:2]
    kps = []
    for i in range(n_faces):
        cx, cy = (i % 2) * (w // 2) + w // 4, (i // 2) * (h // 2) + h // 4 if n_faces > 2 else h // 2
        ox, oy = cx - hw // 2, max(0, min(h - hh, cy - hh // 2))
        frame[oy:oy + hh, ox:ox + hw] = head
        kps.append((ASTRO_KPS5 - [x1, y1]) * scale + [ox, oy])
    return frame, kps


def _stage(models: Path, settings: Settings, backend):
    from livecam.inference.models import ModelLoader
    from livecam.swap.stage import SwapStage

    return SwapStage(ModelLoader(settings.runtime, models_dir=models), settings, backend)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def pasted_mask(kps5, size: int, frame_shape, settings: Settings, template: str = "arcface_128") -> np.ndarray:
    """The box mask as pasted into the frame (float32, frame size)."""
    m = align_matrix(kps5, template, size)
    mask = box_mask(size, settings.masks.blur, settings.masks.padding)
    return cv2.warpAffine(mask, invert_affine(m), (frame_shape[1], frame_shape[0]), flags=cv2.INTER_LINEAR)


def face_region(kps5, size: int, frame_shape, settings: Settings, template: str = "arcface_128") -> np.ndarray:
    """Frame pixels where the pasted box mask is >= 0.5: 'inside the face'."""
    return pasted_mask(kps5, size, frame_shape, settings, template) >= 0.5


def seam_region(kps5, size: int, frame_shape, settings: Settings) -> np.ndarray:
    """Frame pixels of the seam band that seam reuse works on (composite.SEAM_*)."""
    from livecam.ops.cpu import CpuBackend
    from livecam.swap.composite import SEAM_BAND_PX, SEAM_HI, SEAM_LO

    alpha = pasted_mask(kps5, size, frame_shape, settings)
    return CpuBackend().seam_band(alpha, SEAM_LO, SEAM_HI, SEAM_BAND_PX) != 0


def measure_identity(models: Path, backend, model="hyperswap_1a_256") -> dict:
    settings = Settings().with_changes({"swapper.model": model, "masks.types": ["box"]})
    stage = _stage(models, settings, backend)
    frame, kps = photo_frame((1280, 720))
    face = _face(kps)
    src = _source()
    out = None
    for _ in range(3):  # temporal and colour state settle; identity stays identity
        out = stage.process(frame, [face], src, settings, StageTimes())
    size, template = stage._swapper.size, stage._swapper.template
    x1, y1, x2, y2 = paste_rect(align_matrix(kps, template, size), size, frame.shape)
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    inside = face_region(kps, size, frame.shape, settings, template)
    return {
        "model": model, "frame": "1280x720", "rect": [x1, y1, x2, y2],
        "outside_identical": bool(np.array_equal(out[outside], frame[outside])),
        "psnr_face_db": round(_psnr(out[inside], frame[inside]), 2),
        "psnr_rect_db": round(_psnr(out[y1:y2, x1:x2], frame[y1:y2, x1:x2]), 2),
        "guard_rejects": stage.guard_rejects,
    }


class _FailAfter:
    """Wraps a swapper: good output for `good` frames, then NaN (an FP16 engine going bad)."""

    def __init__(self, inner, good: int):
        self.inner, self.good, self.n = inner, good, 0
        self.name, self.size, self.template, self.note = inner.name, inner.size, inner.template, ""
        self.source_embedding = inner.source_embedding

    def prepare_source(self, e):
        return self.inner.prepare_source(e)

    def swap(self, crop, latent):
        self.n += 1
        out = self.inner.swap(crop, latent)
        if self.n > self.good:
            out[...] = np.nan
        return out


def measure_nan(nan_models: Path, identity_models: Path, backend, frames: int = 20) -> dict:
    settings = Settings().with_changes({"masks.types": ["box"]})
    frame, kps = photo_frame((1280, 720))
    face, src = _face(kps), _source()
    # a) the NaN stand-in from the first frame: nothing to hold, pass through at once
    stage = _stage(nan_models, settings, backend)
    equal = [bool(np.array_equal(stage.process(frame, [face], src, settings, StageTimes()), frame)) for _ in range(frames)]
    a = {"frames": frames, "frames_equal_input": sum(equal), "guard_rejects": stage.guard_rejects}
    # b) good for 5 frames, then NaN: the last good swap is held guard_hold frames, then pass-through
    hold = settings.swapper.guard_hold
    stage = _stage(identity_models, settings, backend)
    stage._swapper = _FailAfter(stage._swapper, good=5)
    outs = [stage.process(frame, [face], src, settings, StageTimes()) for _ in range(5 + frames)]
    bad = outs[5:]
    held = [not np.array_equal(o, frame) for o in bad[:hold]]
    after = [np.array_equal(o, frame) for o in bad[hold:]]
    b = {"good_frames": 5, "nan_frames": frames, "guard_hold": hold, "held_frames": sum(held),
         "frames_equal_input_after_hold": f"{sum(after)}/{len(after)}", "guard_rejects": stage.guard_rejects}
    return {"nan_from_start": a, "good_then_nan": b}


def _thread_cpu_in_runs(session) -> list:
    """Wrap `session.run` so the calling thread's CPU time inside it is summed (a list of one)."""
    spent = [0.0]
    run = session.run

    def timed(feeds):
        t = time.thread_time()
        try:
            return run(feeds)
        finally:
            spent[0] += time.thread_time() - t

    session.run = timed
    return spent


def measure_host(models: Path, backend, faces: int, frames: int, model="hyperswap_1a_256") -> dict:
    """Per-frame host time excluding inference, two ways.

    `host_minus_infer_ms` is the contract's definition: wall time of `process()` minus
    wall time inside model calls. On a shared machine it includes time the thread
    was preempted; `thread_cpu_ms` (CPU time of the calling thread, minus its CPU
    time inside model calls) does not, so it is what the code costs.
    """
    settings = Settings().with_changes({"swapper.model": model, "masks.types": ["box", "area"]})
    stage = _stage(models, settings, backend)
    in_runs = _thread_cpu_in_runs(stage._swapper.session)
    frame, kps = grid_frame(faces)
    rng = np.random.default_rng(3)
    noisy = [np.clip(frame + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8) for _ in range(4)]
    if backend.is_gpu:  # frames live on the GPU from upload to output (the live loop uploads)
        noisy = [backend.asarray(f) for f in noisy]
    src = _source()
    host, cpu, stage_ms = [], [], {k: [] for k in STAGES}
    warmup = 10
    for i in range(frames + warmup):
        fr = noisy[i % len(noisy)] if backend.is_gpu else noisy[i % len(noisy)].copy()
        fl = [_face(k + rng.normal(0, 0.2, k.shape), track_id=j + 1) for j, k in enumerate(kps)]
        times = StageTimes()
        i0, r0 = infer_seconds(), in_runs[0]
        c0, t0 = time.thread_time(), time.perf_counter()
        stage.process(fr, fl, src, settings, times, inplace=True)
        backend.synchronize()
        dt = (time.perf_counter() - t0) * 1000.0
        dc = (time.thread_time() - c0 - (in_runs[0] - r0)) * 1000.0
        inf = (infer_seconds() - i0) * 1000.0
        if i >= warmup:  # warm-up: first frames allocate buffers (and compile kernels on the GPU)
            host.append(dt - inf)
            cpu.append(dc)
            for k in STAGES:
                stage_ms[k].append(times.ms.get(k, 0.0) - (inf if k == "swap" else 0.0))
    return {"faces": faces, "frames": frames, "model": model,
            "host_minus_infer_ms_p50": round(statistics.median(host), 2),
            "host_minus_infer_ms_p95": round(float(np.percentile(host, 95)), 2),
            "thread_cpu_ms_p50": round(statistics.median(cpu), 2),
            "stage_ms_p50": {k: round(statistics.median(v), 2) for k, v in stage_ms.items()}}


def measure_temporal(models: Path, backend, frames: int = 40) -> dict:
    """Median |frame t - frame t-1| inside the face on a still, noisy scene, per filter set.

    Colour transfer is off here so the tint stand-in's colour shift stays in the
    output (the swapped region really differs from the input).
    """
    frame, kps = photo_frame((1280, 720))
    rng = np.random.default_rng(5)
    noisy = [np.clip(frame + rng.normal(0, 3.0, frame.shape), 0, 255).astype(np.uint8) for _ in range(frames)]
    src = _source()
    variants = {
        "off": {"temporal.enabled": False},
        "on": {},
        "snap_only": {"temporal.anomaly": False, "temporal.seam": False},
        "seam_only": {"temporal.snap": False, "temporal.anomaly": False},
    }
    change, seam, differs, region = {}, {}, 0.0, None
    for name, extra in variants.items():
        settings = Settings().with_changes({"masks.types": ["box"], "composite.color_transfer": False, **extra})
        stage = _stage(models, settings, backend)
        region = face_region(kps, stage._swapper.size, frame.shape, settings)
        band = seam_region(kps, stage._swapper.size, frame.shape, settings)
        outs = [stage.process(f, [_face(kps)], src, settings, StageTimes()) for f in noisy]
        diffs = [float(np.abs(a[region].astype(np.int16) - b[region]).mean()) for a, b in zip(outs[1:], outs)]
        change[name] = statistics.median(diffs[5:])
        diffs = [float(np.abs(a[band].astype(np.int16) - b[band]).mean()) for a, b in zip(outs[1:], outs)]
        seam[name] = statistics.median(diffs[5:])
        if name == "off":
            differs = float(np.abs(outs[-1][region].astype(np.int16) - noisy[-1][region]).mean())
    inp = [float(np.abs(a[region].astype(np.int16) - b[region]).mean()) for a, b in zip(noisy[1:], noisy)]
    res = {f"change_{k}": round(v, 3) for k, v in change.items()}
    res.update({
        "ratio_on_over_off": round(change["on"] / change["off"], 3),
        "ratio_snap_only": round(change["snap_only"] / change["off"], 3),
        "ratio_seam_only": round(change["seam_only"] / change["off"], 3),
        "seam_band_change_off": round(seam["off"], 3),
        "seam_band_ratio_seam_only": round(seam["seam_only"] / seam["off"], 3),
        "seam_band_ratio_on": round(seam["on"] / seam["off"], 3),
        "input_change": round(statistics.median(inp), 3),
        "mean_abs_swap_minus_input": round(differs, 2),
    })
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.swap_measure", description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="cpu", choices=("cpu", "gpu", "auto"))
    ap.add_argument("--frames", type=int, default=60, help="frames per host-time measurement")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    from livecam.ops import get_backend

    backend = get_backend(args.backend)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ident, tint, nan = (standins(tmp / k, k) for k in ("identity", "tint", "nan"))
        res = {"backend": backend.name, "cpus": os.cpu_count(),
               "load_average_1min_at_start": round(os.getloadavg()[0], 2)}
        res["identity_720p"] = [measure_identity(ident, backend, m)
                                for m in ("hyperswap_1a_256", "inswapper_128", "ghost_2_256")]
        res["nan_guard"] = measure_nan(nan, ident, backend)
        res["host_1080p"] = [measure_host(ident, backend, n, args.frames) for n in (1, 2, 4)]
        res["temporal_still"] = measure_temporal(tint, backend)
    res["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
