"""Live numbers: fps, latency, per-stage ms, counters, and fps/latency sparklines."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from livecam.controls import StatsSnapshot
from livecam.tui.textview import TextView

STAGE_ORDER = ("capture", "track", "detect", "select", "align", "swap", "guard", "masks", "temporal", "paste", "output")


def stats_text(snap: StatsSnapshot) -> Text:
    text = Text(no_wrap=False)
    text.append("fps ", style="bold")
    text.append(f"in {snap.fps_in:4.1f} out {snap.fps_out:4.1f}")
    text.append("  lat ", style="bold")
    text.append(f"{snap.latency_ms.get('p50', 0):.0f}/{snap.latency_ms.get('p95', 0):.0f} ms")
    text.append("\n")
    text.append("host ", style="bold")
    text.append(f"{snap.host_ms.get('p50', 0):.1f}/{snap.host_ms.get('p95', 0):.1f} ms")
    text.append("  faces ", style="bold")
    text.append(str(snap.faces))
    text.append("\n")
    names = [s for s in STAGE_ORDER if s in snap.stage_ms] + sorted(s for s in snap.stage_ms if s not in STAGE_ORDER)
    if names:
        parts = [f"{name} {snap.stage_ms[name].get('p50', 0):.1f}" for name in names]
        text.append("ms ", style="bold")
        text.append("  ".join(parts))
    else:
        text.append("ms ", style="bold")
        text.append("(no frames yet)", style="dim")
    text.append("\n")
    counters = (("det", snap.detector_calls), ("drop", snap.dropped), ("guard", snap.guard_rejects), ("err", snap.stage_errors))
    for i, (name, value) in enumerate(counters):
        if i:
            text.append("  ")
        text.append(f"{name} ", style="bold")
        bad = value and name in ("guard", "err")
        text.append(str(value), style="bold red" if bad else "")
    rtt = snap.remote_rtt_ms
    if rtt:  # only with runtime.remote: the round trip of each remote call (per face for the swapper)
        text.append("\n")
        text.append("remote ", style="bold")
        text.append(f"{rtt.get('p50', 0):.1f}/{rtt.get('p95', 0):.1f} ms")
        text.append("  failed ", style="bold")
        text.append(str(rtt.get("failed", 0)), style="bold red" if rtt.get("failed") else "")
    return text


class StatsPanel(Vertical):
    DEFAULT_CSS = """
    StatsPanel { height: auto; }
    StatsPanel #stats-text { height: auto; }
    StatsPanel .spark-row { height: 1; }
    StatsPanel .spark-row Label { width: 5; }
    StatsPanel Sparkline { width: 1fr; height: 1; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._last_text: Text | None = None
        self._last_fps: list[float] | None = None
        self._last_lat: list[float] | None = None

    def compose(self) -> ComposeResult:
        self._text = TextView(id="stats-text")
        self._fps = Sparkline([], id="fps-spark")
        self._lat = Sparkline([], id="lat-spark")
        yield self._text
        with Horizontal(classes="spark-row"):
            yield Label("fps", classes="spark-label")
            yield self._fps
        with Horizontal(classes="spark-row"):
            yield Label("lat", classes="spark-label")
            yield self._lat

    def show(self, snap: StatsSnapshot) -> int:
        """Update what changed; returns how many parts were re-rendered."""
        changed = 0
        text = stats_text(snap)
        if text != self._last_text:
            self._last_text = text
            self._text.set_text(text)
            changed += 1
        if snap.fps_history != self._last_fps:
            self._last_fps = list(snap.fps_history)
            self._fps.data = self._last_fps
            changed += 1
        if snap.latency_history != self._last_lat:
            self._last_lat = list(snap.latency_history)
            self._lat.data = self._last_lat
            changed += 1
        return changed
