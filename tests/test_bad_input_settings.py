"""Settings that cannot break the loop later: NaN floats (D07), hotkeys (D08), deeply nested or
non-UTF-8 profiles (D15), numeric CLI options (D23), selector.reference checked and loaded off the
frame thread (D26)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from livecam.errors import SettingsError
from livecam.profiles import load_profile
from livecam.settings import Settings, apply_overrides


# ----------------------------------------------------------------------------- D07: NaN
@pytest.mark.parametrize("override", ["tracker.beta=nan", "masks.blur=nan", "detector.score=nan",
                                      "masks.padding=[nan,0,0,0]", "composite.color_momentum=-nan",
                                      "tracker.min_cutoff=inf"])
def test_non_finite_floats_are_refused_from_set(override):
    with pytest.raises(SettingsError, match="not a finite number|out of range") as err:
        apply_overrides(Settings(), [override])
    assert override.split("=")[0] in err.value.message


def test_nan_in_a_profile_is_refused_naming_the_file(tmp_path):
    p = tmp_path / "nan.toml"
    p.write_text("[tracker]\nbeta = nan\n")
    with pytest.raises(SettingsError, match=r"nan.toml: invalid value nan for 'tracker.beta' \(not a finite number\)"):
        load_profile(str(p))


# ----------------------------------------------------------------------------- D08: hotkeys
@pytest.mark.parametrize("key,why", [("", "empty"), ("  ", "empty"), ("qq", "not a key name"),
                                     ("a,b", "several keys"), (",", "comma"), ("\x1b", "control character"),
                                     ("foo+b", "unknown modifier"), ("ctrl+nokey", "not a key name")])
def test_bad_hotkeys_are_refused_up_front(key, why):
    with pytest.raises(SettingsError, match=why):
        Settings().with_changes({"keys.bypass": key}, origin="keys.toml")


@pytest.mark.parametrize("key", ["b", "%", "ctrl+b", "f5", "space", "escape", "ctrl+shift+a", "left_square_bracket"])
def test_good_hotkeys_validate_and_bind_in_textual(key):
    from textual.binding import BindingsMap

    from livecam.tui.app import make_bindings

    keys = Settings().with_changes({"keys.bypass": key}).keys
    BindingsMap(make_bindings(keys))  # what the TUI does; raises InvalidBinding on a bad key


@pytest.mark.parametrize("changes,clash", [({"keys.bypass": "2"}, "'2' is bound to both face 2 and keys.bypass"),
                                          ({"keys.quit": "m"}, "'m' is bound to both keys.next_model and keys.quit")])
def test_duplicate_hotkeys_are_refused(changes, clash):
    with pytest.raises(SettingsError, match=clash):
        Settings().with_changes(changes)
    swapped = Settings().with_changes({"keys.quit": "m", "keys.next_model": "q"})  # a swap in one change is fine
    assert (swapped.keys.quit, swapped.keys.next_model) == ("m", "q")


def test_profile_with_an_empty_hotkey_fails_before_anything_starts(tmp_path):
    p = tmp_path / "keys.toml"
    p.write_text('[keys]\nquit = ""\n')
    with pytest.raises(SettingsError, match="'keys.quit'.*empty"):
        load_profile(str(p))


# ----------------------------------------------------------------------------- D15: profile files
def test_deeply_nested_profile_is_a_settings_error(tmp_path, capsys):
    from livecam.cli import main

    p = tmp_path / "deep.toml"
    p.write_text("x = " + "[" * 100000 + "]" * 100000 + "\n")
    with pytest.raises(SettingsError, match="nested too deeply"):
        load_profile(str(p))
    assert main(["profiles", "show", str(p)]) == 2
    assert "nested too deeply" in capsys.readouterr().err


def test_non_utf8_or_special_profile_is_a_settings_error(tmp_path):
    p = tmp_path / "latin.toml"
    p.write_bytes(b"[tracker]\n# caf\xe9\nbeta = 1.0\n")
    with pytest.raises(SettingsError, match="cannot read profile"):
        load_profile(str(p))
    with pytest.raises(SettingsError, match="not a regular file"):
        load_profile("/dev/zero")


async def test_tui_survives_loading_deep_and_bad_key_profiles(tmp_path):
    from livecam.tui.app import LivecamApp
    from benchmarks.tui_demo import DemoSession
    from livecam.tui.log import LogPane

    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100000 + "]" * 100000 + "\n")
    keys = tmp_path / "keys.toml"
    keys.write_text('[keys]\nquit = ""\n')
    app = LivecamApp(DemoSession())
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.load_profile_from(str(deep)) is False
        assert app.load_profile_from(str(keys)) is False
        await pilot.pause()
        assert app.is_running
        errors = [line for line in app.query_one(LogPane).history if "profile not loaded" in line]
        assert len(errors) == 2 and "nested too deeply" in errors[0] and "keys.quit" in errors[1]


# ----------------------------------------------------------------------------- D23: numeric CLI options
@pytest.mark.parametrize("argv", [["run", "--stats-every", "0"], ["run", "--stats-every", "-1"],
                                  ["run", "--stats-every", "nan"], ["run", "--duration", "nan"],
                                  ["run", "--duration", "-5"], ["bench", "--input", "x", "--frames", "0"],
                                  ["bench", "--input", "x", "--frames", "many"]])
def test_numeric_cli_options_are_range_checked(argv, capsys):
    from livecam.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[-2]}" in err and ("finite number" in err or "not an integer" in err)


def test_tool_scripts_check_their_numbers_too(capsys):
    from benchmarks.soak import main as soak_main
    from benchmarks.tui_measure import main as measure_main

    for main, argv in ((soak_main, ["--minutes", "nan"]), (soak_main, ["--sample", "0"]),
                       (measure_main, ["--seconds", "-1"]), (measure_main, ["--rounds", "0"])):
        with pytest.raises(SystemExit):
            main(argv)
        assert "must be a finite number" in capsys.readouterr().err


# ----------------------------------------------------------------------------- D26: selector.reference
def test_missing_reference_image_is_refused_when_set(tmp_path):
    with pytest.raises(SettingsError, match="no such image"):
        apply_overrides(Settings(), [f"selector.reference={tmp_path / 'nonexistent.png'}"])
    with pytest.raises(SettingsError, match="not a regular file"):
        apply_overrides(Settings(), [f"selector.reference={tmp_path}/"])
    assert apply_overrides(Settings(), ["selector.reference=alice"]).selector.reference == "alice"  # a bank name


def test_reference_image_is_loaded_off_the_frame_thread(tmp_path, astronaut, monkeypatch):
    """A slow reference decode never stalls frames; a failure counts once as a select error."""
    import threading

    import cv2

    from livecam.errors import SourceFaceError
    from livecam.pipeline import Pipeline

    ref = tmp_path / "ref.png"
    cv2.imwrite(str(ref), astronaut)
    gate = threading.Event()
    seen_threads = []

    class SlowBank:
        analyser = object()

        def __init__(self, analyser=None):
            pass

        def get(self, name):
            return None

        def add(self, path):
            seen_threads.append(threading.current_thread().name)
            gate.wait(10)
            if "bad" in str(path):
                raise SourceFaceError(f"{path}: no face")
            return "REF"

    pipe = Pipeline.__new__(Pipeline)
    pipe.bank = SlowBank()
    pipe._reference, pipe._reference_key, pipe._reference_failed, pipe._reference_thread = None, None, None, None
    pipe._seen_errors = set()
    settings = Settings().with_changes({"selector.mode": "reference", "selector.reference": str(ref)})
    t0 = time.thread_time()
    for _ in range(5):
        assert pipe._reference_for(settings) is None  # frames go on while it loads
    assert time.thread_time() - t0 < 1.0
    gate.set()
    for _ in range(200):
        if pipe._reference_for(settings) == "REF":
            break
        time.sleep(0.01)
    assert pipe._reference_for(settings) == "REF" and seen_threads == ["livecam-reference"]
    bad = tmp_path / "bad.png"
    cv2.imwrite(str(bad), np.zeros((8, 8, 3), np.uint8))
    gate.clear()
    settings = settings.with_changes({"selector.reference": str(bad)})
    assert pipe._reference_for(settings) is None
    gate.set()
    for _ in range(200):
        if pipe._reference_failed is not None:
            break
        time.sleep(0.01)
    with pytest.raises(SourceFaceError):
        pipe._reference_for(settings)  # reported once (the caller counts a select-stage error) ...
    assert pipe._reference_for(settings) is None  # ... then selection falls back quietly


def test_bench_has_the_reference_image_before_the_first_frame(tmp_path, astronaut, standins_dir):
    import cv2

    from livecam.face.analyser import FaceAnalyser
    from livecam.face.bank import FaceBank
    from livecam.inference.models import ModelLoader
    from livecam.pipeline import Pipeline

    img = tmp_path / "astro.png"
    cv2.imwrite(str(img), astronaut)
    settings = Settings().with_changes({"detector.model": "centerface", "selector.mode": "reference",
                                        "selector.reference": str(img)})
    loader = ModelLoader(settings.runtime, models_dir=standins_dir)
    pipeline = Pipeline(loader, settings, FaceBank(FaceAnalyser(loader, settings), cache_dir=tmp_path / "c"))
    pipeline.wait_reference(settings)  # what `livecam bench` does before its loop
    ref = pipeline._reference_for(settings)
    assert ref is not None and ref.name == "astro" and ref.embedding.shape == (512,)
