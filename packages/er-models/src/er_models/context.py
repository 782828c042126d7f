"""Dialogue context over the utterance sequence, and the `none` context.

A context factory is called as `build(cfg, ContextInputs)` and returns an `nn.Module` with an
`out_dim` attribute whose forward maps

    h (N, D), layout (B, T) long, speakers (B, T) long  ->  (N, out_dim)

`h` holds the N real utterances of the batch (fused, one row each). `layout[b, t]` is the row of
`h` holding turn t of dialogue b, or -1 where dialogue b is shorter than T (padding).
`speakers[b, t]` is the dialogue-local speaker slot (0 = the first to speak in that dialogue,
capped at max_speakers - 1; anything at padding). A context model must ignore padding: a
dialogue's outputs do not change with the length of the others in its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from er_core import Config
from torch import nn

from er_models.registry import register


@dataclass(frozen=True)
class ContextInputs:
    in_dim: int  # D, the fused width
    max_speakers: int  # speaker slots per dialogue


def to_padded(h: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """(N, D) rows -> (B, T, D), zeros at padding."""
    out = h.new_zeros((*layout.shape, h.shape[-1]))
    real = layout >= 0
    out[real] = h[layout[real]]
    return out


def from_padded(x: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (N, D): the real positions, each back at its row of h."""
    real = layout >= 0
    out = x.new_empty((int(real.sum()), x.shape[-1]))
    out[layout[real]] = x[real]
    return out


class NoneConfig(Config, frozen=True):
    """`none` has no options: each utterance is classified on its own."""


class NoContext(nn.Module):
    def __init__(self, inputs: ContextInputs) -> None:
        super().__init__()
        self.out_dim = inputs.in_dim

    def forward(
        self, h: torch.Tensor, layout: torch.Tensor, speakers: torch.Tensor
    ) -> torch.Tensor:
        return h


@register("context", "none", NoneConfig)
def _none(cfg: NoneConfig, inputs: ContextInputs) -> nn.Module:
    """No dialogue context: every utterance on its own."""
    return NoContext(inputs)
