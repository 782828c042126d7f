"""Losses: class weights by hand, ce against torch, focal by hand and against ce, regression,
and the registry's option checks."""

from __future__ import annotations

import math

import er_models as em
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from er_core import ErError
from er_models import TaskSpec, class_weights

# p = [0.7, 0.2, 0.1] with target 0 and p = [0.2, 0.5, 0.3] with target 2
PROBS = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]])
LOGITS = PROBS.log()  # softmax(log p) = p
TARGET = torch.tensor([0, 2])


def loss(section: dict, counts=None, classes: int = 3):
    task = TaskSpec("emotion", classes)
    if counts is None and section["kind"] not in ("l1", "mse"):
        counts = np.ones(classes)
    return em.create(em.resolve("loss", section), task, counts)


def test_class_weights_none() -> None:
    w = class_weights(np.array([10, 30, 0, 60]), "none")
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, [1, 1, 1, 1])


def test_class_weights_inverse_by_hand() -> None:
    # N = 100, C = 4: w_c = 100 / (4 n_c) = 2.5, 0.8333, -, 0.41667; the absent class gets
    # the largest present weight (2.5), not inf
    w = class_weights(np.array([10, 30, 0, 60]), "inverse")
    np.testing.assert_allclose(w, [2.5, 100 / 120, 2.5, 100 / 240], rtol=1e-6)
    # a balanced set weighs 1 everywhere
    np.testing.assert_allclose(class_weights(np.array([7, 7, 7]), "inverse"), [1, 1, 1])


def test_class_weights_effective_by_hand() -> None:
    # beta = 0.9, counts (1, 2, 0): raw (1 - β) / (1 - β^n) = 0.1 / 0.1 = 1 and
    # 0.1 / 0.19 = 10/19; scaled so the 2 present classes sum to 2: 2·0.19/0.29 = 38/29 and
    # 2·0.10/0.29 = 20/29; the absent class gets the largest, 38/29
    w = class_weights(np.array([1, 2, 0]), "effective", beta=0.9)
    np.testing.assert_allclose(w, [38 / 29, 20 / 29, 38 / 29], rtol=1e-6)
    w = class_weights(np.array([10, 30, 0, 60]), "effective", beta=0.99)
    assert w[[0, 1, 3]].sum() == pytest.approx(3, rel=1e-6)  # present classes sum to their number
    assert w[0] > w[1] > w[3] and w[2] == w[0]  # rarer weighs more


@pytest.mark.filterwarnings("error")  # a 0/0 on the way is a bug even if the result is fine
@pytest.mark.parametrize("scheme", ["none", "inverse", "effective"])
def test_class_weights_never_inf(scheme: str) -> None:
    for counts in ([0, 0, 0], [0, 5, 0], [1, 0, 1000]):
        w = class_weights(np.array(counts), scheme)
        assert np.isfinite(w).all() and (w > 0).all(), (counts, w)
    np.testing.assert_array_equal(class_weights(np.zeros(3), scheme), [1, 1, 1])


COUNTS = np.array([5, 20, 0, 75])  # class 2 absent from training


@pytest.mark.parametrize("scheme", ["none", "inverse", "effective"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_ce_is_torch_cross_entropy(scheme: str, smoothing: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(16, 4, generator=g), torch.randint(0, 4, (16,), generator=g)
    ce = loss({"kind": "ce", "weights": scheme, "label_smoothing": smoothing}, COUNTS, 4)
    weight = torch.from_numpy(class_weights(COUNTS, scheme))
    want = F.cross_entropy(logits, target, weight=weight, label_smoothing=smoothing)
    torch.testing.assert_close(ce(logits, target), want)


@pytest.mark.parametrize("scheme", ["none", "inverse", "effective"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_focal_with_gamma_0_is_ce(scheme: str, smoothing: float) -> None:
    g = torch.Generator().manual_seed(1)
    logits, target = torch.randn(16, 4, generator=g), torch.randint(0, 4, (16,), generator=g)
    opts = {"weights": scheme, "label_smoothing": smoothing}
    ce = loss({"kind": "ce", **opts}, COUNTS, 4)
    focal = loss({"kind": "focal", "gamma": 0.0, **opts}, COUNTS, 4)
    torch.testing.assert_close(focal(logits, target), ce(logits, target))


def test_focal_by_hand() -> None:
    # γ = 2: -(1 - 0.7)² ln 0.7 = 0.09 · 0.356675 = 0.0321007
    #        -(1 - 0.3)² ln 0.3 = 0.49 · 1.203973 = 0.5899467;  mean 0.3110237
    focal = loss({"kind": "focal", "gamma": 2.0})
    assert focal(LOGITS, TARGET).item() == pytest.approx(0.3110237, abs=1e-6)
    # inverse weights from counts (2, 1, 1): 4/6, 4/3, 4/3; targets 0 and 2 weigh 2/3 and 4/3:
    # (2/3 · 0.0321007 + 4/3 · 0.5899467) / 2 = 0.4039980
    focal = loss({"kind": "focal", "gamma": 2.0, "weights": "inverse"}, np.array([2, 1, 1]))
    assert focal(LOGITS, TARGET).item() == pytest.approx(0.4039980, abs=1e-6)
    # smoothing 0.3: q = (0.8, 0.1, 0.1) and (0.1, 0.1, 0.8);
    # sample 1: 0.8·0.09·0.356675 + 0.1·0.64·1.609438 + 0.1·0.81·2.302585 = 0.3151940
    # sample 2: 0.1·0.64·1.609438 + 0.1·0.25·0.693147 + 0.8·0.49·1.203973 = 0.5922900
    focal = loss({"kind": "focal", "gamma": 2.0, "label_smoothing": 0.3})
    assert focal(LOGITS, TARGET).item() == pytest.approx(0.4537420, abs=1e-6)


def test_focal_down_weights_easy_examples() -> None:
    easy = torch.tensor([[0.9, 0.05, 0.05]]).log()  # p_y = 0.9
    hard = torch.tensor([[0.1, 0.45, 0.45]]).log()  # p_y = 0.1
    y = torch.tensor([0])
    ce, focal = loss({"kind": "ce"}), loss({"kind": "focal", "gamma": 2.0})
    # focal / ce = (1 - p_y)^γ: 0.01 for the easy example, 0.81 for the hard one
    assert (focal(easy, y) / ce(easy, y)).item() == pytest.approx(0.01, rel=1e-4)
    assert (focal(hard, y) / ce(hard, y)).item() == pytest.approx(0.81, rel=1e-4)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_gradient_is_finite_when_confident(gamma: float) -> None:
    # p_y rounds to 1 in float32: (1 - p)^γ with γ < 1 has an infinite slope there
    logits = torch.tensor([[40.0, 0.0, 0.0], [0.0, 3.0, 0.0]], requires_grad=True)
    loss({"kind": "focal", "gamma": gamma, "label_smoothing": 0.1})(
        logits, TARGET[:1].repeat(2)
    ).backward()
    assert torch.isfinite(logits.grad).all()


def test_regression_losses_by_hand() -> None:
    pred = torch.tensor([1.0, 2.0, 4.0])
    target = torch.tensor([2.0, 2.0, 0.0], dtype=torch.float64)  # dtype is cast
    reg = TaskSpec("sentiment", 0)
    l1 = em.create(em.resolve("loss", {"kind": "l1"}), reg, None)
    mse = em.create(em.resolve("loss", {"kind": "mse"}), reg, None)
    assert l1(pred, target).item() == pytest.approx(5 / 3)  # (1 + 0 + 4) / 3
    assert mse(pred, target).item() == pytest.approx(17 / 3)  # (1 + 0 + 16) / 3


def test_registry_validates_options() -> None:
    with pytest.raises(ErError) as e:
        em.resolve("loss", {"kind": "focal", "gamma": -1})
    assert e.value.at == "$.loss.gamma"
    assert "focal" in e.value.what
    with pytest.raises(ErError) as e:
        em.resolve("loss", {"kind": "ce", "weights": "sqrt"})
    assert e.value.at == "$.loss.weights"
    with pytest.raises(ErError) as e:
        em.resolve("loss", {"kind": "ce", "label_smoothing": 1.0})
    assert e.value.at == "$.loss.label_smoothing"
    with pytest.raises(ErError) as e:
        em.resolve("loss", {"kind": "mse", "gamma": 2.0})  # regression losses have no options
    assert e.value.at == "$.loss.gamma"
    with pytest.raises(ErError) as e:
        em.resolve("loss", {"kind": "dice"})
    assert e.value.at == "$.loss.kind"
    assert e.value.hint == "known: ce, focal, l1, mse"


def test_resolved_defaults() -> None:
    r = em.resolve("loss", {"kind": "focal"})
    assert r.to_dict() == {
        "kind": "focal",
        "weights": "none",
        "beta": 0.9999,
        "label_smoothing": 0.0,
        "gamma": 2.0,
    }
    assert math.isclose(
        loss({"kind": "ce"})(LOGITS, TARGET).item(),
        -(math.log(0.7) + math.log(0.3)) / 2,
        rel_tol=1e-6,
    )
