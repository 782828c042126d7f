"""`er-train`'s config: the run's inputs and recipe, merged from TOML files and `--set`.

Sections: `[model]`, `[fusion]`, `[context]`, `[head]` and `[aux.NAME]` (the network and its
auxiliary objectives, see er-models), `[loss]`, `[distill]` (one-run distillation from a teacher
run, see teacher.py), `[finetune]` (the text encoder trained in a method L or T run, see
finetune.py and tower.py), `[train]` (the optimisation recipe) and `[run]` (where results go). Top-level keys pick the
seed, the modalities and the task(s).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from er_core import (
    Config,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)
from msgspec import Meta, field

from er_train.finetune import FinetuneSection

Decay = Annotated[float, Meta(ge=0.0, lt=1.0)]  # a moment decay of 1 would never forget
# a folder name inside the runs root: no separators, no `..`, nothing hidden
FolderName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_+=-][A-Za-z0-9._+=-]*$")]


class TrainSection(Config, frozen=True):
    """`[train]`: the optimisation recipe."""

    epochs: PositiveInt = 20
    batch_size: PositiveInt = 16  # dialogues per batch (utterances without context)
    # runs that train a text encoder (run.method L, T): batches of prompts of like length
    # within this many padded tokens (rows x longest prompt), at most batch_size groups each;
    # 0 = batch_size groups per batch, whatever their length (see er_train.batches)
    tokens: NonNegativeInt = 0
    eval_batch_size: PositiveInt = 256  # same unit, for dev and test passes
    lr: PositiveFloat = 5e-4  # finite: inf or nan is refused, not trained on
    weight_decay: NonNegativeFloat = 0.01
    betas: tuple[Decay, Decay] = (0.9, 0.999)  # AdamW's moment decays, each in [0, 1)
    warmup: Annotated[float, Meta(ge=0, lt=1)] = 0.1  # share of optimizer steps warming up
    decay: Literal["cosine", "linear", "constant"] = "cosine"  # after the warmup, down to 0
    grad_clip: NonNegativeFloat = 1.0  # max gradient norm; 0 = off
    accumulation: PositiveInt = 1  # batches per optimizer step
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # fp16 needs CUDA (with a grad scaler)
    select: str = ""  # dev metric choosing the epoch: "weighted_f1" (default), "mae" (regression)
    patience: NonNegativeInt = 0  # stop after this many epochs without a better dev
    checkpoint_every: NonNegativeInt = 0  # optimizer steps; 0 = at epoch ends only


class RunSection(Config, frozen=True):
    """`[run]`: where the run folder goes (see er_train.runs for the layout)."""

    root: str = "runs"
    category: FolderName = "default"  # first folder level: group experiments (e.g. "ablation-lr")
    # how the text encoder is used: F = frozen, cached features; L = LoRA adapters trained in
    # the run; T = the whole encoder trained in the run (L and T: see [finetune], tower.py)
    method: Literal["F", "L", "T"] = "F"
    # loggers besides metrics.csv (always written): "tensorboard" (extra er-train[tensorboard])
    log: list[Literal["tensorboard"]] = []
    # torch's CPU threads; 0 = the default (er_core.threads: --threads, ER_THREADS,
    # OMP_NUM_THREADS, else half the usable cores, at most 8). Not part of the run's identity.
    threads: NonNegativeInt = 0


class DistillSection(Config, frozen=True):
    """`[distill]`: one-run distillation from a teacher run."""

    teacher: str = ""  # the teacher run's folder or run.json; "" = no distillation
    kl: NonNegativeFloat = 0.0  # weight of the logit KL term (Hinton et al., 2015)
    dist: NonNegativeFloat = 1.0  # weight of DIST (Huang et al., NeurIPS 2022)
    temperature: PositiveFloat = 4.0
    beta: NonNegativeFloat = 1.0  # DIST: inter-class (per-sample) term
    gamma: NonNegativeFloat = 1.0  # DIST: intra-class (per-class) term
    branches: NonNegativeFloat = 1.0  # weight of each branch's CE + distillation
    init: Literal["none", "text"] = "none"  # "text": start from the teacher's text projection


class TrainConfig(Config, frozen=True):
    seed: NonNegativeInt = 0  # numpy's generators refuse negative seeds
    modalities: str = ""  # "T+A+V"; "" = every modality with features in the stream
    task: str = ""  # the main task (selection, folder name); "" = the dataset's task
    tasks: list[str] = []  # tasks predicted; [] = [task]. Several need head kind multi-task
    model: dict[str, Any] = {}
    fusion: dict[str, Any] = field(default_factory=lambda: {"kind": "concat"})
    context: dict[str, Any] = field(default_factory=lambda: {"kind": "none"})
    head: dict[str, Any] = field(default_factory=lambda: {"kind": "classification"})
    loss: dict[str, Any] = field(default_factory=lambda: {"kind": "ce"})
    aux: dict[str, dict[str, Any]] = {}  # [aux.NAME]: auxiliary objectives (er-models `aux`)
    distill: DistillSection = DistillSection()
    finetune: FinetuneSection = FinetuneSection()  # run.method L or T: the text encoder trained
    train: TrainSection = TrainSection()
    run: RunSection = RunSection()
