"""Distillation losses: zero at the teacher, KL and DIST against plain-Python computations, the
T² factor, gradients to the student only, and DIST pulling a free student to the teacher's
argmax."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from er_models.distill import dist_loss, kl_distill


def _softmax(row: list[float], t: float) -> list[float]:
    exps = [math.exp(v / t) for v in row]
    return [v / sum(exps) for v in exps]


def _pearson(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / math.sqrt(va * vb)


def _dist_by_hand(s: list[list[float]], t: list[list[float]], temp, beta, gamma) -> float:
    ps = [_softmax(r, temp) for r in s]
    pt = [_softmax(r, temp) for r in t]
    n, c = len(s), len(s[0])
    inter = 1 - sum(_pearson(ps[i], pt[i]) for i in range(n)) / n
    cols = lambda p, j: [p[i][j] for i in range(n)]  # noqa: E731
    intra = 1 - sum(_pearson(cols(ps, j), cols(pt, j)) for j in range(c)) / c
    return temp**2 * (beta * inter + gamma * intra)


@pytest.mark.parametrize("shape", [(1, 7), (8, 7), (32, 3)])
@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_zero_when_student_is_teacher(shape, temperature) -> None:
    x = 3 * torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    assert abs(kl_distill(x, x.clone(), temperature).item()) < 1e-6
    assert abs(dist_loss(x, x.clone(), temperature).item()) < 1e-6


def test_kl_distill_by_hand() -> None:
    s = [[1.0, -0.5, 2.0], [0.3, 0.1, -1.2]]
    t = [[0.5, 1.5, -1.0], [2.0, -0.7, 0.4]]
    temp = 2.0
    want = 0.0
    for i in range(2):
        ps, pt = _softmax(s[i], temp), _softmax(t[i], temp)
        want += sum(pt[c] * math.log(pt[c] / ps[c]) for c in range(3))
    want = temp**2 * want / 2
    student, teacher = torch.tensor(s), torch.tensor(t)
    got = kl_distill(student, teacher, temp)
    assert math.isclose(got.item(), want, rel_tol=1e-5)
    # the usual torch form: kl_div(log q, p), summed per sample and averaged ("batchmean")
    torch_form = F.kl_div(
        F.log_softmax(student / temp, -1), F.softmax(teacher / temp, -1), reduction="batchmean"
    )
    torch.testing.assert_close(got, temp**2 * torch_form)


def test_dist_loss_by_hand() -> None:
    s = [[1.0, -0.5, 2.0], [0.3, 0.1, -1.2], [-0.4, 0.9, 0.0]]
    t = [[0.5, 1.5, -1.0], [2.0, -0.7, 0.4], [0.1, 0.2, 1.1]]
    got = dist_loss(torch.tensor(s), torch.tensor(t), temperature=2.0, beta=0.7, gamma=1.3)
    want = _dist_by_hand(s, t, 2.0, 0.7, 1.3)
    assert want > 0.1  # a case far from the teacher, so the check means something
    assert math.isclose(got.item(), want, rel_tol=1e-5)
    # beta and gamma weigh the two terms separately
    inter = _dist_by_hand(s, t, 2.0, 1.0, 0.0)
    got = dist_loss(torch.tensor(s), torch.tensor(t), temperature=2.0, beta=1.0, gamma=0.0)
    assert math.isclose(got.item(), inter, rel_tol=1e-5)


def test_dist_loss_with_one_sample_has_no_intra_term() -> None:
    s, t = [[1.0, -0.5, 2.0, 0.1]], [[0.5, 1.5, -1.0, 0.3]]
    want = 4.0**2 * (1 - _pearson(_softmax(s[0], 4.0), _softmax(t[0], 4.0)))
    for gamma in (0.0, 1.0, 5.0):
        got = dist_loss(torch.tensor(s), torch.tensor(t), gamma=gamma)
        assert math.isclose(got.item(), want, rel_tol=1e-4)


@pytest.mark.parametrize("temperature", [2.0, 4.0])
def test_temperature_squared_factor(temperature) -> None:
    # logits scaled by T at temperature T give the same probabilities as the originals at T = 1,
    # so the loss differs by exactly the T² factor
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    for loss in (kl_distill, dist_loss):
        scaled = loss(s * temperature, t * temperature, temperature)
        torch.testing.assert_close(scaled, temperature**2 * loss(s, t, 1.0))


@pytest.mark.parametrize("loss", [kl_distill, dist_loss], ids=lambda f: f.__name__)
def test_gradients_reach_the_student_only(loss) -> None:
    g = torch.Generator().manual_seed(2)
    student = torch.randn(5, 4, generator=g).requires_grad_()
    teacher = torch.randn(5, 4, generator=g).requires_grad_()
    loss(student, teacher, 2.0).backward()
    assert teacher.grad is None
    assert student.grad is not None and torch.isfinite(student.grad).all()
    assert student.grad.abs().sum() > 0


def test_dist_gradient_is_finite_for_a_constant_student() -> None:
    # a freshly zero-initialised student: every row and column of p_s is constant
    student = torch.zeros(4, 3, requires_grad=True)
    teacher = torch.randn(4, 3, generator=torch.Generator().manual_seed(3))
    value = dist_loss(student, teacher)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(student.grad).all()


def test_minimising_dist_matches_the_teachers_argmax() -> None:
    g = torch.Generator().manual_seed(4)
    teacher = 3 * torch.randn(10, 5, generator=g)
    student = torch.randn(10, 5, generator=g).requires_grad_()
    before = (student.argmax(-1) == teacher.argmax(-1)).all().item()
    opt = torch.optim.Adam([student], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        dist_loss(student, teacher).backward()
        opt.step()
    assert not before  # the student starts off disagreeing somewhere
    assert (student.argmax(-1) == teacher.argmax(-1)).all()
