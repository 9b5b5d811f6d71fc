"""Pilot tests of the app over a demo session: hotkeys → Controls, profiles, faces, polling."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livecam.controls import Stats
from livecam.paths import user_profiles_dir
from livecam.profiles import load_profile, save_profile
from livecam.settings import Settings
from livecam.tui.app import LivecamApp
from benchmarks.tui_demo import DemoSession
from livecam.tui.faces import FacesPanel
from livecam.tui.log import LogPane
from livecam.tui.models import ModelPanel


def _state(session):
    return session.controls.current()



async def until(pilot, condition, timeout: float = 5.0) -> bool:
    """Pause until `condition()` holds (refreshes are timed; a loaded machine delays them)."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return True
        await pilot.pause(0.05)
    return condition()

async def test_each_hotkey_changes_the_controls():
    session = DemoSession()
    app = LivecamApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        s0 = _state(session)
        assert (s0.bypass, s0.settings.swapper.source) == (False, "")
        await pilot.press("b")
        assert _state(session).bypass is True
        await pilot.press("b")
        assert _state(session).bypass is False
        await pilot.press("2")
        assert _state(session).settings.swapper.source == "bob"
        await pilot.press("right_square_bracket")
        assert _state(session).settings.swapper.source == "carol"
        await pilot.press("right_square_bracket")
        assert _state(session).settings.swapper.source == "alice"
        await pilot.press("left_square_bracket")
        assert _state(session).settings.swapper.source == "carol"
        version = _state(session).version
        await pilot.press("9")  # no ninth face: nothing changes
        assert _state(session).version == version
        await pilot.press("m")
        assert _state(session).settings.swapper.model == "hyperswap_1b_256"
        await pilot.press("o")
        assert _state(session).settings.masks.types == ("box", "occlusion")
        await pilot.press("r")
        assert _state(session).settings.masks.types == ("box", "occlusion", "region")
        await pilot.press("o", "r")
        assert _state(session).settings.masks.types == ("box",)
        await pilot.press("t")
        assert _state(session).settings.temporal.enabled is False
        # every key press above was exactly one atomic change
        assert _state(session).version == version + 6
        await pilot.pause()
        faces = app.query_one(FacesPanel)
        assert faces._shown[1] == 2  # carol marked active
        await pilot.press("q")
    assert app.return_code == 0


async def test_keys_are_rebindable_from_the_profile():
    settings = Settings().with_changes({"keys.bypass": "x", "keys.next_face": "n", "keys.quit": "ctrl+x"})
    session = DemoSession(settings)
    app = LivecamApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("b")
        assert _state(session).bypass is False
        await pilot.press("x")
        assert _state(session).bypass is True
        await pilot.press("n")
        assert _state(session).settings.swapper.source == "bob"
        await pilot.press("q")
        assert app.is_running
        footer_keys = {b.binding.key for b in app.screen.active_bindings.values() if b.binding.show}
        assert {"x", "ctrl+x"} <= footer_keys and "b" not in footer_keys
        await pilot.press("ctrl+x")
    assert app.return_code == 0


async def test_typing_in_the_face_input_does_not_trigger_hotkeys():
    session = DemoSession()
    app = LivecamApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.click("#face-path")
        await pilot.press("b", "m", "2")
        assert app.query_one("#face-path").value == "bm2"
        assert _state(session).version == 0
        await pilot.press("escape")


async def test_typing_paths_with_hotkey_letters_fires_no_hotkey(tmp_path):
    """The issue-10 case: a second path typed after Enter toggled temporal, switched models and
    loaded a profile; a `b` would have sent the real face out. Type two paths key by key."""
    session = DemoSession()
    app = LivecamApp(session)
    first = "/tmp/bq1/b2q.png"  # b (bypass), q (quit), digits (faces), no such file
    second = "q/mtopsr[]9b.jpg"  # every other hotkey too
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1")
        before = _state(session)
        assert before.settings.swapper.source == "alice"
        await pilot.click("#face-path")
        footer = {b.binding.key for b in app.screen.active_bindings.values() if b.binding.show}
        assert "escape" in footer and "b" not in footer and "q" not in footer  # visibly in typing mode
        for path in (first, second):
            await pilot.press(*path)
            assert app.query_one("#face-path").value == path
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.is_running and app.focused.id == "face-path"  # focus stays, and shows
        after = _state(session)
        assert after.version == before.version  # no bypass, face, model, mask or temporal change
        assert after.bypass is False and after.settings == before.settings
        assert len(app.screen_stack) == 1  # no save/load dialog opened
        log = app.query_one(LogPane).history
        assert sum("cannot add face" in line for line in log) == 2  # both paths were tried as faces
        await pilot.press("escape")
        assert app.focused.id == "faces-list"
        await pilot.press("b")  # hotkeys are back
        assert _state(session).bypass is True


async def test_save_profile_dialog_writes_an_exact_profile():
    session = DemoSession()
    app = LivecamApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "o", "t")
        await pilot.press("s")
        await pilot.pause()
        assert app.screen.query_one("#profile-name").value == "live"
        await pilot.press(*"ctrl+a ctrl+k".split())  # clear (Input: home, kill to end)
        await pilot.press(*"call", "enter")
        await pilot.pause()
    assert load_profile("call") == _state(session).settings
    assert load_profile("call").swapper.source == "bob"
    assert app.profile_name == "call"


async def test_load_profile_dialog_applies_it_and_keeps_the_face():
    session = DemoSession()
    app = LivecamApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.press("p")
        await pilot.pause()
        names = [o.prompt.split()[0] for o in app.screen.query_one("#profile-list")._options]
        assert names == ["cpu", "default", "quality", "speed"]
        await pilot.press("down", "down", "enter")  # quality
        await pilot.pause()
    expected = load_profile("quality").with_changes({"swapper.source": "carol"})
    assert _state(session).settings == expected
    assert app.profile_name == "quality"


async def test_bad_profile_never_changes_the_running_state(tmp_path):
    session = DemoSession()
    app = LivecamApp(session)
    bad = tmp_path / "bad.toml"
    bad.write_text("[masks]\ntypes = ['box', 'hair']\n")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        before = _state(session)
        assert app.load_profile_from(str(bad)) is False
        assert app.load_profile_from("nosuchprofile") is False
        await pilot.pause()
        assert _state(session) is before
        errors = [line for line in app.query_one(LogPane).history if "profile not loaded" in line]
        assert len(errors) == 2
        assert str(bad) in errors[0] and "masks.types" in errors[0] and "'occlusion'" in errors[0]


async def test_loaded_profile_rebinds_keys():
    save_profile("rebound", Settings().with_changes({"keys.bypass": "z"}))
    session = DemoSession()
    app = LivecamApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.load_profile_from("rebound")
        await pilot.press("b")
        assert _state(session).bypass is False
        await pilot.press("z")
        assert _state(session).bypass is True


async def test_stats_are_polled_at_the_refresh_rate_not_per_frame():
    session = DemoSession(frozen=False)
    calls = []
    real = session.stats.snapshot
    session.stats.snapshot = lambda: calls.append(1) or real()
    app = LivecamApp(session, refresh_hz=10)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(300):  # 300 frames' worth of writes between two refreshes
            session.stats.frame_in()
            session.stats.frame_processed(12.5, {"swap": 7.25}, faces=1)
            session.stats.frame_out(33.0)
        session.stats.count("guard_rejects", 4)
        session.stats.warn("camera: lost, reconnecting")
        n0 = len(calls)
        await pilot.pause(0.55)
        polled = len(calls) - n0
        assert 1 <= polled <= 8  # ~10 Hz for 0.55 s, whatever the frame rate (not per frame; few under load)
        text = app.query_one("#stats-text").text.plain
        assert "swap 7.2" in text and "guard 4" in text and "host 12.5/12.5" in text
        assert any("camera: lost, reconnecting" in line for line in app.query_one(LogPane).history)
        # unchanged stats re-render nothing
        written = app.query_one(LogPane).lines_written
        await pilot.pause(0.3)
        assert app.query_one(LogPane).lines_written == written


async def test_model_loading_shows_progress():
    session = DemoSession(frozen=False)
    app = LivecamApp(session, refresh_hz=20)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        panel = app.query_one(ModelPanel)
        assert not panel.has_class("loading")
        session.stats.set(loading="loading hyperswap_1b_256 40%")
        assert await until(pilot, lambda: panel.has_class("loading"))
        text = app.query_one("#models-text").text.plain
        assert "████░░░░░░ 40% loading hyperswap_1b_256" in text
        session.stats.set(loading="")
        assert await until(pilot, lambda: not panel.has_class("loading"))


async def test_add_face_from_a_path(tmp_path):
    img = tmp_path / "dave.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 128, np.uint8))
    session = DemoSession()
    app = LivecamApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.click("#face-path")
        app.query_one("#face-path").value = str(img)  # typing a long path key by key is slow
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert session.bank.names() == ["alice", "bob", "carol", "dave"]
        assert app.query_one(FacesPanel)._shown[0][3][0] == "dave"
        assert app.focused.id == "face-path"  # the box keeps the keys for the next path
        app.query_one("#face-path").value = str(tmp_path / "missing.png")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(session.bank.faces) == 4
        assert any("cannot add face" in line and "missing.png" in line for line in app.query_one(LogPane).history)
        await pilot.click("#face-path")
        await pilot.press("escape")
        assert app.focused.id == "faces-list"
        await pilot.press("4")
        assert _state(session).settings.swapper.source == "dave"


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_layout_fits_small_and_large_terminals(size):
    session = DemoSession()
    app = LivecamApp(session, images=True)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        w, h = size
        for wid in ("#stats", "#models", "#faces", "#log"):
            region = app.query_one(wid).region
            assert region.width >= 30 and region.height >= 4, (wid, region)
            assert region.right <= w and region.bottom <= h - 1  # above the footer
        # all three faces visible with their thumbnails
        assert app.query_one("#faces-list").option_count == 3
        assert app.screen.has_class("tall") == (h >= LivecamApp.TALL)


def test_stats_snapshot_is_not_called_without_the_app():
    # control for the polling test: the demo loop itself never reads snapshots
    session = DemoSession(frozen=False)
    assert isinstance(session.stats, Stats)
    calls = []
    session.stats.snapshot = lambda: calls.append(1)
    session.start()
    try:
        import time

        time.sleep(0.2)
    finally:
        session.stop()
    assert calls == [] and len(session.host_ms) >= 3


async def test_refresh_keeps_running_while_a_dialog_is_open():
    session = DemoSession(frozen=False)
    app = LivecamApp(session, refresh_hz=20)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await pilot.pause()
        n = app.refreshes
        session.stats.set(loading="loading inswapper_128 10%")
        # 20 Hz: 4 refreshes take 0.2 s on a quiet machine; wait up to 5 s on a loaded one
        for _ in range(50):
            await pilot.pause(0.1)
            if app.refreshes >= n + 4:
                break
        assert app.refreshes >= n + 4
        assert app.model_panel.has_class("loading")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main_screen
    assert not (user_profiles_dir() / "live.toml").exists()  # Escape saved nothing


async def test_swap_stage_loading_and_messages_are_shown():
    from collections import deque
    from types import SimpleNamespace

    session = DemoSession(frozen=False)
    stage = SimpleNamespace(loading="", active_model="hyperswap_1a_256", messages=deque(maxlen=50))
    session.pipeline = SimpleNamespace(swap_stage=stage)
    app = LivecamApp(session, refresh_hz=20)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("m")
        stage.loading = "hyperswap_1b_256"  # the stage reports bare names, live
        session.stats.set(loading="")  # the loop's copy lags; the stage wins
        assert await until(pilot, lambda: "loading hyperswap_1b_256 (still running hyperswap_1a_256)"
                           in app.query_one("#models-text").text.plain)
        # The live loop forwards the stage's messages into the stats log (Pipeline.drain_messages).
        session.stats.warn("could not load hyperswap_1b_256: file missing")
        stage.loading = ""
        assert await until(pilot, lambda: "loading" not in app.query_one("#models-text").text.plain
                           and any("could not load hyperswap_1b_256" in line for line in app.log_pane.history))
        assert "running hyperswap_1a_256" in app.query_one("#models-text").text.plain
        lines = [line for line in app.log_pane.history if "could not load hyperswap_1b_256" in line]
        assert len(lines) == 1
        await pilot.pause(0.2)  # shown once, not on every refresh
        assert len([line for line in app.log_pane.history if "could not load" in line]) == 1
