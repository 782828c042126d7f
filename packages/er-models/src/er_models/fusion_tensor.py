"""Multiplicative fusions: `tfn` (the full outer product) and `lmf` (its low-rank factorisation).

TFN (Zadeh et al., EMNLP 2017): each modality vector z_m, reduced to `rank_dim`, gets a constant
1 appended so the product keeps every unimodal and bimodal term alongside the trimodal one:

    Z = [z_1, 1] ⊗ [z_2, 1] ⊗ ... ⊗ [z_M, 1]     (d+1)^M entries, flattened in T, A, V order
    h = MLP(Z)

LMF (Liu et al., ACL 2018) computes W · Z for a weight tensor W factorised into `rank` terms
without ever forming Z:

    h = Σ_r w_r · Π_m ([z_m, 1] · W_m[r]) + b      W_m: (rank, W+1, out)
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from er_core import Config, ErError
from msgspec import Meta
from torch import nn

from er_models.fusion_base import Aux, FusionInputs
from er_models.registry import register

MAX_OUTER = 1 << 20  # entries of the TFN outer product beyond which the first layer is absurd


class TFNConfig(Config, frozen=True):
    rank_dim: Annotated[int, Meta(ge=0)] = 32  # each token reduced to this width; 0 = keep W
    hidden: Annotated[int, Meta(ge=1)] = 128  # width of the two post-fusion layers (= out)
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.1  # on the outer product


class LMFConfig(Config, frozen=True):
    rank: Annotated[int, Meta(ge=1)] = 4  # rank of the factorised weight tensor
    out: Annotated[int, Meta(ge=1)] = 256  # fused width


def with_one(z: torch.Tensor) -> torch.Tensor:
    """(..., d) -> (..., d+1): the constant 1 that keeps lower-order terms in the product."""
    return torch.cat([z, z.new_ones((*z.shape[:-1], 1))], dim=-1)


class TFN(nn.Module):
    def __init__(self, cfg: TFNConfig, inputs: FusionInputs) -> None:
        super().__init__()
        m, w = len(inputs.modalities), inputs.width
        d = cfg.rank_dim or w
        self.reduce = nn.ModuleList(
            nn.Linear(w, d) if cfg.rank_dim else nn.Identity() for _ in range(m)
        )
        self.mlp = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear((d + 1) ** m, cfg.hidden),
            nn.GELU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.GELU(),
        )
        self.out_dim = cfg.hidden

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, Aux]:
        outer = None
        for m, reduce in enumerate(self.reduce):
            z = with_one(reduce(tokens[:, m]))  # (N, d+1)
            # (N, P) x (N, d+1) -> (N, P·(d+1)), row-major: the einsum "ni,nj,nk->nijk" flattened
            outer = z if outer is None else (outer.unsqueeze(-1) * z.unsqueeze(1)).flatten(1)
        return self.mlp(outer), {}  # (N, hidden)


class LMF(nn.Module):
    def __init__(self, cfg: LMFConfig, inputs: FusionInputs) -> None:
        super().__init__()
        m, w = len(inputs.modalities), inputs.width
        # std 1/sqrt(W+1) gives each factor output about unit variance; the paper's Xavier init
        # makes every factor small, and their M-fold product vanishes
        self.factors = nn.ParameterList(
            nn.Parameter(torch.randn(cfg.rank, w + 1, cfg.out) / math.sqrt(w + 1)) for _ in range(m)
        )
        self.rank_weights = nn.Parameter(torch.randn(cfg.rank) / math.sqrt(cfg.rank))  # (rank,)
        self.bias = nn.Parameter(torch.zeros(cfg.out))  # (out,)
        self.out_dim = cfg.out

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, Aux]:
        z = with_one(tokens)  # (N, M, W+1)
        prod = None
        for m, factor in enumerate(self.factors):
            zm = torch.einsum("nd,rdo->nro", z[:, m], factor)  # (N, rank, out)
            prod = zm if prod is None else prod * zm
        return torch.einsum("nro,r->no", prod, self.rank_weights) + self.bias, {}  # (N, out)


@register("fusion", "tfn", TFNConfig)
def _tfn(cfg: TFNConfig, inputs: FusionInputs) -> nn.Module:
    """Tensor Fusion Network: MLP over the outer product of the [z_m, 1] vectors (hidden)."""
    d = cfg.rank_dim or inputs.width
    size = (d + 1) ** len(inputs.modalities)
    if size > MAX_OUTER:
        raise ErError(
            f"fusion 'tfn': the outer product has {size:,} entries, too many for a linear layer",
            at="$.fusion.rank_dim",
            hint="reduce each modality first, e.g. rank_dim = 32",
        )
    return TFN(cfg, inputs)


@register("fusion", "lmf", LMFConfig)
def _lmf(cfg: LMFConfig, inputs: FusionInputs) -> nn.Module:
    """Low-rank Multimodal Fusion: Σ_r w_r · Π_m [z_m, 1]·W_m[r], the TFN without its tensor (out)."""
    return LMF(cfg, inputs)
