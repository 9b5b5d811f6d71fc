"""Array backends: the CPU (OpenCV) backend is the reference; the array-generic
backend is held to it on NumPy/SciPy ("ref", always) and on CuPy ("gpu",
`@pytest.mark.gpu`, skipped only where CuPy or a CUDA device is missing)."""

from __future__ import annotations

import numpy as np
import pytest

from livecam.errors import RuntimeUnavailable
from livecam.face.geometry import compose_similarity
from livecam.ops import get_backend, gpu_available, gpu_inference_available
from livecam.ops.cpu import CpuBackend
from livecam.ops.xp import make_reference_backend

CPU = CpuBackend()


def _other(kind):
    if kind == "ref":
        return make_reference_backend()
    if not gpu_available():
        pytest.skip("CuPy or a CUDA device is not available")
    return get_backend("gpu")


KINDS = ["ref", pytest.param("gpu", marks=pytest.mark.gpu)]


@pytest.fixture(params=KINDS)
def other(request):
    return _other(request.param)


@pytest.fixture(scope="module")
def img(astronaut):
    return astronaut


def _h(be, a):
    return be.to_host(a)


@pytest.mark.parametrize("border", ["replicate", "constant"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_warp_affine_parity(other, img, border, dtype):
    m = compose_similarity(0.3, 0.6, -40, 20)
    src = img.astype(dtype)
    a = CPU.warp_affine(src, m, (256, 200), border=border).astype(np.float32)
    b = _h(other, other.warp_affine(other.asarray(src), m, (256, 200), border=border)).astype(np.float32)
    assert b.shape == (200, 256, 3)
    d = np.abs(a - b)
    # OpenCV quantizes sample positions to 1/32 px; the generic backend does not.
    assert d.mean() < 0.1
    assert np.percentile(d, 99.9) <= 2.5
    assert d.max() <= 4.0


def test_warp_affine_convention_is_cv2s():
    """M maps src -> dst: an integer translation moves content by exactly that much."""
    src = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    m = np.array([[1.0, 0, 3], [0, 1.0, 2]])
    for be in (CPU, make_reference_backend()):
        out = be.warp_affine(src, m, (30, 20), border="constant")
        np.testing.assert_array_equal(out[2:, 3:], src[:-2, :-3])


def test_warp_affine_into_buffer(other, img):
    m = compose_similarity(0.1, 0.5, 10, 10)
    out = other.empty((128, 128, 3), dtype=np.uint8)
    res = other.warp_affine(other.asarray(img), m, (128, 128), out=out)
    assert res is out


def test_resize_and_blur_parity(other, img):
    f = img.astype(np.float32)
    fd = other.asarray(f)
    assert np.abs(CPU.resize(f, (300, 200)) - _h(other, other.resize(fd, (300, 200)))).max() < 1e-2
    assert np.abs(CPU.resize(f, (128, 128), "area") - _h(other, other.resize(fd, (128, 128), "area"))).max() < 1e-2
    for sigma in (1.5, 5.0):
        assert np.abs(CPU.gaussian_blur(f, sigma) - _h(other, other.gaussian_blur(fd, sigma))).max() < 1e-2


def test_channels_parity(other):
    a = np.random.default_rng(3).random((37, 53)).astype(np.float32)
    want = np.repeat(a[..., None], 3, axis=2)
    np.testing.assert_array_equal(CPU.channels(a, 3), want)
    out = other.empty((37, 53, 3), dtype=np.float32)
    assert other.channels(other.asarray(a), 3, out=out) is out
    np.testing.assert_array_equal(_h(other, out), want)


def test_pyramid_parity(other, img):
    f = img.astype(np.float32)
    down = CPU.pyr_down(f)
    down_o = _h(other, other.pyr_down(other.asarray(f)))
    assert down.shape == down_o.shape == (256, 256, 3)
    assert np.abs(down - down_o).max() < 1e-2
    up = CPU.pyr_up(down, (512, 512))
    up_o = _h(other, other.pyr_up(other.asarray(down), (512, 512)))
    assert np.abs(up - up_o)[2:-2, 2:-2].max() < 1e-2


def test_fill_convex_parity(other):
    pts = np.array([[30, 40], [200, 35], [220, 180], [100, 230], [20, 150.5]])
    a = CPU.fill_convex((256, 256), pts)
    b = _h(other, other.fill_convex((256, 256), pts))
    assert a.sum() > 25000
    assert (a != b).mean() < 0.005  # rasterisation differs only on edge pixels


def test_colour_ops_parity(other, img):
    table = np.stack([np.arange(256)[::-1], np.arange(256), np.minimum(np.arange(256) * 2, 255)], 1).astype(np.uint8)
    d = other.asarray(img)
    np.testing.assert_array_equal(CPU.lut(img, table), _h(other, other.lut(d, table)))
    lin = CPU.to_linear(img)
    np.testing.assert_array_equal(lin, _h(other, other.to_linear(d)))
    assert np.abs(CPU.from_linear(lin) - _h(other, other.from_linear(other.asarray(lin)))).max() < 1e-2
    assert np.abs(CPU.from_linear(lin) - img).max() < 1e-3  # round trip


def test_blend_and_seam_parity(other, img):
    rng = np.random.default_rng(0)
    roi = img[:200, :300].copy()
    color = img[100:300, 150:450].copy()
    alpha = np.clip(rng.uniform(-0.5, 1.5, (200, 300)), 0, 1).astype(np.float32)
    out_c = np.empty_like(roi)
    CPU.blend(roi, color, alpha, out_c)
    out_o = other.empty(roi.shape, dtype=np.uint8)
    other.blend(other.asarray(roi), other.asarray(color), other.asarray(alpha), out_o)
    out_o = _h(other, out_o)
    assert np.abs(out_c.astype(int) - out_o).max() <= 1
    zero = alpha == 0
    np.testing.assert_array_equal(out_c[zero], roi[zero])  # untouched where the mask is 0
    np.testing.assert_array_equal(out_o[zero], roi[zero])
    # 8-bit alpha (the CPU paste's): each product rounded, within 1 level of the float blend
    a8 = np.rint(alpha * 255).astype(np.uint8)
    out8_c, out8_o = np.empty_like(roi), other.empty(roi.shape, dtype=np.uint8)
    CPU.blend(roi, color, a8, out8_c)
    other.blend(other.asarray(roi), other.asarray(color), other.asarray(a8), out8_o)
    out8_o = _h(other, out8_o)
    exact = roi * (1 - a8[..., None] / 255.0) + color * (a8[..., None] / 255.0)
    assert np.abs(out8_c - exact).max() <= 1.0 and np.abs(out8_o - exact).max() <= 1.0
    assert np.abs(out8_c.astype(int) - out_c).max() <= 1
    np.testing.assert_array_equal(out8_c[zero], roi[zero])
    np.testing.assert_array_equal(out8_c[alpha == 1], color[alpha == 1])  # the colour where the mask is 1
    np.testing.assert_array_equal(out8_o[zero], roi[zero])
    np.testing.assert_array_equal(out8_o[alpha == 1], color[alpha == 1])
    view = np.zeros((210, 320, 3), np.uint8)  # in place into a strided view, as the paste does
    win = view[5:205, 10:310]
    win[...] = roi
    CPU.blend(win, color, a8, win)
    np.testing.assert_array_equal(win, out8_c)
    assert not view[:5].any() and not view[:, :10].any()
    prev = np.clip(out_c.astype(int) + rng.integers(-15, 16, out_c.shape), 0, 255).astype(np.uint8)
    a_c, a_o = out_c.copy(), other.asarray(out_c.copy())
    ramp = np.clip(np.minimum.reduce(np.mgrid[0:200, 0:300]) / 30.0 - 0.2, 0, 1).astype(np.float32)  # 0 at the edge
    band = CPU.seam_band(ramp, 0.01, 0.99, 12)
    band_o = _h(other, other.seam_band(other.asarray(ramp), 0.01, 0.99, 12))
    np.testing.assert_array_equal(band != 0, band_o != 0)
    rows = (band[:, 150] != 0).nonzero()[0]
    assert rows.min() == 7 and rows.max() == 18  # alpha > 0.01 from row 7; 12 px wide
    CPU.seam_keep(a_c, prev, band, 10)
    other.seam_keep(a_o, other.asarray(prev), other.asarray(band), 10)
    np.testing.assert_array_equal(a_c, _h(other, a_o))
    kept = (a_c == prev).all(axis=2) & (out_c != prev).any(axis=2)
    assert kept.any() and not kept[band == 0].any()


def test_get_backend_choice():
    assert get_backend("cpu").name == "cpu"
    assert get_backend("auto").name == ("gpu" if gpu_available() and gpu_inference_available() else "cpu")
    with pytest.raises(ValueError):
        get_backend("tpu")
    if not gpu_available():
        with pytest.raises(RuntimeUnavailable) as e:
            get_backend("gpu")
        assert "cupy" in str(e.value).lower()


@pytest.mark.parametrize("blend", ["feather", "pyramid"])
def test_paste_parity(other, img, blend):
    from livecam.face.geometry import align_matrix
    from livecam.swap.composite import Compositor
    from livecam.swap.masks import box_mask
    from livecam.swap.temporal import TrackState

    kps = np.array([[203.6, 102.0], [247.8, 104.1], [224.0, 124.9], [204.2, 143.2], [241.9, 144.8]])
    m = align_matrix(kps, "arcface_128", 256)
    color = np.ascontiguousarray(img[::2, ::2][:256, :256, ::-1])
    mask = box_mask(256, 0.3)
    a = img.copy()
    Compositor(CPU).paste(a, color, mask, m, TrackState(), blend=blend)
    b = other.asarray(img.copy())
    Compositor(other).paste(b, other.asarray(color), other.asarray(mask), m, TrackState(), blend=blend)
    d = np.abs(a.astype(int) - _h(other, b))
    assert (a != img).any(axis=2).mean() > 0.05
    assert d.mean() < 0.1 and np.percentile(d, 99.9) <= 3


def test_auto_uses_gpu_ops_only_when_models_also_run_on_the_gpu(monkeypatch):
    """GPU array ops with CPU-hosted models were measured slower (README, Array backend)."""
    import livecam.ops as ops

    sentinel = object()
    monkeypatch.setattr(ops, "make_gpu_backend", lambda: sentinel)
    monkeypatch.setattr(ops, "gpu_available", lambda: True)
    monkeypatch.setattr(ops, "gpu_inference_available", lambda: False)
    assert ops.get_backend("auto").name == "cpu"
    assert ops.get_backend("gpu") is sentinel  # forcing still works
    monkeypatch.setattr(ops, "gpu_inference_available", lambda: True)
    assert ops.get_backend("auto") is sentinel
    monkeypatch.setattr(ops, "gpu_available", lambda: False)
    assert ops.get_backend("auto").name == "cpu"


def test_max3_parity(other):
    rng = np.random.default_rng(3)
    a = rng.random((17, 23)).astype(np.float32)
    ref = np.max([np.pad(a, 1, mode="edge")[dy:dy + 17, dx:dx + 23] for dy in range(3) for dx in range(3)], axis=0)
    np.testing.assert_array_equal(CPU.max3(a), ref)
    np.testing.assert_array_equal(_h(other, other.max3(other.asarray(a))), ref)


@pytest.mark.parametrize("alpha_type", [np.float32, np.uint8])
def test_warp_color_alpha_band_parity(other, img, alpha_type):
    """The seam band: 255 where the warped band is over one half (in the colour warp's 4th
    channel with a float alpha, in a warp of its own when the 4th channel carries an 8-bit one)."""
    color = img[:128, :128].copy()
    mask = np.clip(np.minimum.reduce(np.mgrid[0:128, 0:128]) / 30.0, 0, 1).astype(np.float32)  # a ramp
    mask = np.minimum(mask, mask[::-1, ::-1])
    band = np.zeros((128, 128), np.uint8)
    band[:10], band[-10:], band[:, :10], band[:, -10:] = 1, 1, 1, 1
    m = compose_similarity(0.2, 2.5, 90, 20)  # crop -> rectangle, magnified 2.5x, all inside
    outs, colors, alphas = [], [], []
    ref_alpha = CPU.warp_affine(mask, m, (480, 480), border="constant")
    for be in (CPU, other):
        c, a, b = be.warp_color_alpha(be.asarray(color), be.asarray(mask), m, (480, 480),
                                      be.empty((480, 480, 3), np.uint8), be.empty((480, 480), alpha_type),
                                      be.asarray(band), be.empty((480, 480), np.uint8))
        outs.append(_h(be, b))
        colors.append(_h(be, c).astype(int))
        alphas.append(_h(be, a).astype(np.float64) / (255.0 if alpha_type == np.uint8 else 1.0))
        *_, no_band = be.warp_color_alpha(be.asarray(color), be.asarray(mask), m, (480, 480),
                                          be.empty((480, 480, 3), np.uint8), be.empty((480, 480), alpha_type))
        assert no_band is None
    tol = 1.5 / 255 if alpha_type == np.uint8 else 1e-3  # rounded before and after the warp
    for a in alphas:
        assert np.abs(a - ref_alpha).max() <= tol
    inside = ref_alpha > 0  # (outside the mask the CPU's colour is its zero border: never blended)
    assert np.abs(colors[0] - colors[1])[inside].mean() < 0.2  # (OpenCV's 1/32-px sample positions)
    assert np.abs(colors[0] - CPU.warp_affine(color, m, (480, 480)))[inside].max() == 0
    b_cpu, b_other = outs
    assert set(np.unique(b_cpu)) == {0, 255}
    assert (b_cpu != b_other).mean() < 0.01
    ring = (b_cpu > 0).sum() / 2.5 ** 2  # back in crop pixels
    assert abs(ring - (128 ** 2 - 108 ** 2)) < 0.05 * (128 ** 2 - 108 ** 2)
