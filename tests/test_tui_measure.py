"""The UI-cost measurement tool runs and reports numbers (the full runs are in the report)."""

from __future__ import annotations

import json

from benchmarks import tui_measure as measure


def test_paired_measurement_on_the_demo_loop(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert measure.main(["--paired", "0.6", "--seconds", "1.8", "--headless", "--warmup", "0.3",
                         "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["mode"] == "paired" and result["windows"] == 3 and result["pairs"] == 1
    assert result["host_ms_mean_refresh_off"] > 0 and result["host_ms_mean_refresh_on"] > 0
    assert isinstance(result["tui_cost_ms_per_frame"], float)
    assert 0 < result["refresh_ms"]["p50"] < 50.0  # one refresh of every panel: ~1 ms here (generous: loaded CI)
    assert json.loads(capsys.readouterr().out) == result
