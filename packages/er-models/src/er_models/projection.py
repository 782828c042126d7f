"""Per-modality projection to the shared width, with an explicit token for a missing modality.

A modality is missing for an utterance when its feature row was a fallback (er-features flags
it: no face, no audio, bad media). Its zero row is not fed to the network as if it were data:
the projection puts a learned `missing` vector for that modality in its place, and fusions that
attend over modalities also mask it out as a key.
"""

from __future__ import annotations

import torch
from torch import nn

from er_models.spec import ModelSection


class Projection(nn.Module):
    """{modality: (N, d_m)} -> tokens (N, M, width), in the order of `dims`."""

    def __init__(self, cfg: ModelSection, dims: dict[str, int]) -> None:
        super().__init__()
        self.modalities = list(dims)
        self.proj = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Dropout(cfg.dropout),
                    nn.Linear(d, cfg.width),
                    nn.LayerNorm(cfg.width) if cfg.layer_norm else nn.Identity(),
                    nn.GELU(),
                )
                for m, d in dims.items()
            }
        )
        # one learned vector per modality stands in where that modality is missing
        self.missing = nn.Parameter(torch.zeros(len(dims), cfg.width))
        nn.init.normal_(self.missing, std=0.02)

    def forward(self, feats: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        # feats[m]: (N, d_m); present: (N, M) bool
        tokens = torch.stack([self.proj[m](feats[m]) for m in self.modalities], dim=1)  # (N, M, W)
        missing = self.missing.to(tokens.dtype).unsqueeze(0).expand_as(tokens)  # (N, M, W)
        return torch.where(present.unsqueeze(-1), tokens, missing)
