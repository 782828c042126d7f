"""Progress of long work on stderr, the same on every tool: rate and ETA, a redrawn line on a
terminal, a throttled plain line elsewhere (so a log file shows it too), nothing with --quiet.

    with Progress(total=len(items), label="text minilm", unit="utt", quiet=quiet) as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk))

Off a terminal a line is printed at most every `ER_PROGRESS_EVERY` seconds (default 10), plus
one when the work is done; on a terminal the line is redrawn about five times a second.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from typing import Any

EVERY_ENV = "ER_PROGRESS_EVERY"
DEFAULT_EVERY = 10.0
REDRAW = 0.2  # seconds between redraws on a terminal


def log_every() -> float:
    """Seconds between progress lines off a terminal (`ER_PROGRESS_EVERY`, default 10)."""
    raw = os.environ.get(EVERY_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_EVERY
    except ValueError:
        return DEFAULT_EVERY
    return value if math.isfinite(value) and value >= 0 else DEFAULT_EVERY


def duration(seconds: float) -> str:
    """A short human duration: 42s, 3m05s, 2h14m; '?' when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _isatty() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (ValueError, AttributeError):  # a closed or replaced stderr
        return False


class Progress:
    """Counts `total` units of work. `update(n)` after each piece; `close()` (or the `with`
    block's end) finishes the line. `quiet` silences it; `tty` forces the mode (tests)."""

    def __init__(
        self,
        total: int,
        label: str,
        unit: str = "utt",
        quiet: bool = False,
        tty: bool | None = None,
        every: float | None = None,
    ):
        self.total, self.label, self.unit = max(int(total), 0), label, unit
        self.quiet = quiet
        self.tty = _isatty() if tty is None else tty
        self.every = REDRAW if self.tty else (log_every() if every is None else every)
        self.done = 0
        self.start = time.monotonic()
        self.last = self.start
        self.drawn = False  # a terminal line is open (needs its newline at close)
        self.shown = -1  # the count the last line showed
        self.closed = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(finished=exc[0] is None)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.quiet:
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The progress line as it would be printed now."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        return (
            f"{self.label}: {self.done}/{self.total} {self.unit}{pct}, "
            f"{_rate(rate)} {self.unit}/s, elapsed {duration(elapsed)}, ETA {duration(left)}"
        )

    def _draw(self, now: float) -> None:
        self.shown = self.done
        text = self.line(now)
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if self.tty:
                print("\r" + text + "\x1b[K", end="", file=sys.stderr, flush=True)
                self.drawn = True
            else:
                print(text, file=sys.stderr, flush=True)

    def close(self, finished: bool = True) -> None:
        """End the line: the final count on a terminal and in a log (unless quiet)."""
        if self.closed:
            return
        self.closed = True
        if self.quiet or (not finished and not self.drawn):
            return
        if (finished or self.tty) and self.shown != self.done:
            self._draw(time.monotonic())
        if self.tty:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                print(file=sys.stderr, flush=True)


def _rate(r: float) -> str:
    return f"{r:.1f}" if r < 100 else f"{r:.0f}"
