"""Where things live (shipped data, the user's dirs) and how files get there (atomically).

User dirs follow the platform (platformdirs) and can be moved with env vars:
LIVECAM_CACHE_DIR (models, engines, embeddings), LIVECAM_CONFIG_DIR (profiles).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


_REPO_ROOT = Path(__file__).resolve().parent.parent


def _shipped(package: str, repo_dir: str) -> Path:
    """A data dir: the repo's own in a checkout (editable install), else the wheel's copy."""
    in_repo = _REPO_ROOT / repo_dir
    if (_REPO_ROOT / "pyproject.toml").exists() and in_repo.is_dir():
        return in_repo
    # The data dirs have no __init__.py (namespace packages): resources.files() gives a
    # MultiplexedPath there, whose str() is not a path. The import system's location is.
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"livecam data package {package} is missing: reinstall livecam")
    return Path(list(spec.submodule_search_locations)[0])


def catalog_path() -> Path:
    """The shipped model catalog (`models/catalog.toml` in the repo)."""
    return _shipped("livecam._models", "models") / "catalog.toml"


def shipped_profiles_dir() -> Path:
    """The shipped presets (`profiles/` in the repo)."""
    return _shipped("livecam._profiles", "profiles")


def cache_dir() -> Path:
    env = os.environ.get("LIVECAM_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("livecam", appauthor=False))


def config_dir() -> Path:
    env = os.environ.get("LIVECAM_CONFIG_DIR")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("livecam", appauthor=False))


def models_cache_dir() -> Path:
    return cache_dir() / "models"


def engines_cache_dir() -> Path:
    return cache_dir() / "engines"


def embeddings_cache_dir() -> Path:
    return cache_dir() / "embeddings"


def user_profiles_dir() -> Path:
    return config_dir() / "profiles"


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temporary path beside `path`; on success it replaces `path` in one step.

    Readers never see a partial file under the final name; on any error the
    temporary file is removed and the old `path` (if any) is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: str | os.PathLike, data: bytes | bytearray | memoryview | str) -> Path:
    """Write `data` (str as UTF-8) to `path` atomically, flushed to disk first."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}


_CONTROL_KEEP_LINES = {c: v for c, v in _CONTROL.items() if c not in (0x0A, 0x09)}


def printable(text: object, keep_newlines: bool = False) -> str:
    """`text` with control characters (ESC, BEL, CR, C1 codes, ...) shown as `\\xNN`.

    For file names and cached or remote text on their way to a terminal or log: a name
    like `\\x1b]0;title\\x07.png` must not retitle or clear the user's terminal.
    `keep_newlines` leaves line feeds and tabs (messages laid out over lines).
    """
    return str(text).translate(_CONTROL_KEEP_LINES if keep_newlines else _CONTROL)
