"""Engine sharing is native code: only manifests signed by a trusted key are believed (D01), every
engine is checked before a byte is written, remote names cannot leave the engine folder (D02), a
malformed manifest is treated as absent (D13). Uses the strict TensorRT/CuPy/ORT fakes of
test_foundation_runtime and a local hub on 127.0.0.1 that lists and serves repo files."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from test_foundation_runtime import _loader, gpu_env  # noqa: F401  (fixture re-exported)
from test_foundation_store import _Hub

from livecam.inference import trust
from livecam.inference.engine_cache import EngineCache
from livecam.inference.trust import TrustError

REPO = "team/engines"
KEY = "sm89/trt10.13_ort1.31"  # what the fakes report (test_foundation_runtime)


@pytest.fixture
def hub(monkeypatch, tmp_path):
    import huggingface_hub
    import huggingface_hub.constants as hc

    h = _Hub({})
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    monkeypatch.setattr(hc, "ENDPOINT", h.url)
    monkeypatch.setattr(hc, "HUGGINGFACE_CO_URL_TEMPLATE", h.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)

    def create_commit(self, repo_id, operations, commit_message="", **kw):  # the hub's side of a push
        for op in operations:
            with op.as_file() as f:
                h.files[op.path_in_repo] = f.read()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, *a, **k: None)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
    yield h
    h.server.shutdown()
    h.server.server_close()


def _other_machine(monkeypatch, tmp_path, name):
    """A fresh user: own config (keys) and cache dirs."""
    monkeypatch.setenv("LIVECAM_CONFIG_DIR", str(tmp_path / name / "config"))
    monkeypatch.setenv("LIVECAM_CACHE_DIR", str(tmp_path / name / "cache"))
    return tmp_path / name


def _publish(gpu_env, standins_dir, tmp_path, monkeypatch, hub):  # noqa: F811
    """Machine A builds xseg_1 and pushes it; returns (env, A's public key)."""
    env = gpu_env()
    a = _other_machine(monkeypatch, tmp_path, "a")
    loader = _loader(standins_dir, a)
    loader.session("xseg_1")
    sent = loader.engine_cache.push(REPO)
    assert any(f.endswith(".engine") for f in sent) and "manifest.sig" in sent
    return env, trust.my_public_key()


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()} if root.exists() else {}


# ----------------------------------------------------------------------------- the good path
def test_signed_engines_from_a_trusted_key_load_without_a_build(gpu_env, standins_dir, tmp_path, monkeypatch, hub):  # noqa: F811
    env, key_a = _publish(gpu_env, standins_dir, tmp_path, monkeypatch, hub)
    assert env.trt.calls["build"] == 1
    sig = json.loads(hub.files[f"{KEY}/manifest.sig"])
    assert sig["algorithm"] == "ed25519" and sig["public_key"] == key_a
    assert f"{KEY}/timing.cache" not in hub.files  # the timing cache stays local
    b = _other_machine(monkeypatch, tmp_path, "b")
    trust.trust(key_a, REPO, label="machine a")
    monkeypatch.setenv("LIVECAM_ENGINE_REPO", REPO)
    sess = _loader(standins_dir, b).session("xseg_1")
    assert sess.provider == "tensorrt"
    assert env.trt.calls["build"] == 1 and env.trt.calls["deserialize"] == 2  # A: its build, B: the pulled one
    (entry,) = EngineCache(b / "engines", "89", "10.13.0", "1.31.1").entries()
    assert entry.origin == f"{REPO} key {trust.key_id(trust.parse_public_key(key_a))}"


# ----------------------------------------------------------------------------- refused before any byte is written
def _attacker_plan(standins_dir) -> bytes:
    return b"FAKEPLAN" + json.dumps({"onnx": str(standins_dir / "xseg_2.onnx"), "attacker": "payload"}).encode()


def _engine_name(standins_dir, model="xseg_1", precision="fp16"):
    from livecam.inference.store import sha256_hex

    sha = sha256_hex(standins_dir / f"{model}.onnx")
    return sha, EngineCache.engine_name(model, sha, precision)


def _manifest(standins_dir, plan: bytes, name: str | None = None, repo=REPO) -> bytes:
    sha, default = _engine_name(standins_dir)
    name = name or default
    entry = {"file": name, "model": "xseg_1", "model_sha256": sha, "precision": "fp16", "size": len(plan),
             "sha256": hashlib.sha256(plan).hexdigest(), "built_at": "x"}
    return json.dumps({"cache_key": KEY, "repo": repo, "engine_files": {name: entry},
                       "decisions": {"xseg_1": {"fp16_matches_fp32": True}}}).encode()


def _sig(private, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return json.dumps({"algorithm": "ed25519", "public_key": trust.public_key_text(raw),
                       "signature": base64.b64encode(private.sign(data)).decode()}).encode()


def _trusted_private(monkeypatch, tmp_path):
    """A publisher key the puller trusts for REPO (made on machine 'pub', trusted on 'victim')."""
    _other_machine(monkeypatch, tmp_path, "pub")
    private = trust.signing_key(create=True)
    pub = trust.my_public_key()
    _other_machine(monkeypatch, tmp_path, "victim")
    trust.trust(pub, REPO)
    return private


def _pull_and_check_nothing_written(gpu_env, standins_dir, tmp_path, monkeypatch, hub, plan):  # noqa: F811
    env = gpu_env()
    monkeypatch.setenv("LIVECAM_ENGINE_REPO", REPO)
    victim = tmp_path / "victim"
    sess = _loader(standins_dir, victim).session("xseg_1")
    # the attacker's bytes never reached the cache nor TensorRT: this machine built its own engine
    assert env.trt.calls["build"] == 1 and sess.provider == "tensorrt"
    files = _all_files(victim / "engines")
    assert plan not in files.values()
    assert not any("ort-trt" in f or f.endswith("timing.cache") and files[f] == b"evil timing" for f in files)
    manifest = json.loads(files[f"{KEY}/manifest.json"])
    assert manifest["decisions"] == {} and all(not e.get("origin") for e in manifest["engine_files"].values())
    return env


def test_unsigned_manifest_is_refused(gpu_env, standins_dir, tmp_path, monkeypatch, hub, caplog):  # noqa: F811
    _trusted_private(monkeypatch, tmp_path)
    plan = _attacker_plan(standins_dir)
    _, name = _engine_name(standins_dir)
    hub.files.update({f"{KEY}/{name}": plan, f"{KEY}/manifest.json": _manifest(standins_dir, plan)})
    _pull_and_check_nothing_written(gpu_env, standins_dir, tmp_path, monkeypatch, hub, plan)
    assert "is not signed: refused" in caplog.text
    assert not any(r.startswith("GET") and r.endswith(name) for r in hub.requests)  # not even downloaded


def test_manifest_signed_by_an_untrusted_key_is_refused(gpu_env, standins_dir, tmp_path, monkeypatch, hub, caplog):  # noqa: F811
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _trusted_private(monkeypatch, tmp_path)
    plan = _attacker_plan(standins_dir)
    _, name = _engine_name(standins_dir)
    raw = _manifest(standins_dir, plan)
    hub.files.update({f"{KEY}/{name}": plan, f"{KEY}/manifest.json": raw,
                      f"{KEY}/manifest.sig": _sig(Ed25519PrivateKey.generate(), raw)})
    _pull_and_check_nothing_written(gpu_env, standins_dir, tmp_path, monkeypatch, hub, plan)
    assert "which is not trusted for team/engines: refused" in caplog.text


def test_manifest_altered_after_signing_is_refused(gpu_env, standins_dir, tmp_path, monkeypatch, hub, caplog):  # noqa: F811
    private = _trusted_private(monkeypatch, tmp_path)
    plan = _attacker_plan(standins_dir)
    _, name = _engine_name(standins_dir)
    raw = _manifest(standins_dir, plan)
    hub.files.update({f"{KEY}/{name}": plan, f"{KEY}/manifest.json": raw.replace(b'"x"', b'"y"'),
                      f"{KEY}/manifest.sig": _sig(private, raw)})
    _pull_and_check_nothing_written(gpu_env, standins_dir, tmp_path, monkeypatch, hub, plan)
    assert "does not match the manifest" in caplog.text


def test_tampered_engine_under_a_trusted_signature_is_refused(gpu_env, standins_dir, tmp_path, monkeypatch, hub, caplog):  # noqa: F811
    private = _trusted_private(monkeypatch, tmp_path)
    good = b"FAKEPLAN" + json.dumps({"onnx": str(standins_dir / "xseg_1.onnx")}).encode()
    plan = _attacker_plan(standins_dir)
    _, name = _engine_name(standins_dir)
    raw = _manifest(standins_dir, good)  # signed for the good bytes; the repo serves others
    hub.files.update({f"{KEY}/{name}": plan, f"{KEY}/manifest.json": raw, f"{KEY}/manifest.sig": _sig(private, raw)})
    _pull_and_check_nothing_written(gpu_env, standins_dir, tmp_path, monkeypatch, hub, plan)
    assert "does not match its signed manifest entry" in caplog.text


def test_manifest_signed_for_another_repo_is_refused(gpu_env, standins_dir, tmp_path, monkeypatch, hub, caplog):  # noqa: F811
    private = _trusted_private(monkeypatch, tmp_path)
    plan = _attacker_plan(standins_dir)
    _, name = _engine_name(standins_dir)
    raw = _manifest(standins_dir, plan, repo="someone/else")  # replayed from a repo the key signed for
    hub.files.update({f"{KEY}/{name}": plan, f"{KEY}/manifest.json": raw, f"{KEY}/manifest.sig": _sig(private, raw)})
    _pull_and_check_nothing_written(gpu_env, standins_dir, tmp_path, monkeypatch, hub, plan)
    assert "is not a manifest for team/engines" in caplog.text


@pytest.mark.parametrize("bad_name", ["/{tmp}/PWNED.engine", "../PWNED.engine", "ort-trt/x.engine", ".hidden.engine",
                                      "a\x1b]0;t\x07.engine"])
def test_path_escaping_names_are_refused_even_when_signed(bad_name, standins_dir, tmp_path, monkeypatch, hub):
    private = _trusted_private(monkeypatch, tmp_path)
    bad_name = bad_name.format(tmp=str(tmp_path).strip("/"))
    plan = _attacker_plan(standins_dir)
    raw = _manifest(standins_dir, plan, name=bad_name)
    hub.files.update({f"{KEY}/{bad_name}": plan, f"{KEY}/manifest.json": raw, f"{KEY}/manifest.sig": _sig(private, raw)})
    cache = EngineCache(tmp_path / "victim" / "engines", "89", "10.13.0", "1.31.1")
    with pytest.raises(TrustError, match="not a plain engine file name") as err:
        cache.pull(REPO)
    assert "\x1b" not in str(err.value)
    assert not (tmp_path / "PWNED.engine").exists() and _all_files(tmp_path / "victim" / "engines") == {}


def test_unlisted_remote_files_are_never_written(standins_dir, tmp_path, monkeypatch, hub, capsys):
    """D02 probe: `<key>//abs/path`, ort-trt/ and timing.cache in the listing; none is written anywhere."""
    from livecam.cli import main
    from livecam.inference.engine_cache import cache_key

    import onnxruntime

    private = _trusted_private(monkeypatch, tmp_path)
    key = cache_key(None, None, onnxruntime.__version__)
    raw = json.dumps({"cache_key": key, "repo": REPO, "engine_files": {}, "decisions": {}}).encode()
    target = tmp_path / "PWNED_ABS.txt"
    hub.files.update({f"{key}/manifest.json": raw, f"{key}/manifest.sig": _sig(private, raw),
                      f"{key}/{target}": b"absolute path write",
                      f"{key}/ort-trt/TensorrtExecutionProvider_TRTKernel_evil_sm89.engine": b"evil",
                      f"{key}/timing.cache": b"evil timing"})
    assert main(["engines", "pull", "--repo", REPO]) == 0
    assert "pulled 0 engine(s)" in capsys.readouterr().out
    assert not target.exists()
    assert _all_files(tmp_path / "victim" / "cache" / "engines") == {}


def test_cli_pull_without_trusted_key_exits_nonzero_with_the_fix(standins_dir, tmp_path, monkeypatch, hub, capsys):
    from livecam.cli import main
    from livecam.inference.engine_cache import cache_key

    import onnxruntime

    _other_machine(monkeypatch, tmp_path, "victim")
    key = cache_key(None, None, onnxruntime.__version__)
    hub.files[f"{key}/manifest.json"] = json.dumps({"cache_key": key, "engine_files": {}}).encode()
    assert main(["engines", "pull", "--repo", REPO]) == 2
    err = capsys.readouterr().err
    assert "not signed: refused" in err and "livecam engines trust ed25519:... --repo team/engines" in err
    assert "native code" in err


def test_trust_commands_and_bad_keys(tmp_path, capsys):
    from livecam.cli import main

    assert main(["engines", "key"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("ed25519:") and len(trust.parse_public_key(key)) == 32
    assert main(["engines", "key"]) == 0 and capsys.readouterr().out.strip() == key  # made once
    assert (trust.trust_dir() / "signing_key.pem").stat().st_mode & 0o077 == 0
    assert main(["engines", "trust", key, "--repo", REPO]) == 0
    assert list(trust.trusted_for(REPO)) == [trust.key_id(trust.parse_public_key(key))]
    assert trust.trusted_for("other/repo") == {}
    assert main(["engines", "trust", "ed25519:bm9wZQ==", "--repo", REPO]) == 2
    assert "is not an Ed25519 public key" in capsys.readouterr().err
    assert main(["engines", "untrust", key]) == 0 and trust.trusted_keys() == {}
    (trust.trust_dir() / "trusted.json").write_text("[[[")
    with pytest.raises(TrustError, match="unreadable"):
        trust.trusted_for(REPO)


# ----------------------------------------------------------------------------- D13: malformed manifests
@pytest.mark.parametrize("content", [
    '{"cache_key":"cpu/ort1.32","engine_files":{"a.engine":5},"decisions":{}}',
    '{"cache_key":"cpu/ort1.32","engine_files":{},"decisions":{"m":[1]}}',
    "[" * 50000 + "]" * 50000,
    '{"cache_key":"cpu/ort1.32","engine_files":{"a.engine":{"file":"a.engine"}},"decisions":{}}',
])
def test_malformed_local_manifest_is_reported_and_treated_as_absent(content, tmp_path, caplog, capsys):
    cache = EngineCache(tmp_path, None, None, "1.32.0")
    cache.dir.mkdir(parents=True)
    (cache.dir / "manifest.json").write_text(content)
    assert cache.entries() == [] and cache.recall("m", "k", "dflt") == "dflt"
    assert "manifest.json unreadable" in caplog.text
    cache.remember("m", "k", 1)  # rebuilt
    assert cache.recall("m", "k") == 1


def test_doctor_reports_the_engine_sharing_trust_state(monkeypatch):
    from livecam.doctor import OK, WARN, check_engine_sharing

    c = check_engine_sharing()
    assert c.status == OK and "off" in c.detail and "trusted engine keys: none" in c.detail
    monkeypatch.setenv("LIVECAM_ENGINE_REPO", REPO)
    c = check_engine_sharing()
    assert c.status == WARN and "no trusted key" in c.detail and "engines trust" in c.fix
    other = trust.public_key_text(bytes(range(32)))
    kid = trust.trust(other, REPO, label="ci box")
    c = check_engine_sharing()
    assert c.status == OK and kid in c.detail and "native code" in c.detail
