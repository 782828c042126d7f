"""Regression metrics on small examples whose values are worked out by hand below."""

from __future__ import annotations

import numpy as np
import pytest
from er_eval.regression import bins, infer_scale, pearson, regression_metrics

# CMU-MOSI scale ([-3, 3]). Worked out:
#   |x - y|         = .8 .8 1.0 .2 0 .6 .9 .9          -> MAE 5.2 / 8 = 0.65, MSE 4.3 / 8
#   has0: y >= 0    = 0 0 0 1 1 1 1 1;  x >= 0 = 0 0 1 0 1 1 1 1  -> 6/8 right
#         F1(neg) = 2·2/(3+3) = 2/3, F1(non-neg) = 2·4/(5+5) = 4/5 -> weighted (3·2/3+5·4/5)/8 = 3/4
#   non0: drop the two y = 0 -> y > 0: 0 0 0 1 1 1;  x > 0: 0 0 1 1 1 1 -> 5/6 right
#         F1(neg) = 2·2/(3+2) = 4/5, F1(pos) = 2·3/(3+4) = 6/7 -> weighted 29/35
#   Acc-7 round(clip(., ±3)): y -3 -1 0 0 0 1 2 2 (2.5 rounds half to EVEN: 2),
#                             x -3 -1 1 0 0 1 2 3  -> 6/8
#   Acc-5 round(clip(., ±2)): y -2 -1 0 0 0 1 2 2;  x -2 -1 1 0 0 1 2 2  -> 7/8
#   Acc-3 round(clip(., ±1)): y -1 -1 0 0 0 1 1 1;  x -1 -1 1 0 0 1 1 1  -> 7/8
MOSI_Y = [-2.6, -1.4, -0.4, 0.0, 0.0, 0.6, 1.5, 2.5]
MOSI_X = [-3.4, -0.6, 0.6, -0.2, 0.0, 1.2, 2.4, 3.4]
MOSI_WANT = {
    "mae": 0.65,
    "mse": 4.3 / 8,
    "acc2_has0": 0.75,
    "f1_has0": 0.75,
    "acc2_non0": 5 / 6,
    "f1_non0": 29 / 35,
    "acc7": 6 / 8,
    "acc5": 7 / 8,
    "acc3": 7 / 8,
}

# CH-SIMS scale ([-1, 1]), bins (a, b] with inner edges
#   Acc-3 (-.1, .1), Acc-5 (-.7, -.1, .1, .7), Acc-7 (-.7, -.3, -.1, .1, .3, .7). Worked out:
#   |x - y| = .25 .15 .35 .15 .05 .02 .05 .15 .3 (1.3 is clipped to 1 for bins only) -> 1.47 / 9
#   Acc-3 y: 0 0 0 0 1 1 2 2 2;  x: 0 0 1 0 1 1 2 2 2          -> 8/9
#   Acc-5 y: 0 0 1 1 2 2 3 3 4;  x: 0 1 2 1 2 2 3 4 4          -> 6/9
#   Acc-7 y: 0 0 1 2 3 3 4 5 6;  x: 0 1 3 1 3 3 4 6 6          -> 5/9
#   has0: y >= 0 = 0 0 0 0 1 1 1 1 1; x >= 0 = 0 0 0 0 1 0 1 1 1 -> 8/9,
#         F1 = 2·4/(4+5) = 8/9 and 2·4/(5+4) = 8/9 -> weighted 8/9
#   non0: the 7 non-zero y all right -> 1, F1 1
#   sims (MMSA Acc-2, 0 with the negatives): y > 0 = 0 0 0 0 0 0 1 1 1; x > 0 = 0 0 0 0 1 0 1 1 1
#         -> 8/9, F1 = 2·5/(6+5) = 10/11 and 2·3/(3+4) = 6/7 -> (6·10/11 + 3·6/7)/9 = 206/231
SIMS_Y = [-1.0, -0.8, -0.4, -0.2, 0.0, 0.0, 0.2, 0.6, 1.0]
SIMS_X = [-0.75, -0.65, -0.05, -0.35, 0.05, -0.02, 0.25, 0.75, 1.3]
SIMS_WANT = {
    "mae": 1.47 / 9,
    "acc3": 8 / 9,
    "acc5": 6 / 9,
    "acc7": 5 / 9,
    "acc2_has0": 8 / 9,
    "f1_has0": 8 / 9,
    "acc2_non0": 1.0,
    "f1_non0": 1.0,
    "acc2_sims": 8 / 9,
    "f1_sims": 206 / 231,
}


def test_mosi_example() -> None:
    got = regression_metrics(MOSI_Y, MOSI_X)  # inferred: max |y| = 2.6 > 1 -> mosi
    for k, v in MOSI_WANT.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k
    assert got["corr"] == pytest.approx(np.corrcoef(MOSI_X, MOSI_Y)[0, 1], abs=1e-12)
    assert "acc2_sims" not in got


def test_sims_example() -> None:
    got = regression_metrics(SIMS_Y, SIMS_X)  # inferred: max |y| = 1 -> sims
    for k, v in SIMS_WANT.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k
    assert got["corr"] == pytest.approx(np.corrcoef(SIMS_X, SIMS_Y)[0, 1], abs=1e-12)


def test_scale_inference_and_override() -> None:
    assert infer_scale(SIMS_Y) == "sims" and infer_scale(MOSI_Y) == "mosi"
    forced = regression_metrics(SIMS_Y, SIMS_X, "mosi")
    # on the MOSI bins every |v| < 1.5 rounds into -1, 0, 1: Acc-7 = Acc-5 = Acc-3 there
    assert forced["acc7"] == forced["acc3"] and "acc2_sims" not in forced
    with pytest.raises(ValueError, match="unknown scale"):
        regression_metrics(SIMS_Y, SIMS_X, "imdb")  # type: ignore[arg-type]


def test_sims_bin_edges_go_to_the_lower_bin() -> None:
    # (a, b] bins; -1 falls in the lowest, values beyond ±1 are clipped
    values = [-1.0, -0.7, -0.1, 0.1, 0.7, 1.0, -5, 5]
    assert bins(values, 5, "sims").tolist() == [0, 0, 1, 2, 3, 4, 0, 4]
    assert bins([-0.3, -0.29, 0.3, 0.31], 7, "sims").tolist() == [1, 2, 4, 5]


def test_mosi_rounding_is_half_to_even() -> None:
    assert bins([0.5, 1.5, 2.5, -0.5, -2.5, 3.7], 7, "mosi").tolist() == [0, 2, 2, 0, -2, 3]


def test_binary_f1_matches_sklearn() -> None:
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    y = np.round(rng.uniform(-3, 3, 200) * 2) / 2  # many exact zeros
    x = y + rng.normal(0, 1, 200)
    got = regression_metrics(y, x, "mosi")
    assert got["f1_has0"] == pytest.approx(f1_score(y >= 0, x >= 0, average="weighted"))
    keep = y != 0
    assert got["acc2_non0"] == pytest.approx(accuracy_score(y[keep] > 0, x[keep] > 0))
    assert got["f1_non0"] == pytest.approx(f1_score(y[keep] > 0, x[keep] > 0, average="weighted"))


def test_undefined_cases() -> None:
    got = regression_metrics([0.0, 0.0], [0.3, -0.3])
    assert "acc2_non0" not in got and "f1_non0" not in got  # no non-zero target
    assert got["corr"] == 0.0  # constant target: r undefined, reported as 0
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        regression_metrics([], [])
