"""benchmarks/gpu_check.py: its CPU-side logic, and its device part driven by the counting backend."""

from __future__ import annotations

import json

import numpy as np


def test_cpu_only_run_passes_and_prints_json(capsys):
    from benchmarks.gpu_check import main

    assert main(["--cpu-only", "--frames", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] == [] and out["device"] is None
    assert [c["faces"] for c in out["counted"]] == [1, 2, 4]
    for c in out["counted"]:
        assert c["crop_crossings"] == 0 and c["guard_reads_per_face"] == 1.0
    assert all(p["per_face_ms"] > 0 and p["guard_rejects"] == 0 for p in out["cpu_swap_path"])


def test_device_part_on_the_counting_backend():
    """The GPU branch of the check with NumPy standing in for CuPy: every check it makes holds
    except speed (the counting backend is not a GPU), and each check can fail."""
    from benchmarks.gpu_check import FACE_COUNTS, device_part, speed_checks
    from livecam.ops import get_backend
    from livecam.ops.counting import CountingBackend
    from livecam.testing.device import counting_loader

    cpu_paths = [{"faces": n, "per_face_ms": 1e9} for n in FACE_COUNTS]  # a CPU this slow: GPU always "faster"
    result, checks = device_part(CountingBackend, counting_loader, get_backend("cpu"), 2, cpu_paths)
    assert checks and all(checks.values()), {k: v for k, v in checks.items() if not v}
    assert [c["backend_reads_per_face"] for c in result["gpu_counts"]] == [1.0, 1.0, 1.0]
    fast_cpu = [{"faces": n, "per_face_ms": 0.0} for n in FACE_COUNTS]
    assert not any(speed_checks(result["gpu_swap_path"], fast_cpu).values())


def test_backend_counter_sees_a_crop_sent_to_the_host():
    from benchmarks.gpu_check import BackendCounter
    from livecam.ops.counting import CountingBackend

    be = CountingBackend()
    counter = BackendCounter(be)
    crop = be.asarray(np.zeros((256, 256, 3), np.uint8))
    be.to_host(crop)
    assert counter.crop_crossings(256) == 2 and counter.syncs == 1
