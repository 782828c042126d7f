"""Dev and test metrics of one split, named `<task>/<metric>` (fractions, not percent).

Classification: accuracy, weighted_f1, macro_f1 (er_core.metrics, defined as scikit-learn
defines them, over all the task's classes). Regression: mae, mse and Pearson's r (`corr`).
er-eval computes the full set (per-class scores, confusion matrices, CH-SIMS accuracies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from er_core import ErError, accuracy, macro_f1, weighted_f1

if TYPE_CHECKING:
    from er_train.data import Data

LOWER_IS_BETTER = ("mae", "mse", "loss")


def task_metrics(
    name: str, classes: int, output: torch.Tensor, target: torch.Tensor
) -> dict[str, float]:
    if classes:
        pred = output.argmax(dim=-1).numpy()
        y = target.numpy()
        return {
            f"{name}/accuracy": accuracy(y, pred),
            f"{name}/weighted_f1": weighted_f1(y, pred, classes),
            f"{name}/macro_f1": macro_f1(y, pred, classes),
        }
    p, y = output.double().numpy(), target.double().numpy()
    corr = float(np.corrcoef(p, y)[0, 1]) if p.size > 1 and p.std() > 0 and y.std() > 0 else 0.0
    return {
        f"{name}/mae": float(np.mean(np.abs(p - y))),
        f"{name}/mse": float(np.mean((p - y) ** 2)),
        f"{name}/corr": corr,
    }


def selection(select: str, main: str, regression: bool, known: list[str]) -> tuple[str, bool]:
    """The dev metric that picks the epoch, as `<task>/<metric>`, and whether higher is better."""
    name = select or ("mae" if regression else "weighted_f1")
    if "/" not in name:
        name = f"{main}/{name}"
    if name not in known:
        raise ErError(
            f"unknown selection metric '{select or name}'",
            at="$.train.select",
            hint=f"dev metrics of this run: {', '.join(known)}",
        )
    return name, name.rsplit("/", 1)[1] not in LOWER_IS_BETTER


def better(score: float, best: float | None, higher: bool) -> bool:
    return best is None or (score > best if higher else score < best)


def split_metrics(
    data: Data, rows: torch.Tensor, outputs: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Every metric of every task on one split's outputs (rows: the table rows predicted)."""
    out: dict[str, float] = {}
    for name, o in outputs.items():
        t = data.tasks[name]
        out |= task_metrics(name, t.spec.classes, o, t.target[rows].cpu())
    return out


def metric_names(data: Data) -> list[str]:
    """The names `split_metrics` gives for this data's tasks."""
    names = []
    for n, t in data.tasks.items():
        kinds = (
            ("mae", "mse", "corr") if t.spec.regression else ("accuracy", "weighted_f1", "macro_f1")
        )
        names += [f"{n}/{k}" for k in kinds]
    return names
