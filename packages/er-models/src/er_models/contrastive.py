"""Supervised contrastive objectives on the representation the head reads: `supcon`, `spcl`,
`apcl` (the `aux` family, see aux.py). Each maps `Views` -> an unweighted float32 scalar computed
on z (N, D) with the batch's class labels y (N,).

`supcon` (Khosla et al., NeurIPS 2020, L^sup_out), with ẑ = z / |z| (after an optional MLP):

    L = mean_{i: |P(i)| > 0} −1/|P(i)| Σ_{p ∈ P(i)} log( exp(ẑ_i·ẑ_p / τ) / Σ_{a ≠ i} exp(ẑ_i·ẑ_a / τ) )

with P(i) the other samples of i's class in the batch.

`spcl` and `apcl` score a pair with s(a, b) = (1 + cos(a, b)) / 2 / τ.

`spcl`, supervised prototypical contrastive learning (Song et al., EMNLP 2022): each class keeps a
FIFO pool of detached, L2-normalised training features; its centre c_k is the mean of a random
support set of min(support, count_k) pool entries (a class with an empty pool has none). The
candidates of sample i are the other batch samples and every centre; its positives are the
same-class batch samples and its own class's centre:

    L_i = −log( Σ_{p ∈ pos(i)} exp(s_ip) / Σ_{a ∈ cand(i)} exp(s_ia) ),  mean over i with pos(i) ≠ ∅

`apcl`, adaptive prototype contrastive learning: one prototype per class, unit-norm and mutually
orthogonal. Positives P(i): the own prototype and the same-class batch samples; negatives N(i):
the other prototypes and the other-class batch samples:

    L_i = −mean_{p ∈ P(i)} s_ip + log Σ_{n ∈ N(i)} exp(s_in),  mean over the batch

State (pools, prototypes, velocities) lives in buffers, saved with the weights, and changes only
in training mode, after the loss is computed, so a batch's loss never sees its own features.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from er_core import ErError, PositiveFloat
from msgspec import Meta
from torch import nn

from er_models.aux import AuxConfig, AuxInputs, Views, needs_classes
from er_models.registry import register


class SupConConfig(AuxConfig, frozen=True):
    temperature: PositiveFloat = 0.1  # τ of the softmax over the batch
    projection: Annotated[int, Meta(ge=0)] = 0  # 0: on z itself; else an MLP D -> D -> this


class SPCLConfig(AuxConfig, frozen=True):
    temperature: PositiveFloat = 0.08  # τ in s = (1 + cos) / 2 / τ
    pool: Annotated[int, Meta(ge=1)] = 512  # features kept per class (FIFO)
    support: Annotated[int, Meta(ge=1)] = 64  # pool entries averaged into a class centre
    curriculum: bool = False  # count only the easiest share of each batch (see SPCL)
    curriculum_start: Annotated[float, Meta(gt=0, le=1)] = 0.5  # that share at progress 0


class APCLConfig(AuxConfig, frozen=True):
    temperature: PositiveFloat = 0.08  # τ in s = (1 + cos) / 2 / τ
    momentum: Annotated[float, Meta(ge=0, lt=1)] = 0.9  # γ of the prototypes' velocity
    step: PositiveFloat = 0.1  # α: pull of the batch's class mean


def _fp32(z: torch.Tensor) -> torch.autocast:
    """No autocast inside: similarities and log-sum-exps in float32 whatever the precision."""
    return torch.autocast(device_type=z.device.type, enabled=False)


def similarity(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """s = (1 + cos) / 2 / τ for unit rows a (N, D) and b (K, D) -> (N, K)."""
    return (1 + a @ b.T) / 2 / tau


class SupCon(nn.Module):
    def __init__(self, cfg: SupConConfig, inputs: AuxInputs) -> None:
        super().__init__()
        d = inputs.dim
        self.tau = cfg.temperature
        self.projection = (
            nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, cfg.projection))
            if cfg.projection
            else nn.Identity()
        )

    def forward(self, v: Views) -> torch.Tensor:
        with _fp32(v.z):
            z = F.normalize(self.projection(v.z.float()), dim=-1)  # (N, P)
            y = v.target.long()
            n = z.shape[0]
            eye = torch.eye(n, dtype=torch.bool, device=z.device)
            pos = (y[:, None] == y[None]) & ~eye  # (N, N)
            npos = pos.sum(1)
            valid = npos > 0
            if not bool(valid.any()):
                return z.sum() * 0
            logits = (z @ z.T / self.tau).masked_fill(eye, -math.inf)  # a ≠ i
            logprob = logits - logits.logsumexp(1, keepdim=True)  # (N, N)
            per = -logprob.masked_fill(~pos, 0).sum(1)  # (N,)
            return (per[valid] / npos[valid]).mean()


class SPCL(nn.Module):
    """Curriculum (`curriculum = true`): sample i's difficulty is 1 − cos(z_i, c_{y_i}); of the
    samples whose class has a centre, only the easiest ⌈λ·n⌉ count in the mean, with
    λ = start + (1 − start)·progress; samples without a centre are not ranked and always count.
    This is a batch-level form of the paper's curriculum, which orders the whole training set by
    difficulty and feeds it easy to hard; here the trainer's batches stay as they are.

    The support set is drawn with torch's global RNG (the trainer seeds it)."""

    def __init__(self, cfg: SPCLConfig, inputs: AuxInputs) -> None:
        super().__init__()
        c, d = inputs.classes, inputs.dim
        self.tau, self.support = cfg.temperature, cfg.support
        self.curriculum, self.start = cfg.curriculum, cfg.curriculum_start
        self.register_buffer("pool", torch.zeros(c, cfg.pool, d))  # (C, S, D) unit rows
        self.register_buffer("count", torch.zeros(c, dtype=torch.long))  # filled slots per class
        self.register_buffer("ptr", torch.zeros(c, dtype=torch.long))  # next slot to write

    def centres(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, D) centres of the K classes with a non-empty pool and (K,) their class indices."""
        rows, which = [], []
        for k, n in enumerate(self.count.tolist()):
            if n == 0:
                continue
            if n > self.support:  # a random support set; otherwise the whole pool
                idx = torch.randperm(n)[: self.support].to(self.pool.device)
                rows.append(self.pool[k, idx].mean(0))
            else:
                rows.append(self.pool[k, :n].mean(0))
            which.append(k)
        device = self.pool.device
        if not rows:
            return self.pool.new_zeros(0, self.pool.shape[-1]), torch.zeros(0, dtype=torch.long)
        return torch.stack(rows), torch.tensor(which, dtype=torch.long, device=device)

    def easiest(
        self, z: torch.Tensor, y: torch.Tensor, c: torch.Tensor, ck: torch.Tensor, progress: float
    ) -> torch.Tensor:
        """(N,) bool: the samples the curriculum keeps (z, c unit rows)."""
        lam = self.start + (1 - self.start) * min(max(progress, 0.0), 1.0)
        slot = torch.full((self.count.shape[0],), -1, dtype=torch.long, device=z.device)
        slot[ck.to(z.device)] = torch.arange(len(ck), device=z.device)
        j = slot[y]  # (N,) index of i's centre, -1 if none
        keep = j < 0  # not ranked: kept
        ranked = (j >= 0).nonzero().squeeze(1)
        if ranked.numel():
            difficulty = 1 - (z[ranked] * c[j[ranked]]).sum(-1)
            m = math.ceil(lam * ranked.numel() - 1e-9)
            keep[ranked[difficulty.argsort(stable=True)[:m]]] = True
        return keep

    def forward(self, v: Views) -> torch.Tensor:
        with _fp32(v.z):
            z = F.normalize(v.z.float(), dim=-1)  # (N, D)
            y = v.target.long()
            c, ck = self.centres()
            c, ck = F.normalize(c, dim=-1), ck.to(z.device)  # (K, D), (K,)
            n = z.shape[0]
            eye = torch.eye(n, dtype=torch.bool, device=z.device)
            logits = torch.cat(
                [
                    similarity(z, z, self.tau).masked_fill(eye, -math.inf),
                    similarity(z, c, self.tau),
                ],
                1,
            )  # (N, N + K): the candidates
            pos = torch.cat([(y[:, None] == y[None]) & ~eye, y[:, None] == ck[None]], 1)
            keep = pos.any(1)
            if self.curriculum:
                keep &= self.easiest(z.detach(), y, c, ck, v.progress)
            if bool(keep.any()):
                # only rows with a positive: a row of -inf would make logsumexp's gradient NaN
                lg, ps = logits[keep], pos[keep]
                loss = (lg.logsumexp(1) - lg.masked_fill(~ps, -math.inf).logsumexp(1)).mean()
            else:
                loss = v.z.float().sum() * 0
        if self.training:
            self.enqueue(z.detach(), y)
        return loss

    @torch.no_grad()
    def enqueue(self, z: torch.Tensor, y: torch.Tensor) -> None:
        """Write the batch's unit features into their class pools, oldest overwritten first."""
        size = self.pool.shape[1]
        for k in y.unique().tolist():
            f = z[y == k][-size:]  # a batch with more than a pool keeps its last ones
            at = (self.ptr[k] + torch.arange(len(f), device=z.device)) % size
            self.pool[k, at] = f
            self.ptr[k] = (self.ptr[k] + len(f)) % size
            self.count[k] = torch.clamp(self.count[k] + len(f), max=size)


class APCL(nn.Module):
    """After each training batch, each class k present in it moves toward the mean m_k of its
    unit batch features with momentum, v_k ← γ v_k + α (m_k − p_k), p_k ← p_k + v_k, and then
    the prototypes are replaced by the nearest orthonormal set, P ← U Vᵀ from the SVD of P
    (every class treated alike, unlike Gram-Schmidt, which would favour the first class)."""

    def __init__(self, cfg: APCLConfig, inputs: AuxInputs) -> None:
        super().__init__()
        c, d = inputs.classes, inputs.dim
        self.tau, self.momentum, self.step = cfg.temperature, cfg.momentum, cfg.step
        q, _ = torch.linalg.qr(torch.randn(d, c))  # (D, C) orthonormal columns
        self.register_buffer("prototypes", q.T.contiguous())  # (C, D)
        self.register_buffer("velocity", torch.zeros(c, d))  # (C, D)

    def forward(self, v: Views) -> torch.Tensor:
        with _fp32(v.z):
            z = F.normalize(v.z.float(), dim=-1)  # (N, D)
            y = v.target.long()
            p = F.normalize(self.prototypes.clone(), dim=-1)  # as before this batch's update
            n, c = z.shape[0], p.shape[0]
            eye = torch.eye(n, dtype=torch.bool, device=z.device)
            same = y[:, None] == y[None]  # (N, N)
            own = F.one_hot(y, c).bool()  # (N, C)
            s = torch.cat([similarity(z, z, self.tau), similarity(z, p, self.tau)], 1)
            pos = torch.cat([same & ~eye, own], 1)  # (N, N + C), never empty: own prototype
            neg = torch.cat([~same, ~own], 1)  # never empty: C ≥ 2 prototypes
            mean_pos = (s * pos).sum(1) / pos.sum(1)
            loss = (s.masked_fill(~neg, -math.inf).logsumexp(1) - mean_pos).mean()
        if self.training:
            self.update(z.detach(), y)
        return loss

    @torch.no_grad()
    def update(self, z: torch.Tensor, y: torch.Tensor) -> None:
        c, d = self.prototypes.shape
        n = torch.bincount(y, minlength=c).to(z.dtype)  # (C,)
        mean = z.new_zeros(c, d).index_add_(0, y, z) / n.clamp_min(1)[:, None]  # (C, D)
        present = (n > 0)[:, None]  # absent classes keep their velocity and prototype
        step = self.momentum * self.velocity + self.step * (mean - self.prototypes)
        self.velocity.copy_(torch.where(present, step, self.velocity))
        self.prototypes.add_(torch.where(present, self.velocity, 0))
        u, _, vh = torch.linalg.svd(self.prototypes, full_matrices=False)
        self.prototypes.copy_(u @ vh)


@register("aux", "supcon", SupConConfig)
def _supcon(cfg: SupConConfig, inputs: AuxInputs) -> nn.Module:
    """Supervised contrastive loss over the batch (Khosla et al. 2020); optional projection."""
    needs_classes("supcon", inputs)
    return SupCon(cfg, inputs)


@register("aux", "spcl", SPCLConfig)
def _spcl(cfg: SPCLConfig, inputs: AuxInputs) -> nn.Module:
    """Supervised prototypical contrastive loss with class feature pools (Song et al. 2022)."""
    needs_classes("spcl", inputs)
    return SPCL(cfg, inputs)


@register("aux", "apcl", APCLConfig)
def _apcl(cfg: APCLConfig, inputs: AuxInputs) -> nn.Module:
    """Contrastive loss against orthonormal class prototypes that follow the class means."""
    needs_classes("apcl", inputs)
    if inputs.classes > inputs.dim:
        raise ErError(
            f"aux 'apcl': {inputs.classes} orthogonal class prototypes do not fit in the "
            f"{inputs.dim}-wide representation",
            at="$.aux.apcl",
            hint=f"widen the context output to at least {inputs.classes}, or use spcl or supcon",
        )
    return APCL(cfg, inputs)
