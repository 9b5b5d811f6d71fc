"""The CUDA sources of `ops.fused`, compiled as C++ on the host and held to the host maths.

CuPy compiles these bodies with NVRTC on a GPU; here the same text is compiled with the
system C++ compiler (one loop over `i` standing in for the CUDA threads) so its arithmetic
is checked without a GPU: guard sums vs `check_swap`'s statistics, colour table vs
`color_stats` -> `transfer_params` -> `smooth_color` -> `color_lut`.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from livecam.ops import fused as F

CXX = shutil.which("g++") or shutil.which("c++")

HARNESS = r"""
#include <cmath>
using namespace std;
extern "C" void guard(const float* sw, const unsigned char* tg, int S, float sat_level, float* feat, int size) {
    for (int i = 0; i < size; ++i) { %(guard)s }
}
extern "C" void moments(const unsigned char* a, const unsigned char* b, const float* m, const float* lut,
                        int S, int step, int nside, float* feat, int size) {
    for (int i = 0; i < size; ++i) { %(moments)s }
}
extern "C" void table(const float* sums, const double* g_in, const double* b_in, double momentum, int first,
                      const float* lut, double gain_lo, double gain_hi, double bias_lim, double quant,
                      unsigned char* table, double* g_out, double* b_out, int size) {
    for (int i = 0; i < size; ++i) { %(table)s }
}
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if CXX is None:
        pytest.skip("no C++ compiler to check the CUDA sources on the host")
    d = tmp_path_factory.mktemp("fused")
    src = d / "fused.cpp"
    src.write_text(HARNESS % {"guard": F._GUARD, "moments": F._MOMENTS, "table": F._TABLE})
    so = d / "fused.so"
    subprocess.run([CXX, "-O1", "-shared", "-fPIC", str(src), "-o", str(so)], check=True, capture_output=True)
    return ctypes.CDLL(str(so))


def _p(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def _guard(lib, sw, tg):
    s = sw.shape[0]
    n = ((s + 3) // 4) ** 2
    feat = np.zeros((n, 5), np.float32)
    lib.guard(_p(sw), _p(tg), ctypes.c_int(s), ctypes.c_float(250.0), _p(feat), ctypes.c_int(n))
    return feat.sum(axis=0, dtype=np.float64), n * 3


@pytest.mark.parametrize("size", [128, 256, 130])
def test_guard_sums_give_check_swaps_statistics(lib, size):
    from livecam.swap.guard import SATURATED_LEVEL, stats_from_sums

    rng = np.random.default_rng(size)
    sw = np.ascontiguousarray(rng.uniform(0, 255, (size, size, 3)).astype(np.float32))
    sw[:7, :9] = 252.0  # some saturated samples
    tg = np.ascontiguousarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    sums, samples = _guard(lib, sw, tg)
    total, mean, sat, std, t_mean = stats_from_sums(sums, samples)
    s = sw[::4, ::4]
    assert total == pytest.approx(float(sw.sum(dtype=np.float64)), rel=1e-5)
    assert mean == pytest.approx(float(s.mean(dtype=np.float64)), rel=1e-5)
    assert sat == pytest.approx(float((s >= SATURATED_LEVEL).mean()), abs=1e-9)
    assert std == pytest.approx(float(s.std(dtype=np.float64)), rel=1e-3)
    assert t_mean == pytest.approx(float(tg[::4, ::4].mean(dtype=np.float64)), rel=1e-6)
    sw[size - 1, size - 1, 2] = np.nan  # a NaN at a pixel no sample sees still poisons the total
    assert not np.isfinite(_guard(lib, sw, tg)[0][0])


def test_colour_table_equals_the_host_chain_over_frames(lib):
    from livecam.ops import get_backend
    from livecam.ops.cpu import SRGB_TO_LINEAR
    from livecam.swap import composite as C
    from livecam.swap.masks import box_mask
    from livecam.swap.temporal import TrackState

    cpu = get_backend("cpu")
    rng = np.random.default_rng(5)
    size = 256
    k = max(1, size // C.STATS_SAMPLES)
    nside = (size + k - 1) // k
    mask = np.ascontiguousarray(box_mask(size, 0.3))
    st = TrackState()
    g_state, b_state = np.zeros(3), np.zeros(3)
    for frame, momentum in enumerate((0.3, 0.3, 0.3, 1.0)):
        a = np.ascontiguousarray(rng.integers(30, 220, (size, size, 3), dtype=np.uint8))
        b = np.ascontiguousarray(np.clip(a * [1.15, 0.85, 1.0] + 12 * frame, 0, 255).astype(np.uint8))
        feat = np.zeros((nside * nside, 14), np.float32)
        lib.moments(_p(a), _p(b), _p(mask), _p(SRGB_TO_LINEAR), ctypes.c_int(size), ctypes.c_int(k),
                    ctypes.c_int(nside), _p(feat), ctypes.c_int(nside * nside))
        sums = feat.sum(axis=0)
        assert np.allclose(sums[:7], cpu.to_host(C.color_moments(cpu, a, mask)), rtol=1e-4)
        assert np.allclose(sums[7:], cpu.to_host(C.color_moments(cpu, b, mask)), rtol=1e-4)
        # the host chain on the kernel's own sums (the reduction order is the GPU's business)
        def stats(s):
            s = s.astype(np.float64)
            mean = s[1:4] / s[0]
            return mean, np.sqrt(np.maximum(s[4:7] / s[0] - mean * mean, 0.0))
        gain, bias = C.transfer_params(stats(sums[:7]), stats(sums[7:]))
        gain, bias = C.smooth_color(st, gain, bias, momentum)
        want = C.color_lut(gain, bias)
        table = np.zeros((256, 3), np.uint8)
        g_out, b_out = np.zeros(3), np.zeros(3)
        lib.table(_p(sums), _p(g_state), _p(b_state), ctypes.c_double(momentum), ctypes.c_int(frame == 0),
                  _p(SRGB_TO_LINEAR), ctypes.c_double(C.GAIN_RANGE[0]), ctypes.c_double(C.GAIN_RANGE[1]),
                  ctypes.c_double(C.BIAS_RANGE), ctypes.c_double(C.QUANT), _p(table), _p(g_out), _p(b_out),
                  ctypes.c_int(768))
        assert np.allclose(g_out, st.gain, rtol=1e-12) and np.allclose(b_out, st.bias, rtol=1e-12, atol=1e-15)
        assert np.array_equal(table, want), (frame, np.abs(table.astype(int) - want).max())
        g_state, b_state = g_out.copy(), b_out.copy()
