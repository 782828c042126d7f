"""Supervised losses: `ce` (cross-entropy with class weights and label smoothing), `focal`,
and `l1` / `mse` for regression targets.

A loss factory is called as `build(cfg, task, counts)` where `counts` holds the training split's
class counts (None for regression), and returns an `nn.Module` mapping
(prediction, target) -> scalar mean loss over the N utterances.

Class weights (`weights`):
- "none": every class weighs 1;
- "inverse": w_c = N / (C · n_c), inverse frequency normalised so a balanced set gives 1;
- "effective": the effective number of samples (Cui et al., CVPR 2019),
  w_c ∝ (1 − β) / (1 − β^{n_c}), normalised so the weights of the classes present sum to
  their number (C when every class occurs).
A class absent from training gets the largest weight of the present ones (never inf).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from er_core import Config, NonNegativeFloat
from msgspec import Meta
from torch import nn

from er_models.registry import register
from er_models.spec import TaskSpec

REGRESSION = ("l1", "mse")
Weights = Literal["none", "inverse", "effective"]


class CEConfig(Config, frozen=True):
    weights: Weights = "none"
    beta: Annotated[float, Meta(gt=0, lt=1)] = 0.9999  # for weights = "effective"
    label_smoothing: Annotated[float, Meta(ge=0, lt=1)] = 0.0


class FocalConfig(CEConfig, frozen=True):
    gamma: NonNegativeFloat = 2.0  # focusing: 0 gives (smoothed, weighted) CE


class RegressionConfig(Config, frozen=True):
    """Regression losses have no options."""


def class_weights(counts: np.ndarray, scheme: str, beta: float = 0.9999) -> np.ndarray:
    """(C,) float32 weights from the training class counts (see the module docstring)."""
    n = np.asarray(counts, dtype=np.float64)
    c = n.size
    present = n > 0
    if scheme == "none" or not present.any():  # no counts at all: nothing to reweigh by
        return np.ones(c, np.float32)
    w = np.zeros(c)
    if scheme == "inverse":
        w[present] = n.sum() / (c * n[present])
    elif scheme == "effective":
        w[present] = (1 - beta) / (1 - np.power(beta, n[present]))
        w[present] *= c / w[present].sum() * present.mean()
    else:
        raise ValueError(f"unknown class weighting {scheme!r}")
    w[~present] = w[present].max()
    return w.astype(np.float32)


class CrossEntropy(nn.Module):
    def __init__(self, cfg: CEConfig, counts: np.ndarray) -> None:
        super().__init__()
        self.smoothing = cfg.label_smoothing
        self.register_buffer(
            "weight", torch.from_numpy(class_weights(counts, cfg.weights, cfg.beta))
        )

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # (N, C), (N,) -> weighted mean, as torch's cross_entropy defines it
        return F.cross_entropy(
            logits.float(), target, weight=self.weight, label_smoothing=self.smoothing
        )


class Focal(nn.Module):
    """FL = −w_y (1 − p_y)^γ log p_y (Lin et al., ICCV 2017), with p the softmax. With label
    smoothing the target is the smoothed distribution q and each class term carries its own
    class weight and focusing factor: FL = −Σ_c w_c q_c (1 − p_c)^γ log p_c. The sum over the
    batch is divided by Σ w_y, as torch's cross_entropy does, so γ = 0 gives exactly `ce` with
    the same weights and smoothing."""

    def __init__(self, cfg: FocalConfig, counts: np.ndarray) -> None:
        super().__init__()
        self.gamma, self.smoothing = cfg.gamma, cfg.label_smoothing
        self.register_buffer(
            "weight", torch.from_numpy(class_weights(counts, cfg.weights, cfg.beta))
        )

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=-1)  # (N, C)
        c = logp.shape[-1]
        q = F.one_hot(target, c).float() * (1 - self.smoothing) + self.smoothing / c  # (N, C)
        # 1 − p, floored: where p rounds to 1, (1 − p)^γ with 0 < γ < 1 has an infinite
        # derivative, and inf · 0 would make the gradient NaN
        mod = (-logp.expm1()).clamp_min(1e-12).pow(self.gamma)  # (N, C)
        per = -(self.weight * q * mod * logp).sum(-1)  # (N,), each class term weighted by w_c
        return per.sum() / self.weight[target].sum()


class Regression(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.fn = F.l1_loss if kind == "l1" else F.mse_loss

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(pred.float(), target.float())


@register("loss", "ce", CEConfig)
def _ce(cfg: CEConfig, task: TaskSpec, counts: np.ndarray) -> nn.Module:
    """Cross-entropy; class weights none | inverse | effective; label smoothing."""
    return CrossEntropy(cfg, counts)


@register("loss", "focal", FocalConfig)
def _focal(cfg: FocalConfig, task: TaskSpec, counts: np.ndarray) -> nn.Module:
    """Focal loss (gamma), with the same class weights and label smoothing as ce."""
    return Focal(cfg, counts)


@register("loss", "l1", RegressionConfig)
def _l1(cfg: RegressionConfig, task: TaskSpec, counts: None) -> nn.Module:
    """Mean absolute error, for regression targets."""
    return Regression("l1")


@register("loss", "mse", RegressionConfig)
def _mse(cfg: RegressionConfig, task: TaskSpec, counts: None) -> nn.Module:
    """Mean squared error, for regression targets."""
    return Regression("mse")
