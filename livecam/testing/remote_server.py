"""A `livecam serve` subprocess for tests and benchmarks: free port, 127.0.0.1, always cleaned up.

The server (pytriton's Python process, the `tritonserver` it starts and the
Python-backend stubs) runs in its own process group, so `kill()` ends all of it
at once, like a crash or a pulled cable, and nothing outlives the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from livecam.remote.server import free_port


class ServerProcess:
    def __init__(self, models_dir: str | os.PathLike, models: list[str], *, port: int | None = None,
                 extra_args: list[str] | None = None, log_path: str | os.PathLike | None = None):
        self.models_dir = str(models_dir)
        self.models = list(models)
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> "ServerProcess":
        """Start and wait for READY (raises with the server's output if it exits or times out)."""
        self._ready.clear()
        self.lines = []
        cmd = [sys.executable, "-m", "livecam", "serve", "--models-dir", self.models_dir, "--host", "127.0.0.1",
               "--port", str(self.port), "--models", ",".join(self.models), *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = "\n".join(self.lines[-40:])
                self.kill()
                raise RuntimeError(f"livecam serve did not become ready (rc {self.proc.returncode}):\n{out}")
        return self

    def _read(self, proc: subprocess.Popen) -> None:
        log = self.log_path.open("a", encoding="utf-8") if self.log_path else None
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                self.lines.append(line.rstrip())
                if log:
                    log.write(line)
                if line.startswith("READY "):
                    self._ready.set()
        finally:
            if log:
                log.close()

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """End the whole server process group (default SIGKILL: a crash) and wait for it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)
        # the group may outlive its leader for a moment (tritonserver, stubs): make sure it is gone
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.05)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()
