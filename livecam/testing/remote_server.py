"""A `livecam serve` subprocess for tests and benchmarks: free port, 127.0.0.1, always cleaned up.

The server (pytriton's Python process, the `tritonserver` it starts and the
Python-backend stubs) runs in its own process group, so `kill()` ends all of it
at once, like a crash or a pulled cable, and nothing outlives the test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from livecam.remote.server import free_port


READY = re.compile(r"READY grpcs?://")


class ServerProcess:
    def __init__(self, models_dir: str | os.PathLike, models: list[str], *, port: int | None = None,
                 extra_args: list[str] | None = None, log_path: str | os.PathLike | None = None,
                 launcher: list[str] | None = None):
        """`launcher`: a command prefix the server is started through (e.g. a shell that sets up
        signals the way a script would)."""
        self.models_dir = str(models_dir)
        self.launcher = list(launcher or [])
        self.models = list(models)
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self.workspace: Path | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> "ServerProcess":
        """Start and wait for READY (raises with the server's output if it exits or times out)."""
        self._ready.clear()
        self.lines = []
        self.workspace = Path(tempfile.mkdtemp(prefix="livecam-serve-"))  # pytriton's model store, removed after
        cmd = [*self.launcher, sys.executable, "-m", "livecam", "serve", "--models-dir", self.models_dir, "--host", "127.0.0.1",
               "--port", str(self.port), "--models", ",".join(self.models), "--workspace", str(self.workspace / "ws"), *self.extra_args]
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
                if READY.search(line):  # anywhere in the line: Triton logs to the same pipe
                    self._ready.set()
        finally:
            if log:
                log.close()

    def kill(self, timeout: float = 10.0) -> None:
        """A crash: SIGKILL the server process, then whatever of its group is left (tritonserver, stubs).

        The leader goes first so its multiprocessing resource tracker (same group) can still free the
        shared memory the leader held before the group is ended."""
        if self.proc is None or self.proc.poll() is not None:
            self._end_group(timeout)
            return
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout)
        try:
            os.killpg(self.proc.pid, signal.SIGCONT)  # a stopped (hung) group: let the tracker clean up
        except ProcessLookupError:
            pass
        time.sleep(0.5)
        self._end_group(timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """A clean stop (SIGINT, as Ctrl-C): pytriton unloads, frees its memory and workspace."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)  # a stopped (hung) server must run to exit cleanly
                os.kill(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _end_group(self, timeout: float) -> None:
        """What is left of the group (tritonserver, stubs, pytriton's helpers) gets SIGINT first, so Triton
        unloads and removes its temporary model copies; SIGKILL after `timeout`."""
        end = time.monotonic() + timeout
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            end = 0.0
        while time.monotonic() < end:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        if self.workspace is not None:
            shutil.rmtree(self.workspace, ignore_errors=True)
        # pytriton names its shared-memory blocks after the server's pid: a crash leaves them behind
        for block in Path("/dev/shm").glob(f"pytrtion{self.proc.pid}-*"):
            block.unlink(missing_ok=True)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
