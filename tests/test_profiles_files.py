"""Profiles: shipped presets, name resolution, validation errors, atomic exact save, delete, CLI."""

from __future__ import annotations

import argparse
import os
import tomllib

import pytest

from livecam import profiles
from livecam.errors import SettingsError
from livecam.paths import shipped_profiles_dir, user_profiles_dir
from livecam.profiles import delete_profile, list_profiles, load_profile, save_profile
from livecam.settings import Settings, all_keys


def test_default_works_without_user_files_and_lists_every_key():
    assert not user_profiles_dir().exists()
    assert load_profile("default") == Settings()
    data = tomllib.loads((shipped_profiles_dir() / "default.toml").read_text())
    keys = {f"{s}.{k}" for s, table in data.items() for k in table}
    assert keys == set(all_keys())


def test_default_falls_back_to_schema_when_no_file(monkeypatch, tmp_path):
    monkeypatch.setattr(profiles, "shipped_profiles_dir", lambda: tmp_path / "none")
    assert load_profile("default") == Settings()
    with pytest.raises(SettingsError, match="no profile named 'quality'"):
        load_profile("quality")


@pytest.mark.parametrize("name", ["default", "quality", "speed", "cpu"])
def test_shipped_presets_load_and_use_only_dotted_keys(name):
    path = shipped_profiles_dir() / f"{name}.toml"
    data = tomllib.loads(path.read_text())
    for section, table in data.items():
        assert isinstance(table, dict)
        for key in table:
            assert f"{section}.{key}" in all_keys()
    assert isinstance(load_profile(name), Settings)


def test_shipped_presets_have_their_documented_values():
    quality, speed, cpu = load_profile("quality"), load_profile("speed"), load_profile("cpu")
    assert quality.swapper.model == "hyperswap_1b_256"
    assert {"occlusion", "region"} <= set(quality.masks.types)
    assert quality.composite.blend == "pyramid"
    assert speed.swapper.model == "inswapper_128_fp16"
    assert speed.masks.types == ("box",)
    assert speed.detector.every_n == 8
    assert cpu.detector.model == "yunet"  # issue 9: as accurate as CenterFace on the real clips, ~7x cheaper
    assert cpu.runtime.provider == "cpu"
    assert cpu.masks.types == ("box",)
    assert "occlusion" not in cpu.masks.types and "region" not in cpu.masks.types


def test_user_profile_shadows_shipped_and_path_loads(tmp_path):
    user_profiles_dir().mkdir(parents=True)
    (user_profiles_dir() / "speed.toml").write_text("[detector]\nevery_n = 3\n")
    assert load_profile("speed").detector.every_n == 3
    entries = {(e.name, e.shipped): e for e in list_profiles()}
    assert entries[("speed", True)].shadowed and not entries[("speed", False)].shadowed
    assert [e.shipped for e in list_profiles()][:1] == [False]  # user profiles first
    other = tmp_path / "mine.toml"
    other.write_text("detector.every_n = 11\nswapper.model = 'inswapper_128'\n")  # TOML dotted keys
    s = load_profile(str(other))
    assert (s.detector.every_n, s.swapper.model) == (11, "inswapper_128")


def test_bad_value_names_file_key_and_allowed_values(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[swapper]\nmodel = 'simswap'\n")
    with pytest.raises(SettingsError) as info:
        load_profile(str(bad))
    text = str(info.value)
    assert str(bad) in text and "swapper.model" in text and "'hyperswap_1a_256'" in text and "simswap" in text


def test_out_of_range_and_unknown_key_and_section(tmp_path):
    cases = {
        "[detector]\nevery_n = 0\n": ("detector.every_n", "[1, 120]"),
        "[detector]\nevry_n = 2\n": ("detector.evry_n", "every_n"),
        "[dectector]\nevery_n = 2\n": ("[dectector]", "detector"),
    }
    for i, (body, (needle, allowed)) in enumerate(cases.items()):
        path = tmp_path / f"p{i}.toml"
        path.write_text(body)
        with pytest.raises(SettingsError) as info:
            load_profile(str(path))
        assert str(path) in str(info.value) and needle in str(info.value) and allowed in str(info.value)


def test_toml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[detector\nevery_n = 2\n")
    with pytest.raises(SettingsError, match="broken.toml: not valid TOML"):
        load_profile(str(path))


def test_unknown_name_lists_available():
    with pytest.raises(SettingsError) as info:
        load_profile("nosuch")
    assert "cpu" in info.value.fix and "quality" in info.value.fix


@pytest.mark.parametrize("name", ["../evil", "a/b", "", "x.toml", "-dash"])
def test_invalid_names_rejected(name):
    with pytest.raises(SettingsError):
        save_profile(name, Settings())


def _unusual_settings() -> Settings:
    return Settings().with_changes({
        "camera.device": "/dev/video2", "camera.fps": 60, "detector.score": 0.123456789,
        "detector.every_n": 3, "masks.types": ["region", "box", "occlusion"],
        "masks.padding": [1, 2.5, 3, 4], "masks.regions": ["skin", "nose"], "swapper.source": "Zoë \"Q\" o'Brien",
        "temporal.snap": False, "tracker.min_cutoff": 1e-3, "keys.bypass": "ctrl+b", "keys.next_face": "]",
        "composite.color_momentum": 0.1 + 0.2, "output.device": "C:\\cams\\x",
    }, origin="test")


def test_save_round_trips_exactly_and_atomically():
    s = _unusual_settings()
    path = save_profile("mine", s)
    assert path == user_profiles_dir() / "mine.toml"
    assert load_profile("mine") == s
    assert load_profile(str(path)) == s
    assert [p.name for p in user_profiles_dir().iterdir()] == ["mine.toml"]  # no temp file left
    # save again (overwrite) with other values
    s2 = s.with_changes({"detector.every_n": 9})
    save_profile("mine", s2)
    assert load_profile("mine") == s2


def test_failed_save_keeps_the_old_file(monkeypatch):
    save_profile("keep", Settings().with_changes({"detector.every_n": 5}))
    before = (user_profiles_dir() / "keep.toml").read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_profile("keep", Settings().with_changes({"detector.every_n": 7}))
    assert (user_profiles_dir() / "keep.toml").read_bytes() == before
    assert sorted(p.name for p in user_profiles_dir().iterdir()) == ["keep.toml"]


def test_delete_user_profile_and_refuse_shipped():
    save_profile("tmp1", Settings())
    assert delete_profile("tmp1") == user_profiles_dir() / "tmp1.toml"
    assert not (user_profiles_dir() / "tmp1.toml").exists()
    with pytest.raises(SettingsError, match="shipped preset and is read-only"):
        delete_profile("quality")
    assert (shipped_profiles_dir() / "quality.toml").is_file()
    with pytest.raises(SettingsError, match="no user profile"):
        delete_profile("tmp1")


def _cli(argv):
    parser = argparse.ArgumentParser(prog="livecam")
    sub = parser.add_subparsers(dest="command")
    profiles.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_save_show_list_delete(capsys):
    assert _cli(["profiles", "save", "fast", "--from", "speed", "--set", "detector.every_n=12",
                 "--set", "masks.types=area"]) == 0
    s = load_profile("fast")
    assert (s.swapper.model, s.detector.every_n, s.masks.types) == ("inswapper_128_fp16", 12, ("area",))
    capsys.readouterr()
    assert _cli(["profiles", "show", "fast"]) == 0
    shown = capsys.readouterr().out
    assert Settings().with_nested(tomllib.loads(shown), origin="show") == s  # show prints every key, loadable
    assert _cli(["profiles", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[:2] == ["fast", "user"]
    assert {line.split()[0] for line in listed} == {"fast", "cpu", "default", "quality", "speed"}
    assert _cli(["profiles", "delete", "fast"]) == 0
    assert not (user_profiles_dir() / "fast.toml").exists()
    with pytest.raises(SettingsError, match="read-only"):
        _cli(["profiles", "delete", "default"])
    with pytest.raises(SettingsError, match="--set: invalid value 'nope' for 'detector.model'"):
        _cli(["profiles", "save", "x", "--set", "detector.model=nope"])
    assert not (user_profiles_dir() / "x.toml").exists()


def test_cli_show_default_without_user_files(capsys):
    assert _cli(["profiles", "show"]) == 0
    out = capsys.readouterr().out
    assert Settings().with_nested(tomllib.loads(out), origin="show") == Settings()
    assert "default.toml" in out.splitlines()[0]
