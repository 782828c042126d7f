"""`transformer`: self-attention over each dialogue's turns (a pre-norm Transformer encoder).

    h (N, D) -> to_padded (B, T, D) -> linear to width W (B, T, W)
      + turn position + speaker slot embeddings
      -> TransformerEncoder, keys at padding masked (and later turns, when causal)
      -> final LayerNorm (B, T, W) -> [+ residual] -> from_padded (N, out_dim)

Attention runs over the T turns of each dialogue, (B, T, W), never over the N utterances of the
batch. Padded keys are masked, so a dialogue's outputs do not change with the other dialogues in
its batch; the nested-tensor shortcut is off so CPU results stay the same whatever the padding.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from er_core import Config, ErError
from msgspec import Meta
from torch import nn

from er_models.context import ContextInputs, from_padded, to_padded
from er_models.registry import register


class TransformerConfig(Config, frozen=True):
    width: Annotated[int, Meta(ge=1)] = 256  # the fused input is projected to this width
    layers: Annotated[int, Meta(ge=1)] = 2
    heads: Annotated[int, Meta(ge=1)] = 4  # must divide width
    ff: Annotated[int, Meta(ge=0)] = 0  # feed-forward width; 0: 2·width
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.1
    causal: bool = False  # true: turn t attends to turns 0..t only (online prediction)
    speakers: bool = True  # add a learned embedding of the dialogue-local speaker slot
    # "learned": one vector per turn index up to max_turns, later turns share the last one;
    # "sinusoidal": fixed sin/cos of the turn index (any length, max_turns unused); "none"
    positions: Literal["learned", "sinusoidal", "none"] = "learned"
    max_turns: Annotated[int, Meta(ge=1)] = 64
    # "add" (default): + the projected input, so a turn's own features reach the head past the
    # final norm; "concat": [context, input] side by side (out_dim = width + D); "none"
    residual: Literal["none", "add", "concat"] = "add"


def sinusoidal(t: int, width: int) -> torch.Tensor:
    """(t, width) fixed position codes (Vaswani et al. 2017), sin and cos interleaved."""
    pos = torch.arange(t, dtype=torch.float32).unsqueeze(1)  # (t, 1)
    freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(1e4) / width))
    out = torch.zeros(t, width)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: width // 2])  # an odd width has one sin more
    return out


class TransformerContext(nn.Module):
    def __init__(self, cfg: TransformerConfig, inputs: ContextInputs) -> None:
        super().__init__()
        if cfg.width % cfg.heads:
            raise ErError(
                f"context 'transformer': heads ({cfg.heads}) must divide width ({cfg.width})",
                at="$.context.heads",
                hint="pick heads among the divisors of width, e.g. 4 or 8 for width 256",
            )
        self.cfg = cfg
        self.max_speakers = inputs.max_speakers
        self.inp = nn.Linear(inputs.in_dim, cfg.width)
        self.pos = nn.Embedding(cfg.max_turns, cfg.width) if cfg.positions == "learned" else None
        self.speaker = nn.Embedding(inputs.max_speakers, cfg.width) if cfg.speakers else None
        for emb in (self.pos, self.speaker):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)  # small next to the projected input
        layer = nn.TransformerEncoderLayer(
            cfg.width,
            cfg.heads,
            dim_feedforward=cfg.ff or 2 * cfg.width,
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # pre-norm layers leave the residual stream unnormalised: a final LayerNorm closes it.
        # Nested tensors (the eval shortcut that drops padding) are off: torch would only warn
        # that norm_first disables them, and they would tie results to the batch's padding.
        self.encoder = nn.TransformerEncoder(
            layer, cfg.layers, norm=nn.LayerNorm(cfg.width), enable_nested_tensor=False
        )
        self.out_dim = cfg.width + (inputs.in_dim if cfg.residual == "concat" else 0)

    def forward(
        self, h: torch.Tensor, layout: torch.Tensor, speakers: torch.Tensor
    ) -> torch.Tensor:
        cfg = self.cfg
        t = layout.shape[1]
        real = layout >= 0  # (B, T)
        x0 = self.inp(h)  # (N, W), projected once: padding stays zero
        x = to_padded(x0, layout)  # (B, T, W)
        if self.pos is not None:
            idx = torch.arange(t, device=h.device).clamp(max=cfg.max_turns - 1)  # (T,)
            x = x + self.pos(idx).to(x.dtype)  # (T, W) broadcast over B
        elif cfg.positions == "sinusoidal":
            x = x + sinusoidal(t, cfg.width).to(x)
        if self.speaker is not None:
            # speaker slots are arbitrary at padding: clamp so the lookup is always valid
            x = x + self.speaker(speakers.clamp(0, self.max_speakers - 1)).to(x.dtype)
        # True = this key is ignored. A row with no real turn keeps all its keys: softmax over
        # an empty set is NaN (torch's fused eval path, and older torch in training), and NaN
        # in a discarded row would still poison the gradients.
        pad = ~real & real.any(1, keepdim=True)  # (B, T)
        mask = None
        if cfg.causal:
            # (T, T) True above the diagonal: turn t never sees a later turn. Padding follows the
            # real turns, so every real query keeps at least itself as a key.
            mask = torch.ones(t, t, dtype=torch.bool, device=h.device).triu(1)
        y = from_padded(self.encoder(x, mask=mask, src_key_padding_mask=pad), layout)  # (N, W)
        if cfg.residual == "add":
            return y + x0
        if cfg.residual == "concat":
            return torch.cat([y, h], dim=-1)  # (N, W + D)
        return y


@register("context", "transformer", TransformerConfig)
def _transformer(cfg: TransformerConfig, inputs: ContextInputs) -> nn.Module:
    """Self-attention over each dialogue's turns, with turn positions and speaker slots."""
    return TransformerContext(cfg, inputs)
