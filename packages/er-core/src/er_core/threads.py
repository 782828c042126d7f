"""How many CPU threads torch uses: one rule for every tool (`--threads`, `[run] threads`).

torch's own default is every core. On a machine where other jobs run that oversubscribes the
cores, and a run can take many times longer than with one thread. So er picks, in this order:

1. `--threads N` (or `[run] threads` in er-train's config);
2. the `ER_THREADS` environment variable, then `OMP_NUM_THREADS`;
3. half the cores this process may use, at least 1, at most 8.

The count is recorded (er-train: `run.threads` in the run's config) but is no part of any id.
"""

from __future__ import annotations

import contextlib
import os

from er_core.errors import UsageError

ENV = "ER_THREADS"
CAP = 8


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """The thread count when none is asked for (rules 2 and 3 above)."""
    for name in (ENV, "OMP_NUM_THREADS"):
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                n = int(raw)
            except ValueError:
                raise UsageError(
                    f"{name}={raw!r} is not a whole number",
                    at=name,
                    hint=f"set {name} to a thread count such as 1, or unset it",
                ) from None
            if n < 1:
                raise UsageError(
                    f"{name}={raw!r}: at least 1 thread",
                    at=name,
                    hint=f"set {name} to a thread count such as 1, or unset it",
                )
            return n
    return max(1, min(CAP, usable_cores() // 2))


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count to `n` (None: `default_threads()`); returns it.
    Inter-op threads are set to the same where torch still allows it (before any parallel
    work). Without torch installed, nothing is set."""
    if n is not None and n < 1:
        raise UsageError(f"--threads {n}: at least 1", at="--threads", hint="e.g. --threads 1")
    count = default_threads() if n is None else n
    try:
        import torch
    except ImportError:
        return count
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    # already set, or parallel work already started: keep it
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(count)
    return count
