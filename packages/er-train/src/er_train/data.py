"""Everything a run reads, in memory as tensors: features, labels, dialogues, splits.

Batches are index slices into these tensors (see batches.py); no per-item Python object sits on
the hot path. Rows keep the table's order; within a split, utterances are grouped by dialogue
and sorted by turn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from er_core import (
    DatasetManifest,
    Envelope,
    ErError,
    FeatureManifest,
    aligned_features,
    find,
    warn,
)
from er_data import check_table
from er_models import TaskSpec, modality_tag
from er_models.layout import Groups, groups_by_split, single_groups, speaker_slots
from er_models.spec import MODALITIES

SPLITS = ("train", "dev", "test")


@dataclass
class Task:
    spec: TaskSpec
    column: str
    class_names: list[str]
    target: torch.Tensor  # (n,) long class index, or float32 value for regression


# One split's utterances grouped for batching: group g holds rows
# `rows[start[g] : start[g] + length[g]]`, in turn order (er_models.layout.Groups).
Split = Groups


@dataclass
class Data:
    dataset: DatasetManifest
    features: dict[str, FeatureManifest]  # modality -> its manifest
    ids: list[str]  # (n,) utterance ids in table order
    feats: dict[str, torch.Tensor]  # modality -> (n, d) float32
    present: torch.Tensor  # (n, M) bool: False where the modality is a fallback row
    speakers: torch.Tensor  # (n,) long: dialogue-local speaker slot
    tasks: dict[str, Task]
    main: str  # the main task's name
    dialogues: dict[str, Split]  # split -> utterances grouped by dialogue
    singles: dict[str, Split]  # split -> one group per utterance
    # modalities whose vectors a trainable encoder computes during the run (run.method L or T):
    # modality -> width; they have no entry in `feats` (see tower.py)
    tuned: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def dims(self) -> dict[str, int]:
        dims = {m: int(x.shape[1]) for m, x in self.feats.items()} | self.tuned
        return {m: dims[m] for m in MODALITIES if m in dims}

    @property
    def modalities(self) -> list[str]:
        return list(self.dims)

    def set_tuned(self, modality: str, width: int, present: torch.Tensor) -> None:
        """Register `modality` as computed by a trainable encoder of this `width`, with its
        per-row presence (n,) bool."""
        self.tuned[modality] = width
        self.present[:, self.modalities.index(modality)] = present

    def class_counts(self, task: str, split: str = "train") -> np.ndarray | None:
        t = self.tasks[task]
        if t.spec.regression:
            return None
        rows = torch.from_numpy(self.dialogues[split].rows)
        return torch.bincount(t.target[rows], minlength=t.spec.classes).numpy()


def _feature_manifests(
    envs: Sequence[Envelope], wanted: list[str], tuned: str | None = None
) -> dict[str, FeatureManifest]:
    found: dict[str, FeatureManifest] = {}
    for env in envs:
        if isinstance(env.message, FeatureManifest):
            m = env.message.modality
            if m in found and found[m].id != env.message.id:
                warn(
                    f"two {m} feature manifests in the input; using the later ({env.message.encoder})"
                )
            found[m] = env.message
    if not wanted:
        wanted = [m for m in MODALITIES if m in found or m == tuned]
    wanted = [m for m in wanted if m != tuned]
    if tuned and not wanted:
        return {}
    lacking = [m for m in wanted if m not in found]
    if lacking or not wanted:
        have = modality_tag(list(found)) or "none"
        raise ErError(
            f"no features for {', '.join(lacking) or 'any modality'} in the input (features here: {have})",
            at="<input>",
            hint="pipe the stream through er-features extract --modality ... first, or pick --modalities",
        )
    return {m: found[m] for m in MODALITIES if m in wanted}


def _tasks(ds: DatasetManifest, table: pl.DataFrame, names: list[str]) -> dict[str, Task]:
    infos = dict(ds.tasks)
    if not infos and ds.label_column:  # a manifest that predates `tasks`
        from er_core import TaskInfo

        infos[ds.task] = TaskInfo(type=ds.task_type, column=ds.label_column, classes=ds.classes)
    out = {}
    for name in names:
        if name not in infos:
            raise ErError(
                f"the dataset has no task '{name}'",
                at="$.task",
                hint=f"tasks of {ds.dataset}: {', '.join(infos) or 'none'}",
            )
        info = infos[name]
        col = table[info.column]
        if col.null_count():
            raise ErError(
                f"task '{name}' has {col.null_count()} rows without a label",
                at=f"{ds.table.path}:{info.column}",
                hint="training needs labelled data: an unlabelled table (er-data prepare files) "
                "is for er-eval predict --run RUN; else re-run er-data prepare",
            )
        if info.type == "classification":
            target = torch.from_numpy(col.cast(pl.Int64).to_numpy().copy())
            spec = TaskSpec(name, len(info.classes))
        else:
            target = torch.from_numpy(col.cast(pl.Float32).to_numpy().copy())
            spec = TaskSpec(name, 0)
        out[name] = Task(spec, info.column, list(info.classes), target)
    return out


def _groups(table: pl.DataFrame) -> tuple[dict[str, Split], dict[str, Split], np.ndarray]:
    """Per split: dialogues (turn order) and single utterances; and dialogue-local speaker slots
    (er_models.layout does the grouping, so er-eval's predict batches exactly as training did)."""
    dialogue, turn = table["dialogue"].to_numpy(), table["turn"].to_numpy()
    speakers = speaker_slots(dialogue, turn, table["speaker"].to_numpy())
    dialogues = groups_by_split(dialogue, turn, table["split"].to_numpy(), SPLITS)
    singles = {split: single_groups(d.rows) for split, d in dialogues.items()}
    return dialogues, singles, speakers


def load_data(
    envs: Sequence[Envelope],
    modalities: list[str],
    task: str,
    tasks: list[str],
    tuned: str | None = None,
) -> Data:
    """Read the stream's dataset and feature manifests into memory; check what training needs.
    `tuned`: a modality a trainable encoder computes in the run (no features needed for it; its
    presence column starts True until `Data.set_tuned`)."""
    if tuned and modalities and tuned not in modalities:
        raise ErError(
            f"the run fine-tunes a {tuned} encoder, but --modalities leaves {tuned} out",
            at="--modalities",
            hint=f"add {tuned[0].upper()} to --modalities, or use run.method F",
        )
    ds = find(envs, DatasetManifest)
    if tuned and tuned not in ds.modalities:  # e.g. a features-only table: no text to encode
        raise ErError(
            f"the run fine-tunes a {tuned} encoder, but dataset {ds.dataset} has no {tuned} "
            f"(its modalities: {', '.join(ds.modalities) or 'none'})",
            at="run.method",
            hint="use run.method F with imported or extracted features",
        )
    manifests = _feature_manifests(envs, modalities, tuned)
    # the one table check (er-data): the file prepare wrote (sha256), its schema, unique ids,
    # splits, dialogues and label ranges; a broken rule names the table's row and says to
    # re-run prepare (not the feature cache, which is not at fault)
    table = check_table(ds)
    ids = table["id"].to_list()
    main = task or ds.task
    names = list(dict.fromkeys([main, *tasks])) if tasks else [main]
    task_map = _tasks(ds, table, names)
    feats, present = {}, []
    for m, fm in manifests.items():
        fs = aligned_features(fm, ds, ids)
        if fs.features.ndim != 2 or fs.features.shape[1] == 0:
            raise ErError(
                f"{m} features ({fm.encoder}) have shape {tuple(fs.features.shape)}, "
                "not (utterances, width >= 1)",
                at=fm.index.path,
                hint="re-extract or re-import the features: each vector needs at least one value",
            )
        bad = ~np.isfinite(fs.features).all(axis=1)
        if bad.any():
            first = ids[int(np.argmax(bad))]
            raise ErError(
                f"{m} features ({fm.encoder}) hold NaN or inf in {int(bad.sum())} rows (first: {first})",
                at=fm.index.path,
                hint="re-extract the features; an importer or encoder wrote non-finite values",
            )
        feats[m] = torch.from_numpy(fs.features)
        present.append(torch.from_numpy(fs.flags == 0))
    if tuned:  # its column, in T, A, V order, until the encoder reports which rows are empty
        order = [m for m in MODALITIES if m in manifests or m == tuned]
        cols = dict(zip(manifests, present, strict=True))
        present = [cols.get(m, torch.ones(len(ids), dtype=torch.bool)) for m in order]
    dialogues, singles, speakers = _groups(table)
    for split in ("train", "dev"):
        if dialogues[split].size == 0:
            raise ErError(
                f"the {split} split is empty",
                at=ds.table.path,
                hint="training needs train and dev rows (dev selects the epoch)",
            )
    return Data(
        dataset=ds,
        features=manifests,
        ids=ids,
        feats=feats,
        present=torch.stack(present, dim=1),
        speakers=torch.from_numpy(speakers),
        tasks=task_map,
        main=main,
        dialogues=dialogues,
        singles=singles,
    )
