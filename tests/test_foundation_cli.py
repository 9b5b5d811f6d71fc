"""`livecam models list|pull|verify` and `livecam engines` through livecam.cli.main."""

from __future__ import annotations

import shutil

import pytest

import livecam.cli as cli


@pytest.fixture
def run(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("livecam.inference.cli",))

    def _run(*argv):
        rc = cli.main(list(argv))
        out = capsys.readouterr()
        return rc, out.out, out.err

    return _run


def test_models_list_shows_every_model_with_licence(run, standins_dir):
    rc, out, _ = run("models", "list", "--models-dir", str(standins_dir))
    assert rc == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(("NAME", "models", "user"))}
    from livecam.inference.catalog import load_catalog

    for spec in load_catalog():
        line = lines[spec.name]
        assert spec.license in line and spec.kind in line
        assert ("[non-commercial]" in line) == (not spec.commercial)
        assert ("package:" if spec.package else "models-dir:") in line


def test_models_list_without_models(run):
    rc, out, _ = run("models", "list")
    assert rc == 0 and out.count("not downloaded") == 15


def test_verify_passes_on_standins_and_fails_on_damage(run, standins_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVECAM_MODELS_DIR", str(standins_dir))
    rc, out, _ = run("models", "verify")
    assert rc == 0 and "16 ok, 0 failed" in out
    d = tmp_path / "m"
    shutil.copytree(standins_dir, d)
    (d / "xseg_2.onnx").write_bytes((d / "xseg_2.onnx").read_bytes()[:-1])
    rc, out, err = run("models", "verify", "--models-dir", str(d))
    assert rc == 1 and "xseg_2: FAILED" in err and "15 ok, 1 failed" in out
    rc, out, err = run("models", "verify", "xseg_1", "--models-dir", str(d))
    assert rc == 0 and "1 ok, 0 failed" in out


def test_verify_named_missing_model_fails(run, tmp_path):
    rc, _, err = run("models", "verify", "inswapper_128", "--models-dir", str(tmp_path))
    assert rc == 1 and "not found" in err


def test_pull_unknown_and_offline(run, monkeypatch):
    rc, _, err = run("models", "pull", "nope")
    assert rc == 2 and "unknown model 'nope'" in err
    rc, _, err = run("models", "pull")
    assert rc == 2
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc, _, err = run("models", "pull", "--all")
    assert rc == 2 and "15 of 15 failed" in err


def test_pull_package_model_is_ok_offline(run, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc, out, _ = run("models", "pull", "centerface")
    assert rc == 0 and "centerface: ok" in out


def test_engines_list_and_clear(run, tmp_path):
    rc, out, _ = run("engines", "list", "--set", f"runtime.engine_cache={tmp_path}")
    assert rc == 0 and "(no engines)" in out and str(tmp_path) in out
    from livecam.inference.engine_cache import EngineCache, cache_key
    from livecam.inference.runtime import module_version

    key = cache_key(None, None, module_version("onnxruntime"))
    assert f"key {key}" in out
    c = EngineCache(tmp_path, None, None, module_version("onnxruntime"))
    c.store("xseg_1", "ab" * 32, "fp32", b"x")
    rc, out, _ = run("engines", "list", "--set", f"runtime.engine_cache={tmp_path}")
    assert "xseg_1" in out
    rc, out, _ = run("engines", "clear", "--set", f"runtime.engine_cache={tmp_path}")
    assert rc == 0 and "removed 1 engines" in out and c.entries() == []
