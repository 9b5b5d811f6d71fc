"""The UI's pure parts: hotkey actions, log diffing, thumbnails, panel text, import hygiene."""

from __future__ import annotations

import dataclasses

import subprocess
import sys

import numpy as np

from livecam.controls import ControlState, StatsSnapshot
from livecam.settings import SWAPPER_MODELS, Settings
from livecam.tui import actions
from livecam.tui.faces import thumbnail_text
from livecam.tui.header import StatusHeader
from livecam.tui.log import new_lines
from livecam.tui.models import loading_percent, models_text
from livecam.tui.stats import stats_text

NAMES = ["alice", "bob", "carol"]


def test_import_livecam_does_not_import_textual():
    code = "import sys, livecam, livecam.profiles, livecam.settings, livecam.controls; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_face_actions():
    assert actions.active_index(NAMES, "") == 0
    assert actions.active_index(NAMES, "carol") == 2
    assert actions.active_index(NAMES, "zed") is None
    assert actions.active_index([], "") is None
    assert actions.pick_face(NAMES, 1) == {"swapper.source": "bob"}
    assert actions.pick_face(NAMES, 3) is None and actions.pick_face(NAMES, -1) is None
    assert actions.step_face(NAMES, "", 1) == {"swapper.source": "bob"}
    assert actions.step_face(NAMES, "carol", 1) == {"swapper.source": "alice"}
    assert actions.step_face(NAMES, "alice", -1) == {"swapper.source": "carol"}
    assert actions.step_face(NAMES, "zed", -1) == {"swapper.source": "carol"}
    assert actions.step_face([], "", 1) is None


def test_model_mask_temporal_actions():
    s = Settings()
    seen = []
    for _ in SWAPPER_MODELS:
        s = s.with_changes(actions.next_model(s))
        seen.append(s.swapper.model)
    assert sorted(seen) == sorted(SWAPPER_MODELS) and seen[-1] == Settings().swapper.model
    s = Settings().with_changes(actions.toggle_mask(Settings(), "occlusion"))
    assert s.masks.types == ("box", "occlusion")
    s = s.with_changes(actions.toggle_mask(s, "occlusion"))
    assert s.masks.types == ("box",)
    only = Settings().with_changes({"masks.types": ["region"]})
    assert actions.toggle_mask(only, "region") == {"masks.types": ["box"]}
    assert actions.toggle_temporal(Settings()) == {"temporal.enabled": False}


def test_profile_for_live_keeps_active_face():
    current = Settings().with_changes({"swapper.source": "bob"})
    loaded = Settings().with_changes({"detector.every_n": 2})
    assert actions.profile_for_live(loaded, current).swapper.source == "bob"
    named = loaded.with_changes({"swapper.source": "carol"})
    assert actions.profile_for_live(named, current).swapper.source == "carol"


def test_new_lines_handles_sliding_window():
    assert new_lines([], ["a", "b"]) == ["a", "b"]
    assert new_lines(["a", "b"], ["a", "b", "c"]) == ["c"]
    assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]  # window slid by 1
    assert new_lines(["a", "b"], ["x", "y"]) == ["x", "y"]
    assert new_lines(["a", "b"], ["a", "b"]) == []


def test_thumbnail_is_half_blocks_of_the_image_colours():
    img = np.zeros((40, 40, 3), np.uint8)
    img[:20] = (255, 0, 0)  # blue top (BGR)
    img[20:] = (0, 0, 255)  # red bottom
    text = thumbnail_text(img, cols=4, rows=2)
    lines = text.plain.split("\n")
    assert lines == ["▀▀▀▀", "▀▀▀▀"]
    top_style = text.spans[0].style
    assert top_style.color.triplet == (0, 0, 255) and top_style.bgcolor.triplet == (0, 0, 255)
    bottom_style = text.spans[-1].style
    assert bottom_style.color.triplet == (255, 0, 0) and bottom_style.bgcolor.triplet == (255, 0, 0)


def test_panel_texts_show_the_numbers():
    snap = StatsSnapshot(fps_in=30.0, fps_out=29.5, latency_ms={"p50": 41.0, "p95": 58.0},
                         stage_ms={"swap": {"p50": 9.84}, "zzz": {"p50": 1.0}, "track": {"p50": 2.0}},
                         detector_calls=7, dropped=3, guard_rejects=2)
    text = stats_text(snap).plain
    assert "in 30.0 out 29.5" in text and "41/58 ms" in text
    assert text.index("track 2.0") < text.index("swap 9.8") < text.index("zzz 1.0")
    assert "det 7" in text and "drop 3" in text and "guard 2" in text
    s = Settings().with_changes({"masks.types": ["box", "region"], "masks.regions": ["skin", "nose"],
                                 "temporal.enabled": False})
    mt = models_text(s, active_model="inswapper_128", loading="loading hyperswap_1a_256 40%").plain
    assert "████░░░░░░ 40% loading hyperswap_1a_256 (still running inswapper_128)" in mt
    assert "skin,nose" in mt and "temporal off" in mt
    assert loading_percent("loading x 40%") == 40.0 and loading_percent("loading x") is None


def test_header_states():
    snap = StatsSnapshot(camera="cam", camera_ok=False, output="/dev/video10 1280x720@30 I420",
                         providers={"swapper": "tensorrt", "det": "cpu"})
    live = StatusHeader.build(snap, ControlState(Settings(), bypass=False))
    byp = StatusHeader.build(snap, ControlState(Settings(), bypass=True))
    assert " LIVE " in live.plain and " BYPASS " not in live.plain
    assert " BYPASS " in byp.plain
    none = StatusHeader.build(snap, ControlState(Settings(), bypass=False), faces=0)
    assert "NO FACE: nothing swapped" in none.plain and " LIVE " not in none.plain
    assert " LIVE " in StatusHeader.build(snap, ControlState(Settings(), bypass=False), faces=2).plain
    assert "/dev/video10 1280x720@30 I420" in live.plain and "swapper tensorrt" in live.plain
    red = [sp for sp in live.spans if "red" in str(sp.style)]
    assert live.plain[red[0].start:red[0].end] == "cam"  # camera lost shown in red


def test_key_clashes_are_reported():
    from livecam.tui.app import key_clashes

    assert key_clashes(Settings().keys) == []
    # settings refuse clashes (test_bad_input_settings); the TUI still reports any it is handed
    keys = dataclasses.replace(Settings().keys, bypass="2", quit="m")
    clashes = key_clashes(keys)
    assert clashes == ["key '2' is bound to both face 2 and bypass", "key 'm' is bound to both next_model and quit"]
