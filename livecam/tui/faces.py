"""Source faces: the bank's faces with thumbnails, the active one marked; add one by path.

Thumbnails are drawn with half-block characters (two pixels per cell, foreground
and background colours), which every colour terminal shows, tmux included.
Where the terminal has no colour (`NO_COLOR`, a dumb terminal) the list falls
back to names only.
"""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

THUMB_COLS = 4
THUMB_ROWS = 2


def thumbnail_text(image: np.ndarray, cols: int = THUMB_COLS, rows: int = THUMB_ROWS) -> Text:
    """A BGR uint8 image as `rows` lines of `cols` half-block cells (2 pixels each)."""
    import cv2

    small = cv2.resize(np.ascontiguousarray(image[:, :, :3]), (cols, rows * 2), interpolation=cv2.INTER_AREA)
    rgb = small[:, :, ::-1].astype(int)
    text = Text(no_wrap=True)
    for r in range(rows):
        for c in range(cols):
            top, bottom = rgb[2 * r, c], rgb[2 * r + 1, c]
            text.append("▀", Style.parse(f"rgb({top[0]},{top[1]},{top[2]}) on rgb({bottom[0]},{bottom[1]},{bottom[2]})"))
        if r < rows - 1:
            text.append("\n")
    return text


class PathInput(Input):
    """The "add a face" box. While it has focus it owns the keyboard (the app disables its
    hotkeys, see `LivecamApp.check_action`); Escape gives the keys back to the hotkeys, and
    the footer says so."""

    BINDINGS = [Binding("escape", "leave", "back to hotkeys")]

    def action_leave(self) -> None:
        self.screen.query_one("#faces-list").focus()


class FacesPanel(Vertical):
    """OptionList of faces + an Input to add one. Posts `Picked` and `AddRequested`."""

    DEFAULT_CSS = """
    FacesPanel { height: 1fr; }
    FacesPanel > OptionList, FacesPanel > OptionList:focus { height: 1fr; border: none; padding: 0; }
    FacesPanel > Input { height: 1; margin: 0 1; }
    FacesPanel > Input:focus { background: $accent 40%; }
    """

    class Picked(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class AddRequested(Message):
        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

    def __init__(self, images: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.images = images
        self._shown: tuple | None = None
        self._thumbs: dict[tuple, Text] = {}
        self.thumb_size = (THUMB_COLS, THUMB_ROWS)

    def set_thumb_size(self, cols: int, rows: int) -> None:
        """Bigger thumbnails on tall terminals; re-renders the list on the next `show`."""
        if (cols, rows) != self.thumb_size:
            self.thumb_size = (cols, rows)
            self._shown = None

    def compose(self) -> ComposeResult:
        self._list = OptionList(id="faces-list")
        yield self._list
        yield PathInput(placeholder="add a face: image path, Enter", id="face-path", compact=True)

    def _prompt(self, number: int, name: str, thumb: np.ndarray | None, active: bool):
        key = f"{number}" if number <= 9 else " "
        label = Text(no_wrap=True, overflow="ellipsis")
        label.append("▶ " if active else "  ", style="bold green")
        label.append(f"{key} ", style="bold")
        label.append(name, style="bold green" if active else "")
        if active:
            label.append("  active", style="green")
        if not self.images or thumb is None:
            return label
        cache_key = (name, id(thumb), self.thumb_size)
        if cache_key not in self._thumbs:
            self._thumbs[cache_key] = thumbnail_text(thumb, *self.thumb_size)
        thumb_text = self._thumbs[cache_key].copy()
        lines = thumb_text.split("\n")
        rows = [Text.assemble(lines[0], " ", label)]
        rows += [Text.assemble(line) for line in lines[1:]]
        return Group(*rows)

    def show(self, faces, active: int | None) -> bool:
        """`faces`: list of FaceInfo. Rebuilds the list only when names/active change."""
        key = (tuple((f.name, id(f.thumbnail)) for f in faces), active, self.images, self.thumb_size)
        if key == self._shown:
            return False
        self._shown = key
        options = self._list
        highlighted = options.highlighted
        options.clear_options()
        if not faces:
            options.add_option(Option(Text("no source faces: add one below", style="dim"), disabled=True))
            return True
        options.add_options(
            [Option(self._prompt(i + 1, f.name, f.thumbnail, i == active), id=f"face-{i}") for i, f in enumerate(faces)]
        )
        target = active if highlighted is None else highlighted
        if target is not None and 0 <= target < len(faces):
            options.highlighted = target
        return True

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_id and event.option_id.startswith("face-"):
            self.post_message(self.Picked(int(event.option_id[5:])))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Add the path typed; the box keeps the focus (and the keys) for the next path, so
        typing on never lands on the hotkeys. Escape leaves it."""
        event.stop()
        path = event.value.strip()
        if path:
            event.input.value = ""
            self.post_message(self.AddRequested(path))
