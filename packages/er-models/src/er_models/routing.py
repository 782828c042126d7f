"""Top-k routing for mixtures of experts, shared by the `moe` fusion and the `moe` head.

Every utterance is routed on its own, with no expert capacity, so an utterance's output never
depends on which others share its batch (capacity limits would drop utterances by batch):

    p = softmax(router(x))                     (N, E)
    g = p renormalised over its top k          (N, E), k non-zero entries per row, summing to 1
    y = Σ_{e in top-k(p)} g_e · expert_e(x)

Load balancing (Shazeer et al., ICLR 2017; Switch Transformer, Fedus et al., JMLR 2022), for
training only:

    balance = weight · E · Σ_e f_e · P_e

with f_e the fraction of the batch's top-k slots that went to expert e (the share of utterances
whose top k includes e, divided by k, so Σ_e f_e = 1; a count, so no gradient flows through it)
and P_e the batch's mean router probability of e. It is `weight` when routing is uniform and
grows to E · weight when a single expert takes everything (k = 1).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from er_core import ErError
from torch import nn


def top_k_gates(probs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Router probabilities (N, E) -> gates (N, E), with exactly k non-zero entries per row
    (the k largest probabilities, renormalised to sum to 1), and the chosen experts (N, k)."""
    top, chosen = probs.topk(k, dim=-1)  # (N, k)
    gates = torch.zeros_like(probs).scatter(1, chosen, top / top.sum(-1, keepdim=True))
    return gates, chosen


def balance_loss(probs: torch.Tensor, chosen: torch.Tensor, k: int, weight: float) -> torch.Tensor:
    """weight · E · Σ_e f_e · P_e for router probabilities (N, E) and the chosen experts (N, k)
    (see the module docstring)."""
    e = probs.shape[-1]
    picked = torch.zeros_like(probs).scatter(1, chosen, 1.0)  # (N, E) 1 where e in the top k
    f = picked.mean(0) / k  # (E,) sums to 1; no gradient (it is a count)
    p = probs.mean(0)  # (E,)
    return weight * e * (f * p).sum()


def mix(
    x: torch.Tensor,
    experts: nn.ModuleList,
    gates: torch.Tensor,
    chosen: torch.Tensor,
    out_dim: int,
) -> torch.Tensor:
    """Σ_e g_e · expert_e(x) per row (N, out_dim), running each expert on its routed rows only:
    an expert no utterance chose costs nothing (and gets no gradient)."""
    y = x.new_zeros(x.shape[0], out_dim)  # (N, out)
    for e, expert in enumerate(experts):
        rows = (chosen == e).any(-1).nonzero().squeeze(1)  # utterances routed to e
        if rows.numel():
            y = y.index_add(0, rows, gates[rows, e, None] * expert(x[rows]))
    return y


def top_k_rule(top_k: int, experts: int, origins: Mapping[str, str]) -> None:
    """A moe config's `check`: at most `experts` experts per utterance (`origins`: the section's
    key -> file, so the error names the file that set top_k)."""
    if top_k > experts:
        where = origins.get("top_k") or origins.get("experts")
        raise ErError(
            f"top_k = {top_k} is more than experts = {experts}",
            at=f"{where}:$.top_k" if where else "$.top_k",
            hint=f"set top_k to at most {experts}, or add experts",
        )


def check_top_k(family: str, top_k: int, experts: int) -> None:
    """The error for a `[family]` section (fusion or head) asking for more experts per
    utterance than it has."""
    if top_k > experts:
        raise ErError(
            f"{family} 'moe': top_k = {top_k} is more than experts = {experts}",
            at=f"$.{family}.top_k",
            hint=f"set top_k to at most {experts}, or add experts",
        )
