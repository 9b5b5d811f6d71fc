"""Tests never touch the real user cache or config, not even from module-scoped fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _real_dirs() -> list[Path]:
    from platformdirs import user_cache_dir, user_config_dir

    return [Path(user_cache_dir("livecam", appauthor=False)), Path(user_config_dir("livecam", appauthor=False))]


@pytest.fixture(scope="module")
def module_dirs():
    """What a module-scoped fixture (a model loader, a face bank) sees: set up before any
    function-scoped fixture runs."""
    from livecam.paths import cache_dir, config_dir

    return cache_dir(), config_dir(), os.environ.get("LIVECAM_MODELS_DIR")


def test_module_scoped_fixtures_see_isolated_dirs(module_dirs):
    cache, config, models_dir = module_dirs
    for mine in (cache, config):
        for real in _real_dirs():
            assert mine != real and real not in mine.parents, (mine, real)
    assert models_dir is None
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_function_scoped_dirs_are_per_test(module_dirs):
    from livecam.paths import cache_dir

    assert cache_dir() != module_dirs[0]  # each test gets a fresh cache on top
