"""`gru`: a recurrent dialogue context over each dialogue's turns, padding packed away.

    h (N, D) -> to_padded (B, T, D) [+ speaker embedding (B, T, S)]
      -> GRU over the real turns only (pack_padded_sequence with each dialogue's length)
      -> (B, T, H·dirs) -> [+ residual] -> from_padded (N, out_dim)

Padding never enters the recurrence (packed sequences stop at each dialogue's length), so a
dialogue's outputs do not depend on the other dialogues in its batch. Unidirectional, turn t
sees turns 0..t only, which suits online prediction; bidirectional (the default) also sees the
turns after it.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from er_core import Config
from msgspec import Meta
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from er_models.context import ContextInputs, from_padded, to_padded
from er_models.registry import register

Residual = Literal["none", "add", "concat"]


class GRUConfig(Config, frozen=True):
    hidden: Annotated[int, Meta(ge=1)] = 256  # per direction
    layers: Annotated[int, Meta(ge=1)] = 1
    bidirectional: bool = True  # false: turn t sees only turns 0..t (causal)
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.1  # between stacked layers and on the output
    # "add" (default): + a linear projection of the input, so an utterance's own features reach
    # the head directly and the GRU learns only the context; "concat": [gru, input] side by side
    # (out_dim = hidden·dirs + D); "none": the GRU output alone
    residual: Residual = "add"
    # > 0: a learned embedding of the dialogue-local speaker slot, this wide, concatenated to
    # each turn's input; 0: no speaker information
    speaker_dim: Annotated[int, Meta(ge=0)] = 0


class GRUContext(nn.Module):
    def __init__(self, cfg: GRUConfig, inputs: ContextInputs) -> None:
        super().__init__()
        self.residual = cfg.residual
        self.max_speakers = inputs.max_speakers
        d = inputs.in_dim
        self.speaker = (
            nn.Embedding(inputs.max_speakers, cfg.speaker_dim) if cfg.speaker_dim else None
        )
        self.gru = nn.GRU(
            d + cfg.speaker_dim,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            # torch applies this between stacked layers only (and warns when there is one)
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        width = cfg.hidden * (2 if cfg.bidirectional else 1)
        self.skip = nn.Linear(d, width) if cfg.residual == "add" else None
        self.out_dim = width + (d if cfg.residual == "concat" else 0)

    def forward(
        self, h: torch.Tensor, layout: torch.Tensor, speakers: torch.Tensor
    ) -> torch.Tensor:
        x = to_padded(h, layout)  # (B, T, D), zeros at padding
        if self.speaker is not None:
            # speaker slots are arbitrary at padding: clamp so the lookup is always valid
            slot = speakers.clamp(0, self.max_speakers - 1)  # (B, T)
            x = torch.cat([x, self.speaker(slot).to(x.dtype)], dim=-1)  # (B, T, D + S)
        # a fully padded row (length 0) cannot be packed: give it one (zero) step, dropped below
        lengths = (layout >= 0).sum(1).clamp(min=1).cpu()  # (B,)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        y, _ = self.gru(packed)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=layout.shape[1])  # (B, T, H')
        y = self.drop(from_padded(y, layout))  # (N, H·dirs)
        if self.residual == "add":
            return y + self.skip(h)
        if self.residual == "concat":
            return torch.cat([y, h], dim=-1)  # (N, H·dirs + D)
        return y


@register("context", "gru", GRUConfig)
def _gru(cfg: GRUConfig, inputs: ContextInputs) -> nn.Module:
    """A GRU over each dialogue's turns (bidirectional by default), padding packed away."""
    return GRUContext(cfg, inputs)
