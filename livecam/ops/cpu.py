"""CPU backend: NumPy arrays, OpenCV kernels where OpenCV is faster than NumPy.

Semantics every backend shares (the parity tests hold the GPU backend to them):
- images are HxW or HxWxC, pixel centres at integer coordinates;
- `warp_affine` takes the 2x3 forward matrix (src -> dst), bilinear, like
  `cv2.warpAffine`; border "replicate" or "constant" (0);
- `resize` is bilinear with half-pixel centres (`cv2.INTER_LINEAR`), or a block
  mean for integer downscale factors (`area`);
- `gaussian_blur` uses reflect-101 borders and a kernel radius of about 4 sigma;
- results have the input's dtype unless an `out` array says otherwise.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from livecam.ops.buffers import grow_view

_BORDERS = {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
_KERNEL_3x3 = np.ones((3, 3), np.uint8)

# sRGB <-> linear light (IEC 61966-2-1). The 8-bit decode table is exact; the
# encode is evaluated in float because it runs only on the optional pyramid path.
SRGB_TO_LINEAR = np.where(
    np.arange(256) / 255.0 <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)


# -- model inputs (host) -------------------------------------------------------------
def value_table(scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """(1, 256) float32: 8-bit value v -> (v + shift) * scale, for `planar_rgb`."""
    return ((np.arange(256, dtype=np.float32) + np.float32(shift)) * np.float32(scale)).reshape(1, 256)


def planar_rgb(canvas: np.ndarray, table: np.ndarray, blob: np.ndarray, planes: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> a model's `blob` (1, 3, H, W) float32: RGB planes mapped through
    `table` (1, 256) float32, which holds what the model's normalisation gives each 8-bit value.

    A split into reused planes (reading every 3rd byte cost 40 % more), then one table lookup
    per plane: a third of the time of NumPy's strided transpose-and-convert, 6x faster than
    `cv2.dnn.blobFromImage` here, and the same values."""
    cv2.split(canvas, planes)
    for c in range(3):
        cv2.LUT(planes[2 - c], table, dst=blob[0, c])
    return blob


class CpuBackend:
    name = "cpu"
    is_gpu = False
    xp = np
    fused = None  # fused reductions exist on the GPU only (ops.fused)
    # Paste-back's alpha: 8-bit (it rides in the colour's warp, and OpenCV's integer blend has no
    # per-pixel division; within 1 level of the float blend), where the GPU backend keeps float.
    paste_alpha = np.uint8

    def __init__(self):
        self._local = threading.local()  # per-thread scratch buffers of the ROI-sized ops

    def _scratch(self, name: str, shape: tuple, dtype=np.uint8) -> np.ndarray:
        """A reusable buffer for an op's intermediate (grow-only, per thread): a fresh
        ROI-sized array per frame costs page faults on every frame."""
        bufs = self._local.__dict__.setdefault("bufs", {})
        bufs[name], view = grow_view(bufs.get(name), shape, dtype, np.empty)
        return view

    # -- memory ----------------------------------------------------------------
    def asarray(self, a, dtype=None) -> np.ndarray:
        return np.asarray(a, dtype=dtype)

    def to_host(self, a) -> np.ndarray:
        return np.asarray(a)

    def empty(self, shape, dtype=np.float32) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype=np.float32) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def synchronize(self) -> None:
        pass

    # -- geometry --------------------------------------------------------------
    def warp_affine(self, src, matrix, dsize, out=None, border="replicate"):
        """dst(x, y) = src(M^-1 (x, y)); `dsize` is (width, height)."""
        w, h = int(dsize[0]), int(dsize[1])
        m = np.asarray(matrix, dtype=np.float64)
        channels = 1 if src.ndim == 2 else src.shape[2]
        if channels <= 4:
            return cv2.warpAffine(src, m, (w, h), dst=out, flags=cv2.INTER_LINEAR,
                                  borderMode=_BORDERS[border], borderValue=0)
        # OpenCV remaps at most 4 channels at once: warp in groups of up to 4.
        if out is None:
            out = np.empty((h, w, channels), dtype=src.dtype)
        for c in range(0, channels, 4):
            part = cv2.warpAffine(np.ascontiguousarray(src[..., c:c + 4]), m, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=_BORDERS[border], borderValue=0)
            out[..., c:c + 4] = part.reshape(h, w, -1)
        return out

    def warp_color_alpha(self, color_u8, mask, matrix, dsize, color_out, alpha_out, band_u8=None, band_out=None):
        """Paste-back's warps: `color_u8` (S, S, 3) with a replicated border into
        `color_out` (h, w, 3) uint8 and `mask` (S, S) float32 with a zero border into
        `alpha_out` (h, w): float32 in [0, 1], or uint8 in [0, 255] (the mask times 255,
        rounded before and after the warp). `matrix` is crop -> rectangle. With `band_u8`
        (S, S) uint8 (nonzero on a band) also that, zero border, into `band_out` (h, w)
        uint8: 255 where the warped band is over one half (with an 8-bit alpha: where the
        nearest crop pixel is on the band), else 0. Returns (color, alpha, band or None).

        OpenCV's 4-channel zero-border uint8 warp is about 25 % cheaper than the 3-channel
        replicated one: the crop gets a replicated 1-pixel ring and a 4th channel and is
        warped with a zero border. Where that differs from a replicated border (more than
        a pixel outside the crop) the zero-border alpha is 0, so the blend is the same.
        The 4th channel, warped anyway, carries the 8-bit alpha (one warp instead of the
        colour's and a float mask's: 40-50 % of the paste), else the band (which then gets
        a 1-channel warp of its own).
        """
        w, h = int(dsize[0]), int(dsize[1])
        s0, s1 = color_u8.shape[:2]
        eight_bit = alpha_out.dtype == np.uint8
        on = None
        if band_u8 is not None:
            on = cv2.compare(band_u8, 0, cv2.CMP_GT, dst=self._scratch("paste_band_on", (s0, s1)))  # 0/255
        a8 = None
        if eight_bit:  # masks are in [0, 1]: the absolute value of convertScaleAbs changes nothing
            a8 = cv2.convertScaleAbs(mask, dst=self._scratch("paste_a8", (s0, s1)), alpha=255.0)
        src, m = self.paste_source(color_u8, a8 if eight_bit else on, matrix)
        warped = cv2.warpAffine(src, m, (w, h), dst=self._scratch("paste_warped", (h, w, 4)),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR, dst=color_out)
        if eight_bit:
            cv2.extractChannel(warped, 3, dst=alpha_out)
        else:
            self.warp_affine(mask, matrix, dsize, out=alpha_out, border="constant")
        band = None
        if on is not None:
            if eight_bit:  # its own warp: nearest (0/255 already), at 45 % of a bilinear one's cost
                band_ring = cv2.copyMakeBorder(on, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0,
                                               dst=self._scratch("paste_band_ring", (s0 + 2, s1 + 2)))
                band = cv2.warpAffine(band_ring, m, (w, h), dst=band_out, flags=cv2.INTER_NEAREST,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            else:
                cv2.extractChannel(warped, 3, dst=band_out)
                band = cv2.compare(band_out, 127, cv2.CMP_GT, dst=band_out)
        return color_out, alpha_out, band

    def paste_source(self, color_u8, fourth_u8, matrix):
        """The 4-channel image paste-back warps, and `matrix` (crop -> rectangle) for it: the crop
        with a replicated 1-pixel ring as BGR, `fourth_u8` (S, S) uint8 with a zero ring as the 4th
        channel (without it 255, unused). Per-thread scratch: valid until this thread's next paste."""
        s0, s1 = color_u8.shape[:2]
        ring = cv2.copyMakeBorder(color_u8, 1, 1, 1, 1, cv2.BORDER_REPLICATE,
                                  dst=self._scratch("paste_ring", (s0 + 2, s1 + 2, 3)))
        src = cv2.cvtColor(ring, cv2.COLOR_BGR2BGRA, dst=self._scratch("paste_src", (s0 + 2, s1 + 2, 4)))
        if fourth_u8 is not None:
            cv2.insertChannel(cv2.copyMakeBorder(fourth_u8, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0,
                                                 dst=self._scratch("paste_fourth_ring", (s0 + 2, s1 + 2))), src, 3)
        m = np.asarray(matrix, dtype=np.float64).copy()
        m[:, 2] -= m[:, 0] + m[:, 1]  # the padded crop's (1, 1) is the crop's (0, 0)
        return src, m

    def resize(self, src, dsize, interp="linear", out=None):
        flag = cv2.INTER_AREA if interp == "area" else cv2.INTER_LINEAR
        return cv2.resize(src, (int(dsize[0]), int(dsize[1])), dst=out, interpolation=flag)

    def channels(self, src, n: int, out=None):
        """(h, w) -> (h, w, n), every channel a copy of `src` (one interleaving pass: NumPy's
        broadcast of `a[..., None]` against a last axis of 3 is several times slower)."""
        return cv2.merge([src] * n, dst=out)

    # -- filters ---------------------------------------------------------------
    def gaussian_blur(self, src, sigma, out=None):
        if sigma <= 0:
            if out is None:
                return src.copy()
            out[...] = src
            return out
        k = 2 * int(4.0 * sigma + 0.5) + 1
        return cv2.GaussianBlur(src, (k, k), sigmaX=sigma, sigmaY=sigma, dst=out,
                                borderType=cv2.BORDER_REFLECT_101)

    def max3(self, src, out=None):
        """3x3 maximum filter of a 2-D array, edges replicated."""
        return cv2.dilate(src, _KERNEL_3x3, dst=out, borderType=cv2.BORDER_REPLICATE)

    def pyr_down(self, src):
        return cv2.pyrDown(src)

    def pyr_up(self, src, dsize):
        return cv2.pyrUp(src, dstsize=(int(dsize[0]), int(dsize[1])))

    def fill_convex(self, shape, points) -> np.ndarray:
        """float32 mask of `shape` (h, w): 1 inside the convex hull of `points` (x, y)."""
        mask = np.zeros(shape, dtype=np.float32)
        pts = np.asarray(points, dtype=np.float64)
        if len(pts) < 3:
            return mask
        hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
        # 4 fractional bits: the hull edge lands within 1/16 px of the true points.
        cv2.fillConvexPoly(mask, np.round(hull * 16).astype(np.int32), 1.0, lineType=cv2.LINE_8, shift=4)
        return mask

    # -- colour ----------------------------------------------------------------
    def lut(self, src_u8, table, out=None):
        """Per-channel lookup: out[..., c] = table[src[..., c], c]; table (256, C) uint8."""
        t = np.ascontiguousarray(np.asarray(table, dtype=np.uint8).reshape(1, 256, -1))
        return cv2.LUT(src_u8, t, dst=out)

    def to_linear(self, src_u8):
        """uint8 sRGB -> float32 linear light in [0, 1]."""
        return SRGB_TO_LINEAR[src_u8]

    def from_linear(self, lin):
        """float32 linear light -> float32 sRGB in [0, 255] (not rounded)."""
        lin = np.clip(lin, 0.0, 1.0)
        lo = lin * (12.92 * 255.0)
        hi = cv2.pow(lin, 1.0 / 2.4) * (1.055 * 255.0) - 0.055 * 255.0
        return np.where(lin <= 0.0031308, lo, hi).astype(np.float32)

    def blend(self, roi, color, alpha, out):
        """out = roi*(1-a) + color*a, rounded to uint8. Where a is 0, out equals roi exactly;
        where it is 1 (255), color.

        roi/color (h, w, 3) uint8, out (h, w, 3) uint8 (may be `roi`); alpha (h, w) float32
        in [0, 1], or uint8 in [0, 255]: then the two products are each rounded (at most 1
        level from the float blend) and it takes 60 % of the time of OpenCV's float-weighted
        `blendLinear`, which divides every pixel by the weights' sum.
        """
        if alpha.dtype == np.uint8:
            h, w = alpha.shape[:2]
            a3 = self.channels(alpha, 3, out=self._scratch("blend_a3", (h, w, 3)))
            fg = cv2.multiply(color, a3, dst=self._scratch("blend_fg", (h, w, 3)), scale=1.0 / 255.0)
            inv = cv2.bitwise_not(a3, dst=a3)  # 255 - a
            bg = cv2.multiply(roi, inv, dst=inv, scale=1.0 / 255.0)
            res = cv2.add(fg, bg, dst=out)
        else:
            inv = cv2.subtract(1.0, alpha, dst=self._scratch("blend_inv", alpha.shape, np.float32))
            res = cv2.blendLinear(roi, color, inv, alpha, dst=out)
        if res is not out:  # (OpenCV wrote a new array: a layout it cannot write in place)
            out[...] = res
        return out

    def seam_band(self, alpha, lo, hi, width):
        """uint8 (h, w), nonzero on the seam: lo < alpha < hi within `width` px of the
        mask's outer edge (alpha > lo), in the rectangle's pixels."""
        shape = alpha.shape[:2]
        support = cv2.compare(alpha, float(lo), cv2.CMP_GT, dst=self._scratch("band_support", shape))
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * width + 1, 2 * width + 1))
        inner = cv2.erode(support, kernel, dst=self._scratch("band_inner", shape), borderType=cv2.BORDER_CONSTANT,
                          borderValue=0)
        band = cv2.compare(alpha, float(hi), cv2.CMP_LT, dst=self._scratch("band", shape))
        cv2.bitwise_and(band, support, dst=band)
        return cv2.subtract(band, inner, dst=band)  # 255 - 255 = 0, 255 - 0 = 255: band and not inner

    def seam_keep(self, out, prev, band, tol) -> None:
        """In place on `out`: on the band, where sum|out - prev| <= 3*tol, take prev."""
        h, w = out.shape[:2]
        absdiff = cv2.absdiff(out, prev, dst=self._scratch("seam_absdiff", out.shape))
        # the channel sum as split + two saturating adds (255 is far above 3*tol: the comparison
        # is unchanged); cv2.transform takes 10x as long, a split into fresh arrays 20x
        planes = [self._scratch(f"seam_plane{c}", (h, w)) for c in range(3)]
        cv2.split(absdiff, planes)
        diff = cv2.add(planes[0], planes[1], dst=self._scratch("seam_diff", (h, w)))
        cv2.add(diff, planes[2], dst=diff)
        keep = cv2.compare(diff, 3.0 * tol, cv2.CMP_LE, dst=self._scratch("seam_keep", (h, w)))
        cv2.bitwise_and(keep, band, dst=keep)
        cv2.copyTo(prev, keep, dst=out)
