"""`livecam serve --export-repo DIR`: a standard Triton model repository, no livecam code on the server.

For NVIDIA's own Triton container or KServe (scaled by their tooling). Per model:

    DIR/<name>/config.pbtxt      ONNX Runtime backend, TensorRT accelerator in FP16, dynamic batching
    DIR/<name>/1/model.onnx      the catalog model wrapped to livecam's wire contract

The wrapper puts the wire form (`livecam.remote.wire`) into the graph itself: a
UINT8 image input is cast and scaled (`u8 * scale + shift`) inside the model, an
FP16 input is cast to float, every output is cast to FP16, and the batch
dimension is made dynamic. So a `runtime.remote` client talks to this repository
exactly as to `livecam serve`. `DIR/livecam_info` is a one-node ONNX model that
returns the same JSON `livecam serve` answers with (versions, file hashes, wire
contracts), so clients still refuse a repository built from other files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from livecam.remote.wire import INFO_MODEL, INFO_OUTPUT, WIRE_VERSION, ModelWire, model_wire

TRITON_TYPES = {"UINT8": "TYPE_UINT8", "FP16": "TYPE_FP16", "FP32": "TYPE_FP32", "BYTES": "TYPE_STRING"}
INTERNAL = "__livecam_model"  # suffix of the original tensors inside the wrapped graph


def wrap_onnx(src: str | Path, wire: ModelWire):
    """The model at `src` with the wire contract in the graph (an `onnx.ModelProto`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    rename = {t.name: t.name + INTERNAL for t in wire.inputs + wire.outputs}
    for node in graph.node:
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    old_inputs = [v for v in graph.input if v.name not in inits]
    for v in old_inputs:
        graph.input.remove(v)
    old_outputs = list(graph.output)
    for v in old_outputs:
        graph.output.remove(v)
    pre, post = [], []
    for t in wire.inputs:
        inner = rename[t.name]
        dtype = TensorProto.UINT8 if t.dtype == "UINT8" else TensorProto.FLOAT16
        graph.input.append(helper.make_tensor_value_info(t.name, dtype, ["N", *t.shape]))
        as_float = inner if t.dtype == "FP16" else f"{t.name}__float"
        pre.append(helper.make_node("Cast", [t.name], [as_float], to=TensorProto.FLOAT, name=f"{t.name}__cast"))
        if t.dtype == "UINT8":
            scale, shift = f"{t.name}__scale", f"{t.name}__shift"
            graph.initializer.extend([numpy_helper.from_array(np.array(t.scale, np.float32), scale),
                                      numpy_helper.from_array(np.array(t.shift, np.float32), shift)])
            pre.append(helper.make_node("Mul", [as_float, scale], [f"{t.name}__scaled"], name=f"{t.name}__mul"))
            pre.append(helper.make_node("Add", [f"{t.name}__scaled", shift], [inner], name=f"{t.name}__add"))
    for t in wire.outputs:
        graph.output.append(helper.make_tensor_value_info(t.name, TensorProto.FLOAT16, ["N", *t.shape]))
        post.append(helper.make_node("Cast", [rename[t.name]], [t.name], to=TensorProto.FLOAT16,
                                     name=f"{t.name}__cast"))
    nodes = pre + list(graph.node) + post
    del graph.node[:]
    graph.node.extend(nodes)
    # The original value_info may pin the batch of the renamed tensors to 1: drop those entries.
    keep = [v for v in graph.value_info if v.name not in rename.values()]
    del graph.value_info[:]
    graph.value_info.extend(keep)
    onnx.checker.check_model(model)
    return model


def info_onnx(payload: dict):
    """A one-node model: UINT8 `query` [1] -> STRING `info` [1] holding `payload` as JSON."""
    import onnx
    from onnx import TensorProto, helper

    text = json.dumps(payload).encode()
    const = helper.make_tensor("info_value", TensorProto.STRING, [1], [text])
    nodes = [helper.make_node("Constant", [], ["info_const"], value=const, name="info_const"),
             # tie the output to the input's shape so the graph reads it (ONNX Runtime prunes dead inputs)
             helper.make_node("Shape", ["query"], ["query_shape"], name="query_shape"),
             helper.make_node("Expand", ["info_const", "query_shape"], [INFO_OUTPUT], name="info_expand")]
    graph = helper.make_graph(nodes, INFO_MODEL, [helper.make_tensor_value_info("query", TensorProto.UINT8, [1])],
                              [helper.make_tensor_value_info(INFO_OUTPUT, TensorProto.STRING, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="livecam")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _tensors(kind: str, tensors) -> str:
    items = []
    for t in tensors:
        dims = ", ".join(str(d) for d in t.shape)
        items.append(f'  {{\n    name: "{t.name}"\n    data_type: {TRITON_TYPES[t.dtype]}\n    dims: [ {dims} ]\n  }}')
    return f"{kind} [\n" + ",\n".join(items) + "\n]\n"


def model_config(wire: ModelWire, sha256: str, max_batch: int, queue_delay_us: int) -> str:
    """config.pbtxt: ONNX Runtime backend, TensorRT execution accelerator in FP16, dynamic batching."""
    return (
        f'name: "{wire.name}"\n'
        'backend: "onnxruntime"\n'
        f"max_batch_size: {max_batch}\n"
        + _tensors("input", wire.inputs)
        + _tensors("output", wire.outputs)
        + "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {queue_delay_us}\n"
        "}\n"
        "instance_group [\n  {\n    kind: KIND_GPU\n    count: 1\n  }\n]\n"
        "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator: [\n      {\n"
        '        name: "tensorrt"\n'
        '        parameters { key: "precision_mode" value: "FP16" }\n'
        '        parameters { key: "max_workspace_size_bytes" value: "2147483648" }\n'
        '        parameters { key: "trt_engine_cache_enable" value: "1" }\n'
        '        parameters { key: "trt_engine_cache_path" value: "/tmp/livecam-trt-cache" }\n'
        "      }\n    ]\n  }\n}\n"
        f'parameters {{ key: "livecam_wire" value: {{ string_value: "{WIRE_VERSION}" }} }}\n'
        f'parameters {{ key: "livecam_sha256" value: {{ string_value: "{sha256}" }} }}\n'
    )


def info_config() -> str:
    return (f'name: "{INFO_MODEL}"\nbackend: "onnxruntime"\nmax_batch_size: 0\n'
            'input [\n  {\n    name: "query"\n    data_type: TYPE_UINT8\n    dims: [ 1 ]\n  }\n]\n'
            f'output [\n  {{\n    name: "{INFO_OUTPUT}"\n    data_type: TYPE_STRING\n    dims: [ 1 ]\n  }}\n]\n'
            "instance_group [\n  {\n    kind: KIND_CPU\n    count: 1\n  }\n]\n")


def export_repo(loader, names, out_dir: str | Path, max_batch: int = 8, queue_delay_us: int = 500) -> dict[str, Path]:
    """Write the repository for catalog models `names`; {model name: its config.pbtxt}."""
    from livecam import __version__
    from livecam.paths import atomic_write

    out = Path(out_dir)
    written: dict[str, Path] = {}
    models = {}
    for name in names:
        spec = loader.store.spec(name)
        src = loader.path(name)
        wire = model_wire(name, src, spec.contract)
        sha = loader.sha256(name)
        wrapped = wrap_onnx(src, wire)
        (out / name / "1").mkdir(parents=True, exist_ok=True)
        atomic_write(out / name / "1" / "model.onnx", wrapped.SerializeToString())
        atomic_write(out / name / "config.pbtxt", model_config(wire, sha, max_batch, queue_delay_us))
        written[name] = out / name / "config.pbtxt"
        models[name] = {"sha256": sha, "provider": "triton-onnxruntime-tensorrt", "precision": "fp16",
                        "wire": wire.to_dict()}
    payload = {"wire": WIRE_VERSION, "livecam": __version__, "models": models}
    (out / INFO_MODEL / "1").mkdir(parents=True, exist_ok=True)
    atomic_write(out / INFO_MODEL / "1" / "model.onnx", info_onnx(payload).SerializeToString())
    atomic_write(out / INFO_MODEL / "config.pbtxt", info_config())
    written[INFO_MODEL] = out / INFO_MODEL / "config.pbtxt"
    return written
