"""Paste-back, colour transfer and the optional "AI-modified" badge.

Paste-back touches only the bounding rectangle of the crop's corners in the
frame (model-contracts.md §9): the swapped crop and its mask are warped straight
into that rectangle (never a full-frame warp), blended there, and pixels where
the mask is 0 come back bit-identical.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from livecam.face.geometry import decompose_similarity, invert_affine, paste_rect
from livecam.ops.buffers import grow_view
from livecam.ops.cpu import SRGB_TO_LINEAR
from livecam.swap.temporal import SEAM_MOTION_PX, TrackState

SEAM_TOL = 4  # 8-bit levels: a seam pixel that changed less than this keeps last frame's value (issue 9: 10 cost the identity round trip 0.4 dB on real footage)
SEAM_LO, SEAM_HI = 0.01, 0.99  # the seam is where the mask is partial...
SEAM_BAND_PX = 12  # ...within this many frame pixels of the mask's outer edge
GAIN_RANGE = (0.5, 2.0)  # colour transfer never more than doubles/halves a channel
BIAS_RANGE = 0.25  # linear-light offset limit
QUANT = 256.0  # gain/bias quantized to 1/256 so sub-step noise cannot pump the colour
STATS_SAMPLES = 32  # colour statistics on a ~32x32 subsample of the crop


# -- colour transfer ---------------------------------------------------------------

def color_moments(backend, crop_u8, mask):
    """Mask weight, weighted sums and sums of squares per channel in linear light: a (7,)
    array on the backend's device (one fused reduction per crop, nothing read back)."""
    xp = backend.xp
    k = max(1, crop_u8.shape[0] // STATS_SAMPLES)
    lin = backend.to_linear(crop_u8[::k, ::k]).reshape(-1, 3)
    w = mask[::k, ::k].reshape(-1).astype(xp.float32)
    # weighted sums as products: a third of the time of axis reductions
    return xp.concatenate([w.sum(keepdims=True), w @ lin, w @ (lin * lin)])


def color_stats(backend, crop_u8, mask) -> tuple[np.ndarray, np.ndarray]:
    """Mask-weighted per-channel mean and std in linear light (host float64, BGR)."""
    # weight, first and second moments in one array: one transfer (one GPU sync)
    sums = backend.to_host(color_moments(backend, crop_u8, mask)).astype(np.float64)
    total = sums[0]
    if total < 1e-3:
        return np.zeros(3), np.ones(3)
    mean = sums[1:4] / total
    var = np.maximum(sums[4:7] / total - mean * mean, 0.0)
    return mean, np.sqrt(var)


def transfer_params(src: tuple, dst: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Gain and bias mapping the `src` statistics onto `dst` (linear light), clamped."""
    (ms, ss), (md, sd) = src, dst
    gain = np.clip(sd / np.maximum(ss, 1e-4), *GAIN_RANGE)
    bias = np.clip(md - gain * ms, -BIAS_RANGE, BIAS_RANGE)
    return gain, bias


def quantize(x: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(x, dtype=np.float64) * QUANT) / QUANT


def smooth_color(st: TrackState, gain: np.ndarray, bias: np.ndarray, momentum: float) -> tuple[np.ndarray, np.ndarray]:
    """Exponential smoothing of the per-track parameters; returns the quantized values to apply."""
    if st.gain is None:
        st.gain, st.bias = gain.astype(np.float64), bias.astype(np.float64)
    else:
        st.gain += momentum * (gain - st.gain)
        st.bias += momentum * (bias - st.bias)
    return quantize(st.gain), quantize(st.bias)


def color_lut(gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(256, 3) uint8 table: sRGB -> linear -> gain*x + bias -> sRGB, per channel.

    A per-channel affine map in linear light is a per-channel curve in sRGB, so
    applying it costs one table lookup per pixel (no pow per pixel).
    """
    lin = np.clip(SRGB_TO_LINEAR[:, None].astype(np.float64) * gain[None, :] + bias[None, :], 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)


def device_color_lut(backend, st: TrackState, swapped_u8, target_u8, mask, momentum: float):
    """`color_stats` -> `transfer_params` -> `smooth_color` -> `color_lut` on the device, no host read.

    The same arithmetic as the host path (float64, same clamps and quantization); the
    track's smoothed gain/bias stay device arrays in `st`. Returns the (256, 3) uint8 table."""
    xp = backend.xp
    fused = backend.fused
    if fused is not None:  # CuPy: the same arithmetic in three launches
        k = max(1, swapped_u8.shape[0] // STATS_SAMPLES)
        table = fused.color_table(st, swapped_u8, target_u8, mask, momentum, k,
                                  {"gain_lo": GAIN_RANGE[0], "gain_hi": GAIN_RANGE[1], "bias": BIAS_RANGE,
                                   "quant": QUANT})
        if table is not None:
            return table

    def mean_std(sums):
        sums = sums.astype(xp.float64)
        total = sums[0]
        valid = total >= 1e-3
        mean = sums[1:4] / xp.maximum(total, 1e-12)
        std = xp.sqrt(xp.maximum(sums[4:7] / xp.maximum(total, 1e-12) - mean * mean, 0.0))
        return xp.where(valid, mean, 0.0), xp.where(valid, std, 1.0)

    ms, ss = mean_std(color_moments(backend, swapped_u8, mask))
    md, sd = mean_std(color_moments(backend, target_u8, mask))
    gain = xp.clip(sd / xp.maximum(ss, 1e-4), *GAIN_RANGE)
    bias = xp.clip(md - gain * ms, -BIAS_RANGE, BIAS_RANGE)
    if st.gain is None or isinstance(st.gain, np.ndarray) != isinstance(gain, np.ndarray):
        st.gain, st.bias = gain, bias
    else:
        st.gain = st.gain + momentum * (gain - st.gain)
        st.bias = st.bias + momentum * (bias - st.bias)
    g, b = xp.rint(st.gain * QUANT) / QUANT, xp.rint(st.bias * QUANT) / QUANT
    table = backend.to_linear(xp.arange(256, dtype=xp.uint8)).astype(xp.float64)  # made on the device
    lin = xp.clip(table[:, None] * g[None, :] + b[None, :], 0.0, 1.0)
    srgb = xp.where(lin <= 0.0031308, lin * 12.92, 1.055 * xp.power(lin, 1 / 2.4) - 0.055)
    return xp.clip(xp.rint(srgb * 255.0), 0, 255).astype(xp.uint8)


IDENTITY_LUT = color_lut(np.ones(3), np.zeros(3))
IDENTITY_LUT.flags.writeable = False


# -- paste-back --------------------------------------------------------------------

MIN_PASTE_PX = 4  # below this OpenCV treats the rectangle's arrays as scalars (a 1x1 frame)


class Compositor:
    """Owns the reusable buffers of paste-back (sized by the largest rectangle seen)."""

    def __init__(self, backend):
        self.backend = backend
        self._flat: dict[str, object] = {}

    def buffer(self, name: str, shape: tuple, dtype=np.float32):
        """A contiguous view of a grow-only flat buffer: no allocation per frame."""
        self._flat[name], view = grow_view(self._flat.get(name), shape, dtype, self.backend.empty)
        return view

    def paste(self, frame, color_u8, mask, matrix: np.ndarray, st: TrackState | None,
              blend: str = "feather", seam: bool = False) -> tuple[int, int, int, int]:
        """Blend `color_u8` (S, S, 3) through `mask` (S, S) into `frame`, in place.

        `matrix` is frame -> crop. The crop is warped with a replicated border and
        the mask with a zero border (model-contracts.md §9), both straight into the
        rectangle. Returns the rectangle written (x1, y1, x2, y2).
        """
        be = self.backend
        s = mask.shape[0]
        x1, y1, x2, y2 = paste_rect(matrix, s, frame.shape)
        w, h = x2 - x1, y2 - y1
        if w < MIN_PASTE_PX or h < MIN_PASTE_PX:  # a face a few pixels across: nothing worth pasting
            return (x1, y1, x1, y1)
        back = invert_affine(matrix)
        back[:, 2] -= (x1, y1)  # crop -> rectangle
        rect = (x1, y1, x2, y2)
        reuse = seam and st is not None and self._seam_reusable(st, rect)
        band_crop = self._crop_band(mask, back) if reuse else None
        # the pyramid blend works in float; the feather blend in the backend's own alpha
        alpha_type = np.float32 if blend == "pyramid" else be.paste_alpha
        alpha_out = self.buffer(f"alpha_{np.dtype(alpha_type).name}", (h, w), alpha_type)
        color, alpha, band = be.warp_color_alpha(color_u8, mask, back, (w, h),
                                                 self.buffer("color", (h, w, 3), np.uint8), alpha_out,
                                                 band_crop, self.buffer("band", (h, w), np.uint8) if reuse else None)
        roi = frame[y1:y2, x1:x2]  # blended in place: each pixel reads its own value only
        if blend == "pyramid":
            self._pyramid(roi, color, alpha, roi)
        else:
            be.blend(roi, color, alpha, roi)
        if st is not None:
            if seam:
                if reuse:
                    self._reuse_seam(roi, band, st, rect)
                self._remember(roi, st, rect)
            else:
                st.rect, st.prev_roi = None, None
        return rect

    def _crop_band(self, mask, back):
        """The seam band in crop pixels: `SEAM_BAND_PX` frame pixels are `SEAM_BAND_PX / scale`
        crop pixels, rounded up (rounded to nearest, the band calmed the frame-space 12-px band
        10 % less). Made on the (S, S) crop and warped to the rectangle (in the colour warp's
        4th channel, or, with an 8-bit alpha there, a nearest warp of its own), it costs a fraction
        of the same erosion on the frame rectangle (7x the pixels at 720p, 15x at 1080p when
        the face fills the frame)."""
        scale = decompose_similarity(back)[1]  # frame px per crop px
        width = max(1, math.ceil(SEAM_BAND_PX / max(scale, 1e-6)))
        return self.backend.seam_band(mask, SEAM_LO, SEAM_HI, width)

    @staticmethod
    def _seam_reusable(st: TrackState, rect) -> bool:
        """Last frame's rectangle is there, overlaps this one, and the face barely moved."""
        if st.prev_roi is None or st.rect is None or st.motion >= SEAM_MOTION_PX:
            return False
        (x1, y1, x2, y2), (px1, py1, px2, py2) = rect, st.rect
        return min(x2, px2) > max(x1, px1) and min(y2, py2) > max(y1, py1)

    def _reuse_seam(self, res, band, st: TrackState, rect) -> None:
        """Keep last frame's seam pixels (`band`, the rectangle's) where they barely changed."""
        x1, y1, x2, y2 = rect
        px1, py1, px2, py2 = st.rect
        ox1, oy1, ox2, oy2 = max(x1, px1), max(y1, py1), min(x2, px2), min(y2, py2)
        cur = res[oy1 - y1:oy2 - y1, ox1 - x1:ox2 - x1]
        prev = st.prev_roi[oy1 - py1:oy2 - py1, ox1 - px1:ox2 - px1]
        # shifted by a pixel or two, the overlaps are strided views: the backend ops take those
        self.backend.seam_keep(cur, prev, band[oy1 - y1:oy2 - y1, ox1 - x1:ox2 - x1], SEAM_TOL)

    def _remember(self, res, st: TrackState, rect) -> None:
        # a grow-only buffer per track: the rectangle changes size by a pixel on most frames
        st.prev_flat, buf = grow_view(st.prev_flat, res.shape, np.uint8, self.backend.empty)
        buf[...] = res
        st.prev_roi, st.rect = buf, rect

    def _pyramid(self, roi, color, alpha, out, levels: int = 3) -> None:
        """3-level Laplacian pyramid blend in linear light (optional, `composite.blend`)."""
        be, xp = self.backend, self.backend.xp
        ga, gb, gm = [be.to_linear(xp.ascontiguousarray(roi))], [be.to_linear(color)], [alpha]
        for _ in range(levels - 1):
            if min(ga[-1].shape[:2]) < 8:
                break
            ga.append(be.pyr_down(ga[-1]))
            gb.append(be.pyr_down(gb[-1]))
            gm.append(be.pyr_down(gm[-1]))
        res = ga[-1] * (1 - gm[-1][..., None]) + gb[-1] * gm[-1][..., None]
        for i in range(len(ga) - 2, -1, -1):
            size = (ga[i].shape[1], ga[i].shape[0])
            la = ga[i] - be.pyr_up(ga[i + 1], size)
            lb = gb[i] - be.pyr_up(gb[i + 1], size)
            m = gm[i][..., None]
            res = be.pyr_up(res, size) + la * (1 - m) + lb * m
        out[...] = xp.clip(xp.rint(be.from_linear(res)), 0, 255).astype(xp.uint8)


# -- badge -------------------------------------------------------------------------

def draw_badge(frame, text: str = "AI-modified"):
    """Draw a small, legible "AI-modified" label in the bottom-left corner, in place.

    Host (NumPy) frames only; a GPU caller draws on the host copy it sends out.
    Scaled to the frame height so it reads the same at 480p and 4K.
    """
    h, w = frame.shape[:2]
    scale = max(h / 1080.0, 0.35)
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, int(round(2 * scale)))
    (tw, th), base = cv2.getTextSize(text, font, 0.9 * scale, thick)
    pad = int(math.ceil(10 * scale))
    x0, y1 = pad, h - pad
    y0 = y1 - th - base - 2 * pad
    x1 = min(w, x0 + tw + 2 * pad)
    sub = frame[max(0, y0):y1, x0:x1]
    sub[...] = (sub.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken 60% behind the text
    cv2.putText(frame, text, (x0 + pad, y1 - pad - base), font, 0.9 * scale, (255, 255, 255), thick, cv2.LINE_AA)
    return frame
