"""`moe`: a mixture of experts over the concatenated modality tokens, top-k routed per utterance.

    x = tokens.flatten(1)                      (N, M·W), the tokens side by side
    p = softmax(router(x))                     (N, E)
    h = Σ_{e in top-k(p)} g_e · expert_e(x)    g = p renormalised over the chosen k

Every utterance is routed on its own and there is no expert capacity, so an utterance's output
never depends on which others share its batch (capacity limits would drop tokens by batch).

Load balancing (Shazeer et al. 2017 / Switch Transformer, Fedus et al. 2021), in training only:

    moe_balance = balance_weight · E · Σ_e f_e · P_e

with f_e the fraction of the batch's top-k slots that went to expert e (the share of utterances
whose top-k includes e, divided by k, so Σ_e f_e = 1) and P_e the mean router probability of e.
It is 1 · balance_weight when routing is uniform and grows to E · balance_weight when a single
expert takes everything (k = 1). In eval mode aux is empty (the trainer sums aux into training losses only).
The routing, gating and balance maths live in routing.py, shared with the `moe` head.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import torch
from er_core import Config, NonNegativeFloat
from msgspec import Meta
from torch import nn

from er_models.fusion_base import Aux, FusionInputs
from er_models.registry import register
from er_models.routing import balance_loss, check_top_k, mix, top_k_gates, top_k_rule


class MoEConfig(Config, frozen=True):
    experts: Annotated[int, Meta(ge=1)] = 4  # number of expert MLPs
    top_k: Annotated[int, Meta(ge=1)] = 2  # experts used per utterance, at most `experts`
    hidden: Annotated[int, Meta(ge=1)] = 256  # hidden width of each expert
    out: Annotated[int, Meta(ge=1)] = 256  # output width of each expert (= the fused width)
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.1  # inside each expert
    balance_weight: NonNegativeFloat = 0.01  # weight of the load-balancing loss

    def check(self, origins: Mapping[str, str]) -> None:
        top_k_rule(self.top_k, self.experts, origins)


class MoE(nn.Module):
    def __init__(self, cfg: MoEConfig, inputs: FusionInputs) -> None:
        super().__init__()
        d = len(inputs.modalities) * inputs.width
        self.router = nn.Linear(d, cfg.experts)
        self.experts = nn.ModuleList(
            nn.Sequential(
                nn.Linear(d, cfg.hidden),
                nn.GELU(),
                nn.Dropout(cfg.dropout),
                nn.Linear(cfg.hidden, cfg.out),
            )
            for _ in range(cfg.experts)
        )
        self.top_k = cfg.top_k
        self.balance_weight = cfg.balance_weight
        self.out_dim = cfg.out

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, M·W) -> router probabilities (N, E), gates (N, E) with exactly k non-zero
        entries per row summing to 1, and the chosen experts (N, k)."""
        probs = self.router(x).softmax(dim=-1)  # (N, E)
        gates, chosen = top_k_gates(probs, self.top_k)
        return probs, gates, chosen

    def balance_loss(self, probs: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """balance_weight · E · Σ_e f_e · P_e (see routing.py)."""
        return balance_loss(probs, chosen, self.top_k, self.balance_weight)

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, Aux]:
        x = tokens.flatten(1)  # (N, M·W)
        probs, gates, chosen = self.route(x)
        h = mix(x, self.experts, gates, chosen, self.out_dim)  # (N, out)
        aux = {"moe_balance": self.balance_loss(probs, chosen)} if self.training else {}
        return h, aux


@register("fusion", "moe", MoEConfig)
def _moe(cfg: MoEConfig, inputs: FusionInputs) -> nn.Module:
    """Mixture of expert MLPs over the concatenated tokens, top-k routed, load-balanced (out)."""
    check_top_k("fusion", cfg.top_k, cfg.experts)
    return MoE(cfg, inputs)
