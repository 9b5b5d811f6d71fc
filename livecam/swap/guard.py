"""Output guard: every swapped crop is checked before it can reach the frame.

A broken swap (NaN from an FP16 engine, a black or blown-out crop, a flat grey
patch) is the most reported failure of live face swappers. A rejected crop is
replaced by the track's last good swap for `hold` frames, then the face passes
through untouched; every reject is counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Thresholds in 8-bit levels, on a 4x-subsampled view of the crop (statistics of a
# 128-256 px face do not need every pixel). Chosen so that real faces in dim or
# bright rooms pass and the failure modes do not:
NEAR_BLACK_MEAN = 12.0  # the crop is near-black...
NEAR_BLACK_TARGET = 40.0  # ...while the camera's face is not
SATURATED_LEVEL = 250.0
SATURATED_FRACTION = 0.6  # more than 60% of samples blown out
FLAT_STD = 2.0  # a constant patch
MAX_MEAN_SHIFT = 100.0  # mean brightness moved this far from the target crop


def _host(a) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)  # CuPy arrays have .get()


def stats_from_sums(sums, samples: int) -> tuple[float, float, float, float, float]:
    """(total, mean, saturated fraction, std, target mean) from `ops.fused` guard sums
    (block total, sum, saturated count, sum of squares, target sum over `samples` values)."""
    total, s, sat, sq, t = (float(v) for v in np.asarray(sums, dtype=np.float64))
    mean = s / samples
    return total, mean, sat / samples, float(np.sqrt(max(sq / samples - mean * mean, 0.0))), t / samples


def check_swap(xp, swapped, target, to_host=None, fused=None) -> str:
    """"" when the swapped crop is plausible, else the reason it is not.

    `to_host`: the backend's download (`backend.to_host`): the one host read per face.
    `fused`: the backend's `ops.fused.FusedFaceOps` (CuPy): the statistics in two launches."""
    samples = ((swapped.shape[0] + 3) // 4) * ((swapped.shape[1] + 3) // 4) * swapped.shape[2]
    sums = fused.guard_sums(swapped, target, SATURATED_LEVEL) if fused is not None else None
    if sums is None:
        # The same five sums in array-module calls: one device array, one transfer (one sync on
        # the GPU); mean and std follow on the host (`stats_from_sums`), as for the fused kernel.
        # The total runs over every pixel: a single NaN/Inf anywhere poisons it.
        s = xp.ascontiguousarray(swapped[::4, ::4]).reshape(-1)
        sums = xp.stack([
            xp.sum(swapped, dtype=xp.float32), xp.sum(s, dtype=xp.float32),
            xp.sum(s >= SATURATED_LEVEL, dtype=xp.float32), xp.dot(s, s),
            xp.sum(target[::4, ::4], dtype=xp.float32),
        ])
    return _verdict(*stats_from_sums((to_host or _host)(sums), samples))


def _verdict(total: float, mean: float, saturated: float, std: float, t_mean: float) -> str:
    if not np.isfinite(total):
        return "non-finite"
    if mean < NEAR_BLACK_MEAN and t_mean > NEAR_BLACK_TARGET:
        return "near-black"
    if saturated > SATURATED_FRACTION:
        return "saturated"
    if std < FLAT_STD:
        return "flat"
    if abs(mean - t_mean) > MAX_MEAN_SHIFT:
        return "implausible-mean"
    return ""


@dataclass
class GuardDecision:
    """What to paste for a face this frame."""

    use: str  # "swap" (the new crop), "hold" (the last good crop) or "pass" (nothing)
    reason: str = ""


class SwapGuard:
    """Per-track hold state and the reject counter."""

    def __init__(self):
        self.rejects = 0
        self.reasons: dict[str, int] = {}
        self._last_good: dict[int, np.ndarray] = {}
        self._misses: dict[int, int] = {}

    def decide(self, xp, track_id: int, swapped, target, hold: int, to_host=None, fused=None) -> GuardDecision:
        reason = check_swap(xp, swapped, target, to_host, fused)
        if not reason:
            buf = self._last_good.get(track_id)
            if buf is None or buf.shape != swapped.shape:
                buf = self._last_good[track_id] = xp.empty_like(swapped)
            buf[...] = swapped  # reused buffer: no allocation per frame
            self._misses[track_id] = 0
            return GuardDecision("swap")
        self.rejects += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        misses = self._misses.get(track_id, 0) + 1
        self._misses[track_id] = misses
        if track_id in self._last_good and misses <= hold:
            return GuardDecision("hold", reason)
        return GuardDecision("pass", reason)

    def last_good(self, track_id: int):
        return self._last_good.get(track_id)

    def retain(self, track_ids) -> None:
        """Forget tracks that are gone (each holds a crop-sized buffer)."""
        for tid in [t for t in self._last_good if t not in track_ids]:
            self.reset(tid)
        for tid in [t for t in self._misses if t not in track_ids]:
            self._misses.pop(tid, None)

    def reset(self, track_id: int) -> None:
        self._last_good.pop(track_id, None)
        self._misses.pop(track_id, None)
