"""TensorRT engine cache: `<root>/sm{arch}/trt{x.y}_ort{x.y}/` with `manifest.json`.

An engine is only valid for the GPU architecture, TensorRT version and ONNX Runtime
version it was built with, so each combination gets its own directory. The manifest
lists the engines (`engine_files`: model, model SHA-256, precision, size, SHA-256),
the versions, and per-model decisions the runtime remembers across runs (for
example "fp16 output checked against fp32: mismatch, use fp32"). A manifest or
engine that is missing, unreadable or does not match is treated as absent: the
caller rebuilds; nothing here raises on a bad cache.

Without a GPU the key is `cpu/ort{x.y}` (there is nothing to build, but decisions
are still remembered). Optional sharing through a hub repo: `pull(repo)` before
compiling, `push(repo)` uploads what the remote lacks.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from livecam.inference.store import sha256_hex
from livecam.paths import atomic_write

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TIMING_CACHE = "timing.cache"


def major_minor(version: str | None) -> str:
    if not version:
        return "none"
    parts = str(version).split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else parts[0]


def cache_key(gpu_arch: str | None, trt_version: str | None, ort_version: str | None) -> str:
    """`sm89/trt10.13_ort1.23`; `cpu/ort1.23` without a GPU."""
    ort = major_minor(ort_version)
    if not gpu_arch:
        return f"cpu/ort{ort}"
    return f"sm{gpu_arch}/trt{major_minor(trt_version)}_ort{ort}"


@dataclass(frozen=True)
class EngineEntry:
    file: str
    model: str
    model_sha256: str
    precision: str  # "fp16" | "fp32"
    size: int
    sha256: str
    built_at: str


class EngineCache:
    def __init__(self, root: str | os.PathLike | None, gpu_arch: str | None = None, trt_version: str | None = None,
                 ort_version: str | None = None):
        from livecam.paths import engines_cache_dir

        self.root = Path(root) if root else engines_cache_dir()
        self.gpu_arch = gpu_arch
        self.versions = {"tensorrt": trt_version or "", "onnxruntime": ort_version or ""}
        self.key = cache_key(gpu_arch, trt_version, ort_version)
        self.dir = self.root / self.key
        self._lock = threading.RLock()

    # -- manifest ---------------------------------------------------------
    def _fresh(self) -> dict:
        from livecam import __version__

        return {"cache_key": self.key, "gpu_arch": self.gpu_arch or "cpu",
                "versions": dict(self.versions, livecam=__version__),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "engine_files": {}, "decisions": {}}

    def manifest(self) -> dict:
        with self._lock:
            try:
                data = json.loads((self.dir / MANIFEST).read_text(encoding="utf-8"))
                if not isinstance(data, dict) or data.get("cache_key") != self.key:
                    raise ValueError("manifest for another cache key")
                if not isinstance(data.get("engine_files"), dict) or not isinstance(data.get("decisions", {}), dict):
                    raise ValueError("malformed manifest")
                data.setdefault("decisions", {})
                return data
            except FileNotFoundError:
                return self._fresh()
            except (OSError, ValueError) as exc:
                log.warning("engine cache manifest %s unreadable (%s): starting a fresh one", self.dir / MANIFEST, exc)
                return self._fresh()

    def _save(self, data: dict) -> None:
        atomic_write(self.dir / MANIFEST, json.dumps(data, indent=1, sort_keys=True))

    # -- engines ----------------------------------------------------------
    @staticmethod
    def engine_name(model: str, model_sha256: str, precision: str, profile: str = "") -> str:
        """The engine's file name: model, weights hash, precision and input shape profile
        (`tensorrt.profile_tag`): an engine only runs the shapes it was built for."""
        shape = f".{profile}" if profile else ""
        return f"{model}.{model_sha256[:12]}.{precision}{shape}.engine"

    def engine_path(self, model: str, model_sha256: str, precision: str, profile: str = "") -> Path:
        return self.dir / self.engine_name(model, model_sha256, precision, profile)

    def timing_cache_path(self) -> Path:
        return self.dir / TIMING_CACHE

    def ort_trt_dir(self) -> Path:
        """Where the ORT TensorRT EP keeps its own engines and timing cache."""
        return self.dir / "ort-trt"

    def lookup(self, model: str, model_sha256: str, precision: str, profile: str = "") -> Path | None:
        """The cached engine if the manifest lists it and the file matches; else None (stale entries dropped)."""
        with self._lock:
            name = self.engine_name(model, model_sha256, precision, profile)
            data = self.manifest()
            entry = data["engine_files"].get(name)
            path = self.dir / name
            if entry is None or not path.is_file():
                return None
            try:
                ok = path.stat().st_size == entry.get("size") and sha256_hex(path) == entry.get("sha256")
            except OSError:
                ok = False
            if not ok:
                log.warning("cached engine %s does not match its manifest entry: rebuilding", path)
                self.invalidate(name)
                return None
            return path

    def store(self, model: str, model_sha256: str, precision: str, plan: bytes, profile: str = "") -> Path:
        """Write an engine atomically and list it in the manifest."""
        with self._lock:
            name = self.engine_name(model, model_sha256, precision, profile)
            path = atomic_write(self.dir / name, plan)
            data = self.manifest()
            data["engine_files"][name] = EngineEntry(
                file=name, model=model, model_sha256=model_sha256, precision=precision, size=path.stat().st_size,
                sha256=sha256_hex(path), built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())).__dict__
            # a new engine for this model voids what was decided about the old one (e.g. the FP16 check)
            data["decisions"].pop(model, None)
            self._save(data)
            return path

    def invalidate(self, name: str) -> None:
        with self._lock:
            data = self.manifest()
            data["engine_files"].pop(name, None)
            self._save(data)
            try:
                (self.dir / name).unlink()
            except OSError:
                pass

    def entries(self) -> list[EngineEntry]:
        return [EngineEntry(**e) for e in self.manifest()["engine_files"].values()]

    def clear(self) -> int:
        """Delete this key's engines and manifest; returns how many engines went."""
        import shutil

        with self._lock:
            n = len(self.manifest()["engine_files"])
            shutil.rmtree(self.dir, ignore_errors=True)
            return n

    # -- decisions --------------------------------------------------------
    def remember(self, model: str, key: str, value) -> None:
        """Persist a JSON-able decision for `model` (e.g. remember("inswapper_128", "fp16_ok", False)).

        Kept until an engine for `model` is (re)built here, or the GPU/TRT/ORT versions change."""
        with self._lock:
            data = self.manifest()
            data["decisions"].setdefault(model, {})[key] = value
            self._save(data)

    def recall(self, model: str, key: str, default=None):
        return self.manifest()["decisions"].get(model, {}).get(key, default)

    # -- sharing through a hub repo --------------------------------------
    def pull(self, repo_id: str, token: str | None = None) -> list[str]:
        """Download this key's engines from a hub repo (files not yet here); returns the files fetched."""
        from huggingface_hub import HfApi, hf_hub_download

        from livecam.errors import RuntimeUnavailable
        from livecam.inference.store import probe_hub

        reason = probe_hub()
        if reason:
            raise RuntimeUnavailable(f"cannot pull engines from {repo_id}: hub unreachable ({reason})",
                                     "run on a connected machine, or copy the engine cache dir "
                                     f"{self.dir} by hand")
        api = HfApi(token=token)
        remote = [f for f in api.list_repo_files(repo_id) if f.startswith(self.key + "/")]
        fetched = []
        with self._lock:
            remote_manifest = None
            for f in remote:
                rel = f[len(self.key) + 1:]
                if rel == MANIFEST:
                    remote_manifest = json.loads(Path(hf_hub_download(repo_id, f, token=token)).read_text())
                    continue
                if (self.dir / rel).is_file():
                    continue
                src = Path(hf_hub_download(repo_id, f, token=token))
                atomic_write(self.dir / rel, src.read_bytes())
                fetched.append(rel)
            if remote_manifest and remote_manifest.get("cache_key") == self.key:
                data = self.manifest()
                for name, entry in remote_manifest.get("engine_files", {}).items():
                    data["engine_files"].setdefault(name, entry)
                for model, dec in remote_manifest.get("decisions", {}).items():
                    for k, v in dec.items():
                        data["decisions"].setdefault(model, {}).setdefault(k, v)
                self._save(data)
        return fetched

    def push(self, repo_id: str, token: str | None = None) -> list[str]:
        """Upload engines the remote lacks, then the manifest; returns the files uploaded."""
        from huggingface_hub import HfApi

        from livecam.errors import RuntimeUnavailable
        from livecam.inference.store import probe_hub

        reason = probe_hub()
        if reason:
            raise RuntimeUnavailable(f"cannot push engines to {repo_id}: hub unreachable ({reason})",
                                     "run on a connected machine")
        api = HfApi(token=token)
        api.create_repo(repo_id, exist_ok=True, private=True)
        remote = set(api.list_repo_files(repo_id))
        sent = []
        for entry in self.entries():
            path_in_repo = f"{self.key}/{entry.file}"
            if path_in_repo in remote or not (self.dir / entry.file).is_file():
                continue
            api.upload_file(path_or_fileobj=str(self.dir / entry.file), path_in_repo=path_in_repo, repo_id=repo_id)
            sent.append(entry.file)
        for extra in (TIMING_CACHE, MANIFEST):
            if (self.dir / extra).is_file():
                api.upload_file(path_or_fileobj=str(self.dir / extra), path_in_repo=f"{self.key}/{extra}",
                                repo_id=repo_id)
                sent.append(extra)
        return sent
