"""`SwapStage`: align -> swap -> guard -> masks -> temporal -> paste, per face.

The live loop's process thread calls `process` once per frame. Model switches
(`request_model`, or a new `swapper.model` in the settings) and mask models load
in background threads; the frame loop keeps using what it has until the new
object is ready and is then swapped in atomically (one reference assignment
under a lock). Nothing here blocks on a load once the stage is constructed.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable

import numpy as np

from livecam.face.geometry import align_matrix, transform_points
from livecam.ops import get_backend
from livecam.swap import masks as M
from livecam.swap.composite import (Compositor, color_lut, color_stats, device_color_lut, smooth_color,
                                    transfer_params)
from livecam.swap.guard import SwapGuard
from livecam.swap.swappers import make_swapper
from livecam.swap.temporal import TemporalFilter
from livecam.timing import StageTimes

log = logging.getLogger(__name__)

_XSEGS = ("xseg_1", "xseg_2", "xseg_3")


class SwapStage:
    """Swaps the given faces in a frame. One instance per pipeline; not thread-safe
    for concurrent `process` calls (there is one process thread)."""

    def __init__(self, loader, settings, backend=None):
        self.loader = loader
        self.backend = backend if backend is not None else get_backend(settings.runtime.ops)
        self._fp16 = settings.runtime.fp16
        self._lock = threading.Lock()
        self.messages: deque[str] = deque(maxlen=50)  # notes and load errors, newest last
        self._warned: set[str] = set()
        self._swapper = make_swapper(loader, settings.swapper.model, fp16=self._fp16)
        self._note(self._swapper.note)
        self._pending = None  # a swapper ready to be adopted by the next frame
        self._maskers: dict[str, object] = {}
        self._inflight: dict[str, threading.Thread] = {}
        self._failed: set[str] = set()  # loads that failed: not retried every frame, only on request
        self._latents: dict[tuple, np.ndarray] = {}
        self._box: dict[tuple, object] = {}
        self._bufs: dict[tuple, object] = {}
        self.guard = SwapGuard()
        self.temporal = TemporalFilter()
        self.compositor = Compositor(self.backend)
        self.last_error = ""
        # Mask models the starting settings need are loaded now, so the first
        # frames already have them; later changes load in the background.
        for key in self._masker_keys(settings):
            self._maskers[key] = self._make_masker(key)

    # -- public state ---------------------------------------------------------------
    @property
    def active_model(self) -> str:
        return self._swapper.name

    @property
    def loading(self) -> str:
        with self._lock:
            return ", ".join(k.split(":")[-1] for k in self._inflight)

    @property
    def guard_rejects(self) -> int:
        return self.guard.rejects

    def reset_track(self, track_id: int) -> None:
        """Forget a track's temporal, colour, seam and hold state (re-identification)."""
        self.temporal.reset(track_id)
        self.guard.reset(track_id)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until background loads finish (tests, benchmarks; never the frame loop)."""
        with self._lock:
            threads = list(self._inflight.values())
        for t in threads:
            t.join(timeout)

    # -- background loading -----------------------------------------------------------
    def request_model(self, name: str) -> None:
        """Load swapper `name` in the background; the current one runs until it is ready."""
        with self._lock:
            self._failed.discard(f"swapper:{name}")  # an explicit request retries a failed load
            if name == self._swapper.name and self._pending is None:
                return
            if self._pending is not None and self._pending.name == name:
                return
        self._start(f"swapper:{name}", lambda: make_swapper(self.loader, name, fp16=self._fp16))

    def _start(self, key: str, build) -> None:
        with self._lock:
            if key in self._inflight:
                return

            def run():
                try:
                    obj = build()
                except Exception as exc:  # keep running on what we have; say why
                    with self._lock:
                        self._failed.add(key)
                        self.last_error = str(exc)
                        self.messages.append(f"could not load {key.split(':')[-1]}: {exc}")
                    log.warning("could not load %s: %s", key, exc)
                else:
                    with self._lock:
                        if key.startswith("swapper:"):
                            self._pending = obj
                        else:
                            self._maskers[key] = obj
                finally:
                    with self._lock:
                        self._inflight.pop(key, None)

            t = threading.Thread(target=run, name=f"livecam-load-{key}", daemon=True)
            self._inflight[key] = t
        t.start()

    def _adopt_pending(self) -> None:
        with self._lock:
            new, self._pending = self._pending, None
        if new is not None:
            old, self._swapper = self._swapper, new  # the atomic swap-in
            self._note(new.note)
            self.messages.append(f"swapper: {new.name}")
            if old.name != new.name:
                self._release(old.name)

    def _release(self, name: str) -> None:
        """Let the loader drop a model no stage part needs any more (bounded memory on switches)."""
        self._latents = {k: v for k, v in self._latents.items() if k[1] != name}
        self.loader.release(name)

    def _note(self, text: str) -> None:
        if text:
            self.messages.append(text)
            log.warning(text)

    def _warn_once(self, text: str) -> None:
        if text not in self._warned:
            self._warned.add(text)
            self._note(text)

    # -- maskers --------------------------------------------------------------------------
    @staticmethod
    def _masker_keys(settings) -> list[str]:
        keys = []
        types = settings.masks.types
        if "occlusion" in types:
            keys.append(f"occlusion:{settings.masks.occlusion_model}")
        if "region" in types:
            keys.append(f"region:{settings.masks.region_model}")
        return keys

    @staticmethod
    def _masker_models(key: str) -> tuple[str, ...]:
        kind, name = key.split(":")
        return (_XSEGS if name == "many" else (name,)) if kind == "occlusion" else (name,)

    def _make_masker(self, key: str):
        sessions = [self.loader.session(n) for n in self._masker_models(key)]
        return M.OcclusionMasker(sessions) if key.startswith("occlusion:") else M.RegionMasker(sessions[0])

    def _masker(self, key: str):
        with self._lock:
            masker = self._maskers.get(key)
            failed = key in self._failed
            # the masker of this kind it replaces (another model) is not needed any more
            stale = [k for k in self._maskers if masker is not None and k != key and
                     k.split(":")[0] == key.split(":")[0]]
            for k in stale:
                del self._maskers[k]
        keep = set(self._masker_models(key))
        for name in {n for k in stale for n in self._masker_models(k)} - keep:
            self._release(name)
        if masker is None and not failed:
            self._start(key, lambda: self._make_masker(key))
        return masker

    # -- buffers ----------------------------------------------------------------------------
    def _buf(self, name: str, shape: tuple, dtype=np.float32):
        key = (name, shape, np.dtype(dtype).str)
        b = self._bufs.get(key)
        if b is None:
            b = self._bufs[key] = self.backend.empty(shape, dtype=dtype)
        return b

    def _box_mask(self, size: int, settings):
        key = (size, settings.masks.blur, tuple(settings.masks.padding))
        if key not in self._box:
            self._box[key] = self.backend.asarray(M.box_mask(size, settings.masks.blur, settings.masks.padding))
        return self._box[key]

    def _latent(self, source, swapper, device: bool = False):
        """The source's latent for this swapper (cached; on the device once, when `device`)."""
        emb = source.embedding if swapper.source_embedding == "raw" else source.normed_embedding
        emb = np.asarray(emb, dtype=np.float32)
        key = (source.name, swapper.name, emb.tobytes(), device)
        lat = self._latents.get(key)
        if lat is None:
            if len(self._latents) > 64:  # a long session cycling through many faces
                self._latents.clear()
            lat = swapper.prepare_source(emb)
            lat = self._latents[key] = self.backend.asarray(lat) if device else lat
        return lat

    # -- the frame ----------------------------------------------------------------------------
    def process(self, frame, faces, source, settings, times: StageTimes | None = None, inplace: bool = False,
                before_write: Callable[[], None] | None = None):
        """Swap `faces` in `frame` with `source`; return the frame to send.

        The input frame is not modified unless `inplace=True` (then it is written in
        place and returned; saves a frame copy when the caller owns the frame;
        `before_write` is called once before the first write into it). With
        the GPU backend `frame` may be a device array (the result is then one too);
        a host frame is uploaded and the result downloaded.
        """
        times = times if times is not None else StageTimes()
        self._adopt_pending()
        wanted = settings.swapper.model
        if wanted != self._swapper.name and f"swapper:{wanted}" not in self._failed:
            self.request_model(wanted)
        faces = [f for f in faces if f is not None]
        ids = {f.track_id for f in faces}
        self.temporal.retain(ids)
        self.guard.retain(ids)
        if source is None or not faces:
            return frame
        be, xp = self.backend, self.backend.xp
        host_in = isinstance(frame, np.ndarray)
        if be.is_gpu:
            src = be.asarray(frame)  # a host frame is uploaded; a device frame stays as it is
            out = src if (inplace and not host_in) else src.copy()
        else:
            src = frame
            out = frame if inplace else frame.copy()
        swapper = self._swapper
        size = swapper.size
        # Device-resident: with GPU arrays and a session that takes them, the crop goes
        # to the model and back without a host copy (one guard read per face is the only sync).
        resident = be.is_gpu and swapper.on_device
        latent = self._latent(source, swapper, device=resident)

        must_wait = before_write if out is frame else None  # someone else may still be reading `frame`
        # Phase 1: every crop from the untouched input, before any paste, so
        # overlapping faces never crop an already swapped neighbour.
        jobs = []
        with times.stage("align"):
            for i, face in enumerate(faces):
                mat = align_matrix(np.asarray(face.kps5, dtype=np.float64), swapper.template, size)
                crop = be.warp_affine(src, mat, (size, size), out=self._buf(f"crop{i}", (size, size, 3), np.uint8))
                jobs.append((i, face, mat, crop))

        for i, face, mat, crop in jobs:
            tid = face.track_id
            st = self.temporal.begin(tid, face.kps5, size, source=(source.name, swapper.name))
            occlusion = None
            if "occlusion" in settings.masks.types:  # on the target crop, before the swap (§7)
                with times.stage("masks"):
                    masker = self._masker(f"occlusion:{settings.masks.occlusion_model}")
                    occlusion = masker.mask(be, crop) if masker is not None else None
            with times.stage("swap"):
                if resident:
                    swapped = swapper.swap_device(xp, crop, latent)
                else:
                    swapped = be.asarray(swapper.swap(be.to_host(crop), latent))
            with times.stage("guard"):
                decision = self.guard.decide(xp, tid, swapped, crop, settings.swapper.guard_hold, be.to_host, be.fused)
                if decision.use == "pass":
                    continue
                held = self.guard.last_good(tid) if decision.use == "hold" else swapped
                if held is None or held.shape != (size, size, 3):
                    continue
                if decision.use == "hold":  # filtered in place below: a copy (the guard keeps its own)
                    work = self._buf("work", (size, size, 3))
                    work[...] = held
                else:  # the swapper's reused output buffer (its next call rewrites it): filtered in place
                    work = held
            with times.stage("masks"):
                work_u8 = self._buf("work_u8", (size, size, 3), np.uint8)
                xp.rint(work, out=work)
                mask = self._mask(face, mat, crop, work, work_u8, occlusion, settings, size)
            with times.stage("temporal"):
                self.temporal.stabilize(be, st, work, settings.temporal, camera=crop)
            if must_wait is not None:  # (not timed as paste: a wait, if any, is the tracker's)
                must_wait()
                must_wait = None
            with times.stage("paste"):
                if settings.temporal.enabled:
                    xp.rint(work, out=work)
                xp.copyto(work_u8, work, casting="unsafe")
                if settings.composite.color_transfer and be.is_gpu:  # table made on the device: no sync
                    table = device_color_lut(be, st, work_u8, crop, mask, settings.composite.color_momentum)
                    be.lut(work_u8, table, out=work_u8)
                elif settings.composite.color_transfer:
                    gain, bias = transfer_params(color_stats(be, work_u8, mask), color_stats(be, crop, mask))
                    gain, bias = smooth_color(st, gain, bias, settings.composite.color_momentum)
                    if np.any(gain != 1.0) or np.any(bias != 0.0):
                        be.lut(work_u8, color_lut(gain, bias), out=work_u8)
                seam = settings.temporal.enabled and settings.temporal.seam
                self.compositor.paste(out, work_u8, mask, mat, st, settings.composite.blend, seam)

        if be.is_gpu and host_in:
            return be.to_host(out)
        return out

    def _mask(self, face, mat, crop, swapped, swapped_u8, occlusion, settings, size):
        """The crop's mask; `swapped` (rounded float) goes to `swapped_u8` only for the face parser."""
        be, xp = self.backend, self.backend.xp
        ms = settings.masks
        mask = self._buf("mask", (size, size))
        mask[...] = self._box_mask(size, settings) if ("box" in ms.types or not ms.types) else 1.0
        if occlusion is not None:
            xp.minimum(mask, occlusion, out=mask)
        if "region" in ms.types:
            masker = self._masker(f"region:{ms.region_model}")
            if masker is not None and ms.regions:
                xp.copyto(swapped_u8, swapped, casting="unsafe")
                xp.minimum(mask, masker.mask(be, swapped_u8, ms.regions), out=mask)
        if ("area" in ms.types and ms.areas) or ms.mouth:
            pts = face.landmarks68
            if pts is None or len(pts) != 68:
                self._warn_once("no 68-point landmarks: area/mouth masks use points estimated from the 5 points")
                pts = M.estimate_landmarks68(face.kps5)
            pts_crop = transform_points(pts, mat)
            if "area" in ms.types and ms.areas:
                xp.minimum(mask, M.area_mask(be, pts_crop, ms.areas, size), out=mask)
            if ms.mouth:
                xp.minimum(mask, M.mouth_mask(be, pts_crop, size), out=mask)
        return mask
