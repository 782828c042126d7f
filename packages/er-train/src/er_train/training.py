"""A whole run: read the stream, build the network, train with dev selection, test once, write
the run folder and return its RunManifest.

Order of events, and why:
1. everything that can be wrong with the inputs or config is checked before any training
   and before anything is written (plan.py: features of another dataset, NaN, unknown parts,
   bad ranges, a checkpoint of another network);
2. the run folder's lock is taken (runs.owned): one writer per folder, a second process waits;
3. a folder marked failed is refused; a finished run with the same id is returned as it is
   (re-running a step is a no-op);
4. training resumes from the run folder's checkpoint if there is one;
5. each epoch ends with a dev pass; the best dev epoch's weights are kept; a NaN/inf loss or
   dev pass stops the run and marks its folder failed (guard.py);
6. after the last epoch the selected weights are loaded and test is read, once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import msgspec
import numpy as np
import torch
from er_core import EpochRecord, ErError, RunManifest, canonical_json, duration, info
from er_core.progress import log_every
from er_models import build_model

from er_train import distributed
from er_train.batches import count_steps
from er_train.checkpoint import NETWORK_KEY, load_checkpoint, save_checkpoint, save_weights
from er_train.config import TrainConfig
from er_train.finish import finish
from er_train.guard import Diverged, check_dev
from er_train.loop import Setup, eval_loss, predict, train_epoch
from er_train.plan import Plan, plan
from er_train.runs import (
    RunState,
    check_not_failed,
    conflict,
    finished,
    mark_failed,
    owned,
    root_of,
)
from er_train.scoring import better, split_metrics
from er_train.summary import write_summary
from er_train.teacher import init_text, teacher_logits
from er_train.tracking import Tracker, check_loggers

_state_dec = msgspec.json.Decoder(RunState)


def _param_groups(params: Iterable[torch.nn.Parameter], weight_decay: float, lr: float) -> list:
    """Biases, norms and single vectors are not decayed; `base_lr` is the group's peak rate
    (the schedule scales it)."""
    params = list(params)
    groups = (
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    )
    return [g | {"lr": lr, "base_lr": lr} for g in groups if g["params"]]


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module, tower: torch.nn.Module | None):
    """AdamW over the network and, for methods L and T, the encoder's trainable weights at
    their own learning rate (`finetune.lr`)."""
    groups = _param_groups(model.parameters(), cfg.train.weight_decay, cfg.train.lr)
    if tower is not None:
        trainable = (p for p in tower.parameters() if p.requires_grad)
        groups += _param_groups(trainable, cfg.train.weight_decay, cfg.finetune.lr)
    return torch.optim.AdamW(
        groups,
        lr=cfg.train.lr,
        betas=tuple(cfg.train.betas),
        fused=True,  # one kernel per step instead of one per parameter tensor
    )


def train(
    envs: Sequence,
    cfg: TrainConfig,
    origins: Mapping[str, str] | None = None,
    device: str = "cpu",
    progress: bool = True,
    resume: Path | None = None,
) -> RunManifest:
    """Train (or resume, or return the finished run) as the module docstring says. `resume`
    names a run folder to continue instead of the one the config names (a moved or copied run);
    its checkpoint must be of this network."""
    check_loggers(cfg.run.log)  # a missing extra fails before anything is read or written
    p = plan(envs, cfg, origins or {}, device, resume)
    with owned(p.folder):  # one writer per run folder, from the "finished?" check to run.json
        check_not_failed(p.folder)
        done = finished(p.folder, p.run_id)
        if done is not None:
            info(f"er-train: finished run found, nothing to do: {p.folder}")
            return done
        try:
            return _run(p, cfg, progress, device, resume)
        except Diverged as e:
            mark_failed(p.folder, p.run_id, e, e.epoch, e.step)
            raise ErError(e.what, at=str(p.folder), hint=e.hint) from None


def _run(
    p: Plan, cfg: TrainConfig, progress: bool, device: str, resume: Path | None
) -> RunManifest:
    """Train in `p.folder` (this process holds its lock): resume from its checkpoint if there
    is one, select the epoch on dev, then finish (test once, store, run.json)."""
    data, spec, losses, tower, teacher = p.data, p.spec, p.losses, p.tower, p.teacher
    folder, run_id, dev, net = p.folder, p.run_id, p.device, p.spec.to_dict()
    select, higher = p.select, p.higher

    torch.manual_seed(cfg.seed)
    model = build_model(spec)
    if teacher is not None and cfg.distill.init == "text":
        init_text(model, teacher[1])
    model = model.to(dev)
    if tower is not None:
        tower = tower.to(dev)
    optimizer = make_optimizer(cfg, model, tower)
    scaler = torch.amp.GradScaler(dev.type, enabled=cfg.train.precision == "fp16")
    for m in data.feats:
        data.feats[m] = data.feats[m].to(dev)
    data.present = data.present.to(dev)
    for t in data.tasks.values():
        t.target = t.target.to(dev)
    for loss in losses.values():
        loss.to(dev)

    contextual = spec.context.kind != "none"
    groups = data.dialogues if contextual else data.singles
    tr = cfg.train
    lengths = np.array(tower.lengths(), dtype=np.int64) if tower is not None else None
    steps = count_steps(
        groups["train"], cfg.seed, tr.epochs, tr.batch_size, tr.accumulation, tr.tokens, lengths
    )
    s = Setup(
        model,
        data,
        losses,
        optimizer,
        scaler,
        dev,
        tr.precision,
        cfg.seed,
        tr.batch_size,
        tr.accumulation,
        tr.grad_clip,
        tr.lr,
        steps,
        tr.warmup,
        tr.decay,
    )
    s.distill = cfg.distill
    s.tokens, s.lengths = tr.tokens, lengths
    s.tower, s.tower_chunk = tower, cfg.finetune.chunk
    s.report_every = log_every() if progress else None  # ER_PROGRESS_EVERY, off a terminal too
    if tower is not None and cfg.run.method == "L":
        from er_train.tower import build_tower

        s.fresh_tower = lambda: build_tower(cfg.finetune, "L", data.dataset, data.ids)
    if teacher is not None:
        s.teacher = teacher_logits(s, *teacher)
    s.ddp = distributed.wrap(model, dev)  # under torchrun (see distributed.py); None otherwise
    distributed.broadcast_trainable(tower)  # the tower is outside the wrapper: rank 0's start
    main = distributed.is_main()  # only rank 0 writes files and prints progress

    folder.mkdir(parents=True, exist_ok=True)
    if main:
        write_summary(p, folder)  # what the run is, in words, while it trains
    ckpt, best_path = folder / "checkpoint.safetensors", folder / "best.safetensors"
    state = RunState(run_id=run_id)
    if ckpt.is_file():
        meta = load_checkpoint(ckpt, model, optimizer, scaler, tower=tower)
        state = _state_dec.decode(meta["er.state"])
        if state.run_id != run_id:
            conflict(folder)
        info(f"er-train: resuming {folder} at epoch {state.epoch + 1}, step {state.step_in_epoch}")

    spent, started = state.seconds, time.perf_counter()
    track = Tracker(folder, select, higher, cfg.run.log, enabled=main)

    def checkpoint() -> None:
        state.seconds = spent + time.perf_counter() - started
        meta = {
            "er.state": msgspec.json.encode(state).decode(),
            NETWORK_KEY: canonical_json(net).decode(),
        }
        if main:
            save_checkpoint(ckpt, model, optimizer, scaler, meta, tower=tower)

    with track:
        track.start(state.history)  # a resumed run's files say what its checkpoint says
        while state.epoch < tr.epochs and not state.stopped:
            t0 = time.perf_counter()
            train_epoch(s, groups["train"], state, checkpoint, tr.checkpoint_every)
            rows, outputs = predict(s, groups["dev"], tr.eval_batch_size)
            dev_metrics = split_metrics(data, rows, outputs)
            dev_metrics |= {f"{data.main}/loss": eval_loss(s, rows, outputs)}
            check_dev(outputs, dev_metrics, state.epoch + 1)  # before anything of it is kept
            score = dev_metrics[select]
            batches = max(state.loss_batches, 1)
            record = EpochRecord(
                epoch=state.epoch + 1,
                train_loss=state.loss_sum / batches,
                lr=optimizer.param_groups[0]["lr"],
                dev=dev_metrics,
                seconds=time.perf_counter() - t0,
                losses={k: v / batches for k, v in state.loss_parts.items()},
            )
            improved = better(score, state.best_score, higher)
            if improved:
                state.best_score, state.best_epoch, state.bad_epochs = score, record.epoch, 0
                if main:
                    save_weights(best_path, model, tower=tower)
            else:
                state.bad_epochs += 1
            state.history = [*state.history, record]
            state.epoch += 1
            state.step_in_epoch = state.loss_batches = 0
            state.loss_sum, state.loss_parts = 0.0, {}
            state.stopped = bool(tr.patience) and state.bad_epochs >= tr.patience
            checkpoint()
            track.epoch(state.history)  # metrics.csv after the checkpoint: its rows are kept
            if progress and main:
                info(epoch_line(record, tr.epochs, select, improved, state))
    # a resumed folder may have moved: its weights go to the store of the root it is in now
    root = root_of(folder) if resume is not None else Path(cfg.run.root)
    return finish(s, cfg, spec, folder, root, state, p.resolved, select, device, p.recipe_hash)


def epoch_line(
    record: EpochRecord, epochs: int, select: str, improved: bool, state: RunState
) -> str:
    """The line printed after each epoch; its ETA is the mean epoch time so far (resumed
    epochs included) times the epochs left (none once early stopping fired)."""
    left = 0 if state.stopped else epochs - state.epoch
    eta = sum(r.seconds for r in state.history) / len(state.history) * left
    return (
        f"epoch {record.epoch}/{epochs}  train loss {record.train_loss:.4f}  "
        f"dev {select} {record.dev[select]:.4f}{' *' if improved else ''}  lr {record.lr:.2e}  "
        f"{record.seconds:.1f} s  ETA {duration(eta)}"
    )
