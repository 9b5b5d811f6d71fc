"""`livecam doctor`: can the main job run here? Each line is OK, WARN or FAIL with the fix.

Checks: Python, packages and versions, GPU and driver, ONNX Runtime providers,
TensorRT, CuPy, the models the settings need (cached and verified), cameras,
and the virtual camera (on Linux: v4l2loopback loaded, exclusive_caps, the
device nodes and their permissions; everywhere: pyvirtualcam opens a camera).
Exit status 1 when any FAIL (the main job, webcam → swap → virtual camera,
cannot run), else 0.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name}: {self.detail}"
        if self.fix and self.status != OK:
            text += f"\n      fix: {self.fix}"
        return text


def check_python() -> Check:
    v = sys.version_info
    text = f"{v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if v < (3, 10):
        return Check("python", FAIL, text, "install Python 3.10 or newer")
    return Check("python", OK, text)


REQUIRED = (("numpy", "numpy"), ("opencv", "cv2"), ("onnxruntime", "onnxruntime"), ("pyvirtualcam", "pyvirtualcam"),
            ("textual", "textual"), ("huggingface_hub", "huggingface_hub"), ("psutil", "psutil"))


def check_packages() -> list[Check]:
    checks = []
    for label, module in REQUIRED:
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import failure is the finding
            pip = "onnxruntime (CPU) or onnxruntime-gpu" if module == "onnxruntime" else label
            checks.append(Check(f"package {label}", FAIL, f"not importable ({exc})", f"pip install {pip}"))
            continue
        version = getattr(mod, "__version__", "?")
        checks.append(Check(f"package {label}", OK, str(version)))
    return checks


def check_gpu(run=subprocess.run) -> Check:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return Check("gpu", WARN, "no NVIDIA GPU/driver found (nvidia-smi missing): CPU only, far below 30 fps",
                     "install the NVIDIA driver (>= r580 for CUDA 13) on a machine with an NVIDIA GPU")
    try:
        out = run([exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                  capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("gpu", WARN, f"nvidia-smi failed: {exc}", "check the NVIDIA driver installation")
    if out.returncode != 0 or not out.stdout.strip():
        return Check("gpu", WARN, f"nvidia-smi: {out.stderr.strip() or 'no GPU listed'}",
                     "check the NVIDIA driver (nvidia-smi must list the GPU)")
    return Check("gpu", OK, "; ".join(line.strip() for line in out.stdout.strip().splitlines()))


def check_providers() -> Check:
    try:
        import onnxruntime as ort
    except Exception as exc:  # noqa: BLE001
        return Check("onnxruntime providers", FAIL, f"onnxruntime not importable ({exc})", "pip install onnxruntime")
    providers = ort.get_available_providers()
    text = ", ".join(providers)
    if "CUDAExecutionProvider" in providers or "TensorrtExecutionProvider" in providers:
        return Check("onnxruntime providers", OK, text)
    return Check("onnxruntime providers", WARN, f"{text} (no GPU provider)",
                 "for a GPU: pip uninstall onnxruntime && pip install 'livecam[gpu]' (onnxruntime-gpu)")


def check_optional(name: str, module: str, fix: str) -> Check:
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001
        return Check(name, WARN, f"not available ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", fix)
    return Check(name, OK, str(getattr(mod, "__version__", "present")))


def required_models(settings) -> list[str]:
    from livecam.face.detect import DETECTOR_CATALOG
    from livecam.swap.swappers import GhostSwapper

    names = [DETECTOR_CATALOG[settings.detector.model]]
    if settings.landmarker.model != "none":
        names.append(settings.landmarker.model)
    names.append("arcface_w600k_r50")
    names.append(settings.swapper.model)
    if settings.swapper.model.startswith("ghost_"):
        names.append(GhostSwapper.CONVERTER)
    types = set(settings.masks.types)
    if "occlusion" in types:
        occ = settings.masks.occlusion_model
        names += ["xseg_1", "xseg_2", "xseg_3"] if occ == "many" else [occ]
    if "region" in types:
        names.append(settings.masks.region_model)
    return list(dict.fromkeys(names))


def check_models(settings, models_dir: str | None = None) -> list[Check]:
    try:
        from livecam.inference.store import ModelStore
    except ImportError as exc:
        return [Check("models", FAIL, f"model store unavailable ({exc})", "reinstall livecam")]
    try:
        store = ModelStore(models_dir=models_dir)
    except Exception as exc:  # noqa: BLE001
        return [Check("models", FAIL, f"cannot read the model catalog ({exc})", "reinstall livecam")]
    checks = []
    for name in required_models(settings):
        try:
            res = store.verify(name)
        except Exception as exc:  # noqa: BLE001
            checks.append(Check(f"model {name}", FAIL, str(exc), f"livecam models pull {name}"))
            continue
        if res.ok:
            checks.append(Check(f"model {name}", OK, f"{res.where} {res.path}"))
        else:
            checks.append(Check(f"model {name}", FAIL, res.message,
                                f"livecam models pull {name} (or point LIVECAM_MODELS_DIR at a folder with it)"))
    return checks


def check_cameras(lister=None) -> Check:
    from livecam.io.sources import list_cameras

    cams = (lister or list_cameras)()
    loopback = set(v4l2loopback_devices())
    real = [c for c in cams if c.get("path") not in loopback]
    if not real:
        return Check("cameras", FAIL, "no camera found",
                     "plug in a webcam (and check `ls /dev/video*` / camera permissions), or run with --input VIDEO")
    return Check("cameras", OK, ", ".join(f"{c['index']}: {c['name']} ({c['path']})" for c in real))


def v4l2loopback_devices(sysfs: Path = Path("/sys/devices/virtual/video4linux")) -> list[str]:
    if not sysfs.is_dir():
        return []
    return sorted(f"/dev/{p.name}" for p in sysfs.glob("video*"))


def check_v4l2loopback(module_dir: Path = Path("/sys/module/v4l2loopback"),
                       sysfs: Path = Path("/sys/devices/virtual/video4linux")) -> list[Check]:
    from livecam.io.sinks import MODPROBE

    if not module_dir.is_dir():
        return [Check("v4l2loopback", FAIL, "kernel module not loaded",
                      f"sudo apt install v4l2loopback-dkms && {MODPROBE}")]
    checks = [Check("v4l2loopback", OK, "loaded")]
    caps_file = module_dir / "parameters" / "exclusive_caps"
    caps = caps_file.read_text().strip() if caps_file.exists() else ""
    if caps and set(caps.replace(",", "").replace("N", "").replace("0", "")) == set():
        checks.append(Check("v4l2loopback exclusive_caps", WARN, f"off ({caps}): Chrome/Meet/Teams-web will not list it",
                            f"sudo modprobe -r v4l2loopback && {MODPROBE} (the Zoom snap may need it off)"))
    else:
        checks.append(Check("v4l2loopback exclusive_caps", OK,
                            f"{caps or 'unknown'} (if the Zoom snap does not list the camera, reload without it)"))
    devices = v4l2loopback_devices(sysfs)
    if not devices:
        checks.append(Check("virtual camera device", FAIL, "module loaded but no loopback device",
                            f"sudo modprobe -r v4l2loopback && {MODPROBE}"))
    for dev in devices:
        if not os.path.exists(dev):
            checks.append(Check(f"device {dev}", FAIL, "node missing", "check udev; reload the module"))
        elif not os.access(dev, os.R_OK | os.W_OK):
            checks.append(Check(f"device {dev}", FAIL, "no read/write permission",
                                "sudo usermod -aG video $USER, then log out and in"))
        else:
            checks.append(Check(f"device {dev}", OK, "read/write"))
    return checks


def check_vcam_open(settings, opener=None) -> Check:
    """Open and close the virtual camera as `livecam run --sink vcam` would."""
    from livecam.errors import VirtualCameraError
    from livecam.io.sinks import VirtualCameraSink

    out = settings.output
    try:
        sink = (opener or VirtualCameraSink)(out.width, out.height, out.fps, out.device or None)
        sink.open()
    except VirtualCameraError as exc:
        return Check("virtual camera", FAIL, exc.message, exc.fix or "")
    try:
        return Check("virtual camera", OK, sink.describe())
    finally:
        sink.close()


def check_engine_sharing() -> Check:
    """The engine-sharing trust state: signing key, trusted keys, LIVECAM_ENGINE_REPO (engines are native code)."""
    import os

    from livecam.inference import trust

    repo = os.environ.get("LIVECAM_ENGINE_REPO", "").strip()
    lines = trust.describe(repo)
    detail = "; ".join(lines)
    if repo and not trust_ok(repo):
        return Check("engine sharing", WARN, detail,
                     f"LIVECAM_ENGINE_REPO={repo} is set but no key is trusted for it: "
                     f"`livecam engines trust ed25519:... --repo {repo}` with the publisher's key, or unset it")
    return Check("engine sharing", OK, detail if repo else "off (LIVECAM_ENGINE_REPO unset); " + detail)


def trust_ok(repo: str) -> bool:
    from livecam.inference import trust

    try:
        return bool(trust.trusted_for(repo))
    except trust.TrustError:
        return False


NO_GPU = "no NVIDIA GPU: everything runs on the CPU; use the cpu profile (--profile cpu)"
NO_GPU_FIX = ("for a GPU: an NVIDIA driver r580+ and pip install -e '.[gpu]' "
              "--extra-index-url https://pypi.nvidia.com (README, Install)")


def gpu_runtime_present() -> bool:
    """An ONNX Runtime GPU provider or TensorRT is installed (whether a GPU answers is another matter)."""
    from livecam.ops import gpu_inference_available

    return gpu_inference_available()


def no_gpu_note(settings) -> str | None:
    """One line for `run` when no GPU rung can work and the profile is not the cpu one."""
    if settings.runtime.provider == "cpu" or gpu_runtime_present():
        return None
    return NO_GPU.replace("use the cpu profile", "the cpu profile is made for this")


def gpu_checks() -> list[Check]:
    """GPU, providers, TensorRT, CuPy; without any GPU runtime, one line naming the cpu profile."""
    gpu = check_gpu()
    if gpu.status != OK and not gpu_runtime_present():
        return [Check("gpu", WARN, f"{NO_GPU} ({gpu.detail.split(':')[0]})", NO_GPU_FIX)]
    return [gpu, check_providers(),
            check_optional("tensorrt", "tensorrt",
                           "optional, for the fastest engines: pip install 'tensorrt-cu13>=10.13,<11' (see README, GPU install)"),
            check_optional("cupy", "cupy", "optional, GPU pre/post-processing: pip install cupy-cuda13x")]


def gather(settings, models_dir: str | None = None) -> list[Check]:
    checks = [check_python(), *check_packages(), *gpu_checks(),
              *check_models(settings, models_dir), check_cameras()]
    if platform.system() == "Linux":
        checks += check_v4l2loopback()
    checks.append(check_vcam_open(settings))
    checks.append(check_engine_sharing())
    return checks


def run_doctor(args) -> int:
    from livecam.commands import load_settings

    if getattr(args, "profile", None) is None and not gpu_runtime_present():
        # no GPU rung can work: check what the user will run, the cpu profile (and say so)
        args.profile = "cpu"
        print("no GPU runtime: checking the cpu profile (--profile NAME checks another)", file=sys.stderr)
    settings = load_settings(args)
    checks = gather(settings, getattr(args, "models_dir", None))
    if getattr(args, "json", False):
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            print(c.line())
        fails = sum(c.status == FAIL for c in checks)
        warns = sum(c.status == WARN for c in checks)
        print(f"\n{fails} problem(s), {warns} warning(s): "
              + ("the main job cannot run until the FAIL lines are fixed" if fails else "ready"))
    return 1 if any(c.status == FAIL for c in checks) else 0
