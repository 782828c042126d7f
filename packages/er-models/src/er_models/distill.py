"""Logit distillation losses: a student's (N, C) logits against a teacher's, temperature T.

Both are pure functions of float logits; the teacher side is detached inside, so gradients reach
the student only. Softened probabilities: p = softmax(logits / T), row by row.

`kl_distill` (Hinton, Vinyals and Dean, 2015, "Distilling the Knowledge in a Neural Network"):

    KL_T = T² · (1/N) Σ_i Σ_c p_t[i, c] · (log p_t[i, c] − log p_s[i, c])

The T² keeps the gradient's scale about the same as T changes (the softened gradients shrink
as 1/T²).

`dist_loss` (DIST: Huang, You, Wang, Qian and Xu, NeurIPS 2022, "Knowledge Distillation from A
Stronger Teacher") matches relations instead of exact probabilities, with the Pearson
correlation ρ:

    inter = T² · (1 − (1/N) Σ_i ρ(p_s[i, :], p_t[i, :]))   each sample's ranking of the classes
    intra = T² · (1 − (1/C) Σ_c ρ(p_s[:, c], p_t[:, c]))   each class's ranking of the samples
    DIST  = β · inter + γ · intra

ρ(a, b) = Σ_j (a_j − ā)(b_j − b̄) / (‖a − ā‖ · ‖b − b̄‖) is the cosine of the centred vectors. It
is invariant to shifting and scaling either side, so DIST asks the student to order classes and
samples as the teacher does, not to copy its confidence. Each 1 − ρ is computed as

    1 − ρ(a, b) = ½ ‖â − b̂‖²,   â = (a − ā) / max(‖a − ā‖, ε),   ε = 1e-8

which equals 1 − ρ whenever neither vector is constant, avoids the cancellation of 1 − ρ near
ρ = 1 (where training ends up; identical inputs give exactly 0), and stays finite for a constant
vector (â = 0: the term is ½ against a varying vector, 0 between two constant ones).

The intra-class term needs at least two samples: with N = 1 each class column holds one value and
ρ is undefined, so the term is left out (DIST = β · inter). Likewise with C = 1 the inter-class
term is left out.
"""

from __future__ import annotations

import torch

EPS = 1e-8  # floor of the norms in the Pearson terms (see the module docstring)


def _check(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> None:
    if student.ndim != 2 or student.shape != teacher.shape:
        raise ValueError(
            f"student and teacher logits must both be (N, C), got "
            f"{tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def kl_distill(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the N samples (a scalar).

    Hinton et al., 2015; see the module docstring."""
    _check(student, teacher, temperature)
    t = temperature
    log_ps = (student / t).log_softmax(dim=-1)  # (N, C)
    log_pt = (teacher.detach().to(student.dtype) / t).log_softmax(dim=-1)  # (N, C)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1)  # (N,)
    return t * t * kl.mean()


def _decorrelation(a: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    """1 − ρ(a, b) along `dim`, as ½ ‖â − b̂‖² of the centred unit vectors (module docstring)."""
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    a = a / a.norm(dim=dim, keepdim=True).clamp_min(EPS)
    b = b / b.norm(dim=dim, keepdim=True).clamp_min(EPS)
    return 0.5 * (a - b).square().sum(dim)


def dist_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    temperature: float = 4.0,
    beta: float = 1.0,
    gamma: float = 1.0,
) -> torch.Tensor:
    """DIST: β · T²(1 − mean_i ρ(p_s[i, :], p_t[i, :])) + γ · T²(1 − mean_c ρ(p_s[:, c], p_t[:, c]))
    with p = softmax(logits / T) (a scalar).

    Huang et al., NeurIPS 2022; see the module docstring. With N = 1 the intra-class term (and
    with C = 1 the inter-class term) is undefined and left out."""
    _check(student, teacher, temperature)
    t = temperature
    ps = (student / t).softmax(dim=-1)  # (N, C)
    pt = (teacher.detach().to(student.dtype) / t).softmax(dim=-1)  # (N, C)
    n, c = ps.shape
    total = ps.new_zeros(())
    if c >= 2:
        total = total + beta * t * t * _decorrelation(ps, pt, dim=1).mean()  # over samples i
    if n >= 2:
        total = total + gamma * t * t * _decorrelation(ps, pt, dim=0).mean()  # over classes c
    return total
