"""The training loop's finite guard: a loss or a dev pass that goes NaN or inf stops the run.

A NaN loss poisons every weight at the next optimizer step, and then every later epoch: left
alone, such a run ends "complete", exit 0, with NaN weights and a dev score chosen from garbage.
So each step's loss (summed over the ranks under torchrun, so every rank sees the same value and
they all stop together) and each epoch's dev outputs and metrics are checked here, before the
step is taken or the epoch recorded. The run folder is then marked failed (runs.mark_failed),
never finished.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from er_core import ErError

HINT = "lower train.lr, or set train.grad_clip (e.g. 1.0)"


class Diverged(ErError):
    """Training produced a non-finite number; `at` is set to the run folder by the caller."""

    def __init__(self, what: str, epoch: int, step: int | None = None) -> None:
        where = f"at epoch {epoch}" + (f" step {step}" if step is not None else "")
        super().__init__(f"training diverged: {what} {where}", hint=HINT)
        self.epoch, self.step = epoch, step


def _name(value: float) -> str:
    return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"


def check_loss(value: float, epoch: int, step: int) -> None:
    """`value`: one micro-batch's training loss; `epoch` and `step` (within the epoch) count
    from 1, as the progress lines do."""
    if not math.isfinite(value):
        raise Diverged(f"the loss is {_name(value)}", epoch, step)


def check_grad_norm(norm: float, epoch: int, step: int) -> None:
    """The gradient norm of a step (a finite loss can still give NaN gradients)."""
    if not math.isfinite(norm):
        raise Diverged(f"the gradient norm is {_name(norm)}", epoch, step)


def check_dev(outputs: Mapping[str, torch.Tensor], metrics: Mapping[str, float], epoch: int):
    """The dev pass of epoch `epoch` (from 1): every output and every metric finite."""
    for task, out in outputs.items():
        bad = ~torch.isfinite(out)
        if bad.any():
            rows = int(bad.reshape(out.shape[0], -1).any(dim=1).sum())
            raise Diverged(f"the dev predictions for {task} are not finite in {rows} rows", epoch)
    for name, value in metrics.items():
        if not math.isfinite(value):
            raise Diverged(f"the dev metric {name} is {_name(value)}", epoch)
