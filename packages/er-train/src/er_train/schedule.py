"""The learning-rate schedule: linear warmup, then cosine or linear decay to 0 (or constant).

A pure function of the optimizer step, so a resumed run needs no scheduler state.
"""

from __future__ import annotations

import math


def lr_factor(step: int, total: int, warmup: float, decay: str) -> float:
    """Multiplier of the base rate for optimizer step `step` (0-based) of `total`."""
    warm = round(warmup * total)
    if step < warm:
        return (step + 1) / warm
    if decay == "constant":
        return 1.0
    span = max(total - warm, 1)
    progress = min((step - warm) / span, 1.0)
    if decay == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))
