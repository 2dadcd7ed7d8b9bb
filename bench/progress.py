"""A small progress bar on stderr (redrawn in place on a terminal, a line now and then
otherwise, so logs of ``make bench`` stay readable)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
TERMINAL_REDRAW_S = 0.1
LOG_LINE_EVERY_S = 5.0


class ProgressBar:
    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._interactive = self._stream.isatty()
        self._started = time.monotonic()
        self._last_drawn = -1e9
        self._closed = False

    def update(self, done: int, note: str = "") -> None:
        """Set the count of finished items; redraws at most a few times a second."""
        self.done = min(done, self.total)
        now = time.monotonic()
        interval = TERMINAL_REDRAW_S if self._interactive else LOG_LINE_EVERY_S
        if now - self._last_drawn >= interval:
            self._draw(note)
            self._last_drawn = now

    def close(self, note: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self._draw(note)
        if self._interactive:
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, note: str) -> None:
        fraction = self.done / self.total
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        elapsed = time.monotonic() - self._started
        text = (
            f"{self.label:<18} [{bar}] {self.done}/{self.total} "
            f"{fraction * 100:5.1f}% {elapsed:6.1f}s {note}"
        ).rstrip()
        if self._interactive:
            self._stream.write("\r\x1b[2K" + text)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
