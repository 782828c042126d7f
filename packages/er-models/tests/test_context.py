"""Dialogue context models: padding never matters, causality holds, speakers are wired, and
context actually helps on a task that needs it."""

from __future__ import annotations

import er_models as em
import pytest
import torch
from er_core import ErError
from er_models.context import ContextInputs
from torch import nn

D = 12  # fused width fed to the context models here
SPEAKERS = 4

# every registered context with its defaults (so a new part is covered as soon as it registers),
# plus the variants whose maths differ: uni/bidirectional GRU, causal/bidirectional transformer
VARIANTS = {f"{n}-defaults": {"kind": n} for n in em.names("context")} | {
    "gru-uni": {"kind": "gru", "hidden": 16, "bidirectional": False, "speaker_dim": 4},
    "gru-bi": {"kind": "gru", "hidden": 16, "layers": 2, "residual": "concat"},
    "transformer-causal": {"kind": "transformer", "width": 16, "heads": 2, "causal": True},
    "transformer-bi": {"kind": "transformer", "width": 16, "heads": 2, "positions": "sinusoidal"},
}
CAUSAL = {"gru-uni": True, "gru-bi": False, "transformer-causal": True, "transformer-bi": False}


def build(section: dict, in_dim: int = D) -> nn.Module:
    torch.manual_seed(0)
    return em.create(em.resolve("context", section), ContextInputs(in_dim, SPEAKERS))


def batch(lens: list[int], seed: int = 0, shuffle: bool = True):
    """Dialogues of lengths `lens` with their rows scattered through h (as a loader may put
    them). Returns h (N, D), layout (B, T), speakers (B, T) and each dialogue's rows."""
    g = torch.Generator().manual_seed(seed)
    n, t = sum(lens), max(lens)
    perm = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
    layout = torch.full((len(lens), t), -1, dtype=torch.long)
    speakers = torch.full((len(lens), t), 99, dtype=torch.long)  # junk at padding, on purpose
    rows, start = [], 0
    for b, length in enumerate(lens):
        r = perm[start : start + length]
        layout[b, :length] = r
        speakers[b, :length] = torch.randint(0, SPEAKERS, (length,), generator=g)
        rows.append(r)
        start += length
    return torch.randn(n, D, generator=g), layout, speakers, rows


def alone(m: nn.Module, h, layout, speakers, b: int, rows) -> torch.Tensor:
    """Dialogue b's outputs computed on its own: B = 1, T = its length."""
    length = len(rows)
    return m(h[rows], torch.arange(length).unsqueeze(0), speakers[b : b + 1, :length])


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_batch_independence(name: str, grad: bool) -> None:
    # no_grad in eval takes PyTorch's fused fast path in the transformer: both must agree
    m = build(VARIANTS[name]).eval()
    lens = [5, 9, 1, 3]
    h, layout, speakers, rows = batch(lens)
    with torch.set_grad_enabled(grad):
        out = m(h, layout, speakers)  # (N, out_dim)
        assert out.shape == (h.shape[0], m.out_dim)
        assert torch.isfinite(out).all()
        for b, r in enumerate(rows):
            torch.testing.assert_close(
                alone(m, h, layout, speakers, b, r), out[r], atol=1e-5, rtol=0
            )
        # the same dialogues in another order and another batch width give the same rows
        order = [3, 1, 0, 2]
        perm = torch.tensor(order)
        out2 = m(h, layout[perm], speakers[perm])
        torch.testing.assert_close(out2, out, atol=1e-5, rtol=0)
        # extra trailing padding (a longer dialogue elsewhere) changes nothing
        wide = torch.cat([layout, torch.full((4, 6), -1)], dim=1)
        wide_spk = torch.cat([speakers, torch.zeros(4, 6, dtype=torch.long)], dim=1)
        torch.testing.assert_close(m(h, wide, wide_spk), out, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_batch_independence_through_model(name: str) -> None:
    spec = em.parse_network(
        {"model": {"width": 8}, "context": VARIANTS[name]},
        dims={"text": 10, "audio": 6},
        tasks={"emotion": 5},
    )
    torch.manual_seed(0)
    model = em.build_model(spec).eval()
    lens = [4, 7, 2]
    _, layout, speakers, rows = batch(lens, seed=1)
    n = sum(lens)
    g = torch.Generator().manual_seed(2)
    feats = {"text": torch.randn(n, 10, generator=g), "audio": torch.randn(n, 6, generator=g)}
    present = torch.rand(n, 2, generator=g) > 0.2  # some modalities missing
    full = model(feats, present, layout, speakers).outputs["emotion"]  # (N, 5)
    assert full.shape == (n, 5)
    for b, r in enumerate(rows):
        one = model(
            {k: v[r] for k, v in feats.items()},
            present[r],
            torch.arange(len(r)).unsqueeze(0),
            speakers[b : b + 1, : len(r)],
        ).outputs["emotion"]
        torch.testing.assert_close(one, full[r], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fully_padded_row_is_finite_in_training(name: str) -> None:
    # not produced by the loader, but a NaN in a discarded row would still poison the gradients
    m = build(VARIANTS[name]).train()
    h, layout, speakers, _ = batch([3, 5])
    layout = torch.cat([layout, torch.full((1, 5), -1)])
    speakers = torch.cat([speakers, torch.zeros(1, 5, dtype=torch.long)])
    h.requires_grad_(True)
    out = m(h, layout, speakers)
    assert out.shape == (8, m.out_dim) and torch.isfinite(out).all()
    out.square().sum().backward()
    assert torch.isfinite(h.grad).all()
    for p in m.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()
    # and in eval (the transformer's fused path), the real rows are those of the batch without it
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(h, layout, speakers), m(h, layout[:2], speakers[:2]))


@pytest.mark.parametrize("name", list(CAUSAL))
def test_later_turns_reach_earlier_ones_only_when_bidirectional(name: str) -> None:
    m = build(VARIANTS[name]).eval()
    h, layout, speakers, _ = batch([6, 4], shuffle=False)
    out = m(h, layout, speakers)
    h2 = h.clone()
    h2[3] += 1.0  # turn 3 of dialogue 0
    out2 = m(h2, layout, speakers)
    earlier = (out2[:3] - out[:3]).abs().max().item()
    if CAUSAL[name]:
        assert earlier == 0.0
    else:
        assert earlier > 1e-4
    assert (out2[3] - out[3]).abs().max() > 1e-4  # the changed turn itself moves
    assert torch.equal(out2[6:], out[6:])  # and dialogue 1 never does


SPEAKER_CASES = {
    "gru": ({"kind": "gru", "hidden": 16, "speaker_dim": 4}, {"speaker_dim": 0}),
    "transformer": ({"kind": "transformer", "width": 16, "heads": 2}, {"speakers": False}),
}


@pytest.mark.parametrize("kind", list(SPEAKER_CASES))
@pytest.mark.parametrize("on", [True, False], ids=["speakers-on", "speakers-off"])
def test_speaker_slots(kind: str, on: bool) -> None:
    section, off = SPEAKER_CASES[kind]
    m = build(section if on else section | off).eval()
    h = torch.randn(5, D)
    layout = torch.arange(5).unsqueeze(0)
    spk = torch.tensor([[0, 1, 0, 1, 2]])
    swapped = torch.tensor([[1, 0, 1, 0, 2]])
    diff = (m(h, layout, spk) - m(h, layout, swapped)).abs().max().item()
    if on:
        assert diff > 1e-5
    else:
        assert diff == 0.0


@pytest.mark.parametrize(
    ("section", "out_dim"),
    [
        ({"kind": "gru", "hidden": 8}, 16),
        ({"kind": "gru", "hidden": 8, "bidirectional": False}, 8),
        ({"kind": "gru", "hidden": 8, "residual": "concat"}, 16 + D),
        ({"kind": "gru", "hidden": 8, "residual": "none"}, 16),
        ({"kind": "transformer", "width": 8, "heads": 2}, 8),
        ({"kind": "transformer", "width": 8, "heads": 2, "residual": "concat"}, 8 + D),
        ({"kind": "none"}, D),
    ],
)
def test_out_dim(section: dict, out_dim: int) -> None:
    m = build(section)
    h, layout, speakers, _ = batch([2, 3])
    assert m.out_dim == out_dim
    assert m(h, layout, speakers).shape == (5, out_dim)


def test_options_are_wired() -> None:
    gru = build({"kind": "gru", "hidden": 8, "layers": 3, "dropout": 0.3})
    assert (gru.gru.num_layers, gru.gru.hidden_size, gru.gru.dropout) == (3, 8, 0.3)
    tr = build({"kind": "transformer", "width": 8, "heads": 2, "layers": 3, "ff": 24})
    assert len(tr.encoder.layers) == 3
    assert tr.encoder.layers[0].linear1.out_features == 24
    assert tr.encoder.layers[0].self_attn.num_heads == 2
    assert (
        build({"kind": "transformer", "width": 8, "heads": 2})
        .encoder.layers[0]
        .linear1.out_features
        == 16
    )  # ff = 0 means 2·width


def test_learned_positions_clamp_beyond_max_turns() -> None:
    m = build({"kind": "transformer", "width": 8, "heads": 2, "max_turns": 4}).eval()
    h, layout, speakers, _ = batch([10])
    assert torch.isfinite(m(h, layout, speakers)).all()  # turns 4..9 share the last position


def test_bad_options() -> None:
    with pytest.raises(ErError) as e:
        build({"kind": "transformer", "width": 10, "heads": 4})
    assert e.value.at == "$.context.heads"
    with pytest.raises(ErError) as e:
        em.resolve("context", {"kind": "gru", "hiden": 8})
    assert e.value.at == "$.context.hiden" and "hidden" in e.value.hint
    with pytest.raises(ErError) as e:
        em.resolve("context", {"kind": "transformer", "positions": "rotary"})
    assert e.value.at == "$.context.positions"


def toy(seed: int = 0, b: int = 48, t: int = 8, d: int = 8, c: int = 4):
    """Turn t's label is the argmax of the first c features of turn t - 1 (turn 0: its own),
    so an utterance alone says almost nothing about its label."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(4, t + 1, (b,), generator=g)
    x = torch.randn(int(lens.sum()), d, generator=g)  # (N, d)
    layout = torch.full((b, t), -1, dtype=torch.long)
    labels, start = [], 0
    for i, length in enumerate(lens.tolist()):
        layout[i, :length] = torch.arange(start, start + length)
        prev = torch.cat([x[start : start + 1], x[start : start + length - 1]])  # (L, d)
        labels.append(prev[:, :c].argmax(1))
        start += length
    return x, layout, torch.zeros(b, t, dtype=torch.long), torch.cat(labels)


def train_accuracy(section: dict, steps: int = 80) -> float:
    x, layout, speakers, y = toy()
    ctx = build(section, in_dim=x.shape[1])
    torch.manual_seed(0)
    head = nn.Linear(ctx.out_dim, 4)
    params = [*ctx.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(head(ctx(x, layout, speakers)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    ctx.eval()
    with torch.no_grad():
        return (head(ctx(x, layout, speakers)).argmax(1) == y).float().mean().item()


@pytest.fixture
def one_thread():
    # tiny models on a shared machine: thread hand-offs cost more than they bring
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_context_learns_what_one_utterance_cannot(one_thread) -> None:
    small = {"dropout": 0.0}
    none = train_accuracy({"kind": "none"})
    accs = {
        "gru": train_accuracy({"kind": "gru", "hidden": 32} | small),
        "gru-uni": train_accuracy({"kind": "gru", "hidden": 32, "bidirectional": False} | small),
        "transformer": train_accuracy(
            {"kind": "transformer", "width": 32, "heads": 2, "layers": 1} | small
        ),
        "transformer-causal": train_accuracy(
            {"kind": "transformer", "width": 32, "heads": 2, "layers": 1, "causal": True} | small
        ),
    }
    assert none < 0.55  # chance is ~0.34; a linear head cannot do much better from turn t alone
    for name, acc in accs.items():
        assert acc > 0.85 and acc > none + 0.3, (name, acc, none)
