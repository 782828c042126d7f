"""One training epoch and one evaluation pass, on in-memory tensors.

Mixed precision: `precision` bf16 runs the forward under torch.autocast (CPU or CUDA); fp16
(CUDA only) adds a GradScaler. Losses are computed in float32 whatever the precision.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

import torch
from er_models import ERModel
from torch import nn

from er_train.batches import Batch, epoch_order, iter_batches
from er_train.data import Data, Split
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


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def forward(s: Setup, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    rows = batch.rows.to(s.device)
    feats = {m: x[rows] for m, x in s.data.feats.items()}  # (N, d_m) each
    with autocast(s.device, s.precision):
        out = s.model(
            feats, s.data.present[rows], batch.layout.to(s.device), batch.speakers.to(s.device)
        )
    return out.outputs, out.aux


def objective(s: Setup, batch: Batch) -> torch.Tensor:
    outputs, aux = forward(s, batch)
    rows = batch.rows.to(s.device)
    weights = s.model.task_weights
    total = sum(
        weights[name] * loss(outputs[name], s.data.tasks[name].target[rows])
        for name, loss in s.losses.items()
    )
    return total + sum((v.float() for v in aux.values()), torch.zeros((), device=s.device))


def train_epoch(
    s: Setup, split: Split, state: RunState, checkpoint: Callable[[], None], every: int
) -> None:
    """Run (the rest of) epoch `state.epoch`, updating `state` as it goes."""
    s.model.train()
    order = epoch_order(split, s.seed, state.epoch)
    n_batches = -(-split.groups // s.batch_size)
    first = state.step_in_epoch * s.accumulation
    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
    speakers, max_spk = s.data.speakers, s.model.spec.model.max_speakers
    batches = iter_batches(
        split, order, s.batch_size, speakers, max_spk, skip=state.step_in_epoch * s.accumulation
    )
    for i, batch in enumerate(batches, start=first):
        group_start = i - i % s.accumulation
        group_size = min(s.accumulation, n_batches - group_start)  # the last group may be short
        loss = objective(s, batch)
        s.scaler.scale(loss / group_size).backward()
        state.loss_sum += float(loss.detach())
        state.loss_batches += 1
        if i - group_start + 1 < group_size:
            continue
        factor = lr_factor(state.global_step, s.total_steps, s.warmup, s.decay)
        for g in s.optimizer.param_groups:
            g["lr"] = s.base_lr * factor
        if s.grad_clip > 0:
            s.scaler.unscale_(s.optimizer)
            nn.utils.clip_grad_norm_(s.model.parameters(), s.grad_clip)
        s.scaler.step(s.optimizer)
        s.scaler.update()
        s.optimizer.zero_grad(set_to_none=True)
        state.global_step += 1
        state.step_in_epoch += 1
        if every and state.global_step % every == 0 and i + 1 < n_batches:
            checkpoint()
        if kill_at and state.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


@torch.no_grad()
def predict(
    s: Setup, split: Split, batch_size: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Outputs for every utterance of `split`: (rows (n,), {task: (n, C) or (n,)}), on the CPU."""
    s.model.eval()
    order = torch.arange(split.groups).numpy()
    rows, outs = [], {}
    speakers, max_spk = s.data.speakers, s.model.spec.model.max_speakers
    for batch in iter_batches(split, order, batch_size, speakers, max_spk):
        outputs, _ = forward(s, batch)
        rows.append(batch.rows)
        for name, o in outputs.items():
            outs.setdefault(name, []).append(o.float().cpu())
    return torch.cat(rows), {k: torch.cat(v) for k, v in outs.items()}


def eval_loss(s: Setup, rows: torch.Tensor, outputs: dict[str, torch.Tensor]) -> float:
    weights = s.model.task_weights
    rows = rows.to(s.device)
    with torch.no_grad():
        total = sum(
            weights[n] * loss(outputs[n].to(s.device), s.data.tasks[n].target[rows])
            for n, loss in s.losses.items()
        )
    return float(total)
