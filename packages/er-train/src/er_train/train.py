"""A whole run: read the stream, build the network, train with dev selection, test once, write
the run folder and return its RunManifest.

Order of events, and why:
1. everything that can be wrong with the inputs or config is checked before any training
   (features of another dataset, NaN, unknown parts, a checkpoint of another network);
2. a finished run with the same id is returned as it is (re-running a step is a no-op);
3. training resumes from the run folder's checkpoint if there is one;
4. each epoch ends with a dev pass; the best dev epoch's weights are kept;
5. after the last epoch the selected weights are loaded and test is read, once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import torch
from er_core import (
    EpochRecord,
    RunManifest,
    UsageError,
    canonical_json,
    content_id,
    info,
    to_dict,
)
from er_models import (
    SECTIONS,
    NetworkSpec,
    build_model,
    create,
    modality_tag,
    parse_modalities,
    parse_network,
    resolve,
)
from er_models.losses import REGRESSION

from er_train import distributed
from er_train.checkpoint import (
    NETWORK_KEY,
    check_resumable,
    load_checkpoint,
    save_checkpoint,
    save_weights,
)
from er_train.config import TrainConfig
from er_train.data import Data, load_data
from er_train.finish import finish
from er_train.loop import Setup, eval_loss, predict, train_epoch
from er_train.runs import RunState, conflict, finished, root_of, run_dir
from er_train.scoring import better, metric_names, selection, split_metrics
from er_train.teacher import init_text, load_teacher, teacher_logits

CODE_VERSION = 1
PROGRESS_EVERY = 30.0  # seconds between progress lines inside a long epoch (a trained encoder)
_state_dec = msgspec.json.Decoder(RunState)


def check_device(device: str, precision: str) -> torch.device:
    if device != "cpu" and not device.startswith("cuda"):
        raise UsageError(
            f"unknown --device '{device}'", at="--device", hint="use cpu, cuda or cuda:N"
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(
            "--device cuda, but torch sees no CUDA device", at="--device", hint="use --device cpu"
        )
    if precision == "fp16" and not device.startswith("cuda"):
        raise UsageError(
            "train.precision fp16 needs CUDA",
            at="$.train.precision",
            hint="use bf16 (or fp32) on the CPU",
        )
    return torch.device(device)


def _losses(
    cfg: TrainConfig, data: Data, origins: Mapping[str, str]
) -> tuple[dict, dict[str, Any]]:
    """One loss per task: `[loss]` for the tasks of its type, ce or l1 for the others."""
    configured = resolve("loss", {"kind": "ce", **cfg.loss}, origins)
    out, resolved = {}, {}
    for name, task in data.tasks.items():
        fits = (configured.kind in REGRESSION) == task.spec.regression
        r = (
            configured
            if fits
            else resolve("loss", {"kind": "l1" if task.spec.regression else "ce"})
        )
        out[name] = create(r, task.spec, data.class_counts(name))
        resolved[name] = r.to_dict()
    return out, resolved


def loss_label(loss: str, spec: NetworkSpec, distilled: bool) -> str:
    """The loss part of the run folder's name: the task loss, its aux objectives and "kd" for a
    distilled run, e.g. "ce+spcl" (runs that differ in these never share a folder)."""
    return "+".join([loss, *(r.kind for _, r in spec.aux), *(["kd"] if distilled else [])])


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
    origins = origins or {}
    dev = check_device(device, cfg.train.precision)
    tuned = "text" if cfg.run.method != "F" else None  # a text encoder trained in the run
    data = load_data(
        envs,
        parse_modalities(cfg.modalities) if cfg.modalities else [],
        cfg.task,
        cfg.tasks,
        tuned=tuned,
    )
    tower = None
    if tuned:
        from er_train.tower import build_tower

        torch.manual_seed(cfg.seed)  # the LoRA adapters' initial values
        tower = build_tower(cfg.finetune, cfg.run.method, data.dataset, data.ids)
        data.set_tuned(tuned, tower.dim, tower.present)
    sections = {k: getattr(cfg, k) for k in SECTIONS}
    tasks = {n: t.spec.classes for n, t in data.tasks.items()}
    spec = parse_network(sections, data.dims, tasks, origins)
    losses, loss_cfg = _losses(cfg, data, origins)
    net = spec.to_dict()
    teacher = load_teacher(cfg.distill.teacher, data) if cfg.distill.teacher else None
    resolved = {
        "seed": cfg.seed,
        "modalities": modality_tag(data.modalities),
        "task": data.main,
        "tasks": list(data.tasks),
        **{k: net[k] for k in SECTIONS if k in net},
        "loss": loss_cfg,
        "train": to_dict(cfg.train),
        "run": to_dict(cfg.run),
    }
    if teacher is not None:  # the teacher is named by its run id: its path is not its identity
        resolved["distill"] = to_dict(cfg.distill) | {"teacher": teacher[0].id}
    if tower is not None:
        resolved["finetune"] = to_dict(cfg.finetune)
    identity = {k: v for k, v in resolved.items() if k != "run"} | {"method": cfg.run.method}
    run_id = content_id(
        {
            "config": identity,
            "dataset": data.dataset.id,
            "features": {m: f.id for m, f in data.features.items()}
            | ({tuned: tower.key} if tower is not None else {}),
            "code": CODE_VERSION,
        }
    )
    folder = run_dir(
        cfg,
        data.dataset.dataset,
        data.main,
        modality_tag(data.modalities),
        spec.fusion.kind,
        loss_label(loss_cfg[data.main]["kind"], spec, teacher is not None),
        spec.hash,
    )
    if resume is not None:
        folder = resume
        check_resumable(folder / "checkpoint.safetensors", spec)
    done = finished(folder, run_id)
    if done is not None:
        info(f"er-train: finished run found, nothing to do: {folder}")
        return done

    sel_known = [*metric_names(data), f"{data.main}/loss"]
    select, higher = selection(
        cfg.train.select, data.main, data.tasks[data.main].spec.regression, sel_known
    )

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
    n_batches = -(-groups["train"].groups // cfg.train.batch_size)
    steps = -(-n_batches // cfg.train.accumulation)
    tr = cfg.train
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
        steps * tr.epochs,
        tr.warmup,
        tr.decay,
    )
    s.distill = cfg.distill
    s.tower, s.tower_chunk = tower, cfg.finetune.chunk
    s.report_every = PROGRESS_EVERY if progress else 0.0
    if tower is not None and cfg.run.method == "L":
        s.fresh_tower = lambda: build_tower(cfg.finetune, "L", data.dataset, data.ids)
    if teacher is not None:
        s.teacher = teacher_logits(s, *teacher)
    s.ddp = distributed.wrap(model, dev)  # under torchrun (see distributed.py); None otherwise
    distributed.broadcast_trainable(tower)  # the tower is outside the wrapper: rank 0's start
    main = distributed.is_main()  # only rank 0 writes files and prints progress

    folder.mkdir(parents=True, exist_ok=True)
    ckpt, best_path = folder / "checkpoint.safetensors", folder / "best.safetensors"
    state = RunState(run_id=run_id)
    if ckpt.is_file():
        meta = load_checkpoint(ckpt, model, optimizer, scaler, tower=tower)
        state = _state_dec.decode(meta["er.state"])
        if state.run_id != run_id:
            conflict(folder)
        info(f"er-train: resuming {folder} at epoch {state.epoch + 1}, step {state.step_in_epoch}")

    spent, started = state.seconds, time.perf_counter()

    def checkpoint() -> None:
        state.seconds = spent + time.perf_counter() - started
        meta = {
            "er.state": msgspec.json.encode(state).decode(),
            NETWORK_KEY: canonical_json(net).decode(),
        }
        if main:
            save_checkpoint(ckpt, model, optimizer, scaler, meta, tower=tower)

    while state.epoch < tr.epochs and not state.stopped:
        t0 = time.perf_counter()
        train_epoch(s, groups["train"], state, checkpoint, tr.checkpoint_every)
        rows, outputs = predict(s, groups["dev"], tr.eval_batch_size)
        dev_metrics = split_metrics(data, rows, outputs)
        dev_metrics |= {f"{data.main}/loss": eval_loss(s, rows, outputs)}
        score = dev_metrics[select]
        record = EpochRecord(
            epoch=state.epoch + 1,
            train_loss=state.loss_sum / max(state.loss_batches, 1),
            lr=optimizer.param_groups[0]["lr"],
            dev=dev_metrics,
            seconds=time.perf_counter() - t0,
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
        state.loss_sum = 0.0
        state.stopped = bool(tr.patience) and state.bad_epochs >= tr.patience
        checkpoint()
        if progress and main:
            info(
                f"epoch {record.epoch}/{tr.epochs}  train loss {record.train_loss:.4f}  "
                f"dev {select} {score:.4f}{' *' if improved else ''}  lr {record.lr:.2e}  "
                f"{record.seconds:.1f} s"
            )
    # a resumed folder may have moved: its weights go to the store of the root it is in now
    root = root_of(folder) if resume is not None else Path(cfg.run.root)
    return finish(s, cfg, spec, folder, root, state, resolved, select, device)
