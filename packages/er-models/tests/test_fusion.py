"""Every registered fusion: builds, shapes, gradients, batch independence, missing-modality
masking and learnability; then part-specific checks against hand computations."""

from __future__ import annotations

import math

import er_models
import pytest
import torch
import torch.nn.functional as F
from er_core import ErError
from torch import nn

FUSIONS = er_models.names("fusion")
ALL = ("text", "audio", "video")
MODALITY_SETS = [("text",), ("audio",), ("text", "audio"), ("audio", "video"), ALL]

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- every fusion


@pytest.mark.parametrize("mods", MODALITY_SETS, ids="+".join)
@pytest.mark.parametrize("kind", FUSIONS)
def test_builds_shapes_and_gradients(toy, kind, mods):
    if not toy.allows(kind, mods):
        with pytest.raises(ErError) as e:
            toy.model(kind, mods)
        assert e.value.at == "$.fusion.kind"
        return
    model = toy.model(kind, mods).train()  # train: aux losses are part of the backward
    b = toy.batch(mods, n=6, seed=1)
    fusion = model.fusion
    want = toy.out_dim(kind, mods)
    if want is not None:
        assert fusion.out_dim == want
    with torch.no_grad():
        h, _ = toy.fuse(model, b)
    assert h.shape == (6, fusion.out_dim)

    out = model(b.feats, b.present, b.layout, b.speakers)
    assert out.outputs["emotion"].shape == (6, toy.classes)
    loss = F.cross_entropy(out.outputs["emotion"], torch.tensor([0, 1, 2, 0, 1, 2]))
    (loss + sum(out.aux.values())).backward()

    # the one exception: an MoE expert that no utterance of the batch routed to gets no gradient
    idle: set[str] = set()
    if kind == "moe":
        with torch.no_grad():
            tokens = model.projection(b.feats, b.present)
            chosen = set(fusion.route(tokens.flatten(1))[2].unique().tolist())
        idle = {
            f"experts.{e}.{n}"
            for e in range(len(fusion.experts))
            if e not in chosen
            for n, _ in fusion.experts[e].named_parameters()
        }
    for name, p in fusion.named_parameters():
        if name in idle:
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", FUSIONS)
def test_batch_independence(toy, kind):
    model = toy.model(kind, ALL).eval()
    b = toy.batch(ALL, n=18, seed=2, missing=0.3)  # each utterance among 17 others
    perm = torch.randperm(18, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        h_batch, y_batch = toy.fuse(model, b)[0], toy.logits(model, b)
        h_perm, y_perm = toy.fuse(model, b.take(perm))[0], toy.logits(model, b.take(perm))
        torch.testing.assert_close(h_perm, h_batch[perm], atol=1e-5, rtol=0)
        torch.testing.assert_close(y_perm, y_batch[perm], atol=1e-5, rtol=0)
        for i in range(18):
            alone = b.take([i])
            torch.testing.assert_close(toy.fuse(model, alone)[0][0], h_batch[i], atol=1e-5, rtol=0)
            torch.testing.assert_close(toy.logits(model, alone)[0], y_batch[i], atol=1e-5, rtol=0)
    # training mode, where batch statistics (BatchNorm) would show; only without dropout
    if all(d.p == 0 for d in model.fusion.modules() if isinstance(d, nn.Dropout)):
        model.train()
        h_batch = toy.fuse(model, b)[0]
        for i in (0, 7):
            torch.testing.assert_close(
                toy.fuse(model, b.take([i]))[0][0], h_batch[i], atol=1e-5, rtol=0
            )


@pytest.mark.parametrize("m", range(3), ids=ALL)
@pytest.mark.parametrize("kind", FUSIONS)
def test_missing_modality_is_masked(toy, kind, m):
    model = toy.model(kind, ALL).eval()
    b = toy.batch(ALL, n=4, seed=3)
    gone = b.take(range(4))
    gone.present[0, m] = False
    changed = b.take(range(4))
    changed.present[0, m] = False
    changed.feats[ALL[m]][0] = 5 * torch.randn(toy.dims[ALL[m]])
    with torch.no_grad():
        y_gone, y_changed, y_there = (toy.logits(model, x) for x in (gone, changed, b))
    assert torch.equal(y_gone, y_changed)  # the features of a missing modality are never read
    assert not torch.allclose(y_gone[0], y_there[0], atol=1e-5)  # but its absence matters
    torch.testing.assert_close(y_gone[1:], y_there[1:], atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", FUSIONS)
def test_nothing_present_is_finite(toy, kind):
    model = toy.model(kind, ALL).eval()
    b = toy.batch(ALL, n=3, seed=4)
    b.present[0] = False
    with torch.no_grad():
        assert torch.isfinite(toy.logits(model, b)).all()
        assert torch.isfinite(toy.logits(model, b.take([0]))).all()


@pytest.mark.parametrize("kind", FUSIONS)
def test_learns_a_toy_problem(toy, kind):
    # label = argmax of a fixed projection of the text features; audio carries a weaker copy
    g = torch.Generator().manual_seed(5)
    b = toy.batch(ALL, n=192, seed=6)
    y = (b.feats["text"] @ torch.randn(toy.dims["text"], toy.classes, generator=g)).argmax(-1)
    b.feats["audio"][:, : toy.classes] += F.one_hot(y, toy.classes).float()
    model = toy.model(kind, ALL).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        out = model(b.feats, b.present, b.layout, b.speakers)
        loss = F.cross_entropy(out.outputs["emotion"], y) + sum(out.aux.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (toy.logits(model.eval(), b).argmax(-1) == y).float().mean().item()
    chance = torch.bincount(y).max().item() / len(y)
    print(f"{kind}: train accuracy {acc:.3f}, majority class {chance:.3f}")
    assert acc > max(0.85, chance + 0.3), (acc, chance)


# ---------------------------------------------------------------- attention


def _mha_inputs(fusion: nn.Module) -> list[tuple[torch.Tensor, ...]]:
    seen: list[tuple[torch.Tensor, ...]] = []
    for mod in fusion.modules():
        if isinstance(mod, nn.MultiheadAttention):
            assert mod.batch_first
            mod.register_forward_pre_hook(lambda _m, args: seen.append(args))
    return seen


def test_attention_sees_modalities_as_tokens(toy):
    fusion = toy.model("attention", ALL, layers=2, pool="query").fusion.eval()
    seen = _mha_inputs(fusion)
    tokens = torch.randn(5, 3, toy.width)  # N = 5 utterances, M = 3 tokens
    fusion(tokens, torch.ones(5, 3, dtype=torch.bool))
    assert len(seen) == 3  # two blocks and the pooling query
    for q, k, v in seen[:2]:
        assert q.shape == k.shape == v.shape == (5, 3, toy.width)
    assert seen[2][0].shape == (5, 1, toy.width) and seen[2][1].shape == (5, 3, toy.width)


def test_cross_attention_text_queries_the_others(toy):
    fusion = toy.model("cross-attention", ALL).fusion.eval()
    seen = _mha_inputs(fusion)
    tokens = torch.randn(5, 3, toy.width)
    h, _ = fusion(tokens, torch.ones(5, 3, dtype=torch.bool))
    ((q, k, v),) = seen
    assert q.shape == (5, 1, toy.width) and k.shape == v.shape == (5, 2, toy.width)
    assert torch.equal(h[:, toy.width :], tokens[:, 0])  # second half: the text token itself


@pytest.mark.parametrize(
    "kind, options",
    [
        ("attention", {}),
        ("attention", {"layers": 2}),
        ("attention", {"pool": "query"}),
        ("cross-attention", {}),
        ("cross-attention", {"layers": 2}),
    ],
    ids=str,
)
def test_attention_masks_missing_keys(toy, kind, options):
    fusion = toy.model(kind, ALL, **options).fusion.eval()
    tokens = torch.randn(4, 3, toy.width)
    present = torch.ones(4, 3, dtype=torch.bool)
    present[0, 2] = False  # video missing in utterance 0
    other = tokens.clone()
    other[0, 2] = 10 * torch.randn(toy.width)  # fusion level: the projection is bypassed
    with torch.no_grad():
        h1, h2 = fusion(tokens, present)[0], fusion(other, present)[0]
        h3 = fusion(tokens, torch.ones(4, 3, dtype=torch.bool))[0]
    torch.testing.assert_close(h1, h2, atol=1e-6, rtol=0)
    assert not torch.allclose(h1[0], h3[0], atol=1e-5)


def test_attention_query_pool_gets_gradients(toy):
    fusion = toy.model("attention", ALL, pool="query").fusion
    h, _ = fusion(torch.randn(4, 3, toy.width), torch.ones(4, 3, dtype=torch.bool))
    h.pow(2).sum().backward()
    assert fusion.query.grad.abs().sum() > 0
    assert fusion.pool_attn.in_proj_weight.grad.abs().sum() > 0


def test_attention_options_are_wired(toy):
    assert len(toy.model("attention", ALL, layers=3).fusion.blocks) == 3
    assert len(toy.model("cross-attention", ALL, layers=2).fusion.blocks) == 2
    assert toy.model("attention", ALL, heads=4).fusion.blocks[0].attn.num_heads == 4
    with pytest.raises(ErError) as e:
        toy.model("attention", ALL, heads=3)  # 16 % 3 != 0
    assert e.value.at == "$.fusion.heads"


@pytest.mark.parametrize("mods", [("audio", "video"), ("text",)], ids="+".join)
def test_cross_attention_needs_text_and_another(toy, mods):
    with pytest.raises(ErError) as e:
        toy.model("cross-attention", mods)
    assert e.value.at == "$.fusion.kind" and "text" in e.value.what and e.value.hint


# ---------------------------------------------------------------- moe


@pytest.mark.parametrize("experts", [1, 3, 8])
def test_moe_builds_that_many_experts(toy, experts):
    fusion = toy.model("moe", ALL, experts=experts, top_k=1).fusion
    assert len(fusion.experts) == experts
    # distinct modules reading the concatenated tokens (M·W = 48): each expert's first layer
    # and the router
    readers = {id(m) for m in fusion.modules() if isinstance(m, nn.Linear) and m.in_features == 48}
    assert len(readers) == experts + 1
    per_expert = (48 * 16 + 16) + (16 * 16 + 16)
    router = 48 * experts + experts
    assert sum(p.numel() for p in fusion.parameters()) == router + experts * per_expert
    assert fusion.router.out_features == experts


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_moe_routes_each_utterance_to_k_experts(toy, top_k):
    fusion = toy.model("moe", ALL, experts=4, top_k=top_k).fusion.eval()
    x = torch.randn(10, 3 * toy.width)
    with torch.no_grad():
        probs, gates, _ = fusion.route(x)
        h, aux = fusion(x.view(10, 3, toy.width), torch.ones(10, 3, dtype=torch.bool))
        outs = torch.stack([e(x) for e in fusion.experts], dim=1)  # (N, E, out), all experts
    assert aux == {}  # eval: no aux loss
    assert ((gates > 0).sum(-1) == top_k).all()
    torch.testing.assert_close(gates.sum(-1), torch.ones(10))
    for i in range(10):
        top = probs[i].argsort(descending=True)[:top_k]
        want = torch.zeros(4)
        want[top] = probs[i, top] / probs[i, top].sum()
        torch.testing.assert_close(gates[i], want)
    torch.testing.assert_close(h, (gates.unsqueeze(-1) * outs).sum(1), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "bias, top_k, want",
    [
        ([0.0, 0.0, 0.0, 0.0], 2, 1.0),  # uniform router: f_e = P_e = 1/4
        ([0.4, 0.3, 0.2, 0.1], 2, 4 * (0.5 * 0.4 + 0.5 * 0.3)),  # all pick {0, 1}
        ([0.4, 0.3, 0.2, 0.1], 1, 4 * 0.4),  # all pick 0
    ],
)
def test_moe_balance_loss_by_hand(toy, bias, top_k, want):
    fusion = toy.model("moe", ALL, experts=4, top_k=top_k, balance_weight=0.05).fusion.train()
    with torch.no_grad():
        fusion.router.weight.zero_()  # every utterance gets softmax(bias) = the probabilities
        b = torch.tensor(bias)
        fusion.router.bias.copy_(torch.log(b) if b.sum() > 0 else b)
    _, aux = fusion(torch.randn(7, 3, toy.width), torch.ones(7, 3, dtype=torch.bool))
    assert set(aux) == {"moe_balance"}
    assert math.isclose(aux["moe_balance"].item(), 0.05 * want, rel_tol=1e-5)


def test_moe_balance_loss_with_mixed_routing(toy):
    fusion = toy.model("moe", ("text",), experts=3, top_k=1, balance_weight=1.0).fusion.train()
    with torch.no_grad():
        fusion.router.weight.zero_()
        fusion.router.weight[:, 0] = torch.tensor([2.0, 0.0, -2.0])  # reads token feature 0
        fusion.router.bias.zero_()
    tokens = torch.zeros(4, 1, toy.width)
    tokens[:, 0, 0] = torch.tensor([1.0, 1.0, 1.0, -1.0])  # 3 go to expert 0, 1 to expert 2
    _, aux = fusion(tokens, torch.ones(4, 1, dtype=torch.bool))
    pa = torch.softmax(torch.tensor([2.0, 0.0, -2.0]), 0)  # the router for feature +1
    pb = pa.flip(0)  # ... and for -1
    p = (3 * pa + pb) / 4
    want = 3 * (0.75 * p[0] + 0.25 * p[2])
    assert math.isclose(aux["moe_balance"].item(), want.item(), rel_tol=1e-5)


def test_moe_top_k_above_experts_is_an_error(toy):
    with pytest.raises(ErError) as e:
        toy.model("moe", ALL, experts=2, top_k=3)
    assert e.value.at == "$.fusion.top_k" and e.value.hint


# ---------------------------------------------------------------- tfn and lmf


def _ones(z):
    return torch.cat([z, torch.ones(z.shape[0], 1)], dim=-1)


@pytest.mark.parametrize("mods", [("text",), ("text", "audio"), ALL], ids="+".join)
def test_tfn_is_an_mlp_over_the_outer_product(toy, mods):
    fusion = toy.model("tfn", mods).fusion.eval()
    tokens = torch.randn(3, len(mods), toy.width)
    z = [_ones(tokens[:, m] @ r.weight.T + r.bias) for m, r in enumerate(fusion.reduce)]  # (N, 5)
    outer = torch.einsum(["ni->ni", "ni,nj->nij", "ni,nj,nk->nijk"][len(mods) - 1], *z).flatten(1)
    assert outer.shape == (3, 5 ** len(mods))
    l1, l2 = fusion.mlp[1], fusion.mlp[3]
    want = F.gelu(F.gelu(outer @ l1.weight.T + l1.bias) @ l2.weight.T + l2.bias)
    with torch.no_grad():
        h, _ = fusion(tokens, torch.ones(3, len(mods), dtype=torch.bool))
    torch.testing.assert_close(h, want, atol=1e-5, rtol=1e-5)


def test_tfn_rank_dim_is_wired(toy):
    assert toy.model("tfn", ALL, rank_dim=2).fusion.mlp[1].in_features == 3**3
    assert toy.model("tfn", ("text", "audio"), rank_dim=0).fusion.mlp[1].in_features == 17**2
    with pytest.raises(ErError) as e:
        toy.model("tfn", ALL, width=256, rank_dim=0)  # 257³ entries
    assert e.value.at == "$.fusion.rank_dim"


@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("mods", [("text",), ("text", "audio"), ALL], ids="+".join)
def test_lmf_by_hand(toy, mods, rank):
    fusion = toy.model("lmf", mods, rank=rank, out=5).fusion
    tokens = torch.randn(3, len(mods), toy.width)
    z = [_ones(tokens[:, m]) for m in range(len(mods))]  # (N, W+1) each
    want = fusion.bias.clone()
    for r in range(rank):
        term = fusion.rank_weights[r] * torch.ones(3, 5)
        for m, f in enumerate(fusion.factors):
            term = term * (z[m] @ f[r])  # (N, out)
        want = want + term
    with torch.no_grad():
        h, _ = fusion(tokens, torch.ones(3, len(mods), dtype=torch.bool))
    torch.testing.assert_close(h, want.detach(), atol=1e-5, rtol=1e-5)
    if len(mods) == 2:  # LMF is a linear map of TFN's outer product, with a low-rank weight
        full = torch.einsum("r,rio,rjo->ijo", fusion.rank_weights, *fusion.factors)
        tfn = torch.einsum("ni,nj,ijo->no", *z, full) + fusion.bias
        torch.testing.assert_close(h, tfn.detach(), atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- shared-private


def _binary_tokens(n_mods: int, width: int) -> torch.Tensor:
    tokens = torch.zeros(4, n_mods, width)
    tokens[:, :, 0] = torch.tensor([1.0, -1.0, 1.0, -1.0]).unsqueeze(-1)  # read by shared
    tokens[:, :, 1] = torch.tensor([1.0, 1.0, -1.0, -1.0]).unsqueeze(-1)  # read by private
    return tokens


def _read_only(linear: nn.Linear, column: int) -> None:
    with torch.no_grad():
        w = linear.weight[:, column].clone()
        linear.weight.zero_()
        linear.weight[:, column] = w


def test_shared_private_aux_keys_and_modes(toy):
    fusion = toy.model("shared-private", ALL).fusion
    x, present = torch.randn(6, 3, toy.width), torch.ones(6, 3, dtype=torch.bool)
    _, aux = fusion.train()(x, present)
    assert set(aux) == {"sp_diff", "sp_sim"} and all(v.item() > 0 for v in aux.values())
    assert fusion.eval()(x, present)[1] == {}


def test_shared_private_diff_is_zero_when_orthogonal(toy):
    # the shared encoder reads only token feature 0, the private ones only feature 1; over the
    # batch these are orthogonal ±1 patterns, so centred shared and private columns are too
    fusion = toy.model("shared-private", ALL, diff_weight=0.3).fusion.train()
    _read_only(fusion.shared[0], 0)
    for enc in fusion.private:
        _read_only(enc[0], 1)
    tokens = _binary_tokens(3, toy.width)
    _, aux = fusion(tokens, torch.ones(4, 3, dtype=torch.bool))
    assert aux["sp_diff"].item() < 1e-10
    # private = shared: each centred row is ±δ, so ŜᵀŜ = 4·δ̂δ̂ᵀ and mean((ŜᵀŜ)²) = 16 / H²
    for enc in fusion.private:
        enc[0].load_state_dict(fusion.shared[0].state_dict())
    _, aux = fusion(tokens, torch.ones(4, 3, dtype=torch.bool))
    assert math.isclose(aux["sp_diff"].item(), 0.3 * 16 / 8**2, rel_tol=1e-4)


def test_shared_private_sim_by_hand(toy):
    fusion = toy.model("shared-private", ("text", "audio"), sim_weight=2.0).fusion.train()
    present = torch.ones(5, 2, dtype=torch.bool)
    same = torch.randn(5, 1, toy.width).expand(5, 2, toy.width)
    assert fusion(same, present)[1]["sp_sim"].item() < 1e-12  # one shared encoder: same vector
    x = torch.randn(5, 2, toy.width)
    present[1, 1] = False  # utterance 1 has no pair: left out
    s = torch.sigmoid(x @ fusion.shared[0].weight.T + fusion.shared[0].bias)  # (N, 2, H)
    s = s / s.norm(dim=-1, keepdim=True)
    d = (s[:, 0] - s[:, 1]).pow(2).sum(-1)[[0, 2, 3, 4]].mean()
    got = fusion(x, present)[1]["sp_sim"]
    assert math.isclose(got.item(), 2.0 * d.item(), rel_tol=1e-5)
    one = toy.model("shared-private", ("audio",)).fusion.train()
    assert one(x[:, :1], present[:, :1])[1]["sp_sim"].item() == 0.0


def test_shared_private_aux_ignores_missing_modalities(toy):
    fusion = toy.model("shared-private", ALL).fusion.train()
    x = torch.randn(6, 3, toy.width)
    present = torch.ones(6, 3, dtype=torch.bool)
    present[2, 1] = False
    y = x.clone()
    y[2, 1] = 10 * torch.randn(toy.width)  # a missing token changes...
    a, b = fusion(x, present)[1], fusion(y, present)[1]
    for key in a:  # ... no aux loss
        torch.testing.assert_close(a[key], b[key], atol=1e-7, rtol=1e-6)
    y[3, 1] = 10 * torch.randn(toy.width)  # a present one changes both
    c = fusion(y, present)[1]
    assert all(not torch.isclose(a[k], c[k]) for k in a)
