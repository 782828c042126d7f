"""What a run is, before anything is written: its inputs read and checked, its network and
losses resolved, its id and its folder.

Everything here reads and checks; nothing writes. So a bad input or config is an error before
the run folder exists, and `er_train.training` takes the folder's lock only for a run that can
start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from er_core import ErError, UsageError, content_id, set_threads, to_dict, warn
from er_core.config import origin_of
from er_core.recipe import strip_labels
from er_models import (
    SECTIONS,
    NetworkSpec,
    build_model,
    check_sections,
    create,
    modality_tag,
    parse_modalities,
    parse_network,
    resolve,
)
from er_models.losses import REGRESSION

from er_train.checkpoint import check_resumable
from er_train.config import TrainConfig
from er_train.data import Data, load_data
from er_train.runs import run_dir
from er_train.scoring import metric_names, selection
from er_train.teacher import load_teacher

CODE_VERSION = 1


@dataclass
class Plan:
    data: Data
    spec: NetworkSpec
    losses: dict[str, torch.nn.Module]  # task -> its loss
    loss_cfg: dict[str, dict[str, Any]]  # task -> its resolved loss section
    resolved: dict[str, Any]  # the resolved config written into the RunManifest
    run_id: str
    recipe_hash: str  # the id without the seed: the run folder's hash, shared by a run's seeds
    folder: Path
    device: torch.device
    select: str  # the dev metric choosing the epoch, `<task>/<metric>`
    higher: bool  # whether a higher `select` is better
    tower: torch.nn.Module | None = None  # run.method L or T: the text encoder trained
    teacher: tuple | None = None  # [distill]: (teacher RunManifest, its weights)


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


def check_turns(spec: NetworkSpec, data: Data) -> None:
    """Warn when dialogues run past a learned-position transformer's `max_turns`: the turns
    beyond it share the last position vector (IEMOCAP dialogues run past the default 64)."""
    ctx = spec.context.to_dict()
    if ctx["kind"] != "transformer" or ctx.get("positions") != "learned":
        return
    cap = int(ctx["max_turns"])
    lengths = np.concatenate([g.length for g in data.dialogues.values()])
    over = int((lengths > cap).sum())
    if over:
        warn(
            f"{over} dialogue(s) have more than context.max_turns = {cap} turns (longest "
            f"{int(lengths.max())}): their later turns share position {cap - 1}; set "
            f"context.max_turns={int(lengths.max())} or context.positions=sinusoidal to tell "
            "them apart"
        )


def loss_label(loss: str, spec: NetworkSpec, distilled: bool) -> str:
    """The loss part of the run folder's name: the task loss, its aux objectives and "kd" for a
    distilled run, e.g. "ce+spcl" (runs that differ in these never share a folder)."""
    return "+".join([loss, *(r.kind for _, r in spec.aux), *(["kd"] if distilled else [])])


def _without_zero(section: dict, key: str) -> dict:
    """`section` without `key` when it is 0: an option added later at its default leaves the
    ids of the runs made before it unchanged."""
    return {k: v for k, v in section.items() if k != key or v}


def plan(
    envs: Sequence,
    cfg: TrainConfig,
    origins: Mapping[str, str],
    device: str,
    resume: Path | None,
) -> Plan:
    """Read and check everything the run needs; name its id and folder. Writes nothing."""
    dev = check_device(device, cfg.train.precision)
    # the network's and the loss's sections are checked before any input is read: a bad
    # value (model.width = 0, an unknown fusion) costs no work
    sections = {k: getattr(cfg, k) for k in SECTIONS}
    check_sections(sections, origins)
    resolve("loss", {"kind": "ce", **cfg.loss}, origins)
    tuned = "text" if cfg.run.method != "F" else None  # a text encoder trained in the run
    data = load_data(
        envs,
        parse_modalities(cfg.modalities) if cfg.modalities else [],
        cfg.task,
        cfg.tasks,
        tuned=tuned,
    )
    if cfg.train.tokens and not tuned:
        raise ErError(
            f"train.tokens = {cfg.train.tokens}: a token budget batches prompts by length, and "
            "this run trains on cached features",
            at=f"{origin_of('train.tokens', origins) or ''}:$.train.tokens".lstrip(":"),
            hint="set run.method L or T (the text encoder trains in the run), or train.tokens=0",
        )
    tower = None
    if tuned:
        from er_train.tower import build_tower

        torch.manual_seed(cfg.seed)  # the LoRA adapters' initial values
        tower = build_tower(cfg.finetune, cfg.run.method, data.dataset, data.ids)
        data.set_tuned(tuned, tower.dim, tower.present)
    tasks = {n: t.spec.classes for n, t in data.tasks.items()}
    spec = parse_network(sections, data.dims, tasks, origins)
    with torch.random.fork_rng(devices=[]):  # a trial build, leaving the RNG as it was
        build_model(spec)  # what only a part's factory checks (two tasks, one head) fails here
    check_turns(spec, data)
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
        "train": _without_zero(to_dict(cfg.train), "tokens"),
        # the thread count used, not asked for (0 = default): a label, not in the run's id
        "run": to_dict(cfg.run) | {"threads": set_threads(cfg.run.threads or None)},
    }
    if teacher is not None:  # the teacher is named by its run id: its path is not its identity
        resolved["distill"] = to_dict(cfg.distill) | {"teacher": teacher[0].id}
    if tower is not None:
        resolved["finetune"] = _without_zero(to_dict(cfg.finetune), "frozen_layers")
    # what the result depends on: the config, the dataset, the features, the code. The run id
    # keeps its first formula (the config without [run] but its method), so ids made before
    # the recipe hash still match; the folder's recipe hash drops the labels er_core.recipe
    # lists (seed, run.root, run.category, run.log, run.threads), as er-eval's groups do
    inputs = {
        "dataset": data.dataset.id,
        "features": {m: f.id for m, f in data.features.items()}
        | ({tuned: tower.key} if tower is not None else {}),
        "code": CODE_VERSION,
    }
    identity = {k: v for k, v in resolved.items() if k != "run"} | {"method": cfg.run.method}
    run_id = content_id({"config": identity, **inputs})
    recipe_hash = content_id({"config": strip_labels(resolved), **inputs})
    folder = run_dir(
        cfg,
        data.dataset.dataset,
        data.main,
        modality_tag(data.modalities),
        spec.fusion.kind,
        loss_label(loss_cfg[data.main]["kind"], spec, teacher is not None),
        recipe_hash,
    )
    if resume is not None:
        folder = resume
        check_resumable(folder / "checkpoint.safetensors", spec)
    known = [*metric_names(data), f"{data.main}/loss"]
    regression = data.tasks[data.main].spec.regression
    select, higher = selection(cfg.train.select, data.main, regression, known)
    return Plan(
        data,
        spec,
        losses,
        loss_cfg,
        resolved,
        run_id,
        recipe_hash,
        folder,
        dev,
        select,
        higher,
        tower,
        teacher,
    )
