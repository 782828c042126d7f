"""A progress line on stderr (items/s, ETA): drawn on a terminal, silent otherwise unless asked."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, enabled: bool | None = None, unit: str = "utt"):
        self.total, self.label, self.unit = total, label, unit
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done = 0
        self.start = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        # a terminal gets a redrawn line ~5 times a second; a log file one line per update
        if self.enabled and (now - self.last > 0.2 or self.done >= self.total or not self.tty):
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = f"{left:5.0f}s" if left != float("inf") else "    ?"
        line = (
            f"{self.label}: {self.done}/{self.total} {self.unit} "
            f"{rate:7.1f} {self.unit}/s  ETA {eta}"
        )
        end = "" if self.tty else "\n"
        print(("\r" if self.tty else "") + line, end=end, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr, flush=True)
