"""Snapshot tests of the main screen (frozen demo session), small and large terminals.

Regenerate after an intended UI change: `pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from livecam.profiles import load_profile
from livecam.settings import Settings
from livecam.tui.app import LivecamApp
from benchmarks.tui_demo import DemoSession


def _app(settings: Settings | None = None, **stats) -> LivecamApp:
    session = DemoSession(settings)
    for key, value in stats.items():
        setattr(session.stats.frozen, key, value)
    # refresh_hz tiny: the frozen view is drawn once at mount; images on (half-block thumbnails)
    app = LivecamApp(session, refresh_hz=0.1, images=True)
    return app


def _freeze_clock(pilot):
    pilot.app.log_pane.clock = lambda: "10:15:00"


def test_main_screen_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24))


def test_main_screen_160x48(snap_compare):
    settings = Settings().with_changes({"masks.types": ["box", "occlusion", "region"], "composite.blend": "pyramid",
                                        "swapper.source": "bob"})
    assert snap_compare(_app(settings), terminal_size=(160, 48))


def test_bypass_and_model_loading_80x24(snap_compare):
    # the quality preset: long mask lines are cut with an ellipsis, not wrapped
    app = _app(load_profile("quality"), loading="loading hyperswap_1c_256 40%",
               camera="camera lost - reconnecting", camera_ok=False)
    assert snap_compare(app, press=["b", "m"], terminal_size=(80, 24), run_before=_freeze_clock)
