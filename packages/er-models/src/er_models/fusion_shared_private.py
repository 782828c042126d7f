"""`shared-private` (MISA, Hazarika et al., ACM MM 2020): each modality token is encoded twice,
by one shared encoder (the same weights for every modality: what the modalities have in common)
and by its own private encoder (what only it carries).

    s_m = σ(W_s t_m + b_s),  p_m = σ(W_m t_m + b_m)            (N, H) each
    h = Linear([s_1, p_1, ..., s_M, p_M])                        (N, out)

`h` depends on the utterance alone. Two auxiliary losses (training only, over present
modalities only) shape the two subspaces; they use the batch, which only the loss may do:

- sp_diff = diff_weight · mean_m mean((Ŝ_mᵀ P̂_m)²): MISA's DiffLoss, pushing the shared and
  private subspaces of each modality apart. Ŝ_m, P̂_m are the (n_m, H) shared/private vectors
  of the n_m utterances where m is present, centred over those rows, each row L2-normalised
  (mean of the squared entries = squared Frobenius norm / H²). Modalities with n_m < 2 are
  skipped (centring one row leaves nothing).
- sp_sim = sim_weight · mean ‖ŝ_m − ŝ_n‖² over the pairs m < n present in the same utterance,
  ŝ the L2-normalised shared vector: the shared vectors of one utterance should agree. (A
  simpler stand-in for MISA's CMD; 0 with one modality.)
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from er_core import Config, NonNegativeFloat
from msgspec import Meta
from torch import nn

from er_models.fusion_base import Aux, FusionInputs
from er_models.registry import register


class SharedPrivateConfig(Config, frozen=True):
    hidden: Annotated[int, Meta(ge=1)] = 128  # H, width of each shared and private vector
    out: Annotated[int, Meta(ge=1)] = 256  # fused width
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.1  # on the 2M vectors before the output
    diff_weight: NonNegativeFloat = 0.3  # weight of sp_diff (orthogonality)
    sim_weight: NonNegativeFloat = 1.0  # weight of sp_sim (shared agreement)


def diff_loss(s: torch.Tensor, p: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """s, p (N, M, H), present (N, M) -> mean over modalities of mean((Ŝ_mᵀ P̂_m)²)."""
    losses = []
    for m in range(s.shape[1]):
        rows = present[:, m]
        if int(rows.sum()) < 2:
            continue
        sm, pm = s[rows, m], p[rows, m]  # (n_m, H)
        sm = F.normalize(sm - sm.mean(0), dim=-1)  # centred over the batch, unit rows
        pm = F.normalize(pm - pm.mean(0), dim=-1)
        losses.append((sm.T @ pm).pow(2).mean())  # (H, H) cross-correlations -> scalar
    return torch.stack(losses).mean() if losses else s.new_zeros(())


def sim_loss(s: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """s (N, M, H), present (N, M) -> mean ‖ŝ_m − ŝ_n‖² over same-utterance present pairs."""
    unit = F.normalize(s, dim=-1)  # (N, M, H)
    dists = []
    for m in range(s.shape[1]):
        for n in range(m + 1, s.shape[1]):
            both = present[:, m] & present[:, n]  # (N,)
            dists.append((unit[both, m] - unit[both, n]).pow(2).sum(-1))  # (n_mn,)
    d = torch.cat(dists) if dists else s.new_zeros(0)
    return d.mean() if d.numel() else s.new_zeros(())


class SharedPrivate(nn.Module):
    def __init__(self, cfg: SharedPrivateConfig, inputs: FusionInputs) -> None:
        super().__init__()
        m, w, hid = len(inputs.modalities), inputs.width, cfg.hidden
        self.shared = nn.Sequential(nn.Linear(w, hid), nn.Sigmoid())  # one for all modalities
        self.private = nn.ModuleList(
            nn.Sequential(nn.Linear(w, hid), nn.Sigmoid()) for _ in range(m)
        )
        self.out = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(2 * m * hid, cfg.out))
        self.diff_weight, self.sim_weight = cfg.diff_weight, cfg.sim_weight
        self.out_dim = cfg.out

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (N, M, W) -> shared, private (N, M, H)."""
        s = self.shared(tokens)  # (N, M, H), the same weights on every token
        p = torch.stack([enc(tokens[:, m]) for m, enc in enumerate(self.private)], dim=1)
        return s, p

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, Aux]:
        s, p = self.encode(tokens)
        h = self.out(torch.cat([s, p], dim=-1).flatten(1))  # (N, M, 2H) -> (N, 2MH) -> (N, out)
        if not self.training:
            return h, {}
        return h, {
            "sp_diff": self.diff_weight * diff_loss(s, p, present),
            "sp_sim": self.sim_weight * sim_loss(s, present),
        }


@register("fusion", "shared-private", SharedPrivateConfig)
def _shared_private(cfg: SharedPrivateConfig, inputs: FusionInputs) -> nn.Module:
    """MISA-style shared and private encoders per modality, concatenated, with aux losses (out)."""
    return SharedPrivate(cfg, inputs)
