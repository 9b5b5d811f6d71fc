"""Array-module-generic backend: CuPy + cupyx.scipy.ndimage on the GPU.

The same class runs on NumPy + scipy.ndimage (`make_reference_backend`): the
tests exercise every line of the GPU backend's code on machines without a GPU,
and the GPU parity tests then only have to show that CuPy agrees with NumPy.
Semantics are those documented in `livecam.ops.cpu` (the CPU backend is the
reference the parity tests compare against).
"""

from __future__ import annotations

import numpy as np

from livecam.ops.cpu import SRGB_TO_LINEAR
from livecam.ops.fused import FusedFaceOps

# cv2.pyrDown / pyrUp 5-tap binomial kernel.
_PYR = np.array([1.0, 4.0, 6.0, 4.0, 1.0], dtype=np.float32) / 16.0


class _CudaKernels:
    """Fused elementwise kernels for the per-pixel blends (one launch instead of ~8)."""

    def __init__(self, cupy):
        self.blend = cupy.ElementwiseKernel(
            "uint8 r, uint8 c, float32 a", "uint8 o",
            "float v = r * (1.0f - a) + c * a; o = (unsigned char)fminf(fmaxf(rintf(v), 0.0f), 255.0f);",
            "livecam_blend")
        # Loops over the pixels of `band` (h, w); `prev`/`out` are contiguous (h, w, 3).
        self.seam = cupy.ElementwiseKernel(
            "uint8 band, raw uint8 prev, int32 tol3", "raw uint8 out",
            """
            if (band) {
                const int p = i * 3;
                const int d = abs((int)out[p] - (int)prev[p]) + abs((int)out[p + 1] - (int)prev[p + 1])
                            + abs((int)out[p + 2] - (int)prev[p + 2]);
                if (d <= tol3) { out[p] = prev[p]; out[p + 1] = prev[p + 1]; out[p + 2] = prev[p + 2]; }
            }
            """,
            "livecam_seam_keep")


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDARuntimeError (no driver), ...
        return False


def make_gpu_backend() -> "XpBackend":
    import cupy
    import cupyx.scipy.ndimage as ndi

    return XpBackend(cupy, ndi, name="gpu")


def make_reference_backend() -> "XpBackend":
    """The GPU backend's code on NumPy/SciPy (tests; also a fallback without OpenCV)."""
    import scipy.ndimage as ndi

    return XpBackend(np, ndi, name="ref")


def _invert_affine(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    a = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(a)[:2]


class XpBackend:
    """Image ops written against an array module `xp` and its ndimage."""

    paste_alpha = np.float32  # the fused float blend costs no more than an 8-bit one on the GPU

    def __init__(self, xp, ndi, name: str, fused_kernels: bool = True):
        self.xp = xp
        self.ndi = ndi
        self.name = name
        self.is_gpu = xp is not np
        self._srgb_lut = xp.asarray(SRGB_TO_LINEAR)
        self._pyr = xp.asarray(_PYR)
        self._pyr_up = xp.asarray(_PYR * 2.0)
        # CUDA kernels only on CuPy (the counting backend runs this class's GPU path on NumPy)
        self._kernels = _CudaKernels(xp) if self.is_gpu and fused_kernels else None
        # per-face reductions (guard, colour transfer) in few launches; None = the xp code below
        self.fused = FusedFaceOps(xp, self._srgb_lut) if self._kernels is not None else None
        self._gauss: dict[float, object] = {}  # device Gaussian weights per sigma

    # -- memory ----------------------------------------------------------------
    def asarray(self, a, dtype=None):
        return self.xp.asarray(a, dtype=dtype)

    def to_host(self, a) -> np.ndarray:
        if self.is_gpu and not isinstance(a, np.ndarray):
            return self.xp.asnumpy(a)
        return np.asarray(a)

    def empty(self, shape, dtype=np.float32):
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype=np.float32):
        return self.xp.zeros(shape, dtype=dtype)

    def synchronize(self) -> None:
        if self.is_gpu:
            self.xp.cuda.get_current_stream().synchronize()

    # -- geometry --------------------------------------------------------------
    def warp_affine(self, src, matrix, dsize, out=None, border="replicate"):
        w, h = int(dsize[0]), int(dsize[1])
        inv = _invert_affine(matrix)  # dst -> src in (x, y)
        (a, b, c), (d, e, f) = inv
        # ndimage indexes (row, col[, channel]): row' = e*row + d*col + f, col' = b*row + a*col + c.
        if src.ndim == 2:
            mat = np.array([[e, d, f], [b, a, c]], dtype=np.float64)
            shape = (h, w)
        else:
            mat = np.array([[e, d, 0.0, f], [b, a, 0.0, c], [0.0, 0.0, 1.0, 0.0]], dtype=np.float64)
            shape = (h, w, src.shape[2])
        # 'grid-constant' interpolates towards the constant across the edge, as
        # cv2.BORDER_CONSTANT does; plain 'constant' would cut hard at the edge.
        mode = "nearest" if border == "replicate" else "grid-constant"
        res = self.ndi.affine_transform(src, self.xp.asarray(mat), output_shape=shape,
                                        output=out if out is not None else src.dtype,
                                        order=1, mode=mode, cval=0.0, prefilter=False)
        return out if out is not None else res

    def warp_color_alpha(self, color_u8, mask, matrix, dsize, color_out, alpha_out, band_u8=None, band_out=None):
        """Paste-back's warps (see `CpuBackend.warp_color_alpha`): the colour with a
        replicated border, the mask (float32, or uint8 x 255) and the optional band with a
        zero border."""
        self.warp_affine(color_u8, matrix, dsize, out=color_out)
        if alpha_out.dtype == np.uint8:  # the mask times 255, rounded before and after the warp
            a8 = self.xp.rint(mask * 255.0).astype(self.xp.float32)
            alpha_out[...] = self.xp.rint(self.warp_affine(a8, matrix, dsize, border="constant"))
        else:
            self.warp_affine(mask, matrix, dsize, out=alpha_out, border="constant")
        band = None
        if band_u8 is not None:
            warped = self.warp_affine((band_u8 != 0).astype(self.xp.float32), matrix, dsize, border="constant")
            band_out[...] = (warped > 0.5).astype(self.xp.uint8) * 255
            band = band_out
        return color_out, alpha_out, band

    def resize(self, src, dsize, interp="linear", out=None):
        xp = self.xp
        w, h = int(dsize[0]), int(dsize[1])
        sh, sw = src.shape[:2]
        if interp == "area" and sh % h == 0 and sw % w == 0 and sh // h == sw // w:
            k = sh // h
            blocks = src.reshape(h, k, w, k, *src.shape[2:]).astype(xp.float32)
            res = blocks.mean(axis=(1, 3))
            if src.dtype == np.uint8:
                res = xp.rint(res).astype(np.uint8)
        else:
            sy, sx = sh / h, sw / w
            mat = [sy, sx] + ([1.0] if src.ndim == 3 else [])
            off = [0.5 * sy - 0.5, 0.5 * sx - 0.5] + ([0.0] if src.ndim == 3 else [])
            shape = (h, w) + tuple(src.shape[2:])
            res = self.ndi.affine_transform(src, xp.asarray(np.diag(mat)), offset=off, output_shape=shape,
                                            output=src.dtype, order=1, mode="nearest", prefilter=False)
        if out is not None:
            out[...] = res
            return out
        return res

    def channels(self, src, n: int, out=None):
        """(h, w) -> (h, w, n), every channel a copy of `src`."""
        if out is None:
            out = self.xp.empty(src.shape + (n,), dtype=src.dtype)
        out[...] = src[..., None]
        return out

    # -- filters ---------------------------------------------------------------
    def gaussian_blur(self, src, sigma, out=None):
        if sigma <= 0:
            if out is None:
                return src.copy()
            out[...] = src
            return out
        w = self._gauss.get(sigma)
        if w is None:  # built once per sigma; the CPU backend's kernel radius (about 4 sigma)
            radius = int(4.0 * sigma + 0.5)
            x = np.arange(-radius, radius + 1, dtype=np.float64)
            k = np.exp(-0.5 * (x / sigma) ** 2)
            w = self._gauss[sigma] = self.xp.asarray((k / k.sum()).astype(np.float32))
        # Two 1-D passes over the image axes only (never the channel axis).
        tmp = self.ndi.correlate1d(src, w, axis=0, mode="mirror")
        res = self.ndi.correlate1d(tmp, w, axis=1, mode="mirror", output=out if out is not None else None)
        return out if out is not None else res

    def max3(self, src, out=None):
        """3x3 maximum filter of a 2-D array, edges replicated."""
        res = self.ndi.maximum_filter(src, size=3, mode="nearest")
        if out is not None:
            out[...] = res
            return out
        return res

    def _sep(self, src, kernel):
        tmp = self.ndi.convolve1d(src, kernel, axis=0, mode="mirror")
        return self.ndi.convolve1d(tmp, kernel, axis=1, mode="mirror")

    def pyr_down(self, src):
        res = self._sep(src.astype(self.xp.float32, copy=False), self._pyr)[::2, ::2]
        return self.xp.ascontiguousarray(res).astype(src.dtype, copy=False)

    def pyr_up(self, src, dsize):
        xp = self.xp
        w, h = int(dsize[0]), int(dsize[1])
        up = xp.zeros((2 * src.shape[0], 2 * src.shape[1]) + tuple(src.shape[2:]), dtype=xp.float32)
        up[::2, ::2] = src
        res = self._sep(up, self._pyr_up)[:h, :w]
        return xp.ascontiguousarray(res).astype(src.dtype, copy=False)

    def fill_convex(self, shape, points):
        """float32 mask, 1 inside the convex hull of `points` (x, y).

        Rasterised on the host with OpenCV and uploaded: a crop-sized mask is a
        few hundred kB, far cheaper to send than the dozens of tiny kernels a
        per-edge half-plane test costs on the GPU.
        """
        from livecam.ops.cpu import CpuBackend

        return self.xp.asarray(CpuBackend().fill_convex(shape, points))

    # -- colour ----------------------------------------------------------------
    def lut(self, src_u8, table, out=None):
        xp = self.xp
        t = xp.asarray(table, dtype=np.uint8).reshape(256, -1)  # a host table is uploaded, a device one is used
        src_u8 = self._index(src_u8)
        if src_u8.ndim == 2:
            res = t[:, 0][src_u8]
        else:
            res = t[src_u8, xp.arange(src_u8.shape[2])]
        if out is not None:
            out[...] = res
            return out
        return res

    def _index(self, a):
        # NumPy indexes with uint8 arrays directly; on CuPy use a plain integer index.
        return a.astype(self.xp.int32) if self.is_gpu else a

    def to_linear(self, src_u8):
        return self._srgb_lut[self._index(src_u8)]

    def from_linear(self, lin):
        xp = self.xp
        lin = xp.clip(lin, 0.0, 1.0)
        hi = xp.power(lin, 1.0 / 2.4) * (1.055 * 255.0) - 0.055 * 255.0
        return xp.where(lin <= 0.0031308, lin * (12.92 * 255.0), hi).astype(xp.float32)

    def blend(self, roi, color, alpha, out):
        """See `CpuBackend.blend`: float32 alpha in [0, 1] or uint8 in [0, 255]."""
        xp = self.xp
        if alpha.dtype == np.uint8:  # each product rounded, as OpenCV's two multiplies
            a = alpha[..., None].astype(xp.float32)
            res = xp.rint(color * a * (1.0 / 255.0)) + xp.rint(roi * (255.0 - a) * (1.0 / 255.0))
            out[...] = xp.clip(res, 0, 255).astype(xp.uint8)
            return out
        if self._kernels is not None:  # one fused kernel on the GPU
            self._kernels.blend(roi, color, alpha[..., None], out)
            return out
        a = alpha[..., None]
        res = roi.astype(xp.float32) * (1.0 - a) + color.astype(xp.float32) * a
        out[...] = xp.clip(xp.rint(res), 0, 255).astype(xp.uint8)
        return out

    def seam_band(self, alpha, lo, hi, width):
        xp = self.xp
        support = (alpha > lo).astype(xp.uint8)
        inner = self.ndi.minimum_filter(support, size=2 * width + 1, mode="constant", cval=0)
        return support & (1 - inner) & (alpha < hi).astype(xp.uint8)

    def seam_keep(self, out, prev, band, tol) -> None:
        xp = self.xp
        if self._kernels is not None:  # the kernel takes contiguous arrays: copy strided overlaps
            c = out if out.flags.c_contiguous else xp.ascontiguousarray(out)
            self._kernels.seam(xp.ascontiguousarray(band), xp.ascontiguousarray(prev), np.int32(3 * tol), c)
            if c is not out:
                out[...] = c
            return
        diff = xp.abs(out.astype(xp.int16) - prev.astype(xp.int16)).sum(axis=2)
        keep = (band != 0) & (diff <= 3 * tol)
        xp.copyto(out, prev, where=keep[..., None])
