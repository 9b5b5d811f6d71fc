"""`RemoteSession`: a `ModelSession` whose calls run on a Triton server (`runtime.remote`).

The adapters do not know: `run(feeds) -> outputs` takes and returns float32
arrays like a local session; between the two ends the tensors travel in their
wire form (`livecam.remote.wire`: UINT8 crops, FP16 otherwise) over KServe v2
gRPC (`tritonclient`).

Faults, as everywhere in the live loop:
- unreachable at start -> `RemoteUnavailable` with the fix; a server serving a
  different model file, livecam wire version or tensor contract ->
  `RemoteContractError` naming both sides;
- every call carries a deadline (`runtime.remote_deadline_ms`, ~2 frame intervals):
  gRPC cancels it there, so no frame thread waits longer; the call raises
  `RemoteUnavailable`, the pipeline passes that frame through;
- a connection error marks the server down: calls then fail at once (no network
  wait) while a background thread reconnects with back-off (0.2 s doubling to
  2 s) and checks the contract again before calls resume.

Round trips (ms per answered call, i.e. per face for a swapper) go to
`livecam.remote.rtt.ROUND_TRIPS` for the stats panel and the bench JSON.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np

from livecam.remote.rtt import ROUND_TRIPS
from livecam.remote.wire import (
    INFO_MODEL,
    INFO_OUTPUT,
    OFF_GRID_LEVELS,
    TOKEN_HEADER,
    WIRE_VERSION,
    ModelWire,
    RemoteContractError,
    RemoteUnavailable,
    parse_url,
    to_wire,
)
from livecam.timing import add_infer_seconds

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.2, 0.4, 0.8, 1.6, 2.0)
CONNECT_TIMEOUT_S = 5.0  # each control call while connecting (not a frame call)
FAILS_BEFORE_DOWN = 3  # consecutive deadline misses that count as a server gone


def _grpc():
    try:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException
    except ImportError as exc:
        from livecam.errors import LivecamError

        raise LivecamError(f"runtime.remote needs the Triton client: {exc}",
                           'pip install -e ".[remote]"  (or tritonclient[grpc])') from exc
    return grpcclient, InferenceServerException


def _is_connection_error(exc) -> bool:
    status = str(getattr(exc, "status", lambda: "")() or "")
    return "UNAVAILABLE" in status or "CANCELLED" in status or "unavailable" in str(exc).lower()


class RemoteSession:
    """One remote model. Thread-safe for calls from one frame thread plus the reconnect thread."""

    def __init__(self, name: str, url: str, wire: ModelWire, sha256: str, *, deadline_ms: int = 66,
                 token: str = "", ca_file: str = ""):
        self.name = name
        self.url = url
        self.wire = wire
        self.sha256 = sha256
        self.deadline_s = deadline_ms / 1000.0
        self.input_names = [t.name for t in wire.inputs]
        self.output_names = [t.name for t in wire.outputs]
        self.input_shapes = {t.name: [1, *t.shape] for t in wire.inputs}
        self.provider = "remote"
        self.precision = "fp32"
        self.server_provider = ""
        self.last_error = ""
        self._target, self._tls = parse_url(url)
        self._headers = {TOKEN_HEADER: token} if token else None
        self._ca = ca_file or None
        self._lock = threading.Lock()
        self._client = None
        self._down = False
        self._closed = threading.Event()
        self._reconnector: threading.Thread | None = None
        self._misses = 0
        self._warned_grid = False
        self._local = threading.local()  # per-thread wire buffers (a bank may embed while the loop runs)
        self._connect(first=True)

    # -- connection -------------------------------------------------------------------------------
    def _new_client(self):
        grpcclient, _ = _grpc()
        return grpcclient.InferenceServerClient(url=self._target, ssl=self._tls, root_certificates=self._ca)

    def _connect(self, first: bool = False) -> None:
        """Open a channel, check the server's contract, warm the model up; raise on any mismatch."""
        grpcclient, error = _grpc()
        client = self._new_client()
        try:
            try:
                info = self._server_info(client, grpcclient)
                meta = client.get_model_metadata(self.name, headers=self._headers, client_timeout=CONNECT_TIMEOUT_S)
                self._check(info, meta)
                self._call(client, self._zeros(), CONNECT_TIMEOUT_S * 4)  # the first call may build engines
            except error as exc:
                text = str(exc.message() or exc)
                if "unknown model" in text.lower() and INFO_MODEL in text:
                    raise RemoteContractError(
                        f"the server {self.url} answers but is not a livecam server (no '{INFO_MODEL}' model)",
                        "run `livecam serve` there, or serve a repository from `livecam serve --export-repo`") from exc
                raise RemoteUnavailable(
                    f"remote server {self.url} did not answer for model '{self.name}': {text.splitlines()[0]}",
                    "start `livecam serve` on the GPU machine (or the SSH tunnel to it), check runtime.remote and "
                    "runtime.remote_token, or clear runtime.remote to run locally") from exc
        except BaseException:
            client.close()
            raise
        with self._lock:
            old, self._client, self._down, self._misses = self._client, client, False, 0
        if old is not None:
            old.close()
        if not first:
            log.warning("remote %s: %s is back (%s)", self.name, self.url, self.server_provider)

    def _server_info(self, client, grpcclient) -> dict:
        query = grpcclient.InferInput("query", [1], "UINT8")
        query.set_data_from_numpy(np.zeros(1, np.uint8))
        result = client.infer(INFO_MODEL, [query], headers=self._headers, client_timeout=CONNECT_TIMEOUT_S)
        raw = result.as_numpy(INFO_OUTPUT)
        return json.loads(bytes(raw.reshape(-1)[0]).decode())

    def _check(self, info: dict, meta) -> None:
        from livecam import __version__

        here = f"this client (livecam {__version__}, {WIRE_VERSION})"
        there = f"the server {self.url} (livecam {info.get('livecam', '?')}, {info.get('wire', '?')})"
        fix = "run the same livecam version and model files on both machines (`livecam models verify` on each)"
        if info.get("wire") != WIRE_VERSION:
            raise RemoteContractError(f"remote wire contract differs: {there} vs {here}", fix)
        model = info.get("models", {}).get(self.name)
        if model is None:
            raise RemoteContractError(
                f"{there} does not serve '{self.name}' (it serves {', '.join(info.get('models', {})) or 'nothing'})",
                f"start the server with --models {self.name}, or remove it from runtime.remote_models")
        if model.get("sha256") != self.sha256:
            raise RemoteContractError(
                f"model '{self.name}' differs: {there} has sha256 {str(model.get('sha256'))[:16]}…, "
                f"{here} has {self.sha256[:16]}…", fix)
        if model.get("wire") != self.wire.to_dict():
            raise RemoteContractError(f"model '{self.name}' tensor contract differs: {there} has "
                                      f"{model.get('wire')}, {here} has {self.wire.to_dict()}", fix)
        served = {(t.name, t.datatype, tuple(int(d) for d in t.shape[1:])) for t in meta.inputs}
        wanted = {(t.name, t.dtype, t.shape) for t in self.wire.inputs}
        if served != wanted:
            raise RemoteContractError(f"model '{self.name}' inputs differ: {there} serves {sorted(served)}, "
                                      f"{here} sends {sorted(wanted)}", fix)
        self.server_provider = str(model.get("provider", ""))
        self.precision = str(model.get("precision", "fp32"))
        self.provider = f"remote:{self.server_provider}" if self.server_provider else "remote"

    def _zeros(self) -> dict[str, np.ndarray]:
        return {t.name: np.zeros([1, *[d if d > 0 else 1 for d in t.shape]], np.float32) for t in self.wire.inputs}

    def _mark_down(self, reason: str) -> None:
        with self._lock:
            if self._down or self._closed.is_set():
                return
            self._down = True
            self.last_error = reason
            self._reconnector = threading.Thread(target=self._reconnect, name=f"livecam-remote-{self.name}",
                                                 daemon=True)
        log.warning("remote %s: %s unreachable (%s); frames pass through while reconnecting", self.name,
                    self.url, reason)
        self._reconnector.start()

    def _reconnect(self) -> None:
        attempt = 0
        while not self._closed.wait(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]):
            attempt += 1
            try:
                self._connect()
                return
            except RemoteContractError as exc:  # a different server came back: say so (once), keep trying slowly
                if str(exc) != self.last_error:
                    log.error("remote %s: %s", self.name, exc)
                self.last_error = str(exc)
                attempt = len(RECONNECT_DELAYS)
            except Exception as exc:  # noqa: BLE001 - still down; try again after the next delay
                self.last_error = str(exc).splitlines()[0]

    @property
    def connected(self) -> bool:
        return not self._down and self._client is not None

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- calls --------------------------------------------------------------------------------------
    def _call(self, client, feeds: dict[str, np.ndarray], timeout_s: float) -> list[np.ndarray]:
        grpcclient, _ = _grpc()
        inputs = []
        for t in self.wire.inputs:
            x = feeds[t.name]
            bufs = self._local.__dict__.setdefault("bufs", {})
            buf = bufs.get(t.name)
            if buf is None or buf.shape != np.shape(x):
                buf = bufs[t.name] = np.empty(np.shape(x), t.np_dtype)
            arr, off = to_wire(t, x, out=buf)
            if off > OFF_GRID_LEVELS and not self._warned_grid:
                self._warned_grid = True
                log.warning("remote %s: input '%s' is %.2f levels off the 8-bit grid; sent rounded to 8 bits",
                            self.name, t.name, off)
            item = grpcclient.InferInput(t.name, list(arr.shape), t.dtype)
            item.set_data_from_numpy(arr)
            inputs.append(item)
        wanted = [grpcclient.InferRequestedOutput(t.name) for t in self.wire.outputs]
        result = client.infer(self.name, inputs, outputs=wanted, headers=self._headers, client_timeout=timeout_s)
        return [result.as_numpy(t.name).astype(np.float32) for t in self.wire.outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One call within the deadline; `RemoteUnavailable` (at once while the server is down) otherwise."""
        _, error = _grpc()
        with self._lock:
            client = None if self._down else self._client
        if client is None:
            ROUND_TRIPS.fail()
            raise RemoteUnavailable(f"remote {self.name}: {self.url} is down (reconnecting): {self.last_error}",
                                    "frames pass through until the server is back")
        t0 = time.perf_counter()
        try:
            out = self._call(client, feeds, self.deadline_s)
        except error as exc:
            elapsed = time.perf_counter() - t0
            add_infer_seconds(elapsed)
            ROUND_TRIPS.fail()
            reason = f"{exc.status() or ''} {exc.message() or exc}".strip()
            self._misses += 1
            lost = _is_connection_error(exc)
            if lost or self._misses >= FAILS_BEFORE_DOWN:
                self._mark_down(reason)
            what = "lost the connection to" if lost else \
                f"no answer within {self.deadline_s * 1000:.0f} ms from"
            raise RemoteUnavailable(f"remote {self.name}: {what} {self.url} ({reason})",
                                    "raise runtime.remote_deadline_ms, or check the server and the network") from exc
        elapsed = time.perf_counter() - t0
        add_infer_seconds(elapsed)
        ROUND_TRIPS.add(elapsed * 1000.0)
        self._misses = 0
        return out


def remote_session(loader, name: str) -> RemoteSession:
    """The loader's hook: a connected `RemoteSession` for catalog model `name` under `loader.runtime`."""
    import os

    from livecam.remote.wire import model_wire

    rt = loader.runtime
    spec = loader.store.spec(name)
    wire = model_wire(name, loader.path(name), spec.contract)
    token = rt.remote_token or os.environ.get("LIVECAM_REMOTE_TOKEN", "")
    return RemoteSession(name, rt.remote, wire, loader.sha256(name), deadline_ms=rt.remote_deadline_ms,
                         token=token, ca_file=rt.remote_ca)
