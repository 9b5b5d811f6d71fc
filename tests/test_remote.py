"""Remote inference (issue 14): a real Triton server (`livecam serve`, pytriton's bundled binary) on
127.0.0.1 with CPU stand-in models, and the `runtime.remote` client against it.

Servers are subprocesses on free ports in their own process groups, always killed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from livecam.remote.wire import (
    TOKEN_HEADER,
    U8_NORMS,
    RemoteContractError,
    RemoteUnavailable,
    TensorWire,
    from_wire,
    model_wire,
    parse_url,
    to_wire,
)
from livecam.testing.remote_server import ServerProcess

SWAPPER = "hyperswap_1a_256"  # the default swapper: 256² crops, UINT8 target + FP16 latent on the wire
TOKEN = "module-token"


@pytest.fixture(scope="module")
def server(standins_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with ServerProcess(standins_dir, [SWAPPER, "inswapper_128"], log_path=log,
                       extra_args=["--token", TOKEN]) as srv:  # the token also opens Triton's statistics
        yield srv


def _bench(tmp_path, tag, clip, face, models_dir, frames, *extra) -> tuple[dict, list[np.ndarray]]:
    out = tmp_path / tag
    cmd = [sys.executable, "-m", "livecam", "bench", "--input", str(clip), "--source", str(face), "--frames",
           str(frames), "--models-dir", str(models_dir), "--json", str(out / "r.json"), "--output-frames",
           str(out / "frames"), "--no-progress", *extra]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((out / "r.json").read_text())
    frames_out = [cv2.imread(str(p)) for p in sorted((out / "frames").glob("*.png"))]
    return result, frames_out


# -- the wire ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", sorted(U8_NORMS))
def test_uint8_wire_round_trip_is_bit_exact(norm):
    """The server rebuilds exactly the float32 input a local adapter computes from the 8-bit crop."""
    scale, shift = U8_NORMS[norm]
    t = TensorWire("target", "UINT8", (3, 16, 16), scale, shift)
    u8 = np.random.default_rng(1).integers(0, 256, (1, 3, 16, 16), dtype=np.uint8)
    local = np.empty(u8.shape, np.float32)
    np.multiply(u8, scale, out=local, casting="unsafe")  # as the swapper adapters write their blob
    if shift:
        local += shift
    wire, off = to_wire(t, local)
    assert wire.dtype == np.uint8 and np.array_equal(wire, u8) and off < 1e-3
    assert np.array_equal(from_wire(t, wire), local)


def test_off_grid_input_is_measured_and_fp16_stays_close():
    t = TensorWire("target", "UINT8", (4,), 1.0 / 255.0, 0.0)
    _, off = to_wire(t, np.array([[0.5 / 255.0, 1.0, 0.25, 0.0]], np.float32))
    assert 0.45 < off <= 0.5
    h = TensorWire("source", "FP16", (512,))
    x = np.random.default_rng(2).normal(size=(1, 512)).astype(np.float32)
    wire, _ = to_wire(h, x)
    assert wire.dtype == np.float16 and np.abs(wire.astype(np.float32) - x).max() < 2e-3


def test_model_wire_of_the_swappers(standins_dir):
    from livecam.inference.catalog import load_catalog

    cat = load_catalog()
    hyper = model_wire(SWAPPER, standins_dir / "hyperswap_1a_256.onnx", cat.get(SWAPPER).contract)
    assert {t.name: (t.dtype, t.shape) for t in hyper.inputs} == {"source": ("FP16", (512,)),
                                                                  "target": ("UINT8", (3, 256, 256))}
    assert {t.name: t.dtype for t in hyper.outputs} == {"output": "FP16", "mask": "FP16"}
    assert hyper.inputs[1].scale == 2.0 / 255.0 and hyper.inputs[1].shift == -1.0
    # 256²x3 u8 + 512 fp16 up, 256²x3 + 256² fp16 down: 4.6x less than the float32 tensors
    assert hyper.bytes_per_call == 3 * 256 * 256 + 1024 + 2 * 4 * 256 * 256
    ins = model_wire("inswapper_128", standins_dir / "inswapper_128.onnx", cat.get("inswapper_128").contract)
    assert {t.name: t.dtype for t in ins.inputs} == {"target": "UINT8", "source": "FP16"}


def test_url_forms():
    assert parse_url("grpc://10.0.0.2:8001") == ("10.0.0.2:8001", False)
    assert parse_url("grpcs://gpu.example:443") == ("gpu.example:443", True)
    from livecam.errors import SettingsError

    with pytest.raises(SettingsError, match="unknown scheme"):
        parse_url("http://host:8000")
    with pytest.raises(SettingsError, match="HOST:PORT"):
        parse_url("grpc://host")


def test_round_trips_reach_stats_tui_and_plain_mode_scoped_to_the_session():
    from livecam.commands import format_stats
    from livecam.controls import Stats
    from livecam.remote.rtt import ROUND_TRIPS
    from livecam.tui.stats import stats_text

    before = Stats()
    for ms in (10.0, 12.0, 30.0):
        ROUND_TRIPS.add(ms)
    ROUND_TRIPS.fail()
    after = Stats()  # a new session: nothing of the earlier calls
    assert after.snapshot().remote_rtt_ms == {}
    assert "remote" not in stats_text(after.snapshot()).plain
    snap = before.snapshot()
    assert snap.remote_rtt_ms == {"p50": 12.0, "p95": 28.2, "calls": 3, "failed": 1}
    assert "remote 12.0/28.2 ms  failed 1" in stats_text(snap).plain
    assert "remote p50 12.0 p95 28.2 ms failed 1" in format_stats(snap)


def test_server_process_gets_this_pythons_libpython_first(monkeypatch):
    """The known pitfall: the Python-backend stub must load this interpreter's libpython, not the system's."""
    import sysconfig

    from livecam.remote.server import python_libdir_env

    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/other:/usr/lib")
    python_libdir_env()
    python_libdir_env()  # idempotent
    libdir = sysconfig.get_config_var("LIBDIR")
    assert os.environ["LD_LIBRARY_PATH"] == f"{libdir}:/opt/other:/usr/lib"
    assert (Path(libdir) / sysconfig.get_config_var("LDLIBRARY")).is_file()


# -- not open by default ------------------------------------------------------------------------------
def test_wide_bind_is_refused_without_tls_or_token(standins_dir, capsys):
    from livecam.cli import main

    rc = main(["serve", "--models-dir", str(standins_dir), "--host", "0.0.0.0", "--models", SWAPPER])
    err = capsys.readouterr().err
    assert rc != 0 and "refusing to listen on 0.0.0.0 without TLS or an access token" in err
    assert "ssh -N -L" in err and "--token" in err
    rc = main(["serve", "--models-dir", str(standins_dir), "--host", "0.0.0.0", "--tls-cert", "x.pem"])
    assert rc != 0 and "needs both --tls-cert and --tls-key" in capsys.readouterr().err


def test_unreachable_server_at_start_is_a_clear_error(standins_dir, astronaut, tmp_path, capsys):
    from livecam.cli import main
    from livecam.remote.server import free_port

    img = tmp_path / "a.png"
    cv2.imwrite(str(img), astronaut)
    t0 = time.monotonic()
    rc = main(["bench", "--input", str(img), "--source", str(img), "--models-dir", str(standins_dir), "--set",
               f"runtime.remote=grpc://127.0.0.1:{free_port()}", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "did not answer for model 'hyperswap_1a_256'" in err and "livecam serve" in err
    assert time.monotonic() - t0 < 60


# -- a real server ---------------------------------------------------------------------------------
def test_bench_remote_equals_local_on_the_selfie_clip(server, standins_dir, footage, tmp_path):
    """The done-when: the same clip through a local and a remote swapper gives the same frames (±1 level).

    Detections inline in both runs: a background detection is folded in on whichever frame it
    finishes, so the two runs' tracks (and pixels) would differ with their timing, not the wire."""
    clip, face = footage("single_face.mp4"), footage("single_face.jpg")
    frames = 40
    inline = ("--set", "detector.background=false")
    local, local_frames = _bench(tmp_path, "local", clip, face, standins_dir, frames, *inline)
    remote, remote_frames = _bench(tmp_path, "remote", clip, face, standins_dir, frames, *inline,
                                   "--set", f"runtime.remote={server.url}", "--set", f"runtime.remote_token={TOKEN}",
                                   "--set", "runtime.remote_deadline_ms=20000")  # equality, not speed, here
    assert remote["providers"][SWAPPER] == "remote:cpu" and local["providers"][SWAPPER] == "cpu"
    assert remote["frames"] == local["frames"] == frames == len(remote_frames) == len(local_frames)
    assert remote["stage_errors"] == 0 and local["stage_errors"] == 0
    rtt = remote["remote_rtt_ms"]  # one face in (nearly) every frame of this clip: one remote call each
    assert rtt["calls"] >= 0.9 * frames and rtt["failed"] == 0 and rtt["p95"] >= rtt["p50"] > 0
    assert local["remote_rtt_ms"] == {"p50": 0.0, "p95": 0.0, "calls": 0, "failed": 0}
    worst = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(local_frames, remote_frames))
    assert worst <= 1


def test_remote_session_contract_and_calls(server, standins_dir):
    """Direct use of the session: outputs equal the local model's within FP16 rounding."""
    from livecam.inference.models import ModelLoader
    from livecam.settings import RuntimeSettings

    rt = RuntimeSettings(remote=server.url, remote_token=TOKEN, remote_deadline_ms=20000)
    remote = ModelLoader(rt, models_dir=standins_dir).session("inswapper_128")
    local = ModelLoader(RuntimeSettings(), models_dir=standins_dir).session("inswapper_128")
    assert remote.provider == "remote:cpu" and remote.input_names == ["target", "source"]
    crop = np.random.default_rng(3).integers(0, 256, (1, 3, 128, 128)).astype(np.float32) / 255.0
    src = np.random.default_rng(4).normal(size=(1, 512)).astype(np.float32)
    a = remote.run({"target": crop, "source": src})[0]
    b = local.run({"target": crop, "source": src})[0]
    assert a.dtype == np.float32 and a.shape == b.shape == (1, 3, 128, 128)
    assert np.abs(a - b).max() * 255 < 0.13  # FP16 on the way back: < 0.13 of a level
    remote.close()


def test_concurrent_clients_share_the_server_through_dynamic_batching(server, standins_dir):
    """Several clients at once: Triton batches their requests (fewer executions than inferences) and each
    client gets its own crop back."""
    import threading

    import tritonclient.grpc as grpcclient

    from livecam.inference.models import ModelLoader
    from livecam.settings import RuntimeSettings

    rt = RuntimeSettings(remote=server.url, remote_token=TOKEN, remote_deadline_ms=20000)
    sessions = [ModelLoader(rt, models_dir=standins_dir).session("inswapper_128") for _ in range(4)]
    stats = grpcclient.InferenceServerClient(server.url.split("//")[1])
    headers = {TOKEN_HEADER: TOKEN}
    before = stats.get_inference_statistics("inswapper_128", headers=headers, as_json=True)["model_stats"][0]
    errors: list[str] = []

    def client(k: int, sess) -> None:
        rng = np.random.default_rng(k)
        for _ in range(15):
            crop = rng.integers(0, 256, (1, 3, 128, 128)).astype(np.float32) / 255.0
            out = sess.run({"target": crop, "source": np.zeros((1, 512), np.float32)})[0]
            if np.abs(out - crop).max() > 1e-3:  # identity stand-in: its own crop, FP16-rounded
                errors.append(f"client {k} got another crop back")

    threads = [threading.Thread(target=client, args=(k, s)) for k, s in enumerate(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    after = stats.get_inference_statistics("inswapper_128", headers=headers, as_json=True)["model_stats"][0]
    stats.close()
    for sess in sessions:
        sess.close()
    assert not errors
    inferences = int(after["inference_count"]) - int(before.get("inference_count", 0))
    executions = int(after["execution_count"]) - int(before.get("execution_count", 0))
    assert inferences == 60 and executions < inferences  # some requests ran together in one batch


def _self_signed(tmp_path) -> tuple[Path, Path]:
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot make a test certificate with openssl: {exc}", pytrace=False)
    return cert, key


def test_tls_token_server_and_contract_mismatch(tint_standins_dir, standins_dir, tmp_path):
    """A wide-bind-ready server (TLS + token): no token -> no answer; other model files -> refused naming
    both sides; the right token, CA and files -> calls work over grpcs://."""
    from livecam.inference.models import ModelLoader
    from livecam.settings import RuntimeSettings

    cert, key = _self_signed(tmp_path)
    with ServerProcess(tint_standins_dir, [SWAPPER], log_path=tmp_path / "serve.log",
                       extra_args=["--token", "s3cret", "--tls-cert", str(cert), "--tls-key", str(key)]) as srv:
        url = f"grpcs://127.0.0.1:{srv.port}"
        assert any("grpcs://127.0.0.1" in line and "token required" in line for line in srv.lines)
        with pytest.raises(RemoteUnavailable, match="did not answer"):
            ModelLoader(RuntimeSettings(remote=url, remote_ca=str(cert)), models_dir=standins_dir).session(SWAPPER)
        with pytest.raises(RemoteUnavailable, match="did not answer"):  # plaintext to a TLS port
            ModelLoader(RuntimeSettings(remote=srv.url, remote_token="s3cret"),
                        models_dir=standins_dir).session(SWAPPER)
        with pytest.raises(RemoteContractError) as err:
            ModelLoader(RuntimeSettings(remote=url, remote_token="s3cret", remote_ca=str(cert)),
                        models_dir=standins_dir).session(SWAPPER)
        text = str(err.value)
        assert f"model '{SWAPPER}' differs" in text and "the server" in text and "this client" in text
        assert "sha256" in text and "livecam models verify" in text
        sess = ModelLoader(RuntimeSettings(remote=url, remote_token="s3cret", remote_ca=str(cert),
                                           remote_deadline_ms=20000), models_dir=tint_standins_dir).session(SWAPPER)
        out = sess.run({"source": np.zeros((1, 512), np.float32), "target": np.zeros((1, 3, 256, 256), np.float32)})
        assert out[0].shape == (1, 3, 256, 256) and out[1].shape == (1, 1, 256, 256)
        sess.close()


# -- faults ------------------------------------------------------------------------------------------
def _clip_frames(path, n: int = 30) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert frames
    return frames


def test_server_hung_then_killed_mid_run_passes_through_and_reconnects(tint_standins_dir, footage, tmp_path):
    """Hung server: each call ends at its deadline; dead server: calls fail at once; the loop keeps
    sending frames (passed through unchanged), and swaps resume once the server is back."""
    import signal
    import types

    from livecam.commands import build_runtime
    from livecam.controls import Controls
    from livecam.pipeline import Pipeline
    from livecam.settings import Settings

    deadline_ms = 250
    slack_s = 2.0  # a loaded 2-core machine: generous, but far below "blocked until the server returns"
    frames = _clip_frames(footage("single_face.mp4"))
    srv = ServerProcess(tint_standins_dir, [SWAPPER], log_path=tmp_path / "serve.log").start()
    try:
        settings = Settings().with_changes({"runtime.remote": srv.url, "runtime.remote_deadline_ms": deadline_ms})
        args = types.SimpleNamespace(models_dir=str(tint_standins_dir), source=str(footage("single_face.jpg")))
        loader, bank = build_runtime(args, settings)
        pipeline = Pipeline(loader, settings, bank)
        state = Controls(settings).current()
        session = loader.session(SWAPPER)
        assert session.provider == "remote:cpu"
        i = 0

        def step():
            nonlocal i
            frame = frames[i % len(frames)].copy()
            i += 1
            out, report = pipeline.process(frame, state, i / 30.0)
            swapped = report.swapped > 0 and not report.errors and not np.array_equal(out, frame)
            passed = np.array_equal(out, frame)
            return swapped, passed, report.stage_ms.get("swap", 0.0) / 1000.0, report

        def until(cond, limit_s, max_frames=10_000):
            seen = []
            end = time.monotonic() + limit_s
            while time.monotonic() < end and len(seen) < max_frames:
                seen.append(step())
                if cond(seen):
                    break
            return seen

        up = until(lambda s: sum(x[0] for x in s) >= 3, 120)
        assert sum(x[0] for x in up) >= 3, "no frame was swapped through the server"

        os.killpg(srv.proc.pid, signal.SIGSTOP)  # hung: accepts connections, never answers
        # until 3 calls missed their deadline (frames without a face make no call) and a few more
        hung = until(lambda s: sum(any(e.startswith("swap") for e in x[3].errors) for x in s) >= 6, 60)
        assert all(x[1] for x in hung), "a frame was not passed through while the server hung"
        assert max(x[2] for x in hung) <= deadline_ms / 1000 + slack_s
        assert sum(x[2] >= 0.9 * deadline_ms / 1000 for x in hung) >= 3  # waited for it, up to the deadline
        assert not session.connected  # consecutive misses mark it down: later calls fail at once

        srv.kill()  # gone (SIGKILL)
        down = until(lambda s: len(s) >= 20, 60)
        assert all(x[1] for x in down) and max(x[2] for x in down) <= deadline_ms / 1000 + slack_s
        assert float(np.median([x[2] for x in down])) < deadline_ms / 1000  # no waiting on a dead server

        srv.start()
        t_ready = time.monotonic()
        back = until(lambda s: s[-1][0], 90)
        assert back and back[-1][0], f"no swap within 90 s of the server's return; {session.last_error}"
        assert time.monotonic() - t_ready < 90 and session.connected
        assert max(x[2] for x in back) <= deadline_ms / 1000 + slack_s
        assert all(x[1] for x in back[:-1])  # until it is back, frames pass through
    finally:
        srv.stop()


# -- export ---------------------------------------------------------------------------------------------
EXPORTED = [SWAPPER, "inswapper_128", "xseg_1"]


@pytest.fixture(scope="module")
def exported(standins_dir, tmp_path_factory):
    from livecam.inference.models import ModelLoader
    from livecam.remote.export import export_repo
    from livecam.settings import RuntimeSettings

    out = tmp_path_factory.mktemp("repo")
    loader = ModelLoader(RuntimeSettings(), models_dir=standins_dir)
    written = export_repo(loader, EXPORTED, out)
    return out, loader, written


def _bundled_triton_states(repo, tmp_path, probe=None) -> dict[str, str]:
    """Load `repo` in pytriton's bundled `tritonserver`; {model: state + reason} from its repository index.
    `probe(url)` runs while the server is up."""
    import pytriton
    import tritonclient.grpc as grpcclient

    from livecam.remote.server import free_port, python_libdir_env

    python_libdir_env()
    root = Path(pytriton.__file__).parent / "tritonserver"
    port = free_port()
    cmd = [str(root / "bin" / "tritonserver"), f"--model-repository={repo}", "--strict-model-config=true",
           "--exit-on-error=false", "--allow-http=false", "--allow-metrics=false", "--grpc-address=127.0.0.1",
           f"--grpc-port={port}", f"--backend-directory={root / 'backends'}", "--exit-timeout-secs=2"]
    log = (tmp_path / "tritonserver.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
        end = time.monotonic() + 60
        while True:
            try:
                if client.is_server_live():
                    break
            except Exception:  # noqa: BLE001 - not up yet
                pass
            assert proc.poll() is None and time.monotonic() < end, (tmp_path / "tritonserver.log").read_text()
            time.sleep(0.2)
        index = client.get_model_repository_index(as_json=True).get("models", [])
        client.close()
        if probe is not None:
            probe(f"grpc://127.0.0.1:{port}")
        return {m["name"]: f"{m.get('state', '')}: {m.get('reason', '')}" for m in index}
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(10)
        log.close()


def test_exported_repository_passes_tritons_config_parsing(exported, tmp_path):
    """The bundled server parses every config.pbtxt; it stops only at the missing ONNX Runtime backend
    (pytriton ships the Python backend alone). A corrupted config is caught by the same check."""
    import shutil

    from livecam.inference.models import ModelLoader
    from livecam.settings import RuntimeSettings

    repo, loader, written = exported

    def client_refuses(url):  # the models did not load: a client says what it found, it does not hang
        with pytest.raises(RemoteContractError, match="not a livecam server"):
            ModelLoader(RuntimeSettings(remote=url), models_dir=loader.models_dir).session("inswapper_128")

    states = _bundled_triton_states(repo, tmp_path, probe=client_refuses)
    assert set(states) == set(written)
    for name, state in states.items():
        assert "unable to find backend library for backend 'onnxruntime'" in state, (name, state)
        assert "text proto" not in state
    bad = tmp_path / "bad"
    shutil.copytree(repo, bad)
    cfg = bad / "inswapper_128" / "config.pbtxt"
    cfg.write_text(cfg.read_text().replace("TYPE_FP16", "TYPE_FP61", 1))
    states = _bundled_triton_states(bad, tmp_path)
    assert "unable to find backend library" not in states.get("inswapper_128", "")  # stopped earlier
    log = (tmp_path / "tritonserver.log").read_text()
    assert f"failed to read text proto from {cfg}" in log
    assert "unable to find backend library" in states[SWAPPER]


def test_exported_configs_parse_strictly_and_match_the_wrapped_models(exported):
    """Triton's own ModelConfig schema (tritonclient's model_config_pb2), strictly; dims and types equal the
    wrapped ONNX graphs; TensorRT FP16 accelerator and dynamic batching present."""
    import onnx
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    repo, loader, written = exported
    types = {"TYPE_UINT8": onnx.TensorProto.UINT8, "TYPE_FP16": onnx.TensorProto.FLOAT16,
             "TYPE_STRING": onnx.TensorProto.STRING}
    for name, path in written.items():
        cfg = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
        assert cfg.name == name and cfg.backend == "onnxruntime"
        graph = onnx.load(str(repo / name / "1" / "model.onnx")).graph
        batch = 1 if cfg.max_batch_size else 0
        for section, values in ((cfg.input, graph.input), (cfg.output, graph.output)):
            declared = {t.name: (types[model_config_pb2.DataType.Name(t.data_type)], list(t.dims)) for t in section}
            actual = {v.name: (v.type.tensor_type.elem_type,
                               [d.dim_value if d.HasField("dim_value") else -1
                                for d in v.type.tensor_type.shape.dim][batch:]) for v in values}
            assert declared == actual, name
        if name != "livecam_info":
            assert cfg.max_batch_size == 8 and cfg.dynamic_batching.max_queue_delay_microseconds == 500
            acc = cfg.optimization.execution_accelerators.gpu_execution_accelerator[0]
            assert acc.name == "tensorrt" and acc.parameters["precision_mode"] == "FP16"
            assert cfg.parameters["livecam_sha256"].string_value == loader.sha256(name)


def test_exported_models_run_the_wire_contract_batched(exported):
    """ONNX Runtime (what Triton's backend runs) on the wrapped graphs: a batch of 2 in wire form gives the
    local model's outputs within FP16 rounding; livecam_info answers the JSON clients check."""
    import onnxruntime as ort

    from livecam.remote.wire import WIRE_VERSION, to_wire

    repo, loader, _ = exported
    rng = np.random.default_rng(5)
    for name in EXPORTED:
        wrapped = ort.InferenceSession(str(repo / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        local = loader.session(name)
        wire = model_wire(name, loader.path(name), loader.store.spec(name).contract)
        items = []
        for _ in range(2):
            feeds = {}
            for t in wire.inputs:
                if t.dtype == "UINT8":
                    feeds[t.name] = (rng.integers(0, 256, (1, *t.shape)) * t.scale + t.shift).astype(np.float32)
                else:
                    feeds[t.name] = rng.normal(size=(1, *t.shape)).astype(np.float32)
            items.append(feeds)
        batch = {t.name: np.concatenate([to_wire(t, f[t.name])[0] for f in items]) for t in wire.inputs}
        outs = wrapped.run([t.name for t in wire.outputs], batch)
        for k, feeds in enumerate(items):
            for got, want in zip(outs, local.run(feeds)):
                assert got.dtype == np.float16 and got.shape[1:] == want.shape[1:]
                assert np.abs(got[k].astype(np.float32) - want[0]).max() < 2e-3, name
    info = ort.InferenceSession(str(repo / "livecam_info" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    payload = json.loads(info.run(["info"], {"query": np.zeros(1, np.uint8)})[0][0])
    assert payload["wire"] == WIRE_VERSION
    assert {n: m["sha256"] for n, m in payload["models"].items()} == {n: loader.sha256(n) for n in EXPORTED}


def test_live_loop_keeps_capturing_and_sending_while_the_server_hangs(server, standins_dir, footage):
    """The round trip never stalls capture or the output: with the server hung, the camera is still read at
    its rate and the virtual camera still gets frames at the output rate (the process thread waits at most
    a deadline per frame, then not at all)."""
    import signal
    import types

    from livecam.commands import build_runtime
    from livecam.io.sinks import NullSink
    from livecam.io.sources import ImageSource
    from livecam.live import LiveSession
    from livecam.pipeline import Pipeline
    from livecam.settings import Settings

    face = footage("single_face.jpg")
    srv = server  # the module's server: resumed (SIGCONT) at the end, whatever happens
    try:
        settings = Settings().with_changes({"runtime.remote": srv.url, "runtime.remote_deadline_ms": 100,
                                            "runtime.remote_token": TOKEN,
                                            "output.width": 640, "output.height": 360})
        loader, bank = build_runtime(types.SimpleNamespace(models_dir=str(standins_dir), source=str(face)),
                                     settings)
        session = LiveSession(settings, ImageSource(face, fps=30.0), NullSink(), bank, loader,
                              pipeline=Pipeline(loader, settings, bank)).start()
        try:
            end = time.monotonic() + 60
            while (session.stats.snapshot().remote_rtt_ms.get("calls", 0) < 5) and time.monotonic() < end:
                time.sleep(0.1)
            before = session.stats.snapshot()
            assert before.remote_rtt_ms.get("calls", 0) >= 5, "no remote swap in the live loop"
            os.killpg(srv.proc.pid, signal.SIGSTOP)
            t0 = time.monotonic()
            time.sleep(3.0)
            after = session.stats.snapshot()
            elapsed = time.monotonic() - t0
            assert session.running
            # generous: a third of the nominal 30 fps on a loaded machine; a stalled loop would give ~0
            assert after.frames_in - before.frames_in >= 10 * elapsed
            assert after.frames_out - before.frames_out >= 10 * elapsed
            assert after.remote_rtt_ms["failed"] > before.remote_rtt_ms.get("failed", 0)
            assert after.stage_errors > before.stage_errors  # the frames went through unswapped, counted
        finally:
            assert session.stop(timeout=2.0)
    finally:
        os.killpg(srv.proc.pid, signal.SIGCONT)


_CHATTY_SERVE = r"""
import os, sys, threading, time
from livecam.remote.server import announce

stop = threading.Event()

def triton_log():  # Triton's C++ logger: the same stdout, written in pieces from its own thread
    while not stop.is_set():
        for piece in (b"I1129 ", b"23:01:29.876097 ", b"4744 model_lifecycle.cc:839] ", b"\"loaded\"\n"):
            os.write(1, piece)
            time.sleep(0.0002)

t = threading.Thread(target=triton_log)
t.start()
for i in range(40):
    time.sleep(0.003)
    announce(f"READY grpc://127.0.0.1:{8000 + i}")
stop.set()
t.join()
"""


def test_ready_lines_stay_whole_while_triton_writes_to_the_same_stdout():
    """Under load a READY line printed in pieces landed inside a Triton log line
    (`... 23READY grpc://...`) and the waiting client never saw it: `announce` writes each
    line at once, on a line of its own, and the test helper finds READY anywhere in a line."""
    from livecam.testing.remote_server import READY

    out = subprocess.run([sys.executable, "-u", "-c", _CHATTY_SERVE], capture_output=True, timeout=60,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"}).stdout.decode()
    lines = out.splitlines()
    assert [ln for ln in lines if ln.startswith("READY ")] == [f"READY grpc://127.0.0.1:{8000 + i}" for i in range(40)]
    assert sum(ln.count('"loaded"') for ln in lines) > 40  # the log really was interleaved with them
    assert READY.search('I1129 23READY grpc://127.0.0.1:49937:') and not READY.search("NOT_READY: grpc")


def test_serve_stops_on_sigint_when_a_script_started_it_in_the_background(standins_dir):
    """A script's `livecam serve &` inherits SIGINT ignored (the shell does that to background
    jobs), yet the server's banner says `kill -SIGINT <pid>` to quit, the clean stop that unloads
    the models and removes their copies. Started that way, SIGINT right after READY stops it, exit 0."""
    import signal

    srv = ServerProcess(standins_dir, ["inswapper_128"], launcher=["sh", "-c", 'trap "" INT; exec "$@"', "sh"])
    try:
        srv.start(timeout=180)
        os.kill(srv.proc.pid, signal.SIGINT)
        assert srv.proc.wait(90) == 0, "\n".join(srv.lines[-40:])
        assert "successfully unloaded 'inswapper_128'" in "".join(srv.lines)  # the clean stop unloaded it
    finally:
        srv.kill()
