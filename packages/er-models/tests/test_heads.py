"""Heads: output shapes per task kind, loss weights per task, and the errors for a task set the
head cannot predict."""

from __future__ import annotations

import er_models as em
import pytest
import torch
from er_core import ErError
from er_models import TaskSpec
from torch import nn

EMOTION, SENTIMENT, AROUSAL = (
    TaskSpec("emotion", 7),
    TaskSpec("sentiment", 3),
    TaskSpec("arousal", 0),
)


def head(section: dict, tasks: tuple[TaskSpec, ...], in_dim: int = 16) -> nn.Module:
    torch.manual_seed(0)
    return em.create(em.resolve("head", section), in_dim, tasks)


def test_classification_shapes_and_weights() -> None:
    h = head({"kind": "classification"}, (EMOTION,)).eval()
    out = h(torch.randn(5, 16))
    assert list(out) == ["emotion"] and out["emotion"].shape == (5, 7)
    assert h.task_weights == {"emotion": 1.0}


def test_regression_is_one_value_per_utterance() -> None:
    h = head({"kind": "regression", "hidden": 8}, (AROUSAL,)).eval()
    out = h(torch.randn(5, 16))["arousal"]
    assert out.shape == (5,)  # (N,), not (N, 1): it lines up with the (N,) targets
    assert h.task_weights == {"arousal": 1.0}


def test_hidden_builds_an_mlp() -> None:
    linear = [
        m
        for m in head({"kind": "classification"}, (EMOTION,)).modules()
        if isinstance(m, nn.Linear)
    ]
    assert [(m.in_features, m.out_features) for m in linear] == [(16, 7)]
    mlp = head({"kind": "classification", "hidden": 32}, (EMOTION,))
    linear = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(16, 32), (32, 7)]
    assert mlp.eval()(torch.randn(4, 16))["emotion"].shape == (4, 7)


def test_multi_task_shapes_and_weights() -> None:
    tasks = (EMOTION, SENTIMENT, AROUSAL)
    h = head({"kind": "multi-task", "weights": {"sentiment": 0.5, "arousal": 0.0}}, tasks).eval()
    out = h(torch.randn(6, 16))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "emotion": (6, 7),
        "sentiment": (6, 3),
        "arousal": (6,),
    }
    # a task not named weighs 1
    assert h.task_weights == {"emotion": 1.0, "sentiment": 0.5, "arousal": 0.0}


def test_rows_are_independent() -> None:
    # a head works per utterance: a row's output does not depend on the batch around it
    h = head({"kind": "multi-task", "hidden": 8}, (EMOTION, AROUSAL)).eval()
    z = torch.randn(6, 16)
    full = h(z)
    for k, v in h(z[2:3]).items():
        torch.testing.assert_close(v, full[k][2:3])


def test_task_weights_through_the_model() -> None:
    spec = em.parse_network(
        {"head": {"kind": "multi-task", "weights": {"sentiment": 0.3}}},
        dims={"text": 8},
        tasks={"emotion": 7, "sentiment": 3},
    )
    model = em.build_model(spec)
    assert model.task_weights == {"emotion": 1.0, "sentiment": 0.3}


@pytest.mark.parametrize(
    ("kind", "tasks"),
    [
        ("classification", (EMOTION, SENTIMENT)),  # two tasks
        ("classification", (AROUSAL,)),  # a regression task
        ("regression", (EMOTION,)),  # a classification task
        ("regression", (AROUSAL, AROUSAL)),
    ],
)
def test_mismatched_task_set(kind: str, tasks: tuple[TaskSpec, ...]) -> None:
    with pytest.raises(ErError) as e:
        head({"kind": kind}, tasks)
    assert e.value.at == "$.head.kind"
    assert f"head '{kind}'" in e.value.what
    for t in tasks:
        assert t.name in e.value.what  # the message says what it got
    assert "multi-task" in e.value.hint


def test_weights_naming_unknown_tasks() -> None:
    with pytest.raises(ErError) as e:
        head(
            {"kind": "multi-task", "weights": {"sentimnet": 0.5, "emotion": 1.0}},
            (EMOTION, SENTIMENT),
        )
    assert e.value.at == "$.head.weights"
    assert "sentimnet" in e.value.what and "emotion" not in e.value.what
    assert e.value.hint == "tasks here: emotion, sentiment"


def test_bad_options() -> None:
    with pytest.raises(ErError) as e:
        em.resolve("head", {"kind": "multi-task", "weights": {"emotion": -1.0}})
    assert e.value.at.startswith("$.head.weights")  # a negative weight would maximise a loss
    with pytest.raises(ErError) as e:
        em.resolve("head", {"kind": "classification", "dropout": 1.0})
    assert e.value.at == "$.head.dropout"
    with pytest.raises(ErError) as e:
        em.resolve("head", {"kind": "classification", "weights": {"emotion": 1.0}})
    assert e.value.at == "$.head.weights"  # only multi-task has weights
