"""The simplest fusions: `concat` (the tokens side by side) and `deep` (an MLP over them)."""

from __future__ import annotations

from typing import Annotated

import torch
from er_core import Config
from msgspec import Meta
from torch import nn

from er_models.fusion_base import Aux, FusionInputs
from er_models.registry import register


class ConcatConfig(Config, frozen=True):
    """`concat` has no options: the fused vector is the M tokens side by side (M·W wide)."""


class Concat(nn.Module):
    def __init__(self, inputs: FusionInputs) -> None:
        super().__init__()
        self.out_dim = len(inputs.modalities) * inputs.width

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, Aux]:
        return tokens.flatten(1), {}  # (N, M, W) -> (N, M·W)


@register("fusion", "concat", ConcatConfig)
def _concat(cfg: ConcatConfig, inputs: FusionInputs) -> nn.Module:
    """Vanilla late fusion: the projected modality vectors concatenated (M·W)."""
    return Concat(inputs)


class DeepConfig(Config, frozen=True):
    hidden: Annotated[int, Meta(ge=1)] = 512  # width of each hidden layer
    layers: Annotated[int, Meta(ge=1)] = 2  # hidden layers of the MLP
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.1


class Deep(nn.Module):
    def __init__(self, cfg: DeepConfig, inputs: FusionInputs) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = len(inputs.modalities) * inputs.width
        for _ in range(cfg.layers):
            blocks += [nn.Linear(width, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout)]
            width = cfg.hidden
        self.mlp = nn.Sequential(*blocks)
        self.out_dim = cfg.hidden

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, Aux]:
        return self.mlp(tokens.flatten(1)), {}  # (N, M·W) -> (N, hidden)


@register("fusion", "deep", DeepConfig)
def _deep(cfg: DeepConfig, inputs: FusionInputs) -> nn.Module:
    """An MLP over the concatenated modality vectors."""
    return Deep(cfg, inputs)
