"""Round trips of remote model calls, for the stats panel and `livecam bench`.

One process-wide record (light: no tritonclient import), written by every
`RemoteSession` call: the wall time of each answered call in ms, and the calls
that failed (deadline, server down). Stats read a rolling window; the bench
takes the samples since its own start with `mark()` / `since(mark)`.
"""

from __future__ import annotations

import collections
import threading

from livecam.controls import percentiles


class RoundTrips:
    def __init__(self, window: int = 120, keep: int = 100_000):
        self._lock = threading.Lock()
        self._window = window
        self._samples: collections.deque[float] = collections.deque(maxlen=keep)
        self.calls = 0  # answered calls (each has a sample)
        self.failed = 0  # calls that raised (deadline, unreachable, server down)

    def add(self, ms: float) -> None:
        with self._lock:
            self._samples.append(float(ms))
            self.calls += 1

    def fail(self) -> None:
        with self._lock:
            self.failed += 1

    def mark(self) -> tuple[int, int]:
        with self._lock:
            return self.calls, self.failed

    def since(self, mark: tuple[int, int]) -> tuple[list[float], int]:
        """(samples, failed calls) since `mark` (samples older than `keep` are gone)."""
        with self._lock:
            n = self.calls - mark[0]
            samples = list(self._samples)[-n:] if n > 0 else []
            return samples, self.failed - mark[1]

    def summary(self, since: tuple[int, int] = (0, 0), ndigits: int | None = 1) -> dict:
        """{"p50", "p95", "calls", "failed"} over the last `window` answered calls after `since` (a `mark()`);
        {} when there was no call since then."""
        with self._lock:
            calls, failed = self.calls - since[0], self.failed - since[1]
            if calls <= 0 and failed <= 0:
                return {}
            recent = list(self._samples)[-min(self._window, calls):] if calls > 0 else []
        return percentiles(recent, ndigits) | {"calls": calls, "failed": failed}


ROUND_TRIPS = RoundTrips()


def summarize(samples: list[float], failed: int, ndigits: int = 3) -> dict:
    return percentiles(samples, ndigits) | {"calls": len(samples), "failed": failed}
