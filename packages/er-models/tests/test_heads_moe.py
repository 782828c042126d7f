"""Head `moe`: shapes per task set, the routed mixture and its balance loss against plain loops,
aux only in training, batch independence, training through ERModel, its errors and its config
file."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import er_models as em
import pytest
import torch
import torch.nn.functional as F
from er_core import ErError
from er_models import TaskSpec
from torch import nn

EMOTION, SENTIMENT, AROUSAL = (
    TaskSpec("emotion", 7),
    TaskSpec("sentiment", 3),
    TaskSpec("arousal", 0),
)
CONFIG = Path(__file__).resolve().parents[3] / "configs" / "heads" / "moe.toml"


def head(tasks: tuple[TaskSpec, ...], in_dim: int = 16, **options) -> nn.Module:
    torch.manual_seed(0)
    section = {"kind": "moe", "dropout": 0.0, **options}
    return em.create(em.resolve("head", section), in_dim, tasks)


def test_one_task_shapes() -> None:
    h = head((EMOTION,)).eval()
    out, aux = h(torch.randn(5, 16))
    assert list(out) == ["emotion"] and out["emotion"].shape == (5, 7)
    assert aux == {}
    assert h.task_weights == {"emotion": 1.0}


def test_two_tasks_shapes_and_weights() -> None:
    h = head((EMOTION, SENTIMENT), weights={"sentiment": 0.5}).eval()
    out, _ = h(torch.randn(6, 16))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"emotion": (6, 7), "sentiment": (6, 3)}
    assert h.task_weights == {"emotion": 1.0, "sentiment": 0.5}
    # a regression task takes one column, returned as (N,)
    out, _ = head((EMOTION, AROUSAL)).eval()(torch.randn(6, 16))
    assert out["arousal"].shape == (6,)


@pytest.mark.parametrize("hidden", [0, 8])
def test_experts_and_router_are_wired(hidden) -> None:
    h = head((EMOTION, SENTIMENT), experts=5, hidden=hidden)
    assert len(h.experts) == 5
    assert (h.router.in_features, h.router.out_features) == (16, 5)
    for expert in h.experts:
        shapes = [(m.in_features, m.out_features) for m in expert if isinstance(m, nn.Linear)]
        assert shapes == ([(16, 10)] if hidden == 0 else [(16, 8), (8, 10)])  # 10 = 7 + 3


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_output_is_the_top_k_mixture(top_k) -> None:
    h = head((EMOTION, SENTIMENT), experts=4, top_k=top_k, hidden=8).eval()
    z = torch.randn(7, 16)
    with torch.no_grad():
        out, _ = h(z)
        probs = h.router(z).softmax(-1).tolist()
        for i in range(7):
            order = sorted(range(4), key=lambda e: -probs[i][e])[:top_k]
            norm = sum(probs[i][e] for e in order)
            want = sum(probs[i][e] / norm * h.experts[e](z[i : i + 1])[0] for e in order)
            torch.testing.assert_close(out["emotion"][i], want[:7])
            torch.testing.assert_close(out["sentiment"][i], want[7:])


def test_balance_loss_by_hand() -> None:
    # 3 experts, top 2, router on 2 features: fixed weights and inputs, loss from plain loops
    h = head((EMOTION,), in_dim=2, experts=3, top_k=2, balance_weight=0.3).train()
    w = [[1.0, -0.5], [-1.0, 0.8], [0.2, 0.3]]
    b = [0.1, 0.0, -0.2]
    z = [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [0.5, 2.0]]
    with torch.no_grad():
        h.router.weight.copy_(torch.tensor(w))
        h.router.bias.copy_(torch.tensor(b))
    _, aux = h(torch.tensor(z))
    assert set(aux) == {"moe_head_balance"}

    n, e, k = len(z), 3, 2
    picked = [0.0] * e
    mean_p = [0.0] * e
    for x in z:
        logits = [sum(w[j][d] * x[d] for d in range(2)) + b[j] for j in range(e)]
        exps = [math.exp(v) for v in logits]
        p = [v / sum(exps) for v in exps]
        for j in sorted(range(e), key=lambda j: -p[j])[:k]:
            picked[j] += 1
        for j in range(e):
            mean_p[j] += p[j] / n
    f = [c / (n * k) for c in picked]
    want = 0.3 * e * sum(f[j] * mean_p[j] for j in range(e))
    assert math.isclose(aux["moe_head_balance"].item(), want, rel_tol=1e-5)


def test_aux_only_in_training() -> None:
    h = head((EMOTION,))
    z = torch.randn(4, 16)
    assert set(h.train()(z)[1]) == {"moe_head_balance"}
    assert h.eval()(z)[1] == {}


def test_batch_independence() -> None:
    h = head((EMOTION, SENTIMENT), hidden=8).eval()
    z = torch.randn(9, 16)
    with torch.no_grad():
        full, _ = h(z)
        for i in range(9):
            alone, _ = h(z[i : i + 1])
            for task, v in alone.items():
                torch.testing.assert_close(v, full[task][i : i + 1])


def test_trains_in_an_er_model(one_thread) -> None:
    # three separable clusters in 8 text features; the balance loss is summed in from Output.aux
    g = torch.Generator().manual_seed(0)
    centres = 3.0 * torch.randn(3, 8, generator=g)
    y = torch.arange(60) % 3
    x = centres[y] + 0.5 * torch.randn(60, 8, generator=g)
    spec = em.parse_network(
        {
            "model": {"width": 8, "dropout": 0.0},
            "head": {"kind": "moe", "experts": 4, "top_k": 2, "dropout": 0.0},
        },
        {"text": 8},
        {"emotion": 3},
    )
    torch.manual_seed(0)
    model = em.build_model(spec)
    present = torch.ones(60, 1, dtype=torch.bool)
    layout, speakers = torch.arange(60).view(60, 1), torch.zeros(60, 1, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    model.train()
    for _ in range(80):
        out = model({"text": x}, present, layout, speakers)
        assert set(out.aux) == {"moe_head_balance"}
        loss = F.cross_entropy(out.outputs["emotion"], y) + sum(out.aux.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model({"text": x}, present, layout, speakers)
    assert out.aux == {}
    assert (out.outputs["emotion"].argmax(-1) == y).float().mean() >= 0.95


def test_top_k_above_experts_is_an_error() -> None:
    # refused when the config is read (before any data or training), naming the file
    with pytest.raises(ErError) as e:
        em.parse_network(
            {"head": {"kind": "moe", "experts": 2, "top_k": 3}},
            {"text": 8},
            {"emotion": 7},
            {"head": "moe.toml"},
        )
    assert e.value.at == "moe.toml:$.head.top_k" and "top_k = 3" in e.value.what and e.value.hint
    # and by the factory itself, for a config built in code
    cfg = em.parts("head")["moe"].config(experts=2, top_k=3)
    with pytest.raises(ErError) as e:
        em.create(em.Resolved("head", "moe", cfg), 8, (EMOTION,))
    assert e.value.at == "$.head.top_k" and "top_k" in e.value.what and e.value.hint


def test_weights_for_an_unknown_task_is_an_error() -> None:
    with pytest.raises(ErError) as e:
        head((EMOTION,), weights={"sentiment": 0.5})
    assert e.value.at == "$.head.weights" and "sentiment" in e.value.what and e.value.hint


def test_config_file_resolves() -> None:
    with CONFIG.open("rb") as f:
        data = tomllib.load(f)
    spec = em.parse_network(data, {"text": 8}, {"emotion": 7})
    assert spec.head.kind == "moe"
    # every option is spelled out in the file, and the built head has what it says
    assert set(data["head"]) == {"kind", *em.parts("head")["moe"].config.__struct_fields__}
    model = em.build_model(spec)
    assert len(model.head.experts) == data["head"]["experts"]
    assert model.head.top_k == data["head"]["top_k"]
