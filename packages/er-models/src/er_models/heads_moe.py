"""Head `moe`: a mixture of expert classifiers over z, top-k routed per utterance.

    p = softmax(router(z))                      (N, E)       router: Linear(D, E)
    y = Σ_{e in top-k(p)} g_e · expert_e(z)     (N, Σ_t C_t) g = p renormalised over the chosen k
    {task t: y[:, its C_t columns]}             (N, C_t), or (N,) for a regression task

Each expert predicts every task of the run at once (one Linear to the sum of the tasks' output
sizes, or with `hidden` > 0 a small MLP), so the router picks specialists per utterance, not per
task. Task losses are weighted with `weights` as in the `multi-task` head, so the head serves one
task or several. Routing, gates and the load-balancing loss are those of the `moe` fusion
(routing.py): each utterance is routed on its own, with no capacity, so an output never depends
on the batch. In training mode the head also returns

    aux = {"moe_head_balance": balance_weight · E · Σ_e f_e · P_e}

which ERModel merges into Output.aux; in eval mode aux is empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import torch
from er_core import ErError, NonNegativeFloat
from msgspec import Meta
from torch import nn

from er_models.heads import MultiTaskConfig, _layer
from er_models.registry import register
from er_models.routing import balance_loss, check_top_k, mix, top_k_gates, top_k_rule
from er_models.spec import TaskSpec


class MoEHeadConfig(MultiTaskConfig, frozen=True):
    # hidden (0: each expert is one Linear; > 0: an MLP of this width), dropout (inside each
    # expert) and weights (task -> loss weight) as in the multi-task head
    experts: Annotated[int, Meta(ge=1)] = 4  # number of expert classifiers
    top_k: Annotated[int, Meta(ge=1)] = 2  # experts used per utterance, at most `experts`
    balance_weight: NonNegativeFloat = 0.01  # weight of the load-balancing loss

    def check(self, origins: Mapping[str, str]) -> None:
        top_k_rule(self.top_k, self.experts, origins)


class MoEHead(nn.Module):
    def __init__(self, cfg: MoEHeadConfig, in_dim: int, tasks: tuple[TaskSpec, ...]) -> None:
        super().__init__()
        self.tasks = tasks
        self.sizes = [max(t.classes, 1) for t in tasks]  # a regression task: one column
        self.out_dim = sum(self.sizes)
        self.router = nn.Linear(in_dim, cfg.experts)
        self.experts = nn.ModuleList(_layer(cfg, in_dim, self.out_dim) for _ in range(cfg.experts))
        self.top_k = cfg.top_k
        self.balance_weight = cfg.balance_weight
        self.task_weights = {t.name: float(cfg.weights.get(t.name, 1.0)) for t in tasks}

    def route(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (N, D) -> router probabilities (N, E), gates (N, E) and the chosen experts (N, k)."""
        probs = self.router(z).softmax(dim=-1)  # (N, E)
        gates, chosen = top_k_gates(probs, self.top_k)
        return probs, gates, chosen

    def forward(self, z: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        probs, gates, chosen = self.route(z)
        y = mix(z, self.experts, gates, chosen, self.out_dim)  # (N, Σ C_t)
        outputs = {}
        for t, part in zip(self.tasks, y.split(self.sizes, dim=-1), strict=True):
            outputs[t.name] = part.squeeze(-1) if t.regression else part  # (N, C) or (N,)
        aux = {}
        if self.training:
            aux["moe_head_balance"] = balance_loss(probs, chosen, self.top_k, self.balance_weight)
        return outputs, aux


@register("head", "moe", MoEHeadConfig)
def _moe(cfg: MoEHeadConfig, in_dim: int, tasks: tuple[TaskSpec, ...]) -> nn.Module:
    """Mixture of expert classifiers for every task, top-k routed per utterance, load-balanced."""
    check_top_k("head", cfg.top_k, cfg.experts)
    unknown = sorted(set(cfg.weights) - {t.name for t in tasks})
    if unknown:
        raise ErError(
            f"head weights name tasks the run does not predict: {', '.join(unknown)}",
            at="$.head.weights",
            hint=f"tasks here: {', '.join(t.name for t in tasks)}",
        )
    return MoEHead(cfg, in_dim, tasks)
