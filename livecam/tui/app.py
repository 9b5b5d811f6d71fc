"""The livecam terminal UI: a thin Textual app over a live session.

Data flow: the frame loop never calls the UI. The app polls
`session.stats.snapshot()` and `session.controls.current()` with `set_interval`
(4 Hz by default) and re-renders only the widgets whose content changed. Every
hotkey is one `Controls.change(...)` (validated, atomic, seen by the next
frame). Slow work (adding a face: detection + embedding) runs in a thread
worker and reports back with `call_from_thread`.

Hotkeys come from the profile's `[keys]` section (`settings.keys`), so the
bindings are built per app instance, not from a class-level BINDINGS list.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import Grid
from textual.widgets import Footer, Input

from livecam.controls import RollingPercentiles
from livecam.errors import LivecamError, SettingsError
from livecam.settings import KeySettings
from livecam.tui import actions
from livecam.tui.faces import FacesPanel
from livecam.tui.header import StatusHeader
from livecam.tui.log import LogPane
from livecam.tui.models import ModelPanel
from livecam.tui.session import SessionLike, SessionView
from livecam.tui.stats import StatsPanel


def key_clashes(keys: KeySettings) -> list[str]:
    """Keys bound to more than one action (the first binding wins in Textual)."""
    seen: dict[str, str] = {str(n): f"face {n}" for n in range(1, 10)}
    clashes = []
    for name, key in vars(keys).items():
        if key in seen:
            clashes.append(f"key {key!r} is bound to both {seen[key]} and {name}")
        seen.setdefault(key, name)
    return clashes


def make_bindings(keys: KeySettings) -> list[Binding]:
    """The app's key bindings for the given (rebindable) keys, plus 1-9 for faces."""
    bindings = [
        Binding(keys.bypass, "toggle_bypass", "bypass", id="bypass"),
        # one footer entry for all face keys: "1-9 [ ] face"
        Binding("1", "pick_face(1)", "face", key_display=f"1-9 {keys.prev_face} {keys.next_face}", id="face_1"),
    ]
    bindings += [Binding(str(n), f"pick_face({n})", f"face {n}", show=False, id=f"face_{n}") for n in range(2, 10)]
    bindings += [
        Binding(keys.prev_face, "step_face(-1)", "prev face", show=False, id="prev_face"),
        Binding(keys.next_face, "step_face(1)", "next face", show=False, id="next_face"),
        Binding(keys.next_model, "next_model", "model", id="next_model"),
        Binding(keys.occlusion, "toggle_mask('occlusion')", "occl", id="occlusion"),
        Binding(keys.region, "toggle_mask('region')", "region", id="region"),
        Binding(keys.temporal, "toggle_temporal", "temporal", id="temporal"),
        Binding(keys.save_profile, "save_profile", "save", id="save_profile"),
        Binding(keys.load_profile, "load_profile", "load", id="load_profile"),
        Binding(keys.quit, "quit", "quit", id="quit"),
    ]
    return bindings


# The actions of `make_bindings` (every hotkey).
HOTKEY_ACTIONS = frozenset({"toggle_bypass", "pick_face", "step_face", "next_model", "toggle_mask",
                            "toggle_temporal", "save_profile", "load_profile", "quit"})


class LivecamApp(App[int]):
    """The live UI. `session` follows `livecam.tui.session.SessionLike`."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere keep it
    TITLE = "livecam"
    AUTO_FOCUS = "#faces-list"
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        session: SessionLike,
        *,
        refresh_hz: float = 4.0,
        stats_hz: float = 2.0,
        profile_name: str | None = None,
        images: bool | None = None,
        sample_history: bool = False,
    ):
        super().__init__()
        self.session = session
        self.view = SessionView(session)
        self.refresh_hz = refresh_hz
        # The numbers change on every poll and each repaint costs the UI thread ~2-3 ms
        # (Textual's compositor), so they repaint at stats_hz; state changes (keys, model
        # loading, faces, log) show at refresh_hz, and at once after our own keys.
        self.stats_hz = min(stats_hz, refresh_hz)
        self._stats_at = float("-inf")
        self.profile_name = profile_name if profile_name is not None else str(getattr(session, "profile_name", "") or "")
        self._images = images
        self._sample_history = sample_history
        self.refresh_ms = RollingPercentiles(240)  # UI-thread cost of one refresh
        self.refreshes = 0
        self._install_bindings(session.controls.current().settings.keys)

    # -- layout ------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Kept as attributes: refreshes run while a dialog screen is on top, where
        # `self.query_one` would search the dialog.
        self.header = StatusHeader(id="header")
        self.stats_panel = StatsPanel(id="stats", classes="panel")
        self.faces_panel = FacesPanel(images=self._terminal_images(), id="faces", classes="panel")
        self.model_panel = ModelPanel(id="models", classes="panel")
        self.log_pane = LogPane(id="log", classes="panel")
        yield self.header
        # A 2-column grid; the placement changes with the terminal height (see app.tcss).
        with Grid(id="body"):
            yield self.stats_panel
            yield self.faces_panel
            yield self.model_panel
            yield self.log_pane
        yield Footer(compact=True)

    def _terminal_images(self) -> bool:
        if self._images is not None:
            return self._images
        if os.environ.get("NO_COLOR"):
            return False
        return self.console.color_system in ("truecolor", "256")

    TALL = 36  # rows from which the log moves under the model panel and faces get a full column

    def _fit(self, height: int) -> None:
        tall = height >= self.TALL
        self.main_screen.set_class(tall, "tall")
        self.faces_panel.set_thumb_size(*((10, 5) if tall else (4, 2)))

    def on_resize(self, event) -> None:
        if getattr(self, "main_screen", None) is not None:
            self._fit(event.size.height)
            self.refresh_view()

    def on_mount(self) -> None:
        self.main_screen = self.screen
        self._fit(self.size.height)
        for widget, title in ((self.stats_panel, "Stats"), (self.model_panel, "Model & masks"),
                              (self.faces_panel, "Source faces"), (self.log_pane, "Log")):
            widget.border_title = title
        self.call_after_refresh(self.refresh_view)  # after layout: the log wraps at its real width
        self.call_after_refresh(self._show_key_warnings)
        self.poll_timer = self.set_interval(1.0 / self.refresh_hz, self.refresh_view, name="stats-poll")
        if self._sample_history:
            self.set_interval(1.0, self.session.stats.sample_history, name="stats-history")

    # -- bindings ------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """No hotkey fires while a text box has focus: a `b` typed in a path must never send
        the real camera out, a `q` never quit. (The footer hides them meanwhile.)"""
        if action in HOTKEY_ACTIONS and isinstance(self.focused, Input):
            return False
        return True

    def _install_bindings(self, keys: KeySettings) -> None:
        self._bindings = BindingsMap.merge([self._merged_bindings or BindingsMap(), BindingsMap(make_bindings(keys))])
        self._keys = keys
        self._key_warnings = key_clashes(keys)
        if self.is_running:
            self.refresh_bindings()
            self._show_key_warnings()

    def _show_key_warnings(self) -> None:
        for warning in self._key_warnings:
            self.log_pane.note(f"[keys] {warning}; change it in the profile", style="bold red")

    # -- refresh (polling; never called by the frame loop) -------------------------
    def refresh_view(self) -> None:
        if not self.is_running or not self.log_pane.is_attached:
            return  # shutting down
        t0 = time.perf_counter()
        snap = self.view.snapshot()
        state = self.view.controls.current()
        settings = state.settings
        loading = self.view.loading(snap)
        active_model = self.view.active_model()
        faces = self.view.faces()
        self.header.show(snap, state, self.profile_name, str(getattr(self.session, "gpu_name", "") or ""),
                         faces=len(faces))
        now = time.monotonic()
        if now - self._stats_at >= 0.9 / self.stats_hz:
            self._stats_at = now
            self.stats_panel.show(snap)
        self.model_panel.show(settings, active_model, loading)
        self.faces_panel.show(faces, actions.active_index([f.name for f in faces], settings.swapper.source))
        self.log_pane.show(snap.log)  # includes the swap stage's messages (forwarded by the live loop)
        self.refresh_ms.add((time.perf_counter() - t0) * 1000.0)
        self.refreshes += 1

    # -- changes -------------------------------------------------------------------
    def _change(self, changes: dict | None, origin: str) -> bool:
        if not changes:
            return False
        try:
            self.view.controls.change(changes, origin=origin)
        except SettingsError as exc:
            self._error(str(exc))
            return False
        self.refresh_view()
        return True

    def _error(self, message: str) -> None:
        self.log_pane.note(message.replace("\n", " "), style="bold red")
        self.notify(message, severity="error", timeout=6)

    def _names(self) -> list[str]:
        return [f.name for f in self.view.faces()]

    def action_pick_face(self, number: int) -> None:
        self._change(actions.pick_face(self._names(), number - 1), origin="key")

    def action_step_face(self, step: int) -> None:
        source = self.view.controls.current().settings.swapper.source
        self._change(actions.step_face(self._names(), source, step), origin="key")

    def action_next_model(self) -> None:
        self._change(actions.next_model(self.view.controls.current().settings), origin="key")

    def action_toggle_mask(self, mask: str) -> None:
        self._change(actions.toggle_mask(self.view.controls.current().settings, mask), origin="key")

    def action_toggle_temporal(self) -> None:
        self._change(actions.toggle_temporal(self.view.controls.current().settings), origin="key")

    def action_toggle_bypass(self) -> None:
        bypass = self.view.controls.toggle_bypass()
        self.log_pane.note("bypass on: raw camera out" if bypass else "bypass off: live swap")
        self.refresh_view()

    def action_quit(self) -> None:
        self.exit(0)

    # -- faces -----------------------------------------------------------------------
    def on_faces_panel_picked(self, message: FacesPanel.Picked) -> None:
        self._change(actions.pick_face(self._names(), message.index), origin="face list")

    def on_faces_panel_add_requested(self, message: FacesPanel.AddRequested) -> None:
        self.log_pane.note(f"adding face {message.path} ...")
        self.add_face(message.path)

    @work(thread=True, group="add-face", exit_on_error=False)
    def add_face(self, path: str) -> None:
        try:
            name = self.view.add_face(os.path.expanduser(path))
        except LivecamError as exc:
            self.call_from_thread(self._error, f"cannot add face {path}: {exc}")
            return
        except Exception as exc:  # a broken image must not take the call down
            self.call_from_thread(self._error, f"cannot add face {path}: {type(exc).__name__}: {exc}")
            return
        self.call_from_thread(self._face_added, name)

    def _face_added(self, name: str) -> None:
        self.log_pane.note(f"face added: {name}", style="green")
        self.refresh_view()

    # -- profiles ----------------------------------------------------------------------
    def action_save_profile(self) -> None:
        from livecam.tui.dialogs import SaveProfileScreen

        default = self.profile_name if self.profile_name and not self._is_shipped(self.profile_name) else "live"
        self.push_screen(SaveProfileScreen(default), self.save_profile_as)

    def save_profile_as(self, name: str | None) -> Path | None:
        if not name:
            return None
        from livecam.profiles import save_profile

        try:
            path = save_profile(name, self.view.controls.current().settings)
        except (LivecamError, OSError) as exc:
            self._error(f"profile not saved: {exc}")
            return None
        self.profile_name = name
        self.log_pane.note(f"profile saved: {name} ({path})", style="green")
        self.refresh_view()
        return path

    def action_load_profile(self) -> None:
        from livecam.profiles import list_profiles
        from livecam.tui.dialogs import LoadProfileScreen

        self.push_screen(LoadProfileScreen(list_profiles()), self.load_profile_from)

    def load_profile_from(self, name_or_path: str | None) -> bool:
        """Load, validate and apply a profile; on any error the running state is untouched."""
        if not name_or_path:
            return False
        from livecam.profiles import load_profile

        try:
            loaded = load_profile(name_or_path)
            current = self.view.controls.current().settings
            self.view.controls.change(settings=actions.profile_for_live(loaded, current), origin=str(name_or_path))
        except Exception as exc:  # noqa: BLE001 - a bad profile file never ends the running session
            self._error(f"profile not loaded: {exc}")
            return False
        self.profile_name = Path(name_or_path).stem
        if loaded.keys != self._keys:
            self._install_bindings(loaded.keys)
        self.log_pane.note(f"profile loaded: {self.profile_name}", style="green")
        self.refresh_view()
        return True

    @staticmethod
    def _is_shipped(name: str) -> bool:
        from livecam.paths import shipped_profiles_dir

        return (shipped_profiles_dir() / f"{name}.toml").is_file()


def run_tui(session: SessionLike, *, on_app=None, **kwargs) -> int:
    """Run the UI over `session` (already started) until quit; returns the exit code.

    The caller owns the session: it starts it before and stops it after. `on_app(app)` is
    called before the app runs (the CLI uses it to let SIGTERM/SIGHUP quit the app).
    """
    app = LivecamApp(session, **kwargs)
    if on_app is not None:
        on_app(app)
    result = app.run()
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(result or 0)
