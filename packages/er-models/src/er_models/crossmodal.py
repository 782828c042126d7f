"""Cross-modal auxiliary objectives (`aux` family): `cmcl` and `frl`.

Both read the projected modality tokens `tokens` (N, M, W), one pooled vector per modality per
utterance in T, A, V order, with `present` (N, M) marking the real ones (a missing modality's
token is a learned stand-in), and return an unweighted float32 scalar; the model weights it.

`cmcl`, cross-modal contrastive learning: the modalities of one utterance are positives across
the batch. This is the reference form given for this project, a soft-target variant of the
CLIP-style cross-modal contrast (Radford et al., ICML 2021) used for modality alignment in MER
and ERC work; it is not taken from one specific paper. With e_m = e_m / ‖e_m‖ and the main
modality's vectors t = sg(e_main) (stop-gradient: the main modality teaches, the others learn),

    L = Σ_{m ≠ main} KL( softmax(t tᵀ / τ) ‖ softmax(t e_mᵀ / τ) )

row-wise, averaged over the rows ("batchmean"). For modality m only the n_m utterances where
both the main modality and m are present take part, as rows and as columns; a pair with
n_m < 2 (no negative to contrast with) adds nothing.

`frl`, feature reconstruction in the SimSiam form (Chen & He, CVPR 2021): the fused vector h and
the (stop-gradient) concatenated tokens are two views of one utterance; each is projected and
each predicts the other's projection:

    z_a = proj_a(h),  z_b = proj_b(sg(flatten(tokens))),  p_a = pred(z_a),  p_b = pred(z_b)
    L = −½ mean_N [cos(p_a, sg(z_b)) + cos(p_b, sg(z_a))]

proj_a, proj_b and pred are Linear -> LayerNorm -> GELU -> Linear (no batch norm, so a batch
of one is fine); they are parameters of the objective, trained and saved with the model.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from er_core import ErError, PositiveFloat
from msgspec import Meta
from torch import nn

from er_models.aux import AuxConfig, AuxInputs, Views
from er_models.registry import register


class CMCLConfig(AuxConfig, frozen=True):
    temperature: PositiveFloat = 0.1  # τ of both softmaxes
    main: Literal["text", "audio", "video"] = "text"  # the modality the others are aligned to


class FRLConfig(AuxConfig, frozen=True):
    dim: Annotated[int, Meta(ge=1)] = 128  # width of the projections z and predictions p
    hidden: Annotated[int, Meta(ge=1)] = 256  # hidden width of the projectors and predictor


def _fp32(t: torch.Tensor) -> torch.autocast:
    """A context in which `t`'s device runs float32 (autocast off)."""
    return torch.autocast(t.device.type, enabled=False)


class CrossModalContrast(nn.Module):
    def __init__(self, cfg: CMCLConfig, inputs: AuxInputs) -> None:
        super().__init__()
        self.main = inputs.modalities.index(cfg.main)
        self.others = [i for i in range(len(inputs.modalities)) if i != self.main]
        self.tau = cfg.temperature

    def forward(self, v: Views) -> torch.Tensor:
        with _fp32(v.tokens):
            e = F.normalize(v.tokens.float(), dim=-1)  # (N, M, W) unit vectors
            t = e[:, self.main].detach()  # (N, W) the main modality: a fixed target
            loss = e.sum() * 0.0  # zero with a graph, for batches where no pair counts
            for m in self.others:
                rows = v.present[:, self.main] & v.present[:, m]  # (N,)
                if int(rows.sum()) < 2:
                    continue
                tm, em = t[rows], e[rows, m]  # (n_m, W) each
                target = F.softmax(tm @ tm.T / self.tau, dim=-1)  # (n_m, n_m)
                log_q = F.log_softmax(tm @ em.T / self.tau, dim=-1)  # (n_m, n_m)
                loss = loss + F.kl_div(log_q, target, reduction="batchmean")
        return loss.float()


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inp, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, out)
    )


class FeatureReconstruction(nn.Module):
    def __init__(self, cfg: FRLConfig, inputs: AuxInputs) -> None:
        super().__init__()
        m = len(inputs.modalities)
        self.proj_a = _mlp(inputs.fused, cfg.hidden, cfg.dim)  # h: F -> dim
        self.proj_b = _mlp(m * inputs.width, cfg.hidden, cfg.dim)  # tokens: M·W -> dim
        self.pred = _mlp(cfg.dim, cfg.hidden, cfg.dim)  # one predictor for both directions

    def forward(self, v: Views) -> torch.Tensor:
        with _fp32(v.h):
            a = v.h.float()  # (N, F)
            b = v.tokens.detach().float().flatten(1)  # (N, M·W), a fixed target
            z_a, z_b = self.proj_a(a), self.proj_b(b)  # (N, dim) each
            p_a, p_b = self.pred(z_a), self.pred(z_b)  # (N, dim) each
            cos = F.cosine_similarity(p_a, z_b.detach(), dim=-1) + F.cosine_similarity(
                p_b, z_a.detach(), dim=-1
            )  # (N,)
            # an empty batch: the sum is a zero that still reaches every parameter
            loss = -0.5 * (cos.mean() if cos.numel() else cos.sum())
        return loss.float()


@register("aux", "cmcl", CMCLConfig)
def _cmcl(cfg: CMCLConfig, inputs: AuxInputs) -> nn.Module:
    """Cross-modal contrast: similarities to the main modality match its own, across the batch."""
    if len(inputs.modalities) < 2:
        raise ErError(
            f"aux 'cmcl' needs 2 or more modalities, the run has {len(inputs.modalities)}",
            at="$.aux.cmcl",
            hint="add a modality to the run, or drop [aux.cmcl]",
        )
    if cfg.main not in inputs.modalities:
        raise ErError(
            f"aux 'cmcl': main modality '{cfg.main}' is not in the run "
            f"({', '.join(inputs.modalities)})",
            at="$.aux.cmcl.main",
            hint=f"set main to one of: {', '.join(inputs.modalities)}",
        )
    return CrossModalContrast(cfg, inputs)


@register("aux", "frl", FRLConfig)
def _frl(cfg: FRLConfig, inputs: AuxInputs) -> nn.Module:
    """SimSiam-style reconstruction between the fused vector and the modality tokens (dim)."""
    return FeatureReconstruction(cfg, inputs)
