"""Fused per-face reductions on CuPy: the guard's statistics and the colour transfer in
three kernel launches instead of about eighty (the GPU swap path was launch-bound).

- `guard_sums(swapped, target)`: one elementwise kernel writes, per 4x4 block, the
  block's full sum (every pixel: one NaN poisons it), the sampled pixel's value,
  saturation flag and square, and the target's sampled value; one reduction sums
  them. The guard reads those 5 numbers (its one host sync per face) and derives
  mean, saturated fraction, std and target mean on the host (`guard.stats_from_sums`).
- `color_table(st, swapped_u8, target_u8, mask, momentum)`: one kernel writes both
  crops' mask-weighted linear-light moments, one reduction sums them, and one kernel
  turns them into the smoothed, quantized gain/bias (kept on the device in the track
  state) and the 256x3 table, exactly as `composite.color_stats` -> `transfer_params`
  -> `smooth_color` -> `color_lut` do on the host.

Every entry point returns None when it cannot run (not CuPy, a non-contiguous input,
or the kernels failed to compile: logged once); callers then use the array-module
code, which is the reference these kernels are checked against
(`benchmarks/gpu_check.py` parity).
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

_GUARD = r"""
const int w4 = (S + 3) / 4;
const int y = (i / w4) * 4, x = (i % w4) * 4;
float block = 0.0f;
for (int dy = 0; dy < 4; ++dy) {
    if (y + dy >= S) break;
    for (int dx = 0; dx < 4; ++dx) {
        if (x + dx >= S) break;
        const int p = ((y + dy) * S + (x + dx)) * 3;
        block += sw[p] + sw[p + 1] + sw[p + 2];
    }
}
float s = 0.0f, sat = 0.0f, sq = 0.0f, t = 0.0f;
const int p = (y * S + x) * 3;
for (int c = 0; c < 3; ++c) {
    const float v = sw[p + c];
    s += v; sat += (v >= sat_level) ? 1.0f : 0.0f; sq += v * v; t += (float)tg[p + c];
}
feat[i * 5 + 0] = block; feat[i * 5 + 1] = s; feat[i * 5 + 2] = sat; feat[i * 5 + 3] = sq; feat[i * 5 + 4] = t;
"""

_MOMENTS = r"""
const int y = (i / nside) * step, x = (i % nside) * step;
const float w = m[y * S + x];
const int p = (y * S + x) * 3;
float* f = &feat[i * 14];
f[0] = w; f[7] = w;
for (int c = 0; c < 3; ++c) {
    const float la = lut[a[p + c]], lb = lut[b[p + c]];
    f[1 + c] = la * w; f[4 + c] = la * la * w;
    f[8 + c] = lb * w; f[11 + c] = lb * lb * w;
}
"""

_TABLE = r"""
const int level = i / 3, c = i % 3;
const double ws = sums[0], wd = sums[7];
const double ms = ws >= 1e-3 ? sums[1 + c] / ws : 0.0;
const double ss = ws >= 1e-3 ? sqrt(fmax(sums[4 + c] / ws - ms * ms, 0.0)) : 1.0;
const double md = wd >= 1e-3 ? sums[8 + c] / wd : 0.0;
const double sd = wd >= 1e-3 ? sqrt(fmax(sums[11 + c] / wd - md * md, 0.0)) : 1.0;
const double g = fmin(fmax(sd / fmax(ss, 1e-4), gain_lo), gain_hi);
const double bb = fmin(fmax(md - g * ms, -bias_lim), bias_lim);
const double gs = first ? g : g_in[c] + momentum * (g - g_in[c]);
const double bs = first ? bb : b_in[c] + momentum * (bb - b_in[c]);
if (level == 0) { g_out[c] = gs; b_out[c] = bs; }
const double gq = rint(gs * quant) / quant, bq = rint(bs * quant) / quant;
const double lin = fmin(fmax((double)lut[level] * gq + bq, 0.0), 1.0);
const double srgb = lin <= 0.0031308 ? lin * 12.92 : 1.055 * pow(lin, 1.0 / 2.4) - 0.055;
table[i] = (unsigned char)fmin(fmax(rint(srgb * 255.0), 0.0), 255.0);
"""


class FusedFaceOps:
    """The fused kernels for one CuPy module (compiled on first use)."""

    def __init__(self, cupy, srgb_lut):
        self.cp = cupy
        self._lut = srgb_lut  # float32 (256,) sRGB -> linear, on the device
        self._kernels = None
        self.failed = ""

    def _k(self):
        if self._kernels is None:
            cp = self.cp
            self._kernels = {
                "guard": cp.ElementwiseKernel("raw float32 sw, raw uint8 tg, int32 S, float32 sat_level",
                                              "raw float32 feat", _GUARD, "livecam_guard_sums"),
                "moments": cp.ElementwiseKernel("raw uint8 a, raw uint8 b, raw float32 m, raw float32 lut, "
                                                "int32 S, int32 step, int32 nside", "raw float32 feat", _MOMENTS,
                                                "livecam_color_moments"),
                "table": cp.ElementwiseKernel(
                    "raw float32 sums, raw float64 g_in, raw float64 b_in, float64 momentum, int32 first, "
                    "raw float32 lut, float64 gain_lo, float64 gain_hi, float64 bias_lim, float64 quant",
                    "raw uint8 table, raw float64 g_out, raw float64 b_out", _TABLE, "livecam_color_table"),
            }
        return self._kernels

    def _usable(self, *arrays) -> bool:
        return not self.failed and all(a.flags.c_contiguous for a in arrays)

    def _fail(self, exc: Exception) -> None:
        self.failed = f"{type(exc).__name__}: {exc}"
        log.warning("fused GPU kernels unavailable (%s): using the array-module ops", self.failed)

    def guard_sums(self, swapped, target, saturated_level: float):
        """(5,) float32 on the device: block sum of every pixel, sum, saturated count, sum of
        squares of the 4x-subsampled swapped crop, sum of the subsampled target; or None."""
        cp = self.cp
        if not self._usable(swapped, target) or swapped.dtype != np.float32 or target.dtype != np.uint8:
            return None
        s = int(swapped.shape[0])
        n = ((s + 3) // 4) ** 2
        try:
            feat = cp.empty((n, 5), dtype=cp.float32)
            self._k()["guard"](swapped, target, np.int32(s), np.float32(saturated_level), feat, size=n)
            return feat.sum(axis=0)
        except Exception as exc:  # noqa: BLE001 - compile/launch failure: the xp path still works
            self._fail(exc)
            return None

    def color_table(self, st, swapped_u8, target_u8, mask, momentum: float, k: int, limits: dict):
        """The (256, 3) uint8 colour table, the track's gain/bias updated on the device; or None."""
        cp = self.cp
        if not self._usable(swapped_u8, target_u8, mask):
            return None
        s = int(swapped_u8.shape[0])
        n = (s + k - 1) // k
        first = st.gain is None or isinstance(st.gain, np.ndarray) or st.gain.shape != (3,)
        try:
            kern = self._k()
            feat = cp.empty((n * n, 14), dtype=cp.float32)
            kern["moments"](swapped_u8, target_u8, mask, self._lut, np.int32(s), np.int32(k), np.int32(n), feat,
                            size=n * n)
            sums = feat.sum(axis=0)
            table = cp.empty((256, 3), dtype=cp.uint8)
            g_out, b_out = cp.empty(3, dtype=cp.float64), cp.empty(3, dtype=cp.float64)
            g_in, b_in = (g_out, b_out) if first else (st.gain, st.bias)
            kern["table"](sums, g_in, b_in, np.float64(momentum), np.int32(first), self._lut,
                          np.float64(limits["gain_lo"]), np.float64(limits["gain_hi"]),
                          np.float64(limits["bias"]), np.float64(limits["quant"]), table, g_out, b_out, size=768)
        except Exception as exc:  # noqa: BLE001 - compile/launch failure: the xp path still works
            self._fail(exc)
            return None
        st.gain, st.bias = g_out, b_out
        return table
