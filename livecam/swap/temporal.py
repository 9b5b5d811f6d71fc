"""Per-track temporal stability of the swapped crop (aligned crop space), guided by the camera.

Because crops are aligned to the face, the previous frame's crop is directly
comparable with this frame's: no flow or warp is needed. The camera's own
aligned crop says how much each region really changed (speech, blinks, brows,
light); the swapped crop may change as much as that. Only the change the swap
model invents on its own is filtered, per region (4x4-pixel blocks of the
crop, with a 3x3-block tolerance for misregistration), never real motion:

- snap: where the camera's crop is still (block change under `STILL_LEVELS`)
  hold up to 60% of the previous output (micro-jitter of the swapper's output
  on a still face; sensor noise averaged);
- anomaly: where the swap changed more than the camera did, hold the excess:
  the output's change is bounded to the camera's change (+1 level), holding
  at most 97% of the previous output (swap flicker, one-frame glitches);
- seam reuse (in `composite`): face moved < 3 px -> keep the previous frame's
  seam band where it barely changed.
The hold weights are computed on the 4x4 block grid and interpolated to the
crop; all of it is array-backend math (no host sync per face). Everything
resets on a new track id, `reset_track`, a large motion or a crop size change
(model switch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livecam.ops.buffers import grow_view

SNAP_PREV = 0.6  # hold of the previous output where the camera is still
STILL_LEVELS = 8.0  # block change (8-bit levels) at which a region no longer counts as still
ANOMALY_PREV = 0.97  # most held of a change the camera does not show
INVENTED_FLOOR = 1.0  # levels of swap change allowed beyond the camera's
BLOCK = 4  # weights are computed on BLOCK x BLOCK pixel means of the crop
SEAM_MOTION_PX = 3.0
LARGE_MOTION = 0.5  # mean 5-point motion per frame, in interocular distances


@dataclass
class TrackState:
    """Everything remembered about one track between frames."""

    size: int = 0
    source: object = None  # what the swap was made with (a new source face starts afresh)
    kps5: np.ndarray | None = None
    motion: float = float("inf")  # mean 5-point motion since the last frame, px
    prev: object = None  # previous output crop (S, S, 3) float32 on the backend
    prev_small: object = None  # its block means (S/BLOCK, S/BLOCK, 3) float32
    camera_small: object = None  # the camera's previous aligned crop, block means
    hold: object = None  # this frame's hold weights (S/BLOCK, S/BLOCK) float32 (diagnostics, tests)
    # colour transfer, smoothed (composite.py)
    gain: np.ndarray | None = None
    bias: np.ndarray | None = None
    # seam reuse (composite.py): previous output rectangle and its pixels
    rect: tuple | None = None
    prev_roi: object = None
    prev_flat: object = None  # the grow-only buffer `prev_roi` is a view of
    last_action: str = ""


class TemporalFilter:
    """Per-track state and the crop filters."""

    def __init__(self):
        self.tracks: dict[int, TrackState] = {}
        self._bufs: dict[tuple, object] = {}  # crop-sized scratch, reused every frame

    def _buf(self, backend, name: str, shape: tuple):
        key = (name, backend.name)
        self._bufs[key], view = grow_view(self._bufs.get(key), shape, np.float32, backend.empty)
        return view

    def reset(self, track_id: int) -> None:
        self.tracks.pop(track_id, None)

    def retain(self, track_ids) -> None:
        """Forget tracks that are gone (bounded memory over a long session)."""
        for tid in [t for t in self.tracks if t not in track_ids]:
            del self.tracks[tid]

    def begin(self, track_id: int, kps5: np.ndarray, size: int, source: object = None) -> TrackState:
        """The track's state for this frame, reset on a large motion, a new crop size or a new
        `source` (another source face: a change the camera does not show, but wanted)."""
        kps5 = np.asarray(kps5, dtype=np.float64)
        st = self.tracks.get(track_id)
        if st is not None and st.kps5 is not None:
            motion = float(np.linalg.norm(kps5 - st.kps5, axis=1).mean())
            iod = float(np.linalg.norm(kps5[1] - kps5[0])) or 1.0
            if st.size != size or motion > LARGE_MOTION * iod or st.source != source:
                st = None
        if st is None:
            st = TrackState(size=size, source=source)
            self.tracks[track_id] = st
            st.motion = float("inf")
        else:
            st.motion = motion
        st.kps5 = kps5
        return st

    def stabilize(self, backend, st: TrackState, crop, settings, camera=None) -> object:
        """Filter the swapped `crop` (S, S, 3) float32, in place, against the track's previous output.

        `camera` is the camera's aligned crop the swap was made from (S, S, 3); without it
        the camera counts as still (snap only where the swap itself barely changed).
        """
        xp = backend.xp
        s = crop.shape[0]
        n = max(1, s // BLOCK)
        if not settings.enabled:
            st.prev = st.prev_small = st.camera_small = st.hold = None
            st.last_action = "off"
            return crop
        small = backend.resize(crop, (n, n), "area")
        cam = None if camera is None else backend.resize(camera, (n, n), "area").astype(xp.float32, copy=False)
        if st.prev is None or st.prev.shape != crop.shape or st.prev_small is None:
            st.prev, st.prev_small, st.camera_small, st.hold = crop.copy(), small, cam, None
            st.last_action = "first"
            return crop
        swap_change = _channel_max(xp, xp.abs(small - st.prev_small))
        if cam is not None and st.camera_small is not None and st.camera_small.shape == cam.shape:
            camera_change = _channel_max(xp, xp.abs(cam - st.camera_small))
        else:
            camera_change = xp.zeros_like(swap_change)
        hold = xp.zeros_like(swap_change)
        if settings.snap:
            # a region's change tolerates structures that moved by up to one block: 3x3 maximum
            still = xp.clip(1.0 - backend.max3(camera_change) * (1.0 / STILL_LEVELS), 0.0, 1.0)
            hold = still * SNAP_PREV
        if settings.anomaly:
            invented = 1.0 - (camera_change + INVENTED_FLOOR) / xp.maximum(swap_change, 1e-3)
            hold = xp.maximum(hold, xp.clip(invented, 0.0, ANOMALY_PREV))
        st.hold = hold
        if settings.snap or settings.anomaly:
            # crop = crop + hold*(prev - crop), hold interpolated from the block grid to the crop
            full = backend.resize(hold.astype(xp.float32, copy=False), (s, s), "linear",
                                  out=self._buf(backend, "hold_full", (s, s)))
            # (as 3 equal channels: a multiply broadcast over a last axis of 3 costs NumPy 3x the filter)
            full3 = backend.channels(full, crop.shape[2], out=self._buf(backend, "hold_full3", crop.shape))
            # the difference is made in `st.prev`, which takes this frame's output right after:
            # one crop-sized float buffer less to touch per frame
            delta = xp.subtract(st.prev, crop, out=st.prev)
            xp.multiply(delta, full3, out=delta)
            xp.add(crop, delta, out=crop)
            st.prev_small = backend.resize(crop, (n, n), "area")
        else:
            st.prev_small = small
        st.prev[...] = crop
        st.camera_small = cam
        st.last_action = "filtered" if (settings.snap or settings.anomaly) else "passed"
        return crop


def _channel_max(xp, a):
    """`a.max(axis=2)` for 3 channels: NumPy reduces a short last axis slowly."""
    return xp.maximum(xp.maximum(a[..., 0], a[..., 1]), a[..., 2])

