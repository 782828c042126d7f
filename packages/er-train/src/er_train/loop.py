"""One training epoch and one evaluation pass, on in-memory tensors.

Mixed precision: `precision` bf16 runs the forward under torch.autocast (CPU or CUDA); fp16
(CUDA only) adds a GradScaler. Losses are computed in float32 whatever the precision.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from er_core import duration, info
from er_models import ERModel, Output
from er_models.distill import dist_loss, kl_distill
from torch import nn

from er_train import distributed
from er_train.batches import Batch, epoch_batches, iter_batches
from er_train.config import DistillSection
from er_train.data import Data, Split
from er_train.guard import check_grad_norm, check_loss
from er_train.runs import RunState
from er_train.schedule import lr_factor

# Test hook: kill this process (SIGKILL, no cleanup) right after this global optimizer step.
KILL_ENV = "ER_TRAIN_KILL_AFTER_STEP"


@dataclass
class Setup:
    model: ERModel
    data: Data  # its tensors already on `device`
    losses: dict[str, nn.Module]
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    precision: str
    seed: int
    batch_size: int
    accumulation: int
    grad_clip: float
    base_lr: float
    total_steps: int
    warmup: float
    decay: str
    # one-run distillation: the teacher's main-task logits for the training rows (n, C), NaN
    # elsewhere (it never predicts dev or test), and the [distill] weights
    teacher: torch.Tensor | None = None
    distill: DistillSection | None = None
    # run.method L or T: the text encoder trained in the run computes the text features
    tower: nn.Module | None = None
    tower_chunk: int = 64  # utterances per encoder forward in dev and test passes
    fresh_tower: Callable[[], nn.Module] | None = None  # a new tower on the base weights (L)
    # train.tokens > 0: token-budget batches over each row's prompt length (`lengths`, from the
    # tower) instead of `batch_size` groups (then the most groups a batch may hold)
    tokens: int = 0
    lengths: np.ndarray | None = None
    # seconds between progress lines inside an epoch (er_core.progress.log_every()); None = none
    report_every: float | None = None
    # under torchrun: `model` in DistributedDataParallel, which training forwards go through
    # (`model` stays the plain module: its spec, weights and eval passes); None in one process
    ddp: nn.Module | None = None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def network(s: Setup, train: bool) -> nn.Module:
    """What a forward calls: the DDP wrapper for training batches under torchrun (its
    gradients are all-reduced), the plain model otherwise (eval passes: each rank its own)."""
    return s.ddp if train and s.ddp is not None else s.model


def forward(s: Setup, batch: Batch, train: bool = False, progress: float = 0.0) -> Output:
    """The model on one batch. `train`: a training batch, so the main task's targets go in
    (the [aux] objectives run, and update their pools, on these only)."""
    rows = batch.rows.to(s.device)
    feats = {m: x[rows] for m, x in s.data.feats.items()}  # (N, d_m) each
    target = s.data.tasks[s.data.main].target[rows] if train else None
    if s.tower is not None:  # the text features come from the encoder being trained
        s.tower.train(s.model.training)
        with autocast(s.device, s.precision):
            feats["text"] = s.tower(rows) if train else s.tower.features(rows, s.tower_chunk)
    with autocast(s.device, s.precision):
        return network(s, train)(
            feats,
            s.data.present[rows],
            batch.layout.to(s.device),
            batch.speakers.to(s.device),
            target=target,
            progress=progress,
        )


def distillation(s: Setup, student: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """kl · KL_T + dist · DIST_T of the student's main-task logits against the teacher's."""
    d, teacher = s.distill, s.teacher[rows]
    total = torch.zeros((), device=s.device)
    if d.kl:
        total = total + d.kl * kl_distill(student.float(), teacher, d.temperature)
    if d.dist:
        total = total + d.dist * dist_loss(student.float(), teacher, d.temperature, d.beta, d.gamma)
    return total


def objective(
    s: Setup, batch: Batch, progress: float = 0.0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss of one batch (task losses, aux objectives, distillation, branches)
    and its parts, each the weighted term it adds (detached): `<task>`, each aux objective by
    its name, `kd`, `branch/<modality>`. The parts are for the records only; the total is
    summed in the same order as ever, so the training itself is unchanged by them."""
    out = forward(s, batch, train=True, progress=progress)
    outputs, aux = out.outputs, out.aux
    rows = batch.rows.to(s.device)
    weights = s.model.task_weights
    tasks = {
        name: weights[name] * loss(outputs[name], s.data.tasks[name].target[rows])
        for name, loss in s.losses.items()
    }
    parts = dict(tasks)
    total = sum(tasks.values())
    total = total + sum((v.float() for v in aux.values()), torch.zeros((), device=s.device))
    for name, v in aux.items():
        parts[name] = parts[name] + v.float() if name in parts else v.float()
    main = s.data.main
    teach = s.teacher is not None and s.distill is not None
    if teach:
        parts["kd"] = distillation(s, outputs[main], rows)
        total = total + parts["kd"]
    branch_weight = s.distill.branches if s.distill is not None else 1.0
    for m, logits in out.branches.items():  # each modality alone: its CE, the teacher's guide
        term = s.losses[main](logits, s.data.tasks[main].target[rows])
        if teach:
            term = term + distillation(s, logits, rows)
        parts[f"branch/{m}"] = branch_weight * term
        total = total + parts[f"branch/{m}"]
    return total, {k: v.detach() for k, v in parts.items()}


def _rate(r: float) -> str:
    return f"{r:.2f}" if r < 10 else f"{r:.1f}" if r < 100 else f"{r:.0f}"


def report(state: RunState, i: int, n_batches: int, done: int, seconds: float) -> None:
    """The in-epoch progress line after batch `i` (from 0): `done` batches ran in `seconds` in
    this process (a resumed epoch's skipped batches are not in the rate)."""
    rate = done / max(seconds, 1e-9)
    left = (n_batches - i - 1) / rate if rate > 0 else float("inf")
    mean = state.loss_sum / max(state.loss_batches, 1)
    info(
        f"  epoch {state.epoch + 1}: batch {i + 1}/{n_batches}, {_rate(rate)} batch/s, "
        f"ETA {duration(left)}, train loss {mean:.4f}"
    )


def train_epoch(
    s: Setup, split: Split, state: RunState, checkpoint: Callable[[], None], every: int
) -> None:
    """Run (the rest of) epoch `state.epoch`, updating `state` as it goes.

    Under torchrun each rank runs its share of every global batch (see distributed.py): its
    loss is scaled by N·n_r/n so that DDP's gradient average is the global batch's, and the
    recorded train loss is the global batch's mean, summed across the ranks."""
    s.model.train()
    world = distributed.world()
    batches = epoch_batches(split, s.seed, state.epoch, s.batch_size, s.tokens, s.lengths)
    n_batches = len(batches)
    first = state.step_in_epoch * s.accumulation
    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
    speakers, max_spk = s.data.speakers, s.model.spec.model.max_speakers
    shares = distributed.shares(split, batches, speakers, max_spk, first, world)
    started = reported = time.perf_counter()
    for i, share in enumerate(shares, start=first):
        group_start = i - i % s.accumulation
        group_size = min(s.accumulation, n_batches - group_start)  # the last group may be short
        last = i - group_start + 1 == group_size  # this micro-batch ends an optimizer step
        if world.size > 1 and i == group_start:  # each rank its own dropout masks, see there
            torch.manual_seed(distributed.step_seed(s.seed, world.rank, state.global_step))
        with distributed.sync(s.ddp, last):  # no gradient all-reduce before the last one
            loss, parts = objective(s, share.batch, state.global_step / max(s.total_steps, 1))
            # weight · N is 1.0 in one process: the same floats as without torchrun
            s.scaler.scale(loss * (share.weight * world.size) / group_size).backward()
        # summed over the ranks: every rank checks the same number, so all stop together
        batch_loss = distributed.sum_float(float(loss.detach()) * share.weight)
        check_loss(batch_loss, state.epoch + 1, state.step_in_epoch + 1)  # before any step
        state.loss_sum += batch_loss
        state.loss_batches += 1
        # one device sync for all the parts; under torchrun each summed like the total
        values = torch.stack([v.float() for v in parts.values()]).tolist()
        for name, v in zip(parts, values, strict=True):
            state.loss_parts[name] = state.loss_parts.get(name, 0.0) + distributed.sum_float(
                v * share.weight
            )
        if not last:
            continue
        distributed.average_gradients(s.tower)  # outside the DDP wrapper (none in one process)
        factor = lr_factor(state.global_step, s.total_steps, s.warmup, s.decay)
        for g in s.optimizer.param_groups:
            g["lr"] = g.get("base_lr", s.base_lr) * factor  # a group may have its own (encoder)
        if s.grad_clip > 0:
            s.scaler.unscale_(s.optimizer)
            params = [*s.model.parameters()]
            if s.tower is not None:  # one norm over everything the optimizer steps
                params += [p for p in s.tower.parameters() if p.requires_grad]
            norm = float(nn.utils.clip_grad_norm_(params, s.grad_clip))
            if not s.scaler.is_enabled():  # fp16's scaler skips inf steps itself, on purpose
                check_grad_norm(norm, state.epoch + 1, state.step_in_epoch + 1)
        s.scaler.step(s.optimizer)
        s.scaler.update()
        s.optimizer.zero_grad(set_to_none=True)
        state.global_step += 1
        state.step_in_epoch += 1
        now = time.perf_counter()
        if s.report_every is not None and world.main and now - reported >= s.report_every:
            report(state, i, n_batches, i + 1 - first, now - started)
            reported = now
        if every and state.global_step % every == 0 and i + 1 < n_batches:
            checkpoint()
        if kill_at and state.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


@torch.no_grad()
def predict(
    s: Setup, split: Split, batch_size: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Outputs for every utterance of `split`: (rows (n,), {task: (n, C) or (n,)}), on the CPU.

    Under torchrun each rank predicts a contiguous block of the groups and the blocks are
    gathered in rank order: every rank returns the whole split, in one process's row order."""
    s.model.eval()
    start, stop = distributed.block(split.groups, distributed.world())
    # an empty block (fewer groups than ranks) runs group 0 for the outputs' names and shapes,
    # then keeps none of it: the gather needs every rank's tensors
    order = np.arange(start, stop) if stop > start else np.arange(min(split.groups, 1))
    keep = None if stop > start else 0
    rows, outs = [], {}
    speakers, max_spk = s.data.speakers, s.model.spec.model.max_speakers
    for batch in iter_batches(split, order, batch_size, speakers, max_spk):
        outputs = forward(s, batch).outputs
        rows.append(batch.rows[:keep])
        for name, o in outputs.items():
            outs.setdefault(name, []).append(o[:keep].float().cpu())
    gather = distributed.gather_rows
    return gather(torch.cat(rows)), {k: gather(torch.cat(v)) for k, v in outs.items()}


def eval_loss(s: Setup, rows: torch.Tensor, outputs: dict[str, torch.Tensor]) -> float:
    weights = s.model.task_weights
    rows = rows.to(s.device)
    with torch.no_grad():
        total = sum(
            weights[n] * loss(outputs[n].to(s.device), s.data.tasks[n].target[rows])
            for n, loss in s.losses.items()
        )
    return float(total)
