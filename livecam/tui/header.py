"""Top bar: LIVE/BYPASS state, virtual camera, source, GPU and provider per model."""

from __future__ import annotations

from rich.text import Text
from livecam.tui.textview import TextView

from livecam.controls import ControlState, StatsSnapshot


class StatusHeader(TextView):
    """Three lines of status; re-rendered only when the text changes."""

    DEFAULT_CSS = """
    StatusHeader { height: 3; padding: 0 1; }
    """

    def __init__(self, **kwargs):
        super().__init__(wrap=False, **kwargs)

    @staticmethod
    def build(snap: StatsSnapshot, state: ControlState, profile: str = "", gpu: str = "",
              faces: int | None = None) -> Text:
        """`faces`: source faces in the bank; 0 shows NO FACE (the camera goes out unswapped)."""
        text = Text(no_wrap=True, overflow="ellipsis")
        if state.bypass:
            text.append(" BYPASS ", style="bold black on yellow")
        elif faces == 0:
            text.append(" NO FACE: nothing swapped ", style="bold black on yellow")
        else:
            text.append(" LIVE ", style="bold white on green")
        text.append(" ")
        settings = state.settings
        text.append("vcam ", style="bold")
        text.append(snap.output or f"(not open) {settings.output.width}x{settings.output.height}@{settings.output.fps}")
        if profile:
            text.append("  profile ", style="bold")
            text.append(profile)
        text.append("\n")
        text.append("source ", style="bold")
        if snap.camera_ok:
            text.append(snap.camera or f"camera {settings.camera.device}")
        else:
            text.append(snap.camera or "camera lost", style="bold red")
        text.append("\n")
        on_cpu = settings.runtime.provider == "cpu" or (snap.providers and set(snap.providers.values()) == {"cpu"})
        device = gpu or ("CPU" if on_cpu else f"GPU {settings.runtime.device_id}")
        text.append(device, style="bold")
        if snap.providers:
            for model, provider in snap.providers.items():
                text.append(f"  {model} ")
                text.append(provider, style="green" if provider in ("tensorrt", "ort-tensorrt", "cuda") else "yellow")
        else:
            text.append("  (no models loaded yet)", style="dim")
        return text

    def show(self, snap: StatsSnapshot, state: ControlState, profile: str = "", gpu: str = "",
             faces: int | None = None) -> bool:
        self.set_class(state.bypass, "bypass")
        return self.set_text(self.build(snap, state, profile, gpu, faces))
