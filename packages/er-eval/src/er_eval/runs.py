"""Runs in, predictions out: collect RunManifests from a stream and read their prediction files.

Inputs are what `er_core.read_stream` reads (NDJSON files, `-` for stdin, `.safetensors`), plus
`run.json` files and run FOLDERS (a folder stands for its `run.json`). A prediction file is read
only after its sha256 matches the RunManifest's FileRef, so a score always belongs to the
predictions the run named. No torch: tensors are read with safetensors' numpy backend.

Stable API (er-eval's plots and report use it too):
- `read_runs(sources, stdin=None) -> RunInputs` (every envelope, the distinct runs, their folders)
- `collect_runs(envelopes) -> list[RunManifest]`, `collect_evals(envelopes) -> {run id: EvalManifest}`
- `load_predictions(run, split, folder=None) -> Predictions`
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from er_core import (
    PREDICTIONS_KEY,
    Envelope,
    ErError,
    EvalManifest,
    FileRef,
    RunManifest,
    read_stream,
    read_tensors,
    sha256_file,
    warn,
)

SPLITS = ("dev", "test")


@dataclass(frozen=True)
class RunInputs:
    """What `read_runs` read: every envelope in order (to pass through unchanged), the distinct
    complete runs in order of first appearance, and for runs read from a `run.json` file or a
    run folder, that folder (run id -> folder), so a moved run folder still finds its files."""

    envelopes: list[Envelope]
    runs: list[RunManifest]
    folders: dict[str, Path] = field(default_factory=dict)

    def folder(self, run: RunManifest) -> Path | None:
        return self.folders.get(run.id)


def _expand(source: str) -> list[str]:
    """A run folder stands for its run.json; a folder of run folders (a runs root, or any
    level of one) for every finished run under it, in path order."""
    if source == "-":
        return [source]
    p = Path(source)
    if p.is_dir():
        rj = p / "run.json"
        if rj.is_file():
            return [str(rj)]
        found = sorted(str(f) for f in p.rglob("run.json") if ".store" not in f.parts)
        if not found:
            raise ErError(
                "folder has no run.json, and no run folder under it has one",
                at=str(p),
                hint="name a finished er-train run folder, a runs root, or a run.json (run.json "
                "is written last, when the run finishes)",
            )
        return found
    return [source]


def read_runs(sources: Sequence[str], stdin: IO[bytes] | None = None) -> RunInputs:
    """Read messages from `sources` (files, run folders, runs roots, `-`; none = stdin) and
    pick the runs."""
    expanded = [f for s in sources for f in _expand(s)]
    envelopes: list[Envelope] = []
    folders: dict[str, Path] = {}
    for src in expanded or [None]:
        envs = read_stream([src] if src is not None else [], stdin=stdin)
        if src is not None and Path(src).name == "run.json":
            for env in envs:
                if isinstance(env.message, RunManifest):
                    folders.setdefault(env.message.id, Path(src).resolve().parent)
        envelopes.extend(envs)
    return RunInputs(envelopes, collect_runs(envelopes), folders)


def collect_runs(envelopes: Sequence[Envelope]) -> list[RunManifest]:
    """The distinct complete RunManifests of a stream, in order of first appearance.

    A run that appears twice (the same id in two inputs) counts once; a run still training
    (`status = "running"`) is skipped with a warning.
    """
    seen: set[str] = set()
    out: list[RunManifest] = []
    for env in envelopes:
        run = env.message
        if not isinstance(run, RunManifest) or run.id in seen:
            continue
        seen.add(run.id)
        if run.status != "complete":
            warn(f"run {run.id[:12]} ({run.run_dir or 'no folder'}) is still running; skipped")
            continue
        out.append(run)
    return out


def collect_evals(envelopes: Sequence[Envelope]) -> dict[str, EvalManifest]:
    """run id -> the last EvalManifest of that run in the stream (the most recent scoring)."""
    return {e.message.run: e.message for e in envelopes if isinstance(e.message, EvalManifest)}


def require_runs(inputs: RunInputs) -> list[RunManifest]:
    if not inputs.runs:
        raise ErError(
            "no 'run' message in the input",
            at="<input>",
            hint="pipe in er-train's output, or name run folders or run.json files",
        )
    return inputs.runs


@dataclass(frozen=True)
class Predictions:
    """One split's prediction file, read and checked.

    `ids` are the utterance ids row for row; `classes` maps each task to its class names ([] for
    regression); `tensors` holds `<task>.label` (n,) and `<task>.probs` (n, C) or `<task>.pred`
    (n,), as er-train writes them.
    """

    path: Path
    split: str
    ids: list[str]
    classes: dict[str, list[str]]
    tensors: dict[str, np.ndarray]

    @property
    def tasks(self) -> list[str]:
        return list(self.classes)

    def is_regression(self, task: str) -> bool:
        return not self.classes[task]

    def labels(self, task: str) -> np.ndarray:
        """(n,) the true class index (int64), or the true value (float64) for regression."""
        y = self.tensors[f"{task}.label"]
        return y.astype(np.float64) if self.is_regression(task) else y.astype(np.int64)

    def predicted(self, task: str) -> np.ndarray:
        """(n,) the predicted class (argmax of the probabilities), or the predicted value."""
        if self.is_regression(task):
            return self.tensors[f"{task}.pred"].astype(np.float64)
        return np.argmax(self.tensors[f"{task}.probs"], axis=1).astype(np.int64)


def _locate(ref: FileRef, run: RunManifest, folder: Path | None) -> Path | None:
    """The file as named, else the same name in the folder the run was read from or run_dir."""
    name = Path(ref.path).name
    candidates = [Path(ref.path)]
    candidates += [Path(d) / name for d in (folder, run.run_dir or None) if d is not None]
    return next((c for c in candidates if c.is_file()), None)


def prediction_ref(run: RunManifest, split: str) -> FileRef:
    ref = run.predictions.get(split)
    if ref is None:
        have = ", ".join(run.predictions) or "none"
        raise ErError(
            f"run {run.id[:12]} has no {split} predictions (it has: {have})",
            at=f"{run.run_dir or run.id[:12]}:$.predictions",
            hint=f"was the {split} split empty? re-run er-train on a dataset with a {split} split",
        )
    return ref


def load_predictions(run: RunManifest, split: str, folder: Path | None = None) -> Predictions:
    """Read the run's `split` prediction file after checking its sha256 against the manifest.

    `folder` is where the run's run.json was found (`RunInputs.folder(run)`), tried when the
    recorded path is gone (a moved run folder). A missing or altered file is an ErError that
    names it.
    """
    ref = prediction_ref(run, split)
    path = _locate(ref, run, folder)
    if path is None:
        raise ErError(
            f"{split} prediction file of run {run.id[:12]} not found",
            at=ref.path,
            hint="the run folder was moved or cleaned; name the run folder itself as input, "
            "or re-run er-train with the same config (it is content-addressed)",
        )
    digest = sha256_file(path)
    if digest != ref.sha256:
        raise ErError(
            f"{split} prediction file of run {run.id[:12]} was altered: sha256 {digest[:12]}, "
            f"the run recorded {ref.sha256[:12]}",
            at=str(path),
            hint="the file no longer holds the run's predictions; restore it or re-run er-train",
        )
    try:
        tensors, meta = read_tensors(path)
        info = json.loads(meta[PREDICTIONS_KEY])
        ids, classes = list(info["ids"]), dict(info["classes"])
    except Exception as e:  # damaged header, missing key, bad JSON
        raise ErError(
            f"not an er-train prediction file ({type(e).__name__}: {e})",
            at=str(path),
            hint=f"prediction files carry '{PREDICTIONS_KEY}' metadata; re-run er-train",
        ) from None
    preds = Predictions(path, info.get("split", split), ids, classes, tensors)
    _check(preds, path)
    return preds


def _check(p: Predictions, path: Path) -> None:
    n = len(p.ids)
    for task, classes in p.classes.items():
        keys = [f"{task}.label", f"{task}.pred" if not classes else f"{task}.probs"]
        for key in keys:
            t = p.tensors.get(key)
            if t is None:
                raise ErError(f"tensor '{key}' missing", at=str(path), hint="re-run er-train")
            want = (n, len(classes)) if key.endswith(".probs") else (n,)
            if t.shape != want:
                raise ErError(
                    f"tensor '{key}' has shape {t.shape}, expected {want} ({n} ids)",
                    at=str(path),
                    hint="the file is damaged; re-run er-train",
                )
        if classes:
            y = p.tensors[f"{task}.label"]
            if y.size and (y.min() < 0 or y.max() >= len(classes)):
                raise ErError(
                    f"task '{task}' has a label outside 0..{len(classes) - 1}",
                    at=str(path),
                    hint="the file is damaged; re-run er-train",
                )


def run_label(run: RunManifest) -> str:
    """A short name for messages: the run folder, else the id's first 12 characters."""
    return run.run_dir or run.id[:12]


__all__ = [
    "SPLITS",
    "Predictions",
    "RunInputs",
    "collect_evals",
    "collect_runs",
    "load_predictions",
    "prediction_ref",
    "read_runs",
    "require_runs",
    "run_label",
]
