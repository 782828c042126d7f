"""Contrastive `aux` objectives (supcon, spcl, apcl): values by hand on tiny cases, pool and
prototype updates by hand, each objective alone learning a separable representation, state that
changes in training only, float32 under autocast, bad configs and the shipped config files."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import er_models as em
import msgspec
import pytest
import torch
import torch.nn.functional as F
from er_core import ErError
from er_models.aux import AuxInputs, Views

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "losses"


def objective(kind: str, classes: int = 3, dim: int = 2, **options) -> torch.nn.Module:
    inputs = AuxInputs(["text"], 16, dim, dim, classes)
    return em.create(em.resolve("aux", {"kind": kind, **options}), inputs)


def views(z, y, progress: float = 0.0) -> Views:
    z = torch.as_tensor(z, dtype=torch.float32)
    n = z.shape[0]
    present = torch.ones(n, 1, dtype=torch.bool)
    return Views(z, z, z[:, None], present, torch.as_tensor(y), progress)


# --- plain-Python helpers for the hand computations ---------------------------------------------


def unit(a):
    r = math.sqrt(sum(x * x for x in a))
    return [x / r for x in a]


def cos(a, b):
    return sum(x * y for x, y in zip(unit(a), unit(b), strict=True))


def s(a, b, tau):
    return (1 + cos(a, b)) / 2 / tau


def mean(rows):
    return [sum(col) / len(rows) for col in zip(*rows, strict=True)]


# --- values by hand -----------------------------------------------------------------------------

Z = [[1.0, 0.0], [3.0, 4.0], [0.0, 2.0], [-1.0, 1.0], [1.0, -2.0]]


def test_supcon_by_hand() -> None:
    y, tau = [0, 1, 0, 1, 2], 0.5  # sample 4 has no positive: not an anchor
    want, anchors = 0.0, 0
    for i in range(5):
        pos = [p for p in range(5) if p != i and y[p] == y[i]]
        if not pos:
            continue
        denom = sum(math.exp(cos(Z[i], Z[a]) / tau) for a in range(5) if a != i)
        want += -sum(math.log(math.exp(cos(Z[i], Z[p]) / tau) / denom) for p in pos) / len(pos)
        anchors += 1
    got = objective("supcon", temperature=tau)(views(Z, y))
    assert got.dtype == torch.float32 and got.shape == ()
    assert got.item() == pytest.approx(want / anchors, rel=1e-5)


def test_supcon_projection_is_trained() -> None:
    torch.manual_seed(0)
    obj = objective("supcon", dim=4, projection=3)
    assert sum(p.numel() for p in obj.parameters()) == 4 * 4 + 4 + 4 * 3 + 3
    obj(views(torch.randn(6, 4), [0, 0, 1, 1, 2, 2])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in obj.parameters())
    assert len(objective("supcon", dim=4).state_dict()) == 0  # projection = 0: nothing to save


@pytest.mark.parametrize("kind", ["supcon", "spcl"])
def test_no_positive_is_a_zero_with_a_graph(kind: str) -> None:
    z = torch.randn(3, 2, requires_grad=True)
    loss = objective(kind)(views(z, [0, 1, 2]))  # every class once, empty pools: no positive
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    assert torch.equal(z.grad, torch.zeros(3, 2))


def spcl_with_pools(**options) -> torch.nn.Module:
    """SPCL (C = 3, D = 2, pool 4) whose pools hold: class 0 two features, class 1 one, class 2
    none; centres (0.8, 0.4) and (0, 1)."""
    obj = objective("spcl", pool=4, temperature=0.5, **options)
    obj.pool[0, :2] = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    obj.pool[1, 0] = torch.tensor([0.0, 1.0])
    obj.count.copy_(torch.tensor([2, 1, 0]))
    obj.ptr.copy_(torch.tensor([2, 1, 0]))
    return obj


def test_spcl_by_hand() -> None:
    tau = 0.5
    z = [[2.0, 1.0], [1.0, -1.0], [-1.0, 2.0], [0.5, 0.5]]
    y = [0, 0, 2, 1]  # sample 2: no batch positive, no centre -> not counted
    centres = {0: [0.8, 0.4], 1: [0.0, 1.0]}
    terms = []
    for i in range(4):
        cand = [s(z[i], z[a], tau) for a in range(4) if a != i]
        cand += [s(z[i], c, tau) for c in centres.values()]
        pos = [s(z[i], z[p], tau) for p in range(4) if p != i and y[p] == y[i]]
        pos += [s(z[i], centres[y[i]], tau)] if y[i] in centres else []
        if pos:
            terms.append(-math.log(sum(map(math.exp, pos)) / sum(map(math.exp, cand))))
    obj = spcl_with_pools().eval()
    got = obj(views(z, y))
    assert len(terms) == 3
    assert got.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_spcl_enqueues_fifo_after_the_loss() -> None:
    obj = spcl_with_pools().train()
    z = torch.tensor([[2.0, 1.0], [1.0, -1.0], [-1.0, 2.0], [0.5, 0.5]])
    before = obj(views(z, [0, 0, 2, 1]))
    # the loss used the old pools (the eval-mode value), then the batch went in
    assert before.item() == pytest.approx(spcl_with_pools().eval()(views(z, [0, 0, 2, 1])).item())
    u = F.normalize(z, dim=-1)
    assert torch.allclose(obj.pool[0, 2:], u[:2]) and torch.allclose(obj.pool[2, 0], u[2])
    assert torch.allclose(obj.pool[1, 1], u[3])
    assert obj.count.tolist() == [4, 2, 1] and obj.ptr.tolist() == [0, 2, 1]
    # class 0's pool is full: the next one overwrites the oldest, slot 0
    obj(views([[0.0, -3.0]], [0]))
    assert torch.allclose(obj.pool[0, 0], torch.tensor([0.0, -1.0]))
    assert torch.allclose(obj.pool[0, 1], torch.tensor([0.6, 0.8]))
    assert obj.count.tolist() == [4, 2, 1] and obj.ptr.tolist() == [1, 2, 1]
    # a batch with more of a class than the pool holds keeps its last ones
    many = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.6, 0.8], [0.8, 0.6]])
    obj(views(many, [1] * 6))
    assert obj.count[1] == 4 and obj.ptr[1] == 2
    slots = [obj.pool[1, (2 + k) % 4] for k in range(4)]  # written from ptr 2 on
    assert all(torch.allclose(a, b) for a, b in zip(slots, many[2:], strict=True))


def test_spcl_support_set_is_random_and_seeded() -> None:
    obj = objective("spcl", pool=4, support=2)
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    obj.pool[0, :3] = feats
    obj.count[0] = 3
    pairs = {
        tuple(mean([feats[a].tolist(), feats[b].tolist()])) for a, b in [(0, 1), (0, 2), (1, 2)]
    }
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        c, k = obj.centres()
        assert k.tolist() == [0]
        got = tuple(round(x, 6) for x in c[0].tolist())
        assert got in {tuple(round(x, 6) for x in p) for p in pairs}
        torch.manual_seed(seed)
        assert torch.equal(obj.centres()[0], c)  # the global RNG decides: reproducible
        seen.add(got)
    assert len(seen) > 1  # not always the same subset


def test_spcl_curriculum_by_hand() -> None:
    tau = 0.5
    centres = {0: [1.0, 0.0], 1: [0.0, 1.0]}  # class 2 has no centre: never ranked
    z = [[1.0, 0.1], [1.0, 1.0], [0.2, 1.0], [1.0, -0.3], [-1.0, -1.0], [-1.0, -0.5]]
    y = [0, 0, 1, 1, 2, 2]

    def loss(kept: list[int]) -> float:
        terms = []
        for i in kept:
            cand = [s(z[i], z[a], tau) for a in range(6) if a != i]
            cand += [s(z[i], c, tau) for c in centres.values()]
            pos = [s(z[i], z[p], tau) for p in range(6) if p != i and y[p] == y[i]]
            pos += [s(z[i], centres[y[i]], tau)] if y[i] in centres else []
            terms.append(-math.log(sum(map(math.exp, pos)) / sum(map(math.exp, cand))))
        return sum(terms) / len(terms)

    ranked = sorted(range(4), key=lambda i: 1 - cos(z[i], centres[y[i]]))
    obj = objective("spcl", pool=4, temperature=tau, curriculum=True, curriculum_start=0.5)
    obj.pool[0, 0], obj.pool[1, 0] = torch.tensor(centres[0]), torch.tensor(centres[1])
    obj.count.copy_(torch.tensor([1, 1, 0]))
    obj.eval()
    # progress 0: λ = 0.5, the easiest 2 of the 4 ranked (samples 0 and 2) and both of class 2
    assert sorted(ranked[:2]) == [0, 2]
    assert obj(views(z, y, 0.0)).item() == pytest.approx(loss([*ranked[:2], 4, 5]), rel=1e-5)
    # progress 0.5: λ = 0.75, the easiest 3
    assert obj(views(z, y, 0.5)).item() == pytest.approx(loss([*ranked[:3], 4, 5]), rel=1e-5)
    # progress 1: everything, as without the curriculum
    assert obj(views(z, y, 1.0)).item() == pytest.approx(loss(list(range(6))), rel=1e-5)


def apcl_loss_by_hand(z, y, protos, tau) -> float:
    total = 0.0
    for i in range(len(z)):
        pos = [s(z[i], protos[y[i]], tau)]
        pos += [s(z[i], z[p], tau) for p in range(len(z)) if p != i and y[p] == y[i]]
        neg = [s(z[i], q, tau) for k, q in enumerate(protos) if k != y[i]]
        neg += [s(z[i], z[n], tau) for n in range(len(z)) if y[n] != y[i]]
        total += -sum(pos) / len(pos) + math.log(sum(map(math.exp, neg)))
    return total / len(z)


def inverse_sqrt_2x2(a):
    """(A)^(-1/2) of a symmetric positive definite 2x2 A: √A = (A + √det·I) / √(tr + 2√det)."""
    (p, q), (_, r) = a
    d = math.sqrt(p * r - q * q)
    t = math.sqrt(p + r + 2 * d)
    s00, s01, s11 = (p + d) / t, q / t, (r + d) / t  # √A
    det = s00 * s11 - s01 * s01
    return [[s11 / det, -s01 / det], [-s01 / det, s00 / det]]


def test_apcl_by_hand_and_its_update() -> None:
    tau, gamma, alpha = 0.5, 0.9, 0.5
    protos = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    z = [[2.0, 1.0, 0.0], [1.0, -1.0, 1.0], [0.0, 1.0, 1.0], [1.0, 2.0, -2.0]]
    y = [0, 0, 1, 0]
    obj = objective("apcl", classes=2, dim=3, temperature=tau, momentum=gamma, step=alpha)
    obj.prototypes.copy_(torch.tensor(protos))
    got = obj.train()(views(z, y))
    assert got.item() == pytest.approx(apcl_loss_by_hand(z, y, protos, tau), rel=1e-5)
    # update: v = α (m_k − p_k) from v = 0, p' = p + v, then P = (P'P'ᵀ)^(-1/2) P'
    m = [mean([unit(z[i]) for i in range(4) if y[i] == k]) for k in (0, 1)]
    v = [[alpha * (m[k][j] - protos[k][j]) for j in range(3)] for k in (0, 1)]
    p2 = [[protos[k][j] + v[k][j] for j in range(3)] for k in (0, 1)]
    gram = [[sum(a * b for a, b in zip(p2[r], p2[c], strict=True)) for c in (0, 1)] for r in (0, 1)]
    w = inverse_sqrt_2x2(gram)
    want = [[sum(w[r][k] * p2[k][j] for k in (0, 1)) for j in range(3)] for r in (0, 1)]
    assert torch.allclose(obj.velocity, torch.tensor(v), atol=1e-6)
    assert torch.allclose(obj.prototypes, torch.tensor(want), atol=1e-5)
    p = obj.prototypes
    assert torch.allclose(p @ p.T, torch.eye(2), atol=1e-5)
    # the next batch is scored against the moved prototypes
    again = obj.eval()(views(z, y)).item()
    assert again == pytest.approx(apcl_loss_by_hand(z, y, p.tolist(), tau), rel=1e-5)
    assert again != pytest.approx(got.item(), rel=1e-3)


def test_apcl_absent_class_keeps_its_velocity() -> None:
    torch.manual_seed(0)
    obj = objective("apcl", classes=3, dim=4).train()
    p = obj.prototypes
    assert torch.allclose(p @ p.T, torch.eye(3), atol=1e-5)  # a random orthonormal start
    obj(views(torch.randn(5, 4), [0, 1, 0, 1, 1]))
    assert torch.equal(obj.velocity[2], torch.zeros(4)) and obj.velocity[:2].abs().sum() > 0
    assert torch.allclose(p @ p.T, torch.eye(3), atol=1e-5)


# --- each objective alone learns ----------------------------------------------------------------


def clusters(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """3 classes at 120° in the first 2 of 16 dims (spread 0.25); the other 14 dims are noise of
    std 1, so a random projection mixes them in and separates the classes poorly."""
    y = torch.arange(n) % 3
    angle = y * (2 * math.pi / 3)
    x = torch.randn(n, 16, generator=g)
    x[:, 0], x[:, 1] = angle.cos(), angle.sin()
    x[:, :2] += 0.25 * torch.randn(n, 2, generator=g)
    return x, y


def nearest_mean_accuracy(enc, xtr, ytr, xte, yte) -> float:
    with torch.no_grad():
        a, b = F.normalize(enc(xtr), dim=-1), F.normalize(enc(xte), dim=-1)
        means = F.normalize(torch.stack([a[ytr == k].mean(0) for k in range(3)]), dim=-1)
        return ((b @ means.T).argmax(1) == yte).float().mean().item()


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("supcon", {}),
        ("supcon", {"projection": 4}),
        ("spcl", {"pool": 64}),
        ("spcl", {"pool": 64, "curriculum": True}),
        ("apcl", {}),
    ],
)
def test_objective_alone_learns(kind: str, options: dict, one_thread) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    (xtr, ytr), (xte, yte) = clusters(300, g), clusters(300, g)
    enc = torch.nn.Linear(16, 8)
    obj = objective(kind, dim=8, **options).train()
    before = nearest_mean_accuracy(enc, xtr, ytr, xte, yte)
    opt = torch.optim.Adam([*enc.parameters(), *obj.parameters()], lr=0.02)
    steps = 100
    for step in range(steps):
        rows = torch.randint(0, 300, (48,), generator=g)
        loss = obj(views(enc(xtr[rows]), ytr[rows], step / steps))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = nearest_mean_accuracy(enc, xtr, ytr, xte, yte)
    assert before < 0.75, before  # the toy problem is not solved by chance
    assert after >= 0.9 and after > before + 0.2, (before, after)


# --- state: training mode only, saved with the weights ------------------------------------------


def network(aux: dict, classes: int = 3, width: int = 16, **extra) -> em.NetworkSpec:
    data = {"model": {"width": width, "dropout": 0.0}, "aux": aux, **extra}
    return em.parse_network(data, {"text": 12, "audio": 10}, {"emotion": classes})


def buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.named_buffers() if k.startswith("aux.")}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", ["spcl", "apcl"])
def test_state_changes_in_training_only(kind: str, toy) -> None:
    torch.manual_seed(0)
    options = {"weight": 0.5, "pool": 8} if kind == "spcl" else {"weight": 0.5}
    model = em.build_model(network({kind: options}))
    b = toy.batch(("text", "audio"), n=6)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    args = (b.feats, b.present, b.layout, b.speakers)
    start = buffers(model)
    assert start  # the state is in buffers
    model.eval()
    assert model(*args, target=target).aux == {}
    assert same(buffers(model), start)  # (a) eval mode, targets given
    model.train()
    assert model(*args).aux == {}
    assert same(buffers(model), start)  # (b) training mode, no targets
    out = model(*args, target=target)
    assert set(out.aux) == {kind} and out.aux[kind].requires_grad
    after = buffers(model)
    assert not same(after, start)  # a training batch moves the state
    # the module alone, in eval mode, leaves it alone too
    model.aux[kind].eval()(views(torch.randn(6, model.context.out_dim), target))
    assert same(buffers(model), after)
    # saved with the weights: a fresh model resumes it
    fresh = em.build_model(network({kind: options}))
    fresh.load_state_dict(model.state_dict())
    assert same(buffers(fresh), after)


def test_weight_scales_the_objective(toy) -> None:
    b, target = toy.batch(("text", "audio"), n=6), torch.tensor([0, 1, 2, 0, 1, 2])
    losses = []
    for weight in (1.0, 0.25):
        torch.manual_seed(0)
        model = em.build_model(network({"supcon": {"weight": weight}})).train()
        losses.append(model(b.feats, b.present, b.layout, b.speakers, target=target).aux["supcon"])
    assert losses[1].item() == pytest.approx(0.25 * losses[0].item(), rel=1e-6)
    assert losses[0].item() > 0


@pytest.mark.parametrize("kind", ["supcon", "spcl", "apcl"])
def test_float32_under_autocast(kind: str) -> None:
    torch.manual_seed(0)
    z = torch.randn(8, 4).bfloat16()
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    obj = objective(kind, dim=4).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = obj(views(z, y))
    want = obj(views(z.float(), y))
    assert got.dtype == torch.float32
    assert torch.equal(got, want)  # the same float32 computation: no bfloat16 matmul inside


# --- configs ------------------------------------------------------------------------------------


def test_apcl_needs_as_many_dims_as_classes() -> None:
    spec = em.parse_network(
        {"model": {"width": 4}, "aux": {"apcl": {}}}, {"text": 12}, {"emotion": 7}
    )
    with pytest.raises(ErError) as e:
        em.build_model(spec)
    assert e.value.at == "$.aux.apcl" and "7" in e.value.what and "4" in e.value.what
    assert e.value.hint


@pytest.mark.parametrize("kind", ["supcon", "spcl", "apcl"])
def test_aux_on_a_regression_task_is_an_error(kind: str) -> None:
    spec = em.parse_network(
        {"head": {"kind": "regression"}, "aux": {kind: {}}}, {"text": 12}, {"valence": 0}
    )
    with pytest.raises(ErError) as e:
        em.build_model(spec)
    assert e.value.at == f"$.aux.{kind}" and "classification" in e.value.what


def test_unknown_option_names_the_key() -> None:
    with pytest.raises(ErError) as e:
        network({"spcl": {"tempreature": 0.1}})
    assert "tempreature" in str(e.value) and "aux.spcl" in str(e.value)


@pytest.mark.parametrize("kind", ["supcon", "spcl", "apcl"])
def test_config_file_parses_with_every_option(kind: str) -> None:
    path = CONFIGS / f"{kind}.toml"
    with path.open("rb") as f:
        data = tomllib.load(f)
    spec = em.parse_network(data, {"text": 384, "audio": 384}, {"emotion": 7})
    assert data["loss"]["kind"] == "ce"
    ((name, resolved),) = spec.aux
    assert name == kind == resolved.kind and resolved.config.weight == pytest.approx(0.1)
    fields = {f.name for f in msgspec.structs.fields(type(resolved.config))}
    assert set(data["aux"][kind]) == fields  # every option written out
    em.build_model(spec)  # and it builds (apcl: 7 classes fit)
