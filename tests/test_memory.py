"""Bounded memory: model switches release what no model needs any more.

RSS is read from /proc (Linux; CI is Linux). The bound is the issue's: RSS after 20
swapper switches within 50 MB of RSS after the first. The loader's own count of
cached sessions and weak references to the old sessions say the same exactly.
"""

from __future__ import annotations

import gc
import os
import weakref

import numpy as np
import pytest

from livecam.face.types import Face, SourceFace
from livecam.settings import Settings

ASTRO_KPS5 = np.array([[203.59, 101.95], [247.78, 104.07], [223.99, 124.90], [204.23, 143.20], [241.87, 144.79]])
SWAPPERS = ("hyperswap_1a_256", "inswapper_128", "hyperswap_1b_256", "inswapper_128_fp16", "hyperswap_1c_256")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS is read from /proc (Linux)")
def test_rss_after_20_swapper_switches_stays_within_50_mb(standins_dir, astronaut):
    from livecam.inference.models import ModelLoader
    from livecam.swap.stage import SwapStage

    loader = ModelLoader(models_dir=standins_dir)
    settings = Settings().with_changes({"masks.types": ["box"]})
    stage = SwapStage(loader, settings)
    e = np.random.default_rng(1).normal(size=512).astype(np.float32)
    source = SourceFace("src", e, e / np.linalg.norm(e))
    face = Face(bbox=np.r_[ASTRO_KPS5.min(0) - 30, ASTRO_KPS5.max(0) + 30], kps5=ASTRO_KPS5, score=1.0, track_id=1)
    old_sessions = []
    rss_first = None
    for i in range(20):
        name = SWAPPERS[(i + 1) % len(SWAPPERS)]
        s = settings.with_changes({"swapper.model": name})
        stage.request_model(name)
        stage.wait_idle()
        out = stage.process(astronaut, [face], source, s)  # adopts the new swapper, releases the old
        assert stage.active_model == name and out.shape == astronaut.shape
        old_sessions.append(weakref.ref(stage._swapper.session))
        swappers = [m for m in loader.loaded() if m.split(":")[0] in SWAPPERS]
        assert swappers == [f"{name}:fp16"], swappers  # only the active swapper is cached
        if i == 0:
            gc.collect()
            rss_first = _rss_mb()
    gc.collect()
    growth = _rss_mb() - rss_first
    assert growth < 50.0, f"RSS grew {growth:.1f} MB over 20 switches"
    alive = [r for r in old_sessions[:-1] if r() is not None]
    assert alive == []  # every replaced swapper's session is gone, not just uncached


def test_fp16_file_check_drops_the_fp32_reference(standins_dir):
    from livecam.inference.models import ModelLoader
    from livecam.swap.swappers import make_swapper

    loader = ModelLoader(models_dir=standins_dir)
    sw = make_swapper(loader, "inswapper_128_fp16")
    assert sw.name == "inswapper_128_fp16"  # the stand-in's FP16 rounding is far below the bound
    assert loader.loaded() == ["inswapper_128_fp16:fp16"]


def test_a_mask_model_switch_releases_the_old_one(standins_dir, astronaut):
    from livecam.inference.models import ModelLoader
    from livecam.swap.stage import SwapStage

    loader = ModelLoader(models_dir=standins_dir)
    settings = Settings().with_changes({"masks.types": ["box", "occlusion"], "masks.occlusion_model": "xseg_1"})
    stage = SwapStage(loader, settings)
    e = np.random.default_rng(1).normal(size=512).astype(np.float32)
    source = SourceFace("src", e, e / np.linalg.norm(e))
    face = Face(bbox=np.r_[ASTRO_KPS5.min(0) - 30, ASTRO_KPS5.max(0) + 30], kps5=ASTRO_KPS5, score=1.0, track_id=1)
    stage.process(astronaut, [face], source, settings)
    assert "xseg_1:fp16" in loader.loaded()
    for model in ("xseg_2", "many", "xseg_3"):
        new = settings.with_changes({"masks.occlusion_model": model})
        stage.process(astronaut, [face], source, new)  # starts the load; the old masker runs meanwhile
        stage.wait_idle()
        stage.process(astronaut, [face], source, new)  # adopts the new masker, drops the old one
        xsegs = sorted(m for m in loader.loaded() if m.startswith("xseg"))
        want = ["xseg_1:fp16", "xseg_2:fp16", "xseg_3:fp16"] if model == "many" else [f"{model}:fp16"]
        assert xsegs == want, (model, xsegs)  # the replaced model's session is gone
