"""Sentiment-regression metrics in numpy, with the field's conventions.

The conventions are those of the MMSA toolkit (thuiar/MMSA, `MMSA/utils/metricsTop.py`, the
reference implementation behind most CMU-MOSI, CMU-MOSEI and CH-SIMS tables), so numbers here
compare with published ones. With y the true values and x the predictions (n of each):

- `mae` = mean |x − y|; `mse` = mean (x − y)²; both on the raw values (MMSA clips CH-SIMS
  predictions to [-1, 1] before its MAE; we do not, so our MAE equals the one er-train selects
  on, and is never smaller than MMSA's).
- `corr` = Pearson's r = cov(x, y) / (σx σy); 0.0 when either is constant (r is undefined
  there, and the wire format has no NaN; er-train does the same).
- Acc-2 in both conventions of the field, each with its weighted F1 (F1 of each class weighted by
  its true support, as scikit-learn's `f1_score(average="weighted")`):
  * `acc2_has0`, `f1_has0`: "negative vs non-negative": all samples, class = (v >= 0) for y
    and x alike (MMSA's Has0_acc_2 / Has0_F1_score).
  * `acc2_non0`, `f1_non0`: "negative vs positive": samples with y == 0 left out, class =
    (v > 0) (MMSA's Non0_acc_2 / Non0_F1_score; a prediction of exactly 0 counts as negative,
    as in MMSA). Omitted when every y is 0.
- Acc-k: share of samples whose prediction falls in the same of k ordered bins as the truth.
  * scale "mosi" (targets in [-3, 3], CMU-MOSI / MOSEI): Acc-7 bins = round(clip(v, -3, 3)),
    Acc-5 = round(clip(v, -2, 2)), Acc-3 = round(clip(v, -1, 1)). `round` is numpy's
    round-half-to-even (round(0.5) = 0, round(1.5) = 2), exactly as MMSA computes it.
  * scale "sims" (targets in [-1, 1], CH-SIMS): both values are clipped to [-1, 1] and binned by
    edges, each bin (a, b] closed on the right, the lowest one also holding -1:
    Acc-3 edges [-1, -0.1, 0.1, 1] and Acc-5 edges [-1, -0.7, -0.1, 0.1, 0.7, 1] (MMSA's
    `__eval_sims_regression`). MMSA defines no Acc-7 for CH-SIMS; we use
    [-1, -0.7, -0.3, -0.1, 0.1, 0.3, 0.7, 1]. Why: a CH-SIMS label is the mean of 5 annotators'
    {-1, 0, 1}, so it takes the 11 values {-1, -0.8, ..., 0.8, 1}; MMSA's 5 bins are the SIMS
    paper's strong / weak negative, neutral, weak / strong positive ({-1, -0.8}, {-0.6, -0.4,
    -0.2}, {0}, {0.2, 0.4, 0.6}, {0.8, 1}); the 7 bins keep those edges and split each weak bin
    at ±0.3 into {-0.6, -0.4} | {-0.2} and {0.2} | {0.4, 0.6}. Every 7-bin lies inside one 5-bin
    (as on MOSI), no edge falls on a possible label, and the bins are symmetric about 0.
  * scale "sims" also gives `acc2_sims`, `f1_sims`: MMSA's CH-SIMS Mult_acc_2 / F1_score, bins
    [-1, 0] and (0, 1] (0 counts as negative, all samples), which CH-SIMS papers report as Acc-2.

`scale` is "sims" or "mosi"; left out, it is inferred from the targets: max |y| <= 1 -> "sims".
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from er_core import weighted_f1
from numpy.typing import ArrayLike, NDArray

Scale = Literal["sims", "mosi"]
SCALES: tuple[Scale, ...] = ("sims", "mosi")

# inner edges of the CH-SIMS bins (the outer ones, -1 and 1, only bound the clip)
SIMS_EDGES: dict[int, tuple[float, ...]] = {
    2: (0.0,),
    3: (-0.1, 0.1),
    5: (-0.7, -0.1, 0.1, 0.7),
    7: (-0.7, -0.3, -0.1, 0.1, 0.3, 0.7),
}
MOSI_CLIP: dict[int, float] = {3: 1.0, 5: 2.0, 7: 3.0}


def infer_scale(y_true: ArrayLike) -> Scale:
    """The scale of these targets: "sims" when every |target| <= 1, else "mosi"."""
    y = np.asarray(y_true, dtype=np.float64)
    return "sims" if y.size == 0 or float(np.max(np.abs(y))) <= 1.0 else "mosi"


def bins(values: ArrayLike, k: int, scale: Scale) -> NDArray[np.int64]:
    """The Acc-k bin of each value (see the module docstring): on "mosi" the rounded clipped
    value, on "sims" the index of its (a, b] bin after clipping to [-1, 1]."""
    v = np.asarray(values, dtype=np.float64)
    if scale == "mosi":
        c = MOSI_CLIP[k]
        return np.round(np.clip(v, -c, c)).astype(np.int64)
    # side="left" counts the edges strictly below v: a value on an edge goes to the lower bin
    return np.searchsorted(np.asarray(SIMS_EDGES[k]), np.clip(v, -1.0, 1.0), side="left")


def acc_k(y_true: ArrayLike, y_pred: ArrayLike, k: int, scale: Scale) -> float:
    """Acc-k = mean(bin_k(x) == bin_k(y))."""
    return float(np.mean(bins(y_pred, k, scale) == bins(y_true, k, scale)))


def pearson(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Pearson's r = Σ(x − x̄)(y − ȳ) / sqrt(Σ(x − x̄)² Σ(y − ȳ)²); 0.0 if either is constant."""
    x = np.asarray(y_pred, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    den = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    return float(np.sum(dx * dy) / den) if den > 0 else 0.0


def binary(y_true: ArrayLike, y_pred: ArrayLike, convention: str) -> tuple[float, float] | None:
    """(Acc-2, weighted F1) of one convention: "has0" (y >= 0 vs y < 0, all samples), "non0"
    (y > 0 vs y < 0, zeros left out; None if nothing is left) or "sims" (y > 0 vs y <= 0)."""
    y = np.asarray(y_true, dtype=np.float64)
    x = np.asarray(y_pred, dtype=np.float64)
    if convention == "has0":
        t, p = y >= 0, x >= 0
    elif convention == "non0":
        keep = y != 0
        if not keep.any():
            return None
        t, p = y[keep] > 0, x[keep] > 0
    elif convention == "sims":
        t, p = y > 0, x > 0
    else:
        raise ValueError(f"unknown Acc-2 convention {convention!r}")
    t, p = t.astype(np.int64), p.astype(np.int64)
    return float(np.mean(t == p)), weighted_f1(t, p, 2)


def regression_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, scale: Scale | None = None
) -> dict[str, float]:
    """Every metric of the module docstring, as fractions (accuracies, F1) or raw values."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    x = np.asarray(y_pred, dtype=np.float64).ravel()
    if y.shape != x.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y.shape} vs {x.shape}")
    if y.size == 0:
        raise ValueError("no values to score")
    scale = scale or infer_scale(y)
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {SCALES}")
    out = {
        "mae": float(np.mean(np.abs(x - y))),
        "mse": float(np.mean((x - y) ** 2)),
        "corr": pearson(y, x),
    }
    conventions = ("has0", "non0", "sims") if scale == "sims" else ("has0", "non0")
    for conv in conventions:
        r = binary(y, x, conv)
        if r is not None:
            out[f"acc2_{conv}"], out[f"f1_{conv}"] = r
    for k in (3, 5, 7):
        out[f"acc{k}"] = acc_k(y, x, k, scale)
    return out


__all__ = [
    "SCALES",
    "SIMS_EDGES",
    "Scale",
    "acc_k",
    "binary",
    "bins",
    "infer_scale",
    "pearson",
    "regression_metrics",
]
