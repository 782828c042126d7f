"""Attention over the modality tokens: `attention` (self-attention, then pooling) and
`cross-attention` (the text token queries the audio and video tokens).

Attention runs over the M axis of (N, M, W) with `batch_first=True`, one sequence per utterance,
so utterances never see each other. Missing modalities are masked as keys (`key_mask`) and left
out of the mean pooling; an utterance with nothing present attends over its missing vectors.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from er_core import Config, ErError
from msgspec import Meta
from torch import nn

from er_models.fusion_base import Aux, FusionInputs, key_mask
from er_models.registry import register


class AttentionConfig(Config, frozen=True):
    heads: Annotated[int, Meta(ge=1)] = 4  # must divide the width
    layers: Annotated[int, Meta(ge=1)] = 1  # attention + FFN blocks
    ffn: Annotated[int, Meta(ge=1)] = 2  # FFN hidden width = ffn · width
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.1
    pool: Literal["mean", "query"] = "mean"  # mean over present modalities, or a learned query


class CrossAttentionConfig(Config, frozen=True):
    heads: Annotated[int, Meta(ge=1)] = 4  # must divide the width
    layers: Annotated[int, Meta(ge=1)] = 1  # attention + FFN blocks, the text token re-queries
    ffn: Annotated[int, Meta(ge=1)] = 2  # FFN hidden width = ffn · width
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.1


class Block(nn.Module):
    """Post-norm transformer block: q = LN(q + MHA(q, kv, kv)); q = LN(q + FFN(q))."""

    def __init__(self, width: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(width)
        self.ffn = nn.Sequential(
            nn.Linear(width, ffn * width),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ffn * width, width),
        )
        self.norm2 = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # q (N, Q, W), kv (N, K, W), mask (N, K) True = ignore that key
        a, _ = self.attn(q, kv, kv, key_padding_mask=mask, need_weights=False)
        q = self.norm1(q + self.drop(a))
        return self.norm2(q + self.drop(self.ffn(q)))


def _check_heads(width: int, heads: int) -> None:
    if width % heads:
        raise ErError(
            f"fusion width {width} is not divisible by heads {heads}",
            at="$.fusion.heads",
            hint="pick heads dividing model.width (e.g. 4 or 8 for width 256)",
        )


class SelfAttention(nn.Module):
    def __init__(self, cfg: AttentionConfig, inputs: FusionInputs) -> None:
        super().__init__()
        w, m = inputs.width, len(inputs.modalities)
        # which token is which modality: the projections differ, but attention is order-blind
        self.embed = nn.Parameter(torch.randn(m, w) * 0.02)  # (M, W)
        self.blocks = nn.ModuleList(
            Block(w, cfg.heads, cfg.ffn, cfg.dropout) for _ in range(cfg.layers)
        )
        self.pool = cfg.pool
        if cfg.pool == "query":
            self.query = nn.Parameter(torch.randn(1, 1, w) * 0.02)  # (1, 1, W)
            self.pool_attn = nn.MultiheadAttention(w, cfg.heads, batch_first=True)
        self.out_dim = w

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, Aux]:
        mask = key_mask(present)  # (N, M) True = ignore
        x = tokens + self.embed  # (N, M, W)
        for block in self.blocks:
            x = block(x, x, mask)  # (N, M, W)
        if self.pool == "query":
            q = self.query.expand(x.shape[0], -1, -1)  # (N, 1, W)
            h, _ = self.pool_attn(q, x, x, key_padding_mask=mask, need_weights=False)
            return h.squeeze(1), {}  # (N, W)
        keep = (~mask).to(x.dtype).unsqueeze(-1)  # (N, M, 1): present (or all, if none is)
        return (x * keep).sum(1) / keep.sum(1), {}  # (N, W)


class CrossAttention(nn.Module):
    def __init__(self, cfg: CrossAttentionConfig, inputs: FusionInputs) -> None:
        super().__init__()
        w, mods = inputs.width, inputs.modalities
        self.text = mods.index("text")
        self.others = [i for i in range(len(mods)) if i != self.text]
        self.embed = nn.Parameter(torch.randn(len(self.others), w) * 0.02)  # (M-1, W)
        self.blocks = nn.ModuleList(
            Block(w, cfg.heads, cfg.ffn, cfg.dropout) for _ in range(cfg.layers)
        )
        self.out_dim = 2 * w

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, Aux]:
        text = tokens[:, self.text]  # (N, W)
        kv = tokens[:, self.others] + self.embed  # (N, M-1, W)
        mask = key_mask(present[:, self.others])  # (N, M-1): missing audio/video ignored
        q = text.unsqueeze(1)  # (N, 1, W)
        for block in self.blocks:
            q = block(q, kv, mask)  # (N, 1, W)
        # the raw text token rides along, so the head still sees text when A/V add nothing
        return torch.cat([q.squeeze(1), text], dim=-1), {}  # (N, 2W)


@register("fusion", "attention", AttentionConfig)
def _attention(cfg: AttentionConfig, inputs: FusionInputs) -> nn.Module:
    """Self-attention over the modality tokens, pooled by mean over present ones or a query (W)."""
    _check_heads(inputs.width, cfg.heads)
    return SelfAttention(cfg, inputs)


@register("fusion", "cross-attention", CrossAttentionConfig)
def _cross_attention(cfg: CrossAttentionConfig, inputs: FusionInputs) -> nn.Module:
    """Text attends to audio and video; out = [attended text ; text token] (2W).

    The text token is the query of every block; the audio/video tokens (plus a learned modality
    embedding) are keys and values, masked where missing. Needs text and one other modality.
    """
    if "text" not in inputs.modalities:
        raise ErError(
            "fusion 'cross-attention' needs the text modality as its query",
            at="$.fusion.kind",
            hint="add text to the modalities (e.g. T+A+V), or use fusion kind 'attention'",
        )
    if len(inputs.modalities) < 2:
        raise ErError(
            "fusion 'cross-attention' needs audio or video besides text to attend to",
            at="$.fusion.kind",
            hint="add audio or video to the modalities, or use fusion kind 'concat' for text alone",
        )
    _check_heads(inputs.width, cfg.heads)
    return CrossAttention(cfg, inputs)
