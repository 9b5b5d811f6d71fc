"""TensorRT engine cache: `<root>/sm{arch}/trt{x.y}_ort{x.y}/` with `manifest.json`.

An engine is only valid for the GPU architecture, TensorRT version and ONNX Runtime
version it was built with, so each combination gets its own directory. The manifest
lists the engines (`engine_files`: model, model SHA-256, precision, size, SHA-256),
the versions, and per-model decisions the runtime remembers across runs (for
example "fp16 output checked against fp32: mismatch, use fp32"). A manifest or
engine that is missing, unreadable or does not match is treated as absent: the
caller rebuilds; nothing here raises on a bad cache.

Without a GPU the key is `cpu/ort{x.y}` (there is nothing to build, but decisions
are still remembered). Optional sharing through a hub repo: `push(repo)` uploads what
the remote lacks with a manifest signed by this user's Ed25519 key; `pull(repo)` takes
engines only from a manifest signed by a key trusted for that repo, verifying every file
before it is written (engines are native code: see livecam.inference.trust).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from livecam.inference.store import clean_stale, sha256_hex
from livecam.paths import atomic_write

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
TIMING_CACHE = "timing.cache"
MAX_MANIFEST_BYTES = 1 << 20
# the only remote names ever written here: a plain file name, no separators, no leading dot
ENGINE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}\.engine")


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
    origin: str = ""  # "" = built here; "<repo> key <id>" = pulled, signed by that trusted key
    profile: str = ""  # input shape profile (`tensorrt.profile_tag`), part of the file name


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
        clean_stale(self.dir)  # temporary files of a process killed mid-write

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
                bad = [n for n, e in data["engine_files"].items() if not _valid_entry(n, e)]
                bad += [m for m, d in data["decisions"].items() if not isinstance(d, dict)]
                if bad:
                    raise ValueError(f"malformed entries {', '.join(safe_text(str(b)) for b in bad[:3])}")
                return data
            except FileNotFoundError:
                return self._fresh()
            except (OSError, ValueError, RecursionError) as exc:
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

    def safe_target(self, name: str) -> Path | None:
        """Where engine file `name` goes, or None if it is not a plain engine name inside this key's folder."""
        if not isinstance(name, str) or not ENGINE_NAME.fullmatch(name):
            return None
        target = self.dir / name
        root = self.dir.resolve()
        return target if target.resolve().parent == root else None

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
                sha256=sha256_hex(path), built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                profile=profile).__dict__
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
        known = {f.name for f in dataclasses.fields(EngineEntry)}
        return [EngineEntry(**{k: v for k, v in e.items() if k in known})
                for e in self.manifest()["engine_files"].values()]

    def clear(self) -> int:
        """Delete this key's engines and manifest; returns how many engines went."""
        import shutil

        from livecam.paths import engines_cache_dir

        with self._lock:
            n = len(self.manifest()["engine_files"])
            shutil.rmtree(self.dir, ignore_errors=True)
            # the dynamic-shape model copies (livecam.inference.models) are rebuilt on the next load
            shutil.rmtree(engines_cache_dir() / "dynamic", ignore_errors=True)
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
    def _fetch_small(self, repo_id: str, path_in_repo: str, token: str | None, limit: int) -> bytes:
        from huggingface_hub import hf_hub_download

        from livecam.inference.trust import TrustError

        src = Path(hf_hub_download(repo_id, path_in_repo, token=token))
        if src.stat().st_size > limit:
            raise TrustError(f"{repo_id}/{path_in_repo} is {src.stat().st_size} bytes (at most {limit} expected): "
                             "refused", "ask the publisher to push again")
        return src.read_bytes()

    def _verified_remote(self, api, repo_id: str, remote: set, token: str | None) -> tuple[dict, str]:
        """The remote manifest for this key once its signature verifies against a trusted key; (manifest, key id)."""
        from livecam.inference import trust

        what = f"engine manifest {repo_id}/{self.key}/{MANIFEST}"
        raw = self._fetch_small(repo_id, f"{self.key}/{MANIFEST}", token, MAX_MANIFEST_BYTES)
        sig_name = f"{self.key}/{SIGNATURE}"
        sig = (self._fetch_small(repo_id, sig_name, token, trust.MAX_SIGNATURE_BYTES) if sig_name in remote
               else None)
        signer = trust.verify(raw, sig, repo_id, what)  # before anything in it is believed
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise trust.TrustError(f"{what} is not JSON ({exc})", "ask the publisher to push again") from None
        if (not isinstance(data, dict) or data.get("cache_key") != self.key or data.get("repo") != repo_id
                or not isinstance(data.get("engine_files"), dict)):
            raise trust.TrustError(f"{what} is signed but is not a manifest for {repo_id} and key {self.key}: refused",
                                   "ask the publisher to push again")
        return data, signer

    def pull(self, repo_id: str, token: str | None = None) -> list[str]:
        """Download this key's engines from a hub repo; returns the engine files written.

        Only a manifest signed by a key trusted for `repo_id` is believed (see livecam.inference.trust);
        only plain `*.engine` names it lists are fetched; each file's size and SHA-256 are checked
        against it before anything is written here. If any listed engine does not match, nothing is
        written (the repo is not what its signer published). Remote decisions, timing caches and ORT's
        engine folder are never taken: this machine checks and builds those itself.
        """
        from huggingface_hub import HfApi, hf_hub_download

        from livecam.errors import RuntimeUnavailable
        from livecam.inference.store import probe_hub
        from livecam.inference.trust import TrustError

        reason = probe_hub()
        if reason:
            raise RuntimeUnavailable(f"cannot pull engines from {repo_id}: hub unreachable ({reason})",
                                     "run on a connected machine, or copy the engine cache dir "
                                     f"{self.dir} by hand")
        api = HfApi(token=token)
        remote = {f for f in api.list_repo_files(repo_id) if f.startswith(self.key + "/")}
        if f"{self.key}/{MANIFEST}" not in remote:
            log.info("%s has no engines for %s", repo_id, self.key)
            return []
        data, signer = self._verified_remote(api, repo_id, remote, token)
        listed = {f"{self.key}/{n}" for n in data["engine_files"]}
        ignored = sorted(remote - listed - {f"{self.key}/{MANIFEST}", f"{self.key}/{SIGNATURE}"})
        if ignored:
            log.warning("ignored %d file(s) in %s that the signed manifest does not list: %s", len(ignored), repo_id,
                        ", ".join(safe_text(f) for f in ignored[:5]))
        staged: list[tuple[str, dict, Path]] = []
        for name, entry in data["engine_files"].items():
            target = self.safe_target(name)
            if target is None or not _valid_entry(name, entry):
                raise TrustError(f"signed manifest of {repo_id} lists {safe_text(name)!r}, which is not a plain "
                                 "engine file name with a complete entry: refused",
                                 "ask the publisher to push again with a current livecam")
            if f"{self.key}/{name}" not in remote or self.lookup(entry["model"], entry["model_sha256"],
                                                                 entry["precision"], entry.get("profile", "")) is not None:
                continue
            src = Path(hf_hub_download(repo_id, f"{self.key}/{name}", token=token))
            if src.stat().st_size != entry["size"] or sha256_hex(src) != entry["sha256"]:
                raise TrustError(f"engine {name} from {repo_id} does not match its signed manifest entry "
                                 "(size or SHA-256): nothing was written",
                                 "the repo was altered after signing; tell the publisher and do not use it")
            staged.append((name, entry, src))
        fetched = []
        with self._lock:
            for name, entry, src in staged:
                atomic_write(self.dir / name, src.read_bytes())
                local = self.manifest()
                local["engine_files"][name] = dict(entry, origin=f"{repo_id} key {signer}")
                self._save(local)
                fetched.append(name)
        return fetched

    def push(self, repo_id: str, token: str | None = None) -> list[str]:
        """Upload engines the remote lacks with a manifest signed by this user's key (one commit).

        Returns the files uploaded. Decisions and the timing cache stay local.
        """
        from huggingface_hub import CommitOperationAdd, HfApi

        from livecam.errors import RuntimeUnavailable
        from livecam.inference import trust
        from livecam.inference.store import probe_hub

        reason = probe_hub()
        if reason:
            raise RuntimeUnavailable(f"cannot push engines to {repo_id}: hub unreachable ({reason})",
                                     "run on a connected machine")
        api = HfApi(token=token)
        api.create_repo(repo_id, exist_ok=True, private=True)
        remote = {f for f in api.list_repo_files(repo_id) if f.startswith(self.key + "/")}
        engines: dict[str, dict] = {}
        if f"{self.key}/{MANIFEST}" in remote:
            try:  # keep what others published, when it verifies
                data, _ = self._verified_remote(api, repo_id, remote, token)
                engines.update({n: e for n, e in data["engine_files"].items()
                                if f"{self.key}/{n}" in remote and _valid_entry(n, e)})
            except trust.TrustError as exc:
                log.warning("remote manifest not kept: %s", exc.message)
        ops, sent = [], []
        for entry in self.entries():
            path = self.dir / entry.file
            if not path.is_file() or self.lookup(entry.model, entry.model_sha256, entry.precision, entry.profile) is None:
                continue
            shared = {k: v for k, v in entry.__dict__.items() if k != "origin"}
            engines[entry.file] = shared
            if f"{self.key}/{entry.file}" not in remote:
                ops.append(CommitOperationAdd(path_in_repo=f"{self.key}/{entry.file}", path_or_fileobj=str(path)))
                sent.append(entry.file)
        manifest = {"cache_key": self.key, "repo": repo_id, "gpu_arch": self.gpu_arch or "cpu",
                    "versions": self.versions, "engine_files": engines,
                    "signed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        raw = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
        sig = json.dumps(trust.sign(raw), indent=1).encode("utf-8")
        ops.append(CommitOperationAdd(path_in_repo=f"{self.key}/{MANIFEST}", path_or_fileobj=raw))
        ops.append(CommitOperationAdd(path_in_repo=f"{self.key}/{SIGNATURE}", path_or_fileobj=sig))
        api.create_commit(repo_id, operations=ops, commit_message=f"livecam engines for {self.key}")
        return sent + [MANIFEST, SIGNATURE]


def safe_text(text: str) -> str:
    """`text` with control characters escaped (names from a remote listing reach logs and terminals)."""
    from livecam.paths import printable

    return printable(text)


def _valid_entry(name: str, entry) -> bool:
    """A manifest entry with every EngineEntry field of the right type, for file `name`."""
    if not isinstance(entry, dict) or entry.get("file") != name:
        return False
    for f in dataclasses.fields(EngineEntry):
        value = entry.get(f.name, f.default if f.default is not dataclasses.MISSING else None)
        want = int if f.name == "size" else str
        if not isinstance(value, want) or isinstance(value, bool):
            return False
    # the name says which model, weights and precision it is for: the entry must agree
    return (entry["precision"] in ("fp16", "fp32") and entry["size"] >= 0
            and name == EngineCache.engine_name(entry["model"], entry["model_sha256"], entry["precision"],
                                                entry.get("profile", "")))
