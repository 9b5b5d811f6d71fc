"""What the UI needs from a live session, in one place.

The UI is written against this small surface so it runs over the real
`livecam.live.LiveSession` and over `benchmarks.tui_demo.DemoSession` alike:

- `session.controls`: a `livecam.controls.Controls` (all changes go through it);
- `session.stats`: a `livecam.controls.Stats` (read with `snapshot()` a few times a
  second, never per frame);
- `session.bank`: a face bank with `faces` (objects with `name` and `thumbnail`,
  a BGR uint8 image or None) and `add(path)`;
- optionally `session.pipeline.swap_stage` with `loading` and `active_model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from livecam.controls import Controls, Stats, StatsSnapshot


class FaceLike(Protocol):
    name: str
    thumbnail: Any


class BankLike(Protocol):
    @property
    def faces(self) -> Sequence[FaceLike]: ...

    def add(self, path) -> FaceLike: ...


class SessionLike(Protocol):
    controls: Controls
    stats: Stats
    bank: BankLike


@dataclass(frozen=True)
class FaceInfo:
    name: str
    thumbnail: np.ndarray | None


class SessionView:
    """Read-only helpers over a session; tolerant of optional parts."""

    def __init__(self, session: SessionLike):
        self.session = session

    @property
    def controls(self) -> Controls:
        return self.session.controls

    def snapshot(self) -> StatsSnapshot:
        return self.session.stats.snapshot()

    def faces(self) -> list[FaceInfo]:
        bank = getattr(self.session, "bank", None)
        faces = list(getattr(bank, "faces", None) or [])
        out = []
        for f in faces:
            thumb = getattr(f, "thumbnail", None)
            out.append(FaceInfo(str(f.name), thumb if isinstance(thumb, np.ndarray) else None))
        return out

    def add_face(self, path: str) -> str:
        """Add a source face image to the bank (slow: runs detection/embedding)."""
        face = self.session.bank.add(path)
        return str(getattr(face, "name", face))

    def _swap_stage(self):
        pipeline = getattr(self.session, "pipeline", None)
        return getattr(pipeline, "swap_stage", None)

    def loading(self, snap: StatsSnapshot) -> str:
        """'' when idle, else what is loading (e.g. 'hyperswap_1b_256' or 'loading x 40%').

        The swap stage's own value is live; `stats.loading` is what the loop last
        copied (about once a second), used when there is no stage to ask.
        """
        stage = self._swap_stage()
        if stage is not None and hasattr(stage, "loading"):
            text = stage.loading
            return text if isinstance(text, str) else ""
        return snap.loading or ""

    def active_model(self) -> str:
        """The swapper actually running ('' if unknown)."""
        stage = self._swap_stage()
        name = getattr(stage, "active_model", "") if stage is not None else ""
        return name if isinstance(name, str) else ""
