"""Heads: `classification` (one task), `regression` (one real-valued target, e.g. CH-SIMS) and
`multi-task` (several targets from one representation, e.g. MELD emotion and sentiment).

A head factory is called as `build(cfg, in_dim, tasks)` and returns an `nn.Module` mapping
z (N, D) -> {task: (N, classes) logits, or (N,) for a regression task}, with a `task_weights`
attribute: task -> weight of its loss in the objective.
"""

from __future__ import annotations

from typing import Annotated

import torch
from er_core import Config, ErError, NonNegativeFloat
from msgspec import Meta
from torch import nn

from er_models.registry import register
from er_models.spec import TaskSpec


class HeadConfig(Config, frozen=True):
    hidden: Annotated[int, Meta(ge=0)] = 0  # 0: one linear layer; > 0: an MLP with this width
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.1


class MultiTaskConfig(HeadConfig, frozen=True):
    # task -> loss weight (1.0 for a task not named); >= 0: a negative weight would make the
    # optimiser maximise that task's loss
    weights: dict[str, NonNegativeFloat] = {}


def _layer(cfg: HeadConfig, in_dim: int, out: int) -> nn.Module:
    if cfg.hidden == 0:
        return nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(in_dim, out))
    return nn.Sequential(
        nn.Dropout(cfg.dropout),
        nn.Linear(in_dim, cfg.hidden),
        nn.GELU(),
        nn.Dropout(cfg.dropout),
        nn.Linear(cfg.hidden, out),
    )


class Heads(nn.Module):
    """One output layer per task over the same representation."""

    def __init__(
        self, cfg: HeadConfig, in_dim: int, tasks: tuple[TaskSpec, ...], weights: dict[str, float]
    ) -> None:
        super().__init__()
        self.tasks = tasks
        self.out = nn.ModuleDict({t.name: _layer(cfg, in_dim, max(t.classes, 1)) for t in tasks})
        self.task_weights = {t.name: float(weights.get(t.name, 1.0)) for t in tasks}

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for t in self.tasks:
            y = self.out[t.name](z)  # (N, C), or (N, 1) for regression
            out[t.name] = y.squeeze(-1) if t.regression else y
        return out


def _one(kind: str, tasks: tuple[TaskSpec, ...], regression: bool) -> None:
    want = "regression" if regression else "classification"
    if len(tasks) != 1 or tasks[0].regression != regression:
        got = ", ".join(
            f"{t.name} ({'regression' if t.regression else 'classification'})" for t in tasks
        )
        raise ErError(
            f"head '{kind}' predicts one {want} task, got: {got}",
            at="$.head.kind",
            hint="use head kind multi-task for several tasks, or pick the matching head",
        )


@register("head", "classification", HeadConfig)
def _classification(cfg: HeadConfig, in_dim: int, tasks: tuple[TaskSpec, ...]) -> nn.Module:
    """Logits over the classes of one classification task."""
    _one("classification", tasks, regression=False)
    return Heads(cfg, in_dim, tasks, {})


@register("head", "regression", HeadConfig)
def _regression(cfg: HeadConfig, in_dim: int, tasks: tuple[TaskSpec, ...]) -> nn.Module:
    """One real value per utterance (e.g. CH-SIMS sentiment in [-1, 1])."""
    _one("regression", tasks, regression=True)
    return Heads(cfg, in_dim, tasks, {})


@register("head", "multi-task", MultiTaskConfig)
def _multi(cfg: MultiTaskConfig, in_dim: int, tasks: tuple[TaskSpec, ...]) -> nn.Module:
    """One output per task (e.g. emotion and sentiment), losses summed with `weights`."""
    unknown = sorted(set(cfg.weights) - {t.name for t in tasks})
    if unknown:
        raise ErError(
            f"head weights name tasks the run does not predict: {', '.join(unknown)}",
            at="$.head.weights",
            hint=f"tasks here: {', '.join(t.name for t in tasks)}",
        )
    return Heads(cfg, in_dim, tasks, dict(cfg.weights))
