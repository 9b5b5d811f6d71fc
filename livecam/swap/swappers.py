"""Face swapper adapters: one small class per model, owning its pre/post-processing.

Each swapper takes the aligned target crop (S, S, 3) BGR uint8 on the host and a
source latent, and returns the swapped crop (S, S, 3) BGR float32 in [0, 255]
(model-contracts.md §1, §2). The returned array is the swapper's own reused
buffer: copy it to keep it past the next call.
"""

from __future__ import annotations

import inspect
import logging
import math

import cv2
import numpy as np

from livecam.ops.cpu import planar_rgb

log = logging.getLogger(__name__)

# FP16 vs FP32 agreement: mean absolute difference of the swapped crop, in 8-bit
# levels. Reported FP16 failures are gross (distorted faces, NaN), far above this;
# honest FP16 rounding stays well under one level.
FP16_MAX_MEAN_ABS = 4.0


def _feeds(session, target: np.ndarray, source: np.ndarray, target_first: bool) -> dict:
    names = session.input_names
    if "target" in names and "source" in names:
        return {"target": target, "source": source}
    first, second = (target, source) if target_first else (source, target)
    return {names[0]: first, names[1]: second}


class _Swapper:
    """Shared mechanics; subclasses set the size and the value range."""

    template = "arcface_128"
    size = 128
    target_first = True
    # which SourceFace embedding `prepare_source` takes: "normed" or "raw" (GHOST's converter)
    source_embedding = "normed"

    def __init__(self, session, name: str | None = None):
        self.session = session
        self.name = name or session.name
        self.note = ""  # why this swapper was chosen, when not the obvious one (FP16 check)
        s = self.size
        self._blob = np.empty((1, 3, s, s), dtype=np.float32)
        self._out = np.empty((s, s, 3), dtype=np.float32)
        self._planes = [np.empty((s, s), dtype=np.uint8) for _ in range(3)]  # the crop's channels, reused
        # each 8-bit value in the model's range: v * scale / 255 (in double, then float32), + shift
        table = (np.arange(256) * (self.scale / 255.0)).astype(np.float32)
        if self.shift:
            table += np.float32(self.shift)
        self._input_values = table.reshape(1, 256)
        self._device: dict = {}  # device blob/out (CuPy), made on the first `swap_device`

    @property
    def on_device(self) -> bool:
        """True when the session takes and returns device arrays (TensorRT, ORT CUDA/TensorRT)."""
        return getattr(self.session, "provider", "cpu") in DEVICE_PROVIDERS

    # value range of the model's image tensors: x_model = x01 * scale + shift
    scale, shift = 1.0, 0.0

    def prepare_source(self, normed_embedding: np.ndarray) -> np.ndarray:
        return np.asarray(normed_embedding, dtype=np.float32).reshape(1, 512)

    def swap(self, crop_u8: np.ndarray, latent: np.ndarray) -> np.ndarray:
        """The swapped crop, BGR float32 (S, S, 3) in [0, 255] (NaN kept for the guard): the
        swapper's reused buffer, valid until its next call; the caller may filter it in place."""
        # BGR uint8 HWC -> RGB float CHW in the model's range, written into the reused blob
        planar_rgb(crop_u8, self._input_values, self._blob, self._planes)
        pred = self.session.run(_feeds(self.session, self._blob, latent, self.target_first))[0]
        pred = np.asarray(pred, dtype=np.float32).reshape(3, self.size, self.size)
        # back to [0, 1] RGB, then BGR [0, 255]
        a, b = 255.0 / self.scale, -self.shift * 255.0 / self.scale
        cv2.merge([pred[2], pred[1], pred[0]], dst=self._out)  # one interleaving pass (3 strided writes cost 4x)
        np.multiply(self._out, a, out=self._out)
        if b:
            self._out += b
        flat = self._out.reshape(-1, 1)  # one channel: OpenCV takes a float as a 1-channel scalar
        if math.isfinite(cv2.sumElems(flat)[0]):  # OpenCV's clamp: a third of NumPy's NaN-aware one
            cv2.max(flat, 0.0, dst=flat)
            cv2.min(flat, 255.0, dst=flat)
        else:  # NaN or inf somewhere: np.clip keeps NaN, so the guard sees it
            np.clip(self._out, 0.0, 255.0, out=self._out)
        return self._out


    def swap_device(self, xp, crop_u8, latent):
        """`swap` on device arrays (`xp` = cupy): the crop and the result never leave the GPU.

        Same maths as `swap`; the session gets device arrays (IO binding / TensorRT buffers)
        and returns device arrays. Returns the swapper's reused device buffer."""
        s = self.size
        if not self._device:
            self._device = {"blob": xp.empty((1, 3, s, s), dtype=xp.float32),
                            "out": xp.empty((s, s, 3), dtype=xp.float32)}
        blob, out = self._device["blob"], self._device["out"]
        blob[0] = crop_u8[:, :, ::-1].transpose(2, 0, 1)  # BGR HWC uint8 -> RGB CHW float
        blob *= self.scale / 255.0
        if self.shift:
            blob += self.shift
        pred = self.session.run(_feeds(self.session, blob, latent, self.target_first))[0]
        out[...] = pred.reshape(3, s, s)[::-1].transpose(1, 2, 0)  # RGB CHW -> BGR HWC
        out *= 255.0 / self.scale
        if self.shift:
            out += -self.shift * 255.0 / self.scale
        xp.clip(out, 0.0, 255.0, out=out)  # NaN survives: the guard sees it
        return out


# Providers whose sessions take device (CuPy) arrays and return device arrays.
DEVICE_PROVIDERS = ("tensorrt", "ort-tensorrt", "cuda")


class InswapperSwapper(_Swapper):
    """inswapper_128(_fp16): crop RGB [0,1] at arcface_128 x 128;
    latent = normed . emap, then L2-normalised (§1)."""

    size = 128

    def __init__(self, session, emap: np.ndarray, name: str | None = None):
        super().__init__(session, name)
        self.emap = np.asarray(emap, dtype=np.float32)
        if self.emap.shape != (512, 512):
            raise ValueError(f"{self.name}: emap has shape {self.emap.shape}, expected (512, 512)")
        # The factor by which FaceFusion's latent (normed . emap, not re-normalised)
        # differs from the author's unit latent, for a probe identity: logged so a
        # run with the real emap shows how far apart the two conventions are.
        _, probe = _probe(self.size)
        self.projected_norm = float(np.linalg.norm(probe @ self.emap))
        log.info("%s: |normed . emap| = %.4f for a probe embedding; the latent is re-normalised to 1 "
                 "(InsightFace inswapper.py)", self.name, self.projected_norm)

    def prepare_source(self, normed_embedding: np.ndarray) -> np.ndarray:
        # The model author's latent (InsightFace model_zoo/inswapper.py): normed . emap,
        # then divided by its own norm. FaceFusion skips that last step.
        latent = np.asarray(normed_embedding, dtype=np.float32).reshape(1, 512) @ self.emap
        norm = float(np.linalg.norm(latent))
        if norm > 0 and np.isfinite(norm):
            latent = latent / norm
        return latent.astype(np.float32)


class HyperswapSwapper(_Swapper):
    """hyperswap_1a/1b/1c_256: crop RGB [-1,1]; normed embedding as is; first output only (§2)."""

    size = 256
    scale, shift = 2.0, -1.0
    target_first = False


class GhostSwapper(_Swapper):
    """ghost_1/2/3_256 (GHOST, AEI-Net with 1/2/3 AAD blocks): crop RGB [-1,1] at
    arcface_112_v1 x 256; output x0.5+0.5. Source latent = the embedding converter applied
    to the RAW ArcFace embedding, fed as is (FaceFusion 3.3.2 `prepare_source_embedding`,
    type 'ghost'; docs/models-ghost.md)."""

    template = "arcface_112_v1"
    size = 256
    scale, shift = 2.0, -1.0
    source_embedding = "raw"
    CONVERTER = "arcface_converter_ghost"  # FaceFusion 3.0-3.3.x; 3.4+ ships crossface_ghost

    def __init__(self, session, converter, name: str | None = None):
        super().__init__(session, name)
        self.converter = converter
        names = list(converter.input_names)
        self._converter_input = "input" if "input" in names else names[0]

    def prepare_source(self, embedding: np.ndarray) -> np.ndarray:
        x = np.asarray(embedding, dtype=np.float32).reshape(1, 512)
        latent = np.asarray(self.converter.run({self._converter_input: x})[0], dtype=np.float32)
        return latent.reshape(1, 512)  # not re-normalised: FaceFusion feeds the converter's output as is


def _probe(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic face-like crop and unit embedding for the FP16-vs-FP32 check."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size] / size
    face = ((x - 0.5) ** 2 / 0.12 + (y - 0.55) ** 2 / 0.2) < 1
    img = np.stack([60 + 120 * y, 80 + 100 * x, 110 + 60 * face], axis=-1)
    img = img + rng.normal(0, 6, img.shape)
    emb = rng.normal(size=512)
    return np.clip(img, 0, 255).astype(np.uint8), (emb / np.linalg.norm(emb)).astype(np.float32)


def fp16_error(fast, reference) -> float:
    """Mean |fast - reference| of the swapped probe crop in 8-bit levels (inf if not finite)."""
    crop, emb = _probe(fast.size)
    a = fast.swap(crop, fast.prepare_source(emb)).copy()
    b = reference.swap(crop, reference.prepare_source(emb))
    if not np.isfinite(b).all():
        return float("nan")  # the reference itself is broken: no verdict (the guard still runs)
    if not np.isfinite(a).all():
        return float("inf")
    return float(np.abs(a - b).mean())


def _build(loader, name: str, session) -> _Swapper:
    if name.startswith("inswapper"):
        return InswapperSwapper(session, loader.initializer(name, -1), name=name)
    if name.startswith("hyperswap"):
        return HyperswapSwapper(session, name=name)
    if name.startswith("ghost_"):
        return GhostSwapper(session, loader.session(GhostSwapper.CONVERTER), name=name)
    raise ValueError(f"unknown swapper model {name!r}")


def _loader_fp16(loader) -> bool:
    try:
        return "fp16" in inspect.signature(loader.session).parameters
    except (TypeError, ValueError):
        return False


# Providers where `fp16=True` really changes the arithmetic (TensorRT builds FP16
# engines); elsewhere both sessions compute the same thing and no check is needed.
FP16_PROVIDERS = ("tensorrt", "ort-tensorrt")


def make_swapper(loader, name: str, fp16: bool = True) -> _Swapper:
    """Load and check a swapper. FP16 variants are compared with FP32 once; on a mismatch
    the FP32 one is returned and its `note` says so.

    Two kinds of FP16: the separate `inswapper_128_fp16` file (checked against
    `inswapper_128` when that file is present), and engines the loader builds in
    FP16 (`loader.session(name, fp16=True)`, when the loader offers it). The verdict
    is remembered through `loader.remember/recall` where the loader has them.
    """
    if name == "inswapper_128_fp16":
        fast = _build(loader, name, loader.session(name))
        try:
            ref_path = loader.path("inswapper_128")
        except Exception:
            ref_path = None
        if ref_path is None:
            fast.note = "inswapper_128_fp16 not checked against FP32 (inswapper_128 not available)"
            return fast
        got = _checked(loader, name, fast, lambda: _build(loader, "inswapper_128", loader.session("inswapper_128")))
        loader.release("inswapper_128" if got is fast else name)  # the loser of the check is not kept
        return got
    if _loader_fp16(loader):
        fast = _build(loader, name, loader.session(name, fp16=fp16))
        if fp16 and getattr(fast.session, "provider", "") in FP16_PROVIDERS:
            got = _checked(loader, name, fast, lambda: _build(loader, name, loader.session(name, fp16=False)))
            loader.release(name, fp16=got is not fast)  # drop the FP32 reference (or the failed FP16)
            return got
        return fast
    return _build(loader, name, loader.session(name))


def _checked(loader, name: str, fast: _Swapper, make_ref) -> _Swapper:
    key = "fp16_matches_fp32"
    recall = getattr(loader, "recall", None)
    verdict = None
    if recall is not None:
        try:
            verdict = recall(name, key)
        except Exception:  # a loader without persistence: check every start
            verdict = None
    if verdict is None:
        ref = make_ref()
        err = fp16_error(fast, ref)
        if err != err:  # NaN: the FP32 reference is broken too, nothing to decide
            fast.note = f"{name}: FP16 check inconclusive (the FP32 output is not finite)"
            return fast
        verdict = bool(err <= FP16_MAX_MEAN_ABS)
        remember = getattr(loader, "remember", None)
        if remember is not None:
            try:
                remember(name, key, verdict)
            except Exception:
                pass
        if not verdict:
            ref.note = (f"{name}: FP16 output differs from FP32 (mean |diff| {err:.1f} levels > "
                        f"{FP16_MAX_MEAN_ABS}); using FP32")
            log.warning(ref.note)
            return ref
        return fast
    if not verdict:
        ref = make_ref()
        ref.note = f"{name}: FP16 output differed from FP32 earlier; using FP32"
        return ref
    return fast
