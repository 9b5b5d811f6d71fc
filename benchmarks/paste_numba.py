"""Would a fused, compiled paste beat OpenCV's? A probe with Numba (not a livecam dependency).

    pip install numba   # dev-only, for this probe
    python -m benchmarks.paste_numba [--rounds 100]

The CPU paste is OpenCV calls (`CpuBackend.warp_color_alpha`: one 4-channel bilinear warp
carrying the 8-bit alpha; `CpuBackend.blend`: merge, two multiplies, an add), each a pass
over the rectangle. One fused pass (per pixel: the bilinear sample of colour and alpha from the
crop, the blend into the frame) reads and writes the frame once, so it looks cheaper. This
compiles that pass with Numba (`parallel=True` over rows, both cores) and times it against
OpenCV's calls on the same crop, mask and rectangles as `benchmarks.paste_cost` (256-px crop,
default box mask, a 4-degree roll), on fresh frames (the paste's frame is not in cache either),
the two alternating call by call. It also times the blend alone (warp from OpenCV, blend
fused), and prints the largest difference from OpenCV's result in levels.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from benchmarks.paste_cost import CASES, _matrix
from livecam.face.geometry import invert_affine, paste_rect
from livecam.ops.cpu import CpuBackend
from livecam.swap.masks import box_mask


def _kernels():
    try:
        import numba
    except ImportError as exc:  # a probe: say how to run it
        raise SystemExit("this probe needs Numba, which livecam does not use: pip install numba") from exc

    @numba.njit(parallel=True, cache=False, boundscheck=False)
    def paste(roi, src, m):
        """`src` (S+2, S+2, 4) uint8: colour with a replicated 1-px ring, alpha x 255 (0 on the
        ring); `m` rectangle -> padded crop. Bilinear, then the 8-bit blend, rounded."""
        h, w = roi.shape[0], roi.shape[1]
        s = src.shape[0]
        for y in numba.prange(h):
            for x in range(w):
                u = m[0, 0] * x + m[0, 1] * y + m[0, 2]
                v = m[1, 0] * x + m[1, 1] * y + m[1, 2]
                if u < 0.0 or v < 0.0 or u >= s - 1 or v >= s - 1:
                    continue
                x0, y0 = int(u), int(v)
                fx, fy = u - x0, v - y0
                w00, w01, w10, w11 = (1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy
                a = (w00 * src[y0, x0, 3] + w01 * src[y0, x0 + 1, 3] + w10 * src[y0 + 1, x0, 3]
                     + w11 * src[y0 + 1, x0 + 1, 3])
                a = np.floor(a + 0.5)
                if a <= 0.0:
                    continue
                for c in range(3):
                    col = np.floor(w00 * src[y0, x0, c] + w01 * src[y0, x0 + 1, c] + w10 * src[y0 + 1, x0, c]
                                   + w11 * src[y0 + 1, x0 + 1, c] + 0.5)
                    roi[y, x, c] = np.uint8(np.floor((col * a + roi[y, x, c] * (255.0 - a)) / 255.0 + 0.5))

    @numba.njit(parallel=True, cache=False, boundscheck=False)
    def blend(roi, color, alpha):
        h, w = alpha.shape
        for y in numba.prange(h):
            for x in range(w):
                a = np.uint32(alpha[y, x])
                if a == 0:
                    continue
                for c in range(3):
                    v = np.uint32(color[y, x, c]) * a + np.uint32(roi[y, x, c]) * (np.uint32(255) - a) + np.uint32(127)
                    roi[y, x, c] = np.uint8(v // np.uint32(255))

    return paste, blend


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.paste_numba", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args(argv)
    fused_paste, fused_blend = _kernels()
    be = CpuBackend()
    rng = np.random.default_rng(0)
    crop = cv2.GaussianBlur(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), (0, 0), 1.5)
    mask = box_mask(256, 0.3)
    for name, face_px, (fw, fh) in CASES:
        frames = [rng.integers(0, 256, (fh, fw, 3), dtype=np.uint8) for _ in range(8)]
        matrix = _matrix(face_px, (fw, fh))
        x1, y1, x2, y2 = paste_rect(matrix, 256, (fh, fw, 3))
        w, h = x2 - x1, y2 - y1
        back = invert_affine(matrix)
        back[:, 2] -= (x1, y1)  # crop -> rectangle
        color, alpha = np.empty((h, w, 3), np.uint8), np.empty((h, w), np.uint8)
        # the padded 4-channel source the OpenCV path warps (a copy: it is the backend's scratch),
        # and rectangle -> padded crop
        src, fwd = be.paste_source(crop, cv2.convertScaleAbs(mask, alpha=255.0), back)
        src, m = src.copy(), cv2.invertAffineTransform(fwd)

        def opencv(roi):
            be.warp_color_alpha(crop, mask, back, (w, h), color, alpha)
            be.blend(roi, color, alpha, roi)

        def numba_paste(roi):
            fused_paste(roi, src, m)

        def numba_blend(roi):
            be.warp_color_alpha(crop, mask, back, (w, h), color, alpha)
            fused_blend(roi, color, alpha)

        ways = {"OpenCV": opencv, "fused (Numba)": numba_paste, "OpenCV warp + fused blend": numba_blend}
        outs = {}
        for label, fn in ways.items():  # compile, and the result on one frame
            out = frames[0].copy()
            fn(out[y1:y2, x1:x2])
            outs[label] = out
        times = {label: [] for label in ways}
        for i in range(args.rounds):
            order = list(ways.items()) if i % 2 == 0 else list(ways.items())[::-1]
            for label, fn in order:
                frame = frames[i % len(frames)].copy()
                t = time.perf_counter()
                fn(frame[y1:y2, x1:x2])
                times[label].append((time.perf_counter() - t) * 1000.0)
        ref = outs["OpenCV"].astype(np.int16)
        print(f"{name} ({w}x{h} px): " + "; ".join(
            f"{label} {statistics.median(ts):.2f} ms (max {int(np.abs(outs[label] - ref).max())} levels off)"
            for label, ts in times.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
