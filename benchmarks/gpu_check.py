"""The device check: `python -m benchmarks.gpu_check` on a machine with an NVIDIA GPU and CuPy.

One command, well under 5 minutes, no TensorRT or model files needed. Prints one JSON
object and exits 1 when a check fails (the failed checks are listed under "failed"):

1. `parity`: the GPU array backend (CuPy) against the CPU backend on the ops the swap
   path uses (warp, resize, blur, blend, LUT, colour moments and the device colour
   table, guard statistics): max/mean differences within stated bounds.
2. `swap_path`: the device-resident swap stage (crop -> swapper -> guard -> masks ->
   temporal -> paste on CuPy arrays) driven by the device stand-in runtime
   (`livecam.testing.device`: the swapper's maths runs on CuPy, like a TensorRT or ORT
   IO-binding session), at 1080p with 1, 2 and 4 faces: per-face GPU-ops time, crop
   transfers and reads per face through the backend (`backend_reads_per_face`: the
   guard's; implicit scalar reads are not visible there), next
   to the CPU backend's per-face time on the same machine with the same stand-in.
3. `counted`: the same stage on the counting backend (NumPy standing in for CuPy), which
   also counts implicit scalar reads: exact host syncs per face (`syncs_per_face`).

`--cpu-only` runs the parts that need no GPU (3, and the CPU timing of 2); CI uses it
to test this script. Timings are medians after warm-up; on a shared machine they vary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from livecam.face.types import Face, SourceFace
from livecam.settings import Settings
from livecam.timing import StageTimes

# astronaut() 5 points (eyes, nose, mouth corners), photo pixels; faces are this layout x2
ASTRO_KPS5 = np.array([[203.59, 101.95], [247.78, 104.07], [223.99, 124.90], [204.23, 143.20], [241.87, 144.79]])
FACE_COUNTS = (1, 2, 4)
SETTINGS = {"swapper.model": "hyperswap_1a_256", "masks.types": ["box"], "composite.color_transfer": True,
            "temporal.enabled": True}

# Parity bounds (8-bit levels unless noted): interpolation and float order differ slightly
# between OpenCV and CuPy/ndimage; anything larger is a bug.
PARITY_MEAN = 0.2
PARITY_MAX = 4.0


# -- scene ---------------------------------------------------------------------------
def frame_1080p(seed: int = 0) -> np.ndarray:
    import cv2

    img = np.random.default_rng(seed).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 4)


def faces_in(n: int, shape, jitter: float = 0.0, rng=None) -> list[Face]:
    h, w = shape[:2]
    out = []
    for i in range(n):
        kps = (ASTRO_KPS5 - ASTRO_KPS5.mean(0)) * 2.0 + [(i + 0.5) * w / n, h / 2]
        if jitter and rng is not None:
            kps = kps + rng.normal(0, jitter, kps.shape)
        out.append(Face(bbox=np.r_[kps.min(0) - 60, kps.max(0) + 60], kps5=kps, score=1.0, track_id=i + 1))
    return out


def source_face(seed: int = 1) -> SourceFace:
    e = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return SourceFace("gpu-check", e, e / np.linalg.norm(e))


# -- counting at the backend ---------------------------------------------------------------
class BackendCounter:
    """Counts a backend's uploads, downloads and explicit syncs (instance-level wrappers).

    On CuPy these are the stage's sanctioned host crossings: an implicit conversion of a
    CuPy array to NumPy raises, so a crop cannot cross any other way. Scalar reads
    (`float(cupy_array)`) are not seen here; `counted` (the counting backend) sees them."""

    def __init__(self, backend):
        self.uploads: list = []
        self.downloads: list = []
        self.syncs = 0
        asarray, to_host, synchronize = backend.asarray, backend.to_host, backend.synchronize

        def counted_asarray(a, dtype=None):
            if type(a) is np.ndarray:  # host memory (CuPy's and the counting backend's arrays are not)
                self.uploads.append(a.shape)
            return asarray(a, dtype=dtype)

        def counted_to_host(a):
            if type(a) is not np.ndarray:
                self.downloads.append(tuple(a.shape))
                self.syncs += 1
            return to_host(a)

        def counted_synchronize():
            self.syncs += 1
            synchronize()

        backend.asarray, backend.to_host, backend.synchronize = counted_asarray, counted_to_host, counted_synchronize

    def reset(self) -> None:
        self.uploads, self.downloads, self.syncs = [], [], 0

    def crop_crossings(self, size: int) -> int:
        crops = {(size, size, 3), (1, 3, size, size)}
        return sum(1 for s in self.uploads + self.downloads if tuple(s) in crops)


# -- the swap path ------------------------------------------------------------------------
def _stage(backend, loader):
    from livecam.swap.stage import SwapStage

    settings = Settings().with_changes(SETTINGS)
    return SwapStage(loader, settings, backend), settings


def time_swap_path(backend, loader, faces: int, frames: int, warmup: int = 5) -> dict:
    """Median wall ms per frame of `SwapStage.process` (frame resident on the backend), per face."""
    stage, settings = _stage(backend, loader)
    frame = frame_1080p()
    dev = backend.asarray(frame) if backend.is_gpu else frame
    rng = np.random.default_rng(3)
    src = source_face()
    ms = []
    for i in range(frames + warmup):
        fl = faces_in(faces, frame.shape, jitter=0.2, rng=rng)
        work = dev if backend.is_gpu else frame.copy()
        backend.synchronize()
        t0 = time.perf_counter()
        stage.process(work, fl, src, settings, StageTimes(), inplace=True)
        backend.synchronize()
        if i >= warmup:  # warm-up: buffers, kernel compilation, cuDNN/cuBLAS handles
            ms.append((time.perf_counter() - t0) * 1000.0)
    p50 = statistics.median(ms)
    return {"faces": faces, "frame_ms_p50": round(p50, 3), "per_face_ms": round(p50 / faces, 3),
            "guard_rejects": stage.guard_rejects}


def count_swap_path(backend, loader, faces: int, frames: int = 3) -> dict:
    """Transfers and host reads per frame of the device path, as seen at the backend."""
    counter = BackendCounter(backend)
    stage, settings = _stage(backend, loader)
    frame = frame_1080p()
    src = source_face()
    fl = faces_in(faces, frame.shape)
    per_frame = []
    for _ in range(frames):
        counter.reset()
        stage.process(frame, fl, src, settings, StageTimes())  # a host frame: uploaded once, downloaded once
        per_frame.append({"uploads": list(counter.uploads), "downloads": list(counter.downloads),
                          "syncs": counter.syncs, "crop_crossings": counter.crop_crossings(stage._swapper.size)})
    last = per_frame[-1]
    return {"faces": faces, "crop_crossings": max(p["crop_crossings"] for p in per_frame),
            "frame_uploads": last["uploads"].count(frame.shape),
            "frame_downloads": last["downloads"].count(frame.shape),
            # the frame's download is one sync per frame, not per face
            "backend_reads_per_face": round((last["syncs"] - last["downloads"].count(frame.shape)) / faces, 3)}


def counted(faces: int, frames: int = 3) -> dict:
    """Exact host syncs per face (incl. scalar reads) on the counting backend."""
    from livecam.ops.counting import CountingBackend
    from livecam.testing.device import counting_loader

    be = CountingBackend()
    stage, settings = _stage(be, counting_loader(be))
    frame = frame_1080p()
    src = source_face()
    fl = faces_in(faces, frame.shape)
    syncs = []
    for _ in range(frames):
        be.counts.reset()
        stage.process(frame, fl, src, settings, StageTimes())
        syncs.append(be.counts.syncs - 1)  # minus the frame's download
    size = stage._swapper.size
    crossings = be.counts.crossings((size, size, 3)) + be.counts.crossings((1, 3, size, size))
    return {"faces": faces, "crop_crossings": crossings, "syncs_per_face_first": round(syncs[0] / faces, 3),
            "syncs_per_face": round(syncs[-1] / faces, 3),
            "guard_reads_per_face": round(be.counts.downloads.count((5,)) / faces, 3)}


# -- parity ---------------------------------------------------------------------------
def _diff(a, b) -> dict:
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return {"max": round(float(d.max()), 4), "mean": round(float(d.mean()), 5)}


def parity(gpu, cpu) -> dict:
    """GPU backend vs CPU backend on the swap path's ops; each entry has max/mean and ok."""
    from livecam.face.geometry import align_matrix
    from livecam.swap import composite as C
    from livecam.swap.guard import check_swap
    from livecam.swap.masks import box_mask
    from livecam.swap.temporal import TrackState

    frame = frame_1080p()
    face = faces_in(1, frame.shape)[0]
    mat = align_matrix(face.kps5, "arcface_128", 256)
    res = {}
    crop_c = cpu.warp_affine(frame, mat, (256, 256))
    crop_g = gpu.to_host(gpu.warp_affine(gpu.asarray(frame), mat, (256, 256)))
    res["warp_affine"] = _diff(crop_c, crop_g)
    res["resize"] = _diff(cpu.resize(crop_c, (64, 64), "area"),
                          gpu.to_host(gpu.resize(gpu.asarray(crop_c), (64, 64), "area")))
    f = crop_c.astype(np.float32)
    res["gaussian_blur"] = _diff(cpu.gaussian_blur(f, 3.0), gpu.to_host(gpu.gaussian_blur(gpu.asarray(f), 3.0)))
    alpha = np.clip(np.random.default_rng(1).random((256, 256)), 0, 1).astype(np.float32)
    other = np.ascontiguousarray(crop_c[::-1])
    out_c = np.empty_like(crop_c)
    out_g = gpu.empty(crop_c.shape, dtype=np.uint8)
    cpu.blend(crop_c, other, alpha, out_c)
    gpu.blend(gpu.asarray(crop_c), gpu.asarray(other), gpu.asarray(alpha), out_g)
    res["blend"] = _diff(out_c, gpu.to_host(out_g))
    table = C.color_lut(np.array([1.1, 0.9, 1.0]), np.array([0.01, -0.02, 0.0]))
    res["lut"] = _diff(cpu.lut(crop_c, table), gpu.to_host(gpu.lut(gpu.asarray(crop_c), table)))
    mask = box_mask(256, 0.3)
    res["color_moments"] = _diff(cpu.to_host(C.color_moments(cpu, crop_c, mask)),
                                 gpu.to_host(C.color_moments(gpu, gpu.asarray(crop_c), gpu.asarray(mask))))
    st_c, st_g = TrackState(), TrackState()
    gain, bias = C.transfer_params(C.color_stats(cpu, other, mask), C.color_stats(cpu, crop_c, mask))
    gain, bias = C.smooth_color(st_c, gain, bias, 1.0)
    dev_table = C.device_color_lut(gpu, st_g, gpu.asarray(other), gpu.asarray(crop_c), gpu.asarray(mask), 1.0)
    res["device_color_table"] = _diff(C.color_lut(gain, bias), gpu.to_host(dev_table))
    res["guard"] = {"cpu": check_swap(np, f, crop_c), "gpu": check_swap(gpu.xp, gpu.asarray(f), gpu.asarray(crop_c),
                                                                          gpu.to_host)}
    for k, v in res.items():
        if k == "guard":
            v["ok"] = v["cpu"] == v["gpu"]
        elif k == "device_color_table":
            v["ok"] = v["max"] <= 1.0  # float64 pow on two devices: at most one level at a rounding edge
        elif k == "color_moments":
            v["ok"] = v["max"] <= 1e-2
        else:
            v["ok"] = v["mean"] <= PARITY_MEAN and v["max"] <= PARITY_MAX
    return res


# -- the run -----------------------------------------------------------------------------
def device_part(make_backend, make_loader, cpu, frames: int, cpu_paths: list) -> tuple[dict, dict]:
    """Parity, counts and timing of the device path; `make_backend()` gives a fresh GPU
    backend, `make_loader(backend)` a device stand-in loader for it (tests pass the
    counting backend here)."""
    result, checks = {}, {}
    result["parity"] = parity(make_backend(), cpu)
    for k, v in result["parity"].items():
        checks[f"parity_{k}"] = bool(v["ok"])
    counts = []
    for n in FACE_COUNTS:
        be = make_backend()
        counts.append(count_swap_path(be, make_loader(be), n))
    result["gpu_counts"] = counts
    for c in counts:
        checks[f"gpu_{c['faces']}_no_crop_crossing"] = c["crop_crossings"] == 0
        checks[f"gpu_{c['faces']}_frame_once"] = c["frame_uploads"] == 1 and c["frame_downloads"] == 1
        checks[f"gpu_{c['faces']}_backend_reads_per_face_le_1"] = c["backend_reads_per_face"] <= 1.0
    paths = []
    for n in FACE_COUNTS:
        be = make_backend()
        paths.append(time_swap_path(be, make_loader(be), n, frames))
    result["gpu_swap_path"] = paths
    checks.update(speed_checks(paths, cpu_paths))
    return result, checks


def speed_checks(gpu_paths: list, cpu_paths: list) -> dict:
    """GPU per-face time below the CPU backend's, per face count."""
    return {f"gpu_faster_than_cpu_{g['faces']}_faces": g["per_face_ms"] < c["per_face_ms"]
            for g, c in zip(gpu_paths, cpu_paths)}


def run(cpu_only: bool = False, frames: int = 30) -> dict:
    from livecam.ops import get_backend, gpu_available
    from livecam.testing.device import DeviceStandinLoader

    result: dict = {"cpu_only": cpu_only, "frames": frames}
    checks: dict[str, bool] = {}
    cpu = get_backend("cpu")
    host_loader = lambda: DeviceStandinLoader(np, lambda a: isinstance(a, np.ndarray))  # noqa: E731
    result["counted"] = [counted(n) for n in FACE_COUNTS]
    for c in result["counted"]:
        checks[f"counted_{c['faces']}_no_crop_crossing"] = c["crop_crossings"] == 0
        checks[f"counted_{c['faces']}_one_guard_read_per_face"] = c["guard_reads_per_face"] <= 1.0
    result["cpu_swap_path"] = [time_swap_path(cpu, host_loader(), n, frames) for n in FACE_COUNTS]
    if cpu_only:
        result["device"] = None
    elif not gpu_available():
        result["device"] = None
        result["error"] = "no CuPy/CUDA device: pip install cupy-cuda13x on a machine with an NVIDIA GPU"
        checks["gpu_available"] = False
    else:
        import cupy

        from livecam.testing.device import cupy_loader

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        result["device"] = {"name": name, "cupy": cupy.__version__}
        part, part_checks = device_part(lambda: get_backend("gpu"), lambda backend: cupy_loader(), cpu, frames,
                                        result["cpu_swap_path"])
        result.update(part)
        checks.update(part_checks)
    result["checks"] = checks
    result["failed"] = sorted(k for k, ok in checks.items() if not ok)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n")[0])
    ap.add_argument("--cpu-only", action="store_true", help="only the parts that need no GPU")
    ap.add_argument("--frames", type=int, default=30, help="timed frames per configuration (default 30)")
    args = ap.parse_args(argv)
    result = run(cpu_only=args.cpu_only, frames=args.frames)
    print(json.dumps(result, indent=1))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
