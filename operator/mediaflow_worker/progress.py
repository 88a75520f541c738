"""ffmpeg `-progress` output turned into a throttled percentage."""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressTracker:
    """Feed ffmpeg's `key=value` progress lines; `feed` returns a percentage when one is due."""

    def __init__(
        self,
        duration: float | None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.duration = duration
        self.interval = interval
        self.clock = clock
        self.last_emit: float | None = None
        self.percent = 0.0

    def feed(self, line: str) -> float | None:
        """Consume one line; return the percentage to report now, or None."""
        key, _, value = line.strip().partition("=")
        if key == "progress" and value == "end":
            self.percent = 100.0
            return self._emit(force=True)
        if key not in ("out_time_us", "out_time_ms") or not self.duration:
            return None
        try:
            # Despite its name, out_time_ms is also in microseconds.
            seconds = int(value) / 1_000_000
        except ValueError:
            return None  # "N/A" before the first frame
        percent = max(0.0, min(99.9, 100.0 * seconds / self.duration))
        if percent < self.percent:
            return None
        self.percent = round(percent, 1)
        return self._emit()

    def _emit(self, force: bool = False) -> float | None:
        now = self.clock()
        if not force and self.last_emit is not None and now - self.last_emit < self.interval:
            return None
        self.last_emit = now
        return self.percent
