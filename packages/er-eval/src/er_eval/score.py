"""Score a run from its prediction files: one `TaskScores` per split and task, in an EvalManifest.

Classification (er_core.metrics, defined as scikit-learn defines them, with n_classes = the
task's class count, so a class absent from a split still counts): `accuracy`, `weighted_f1`,
`macro_f1`; per class its `precision` (TP / predicted as it), `recall` (TP / truly it), `f1`
and `support` (truly it); the confusion matrix with rows = TRUE class, columns = predicted.
Regression: the metrics of `er_eval.regression` (MAE, Pearson r, Acc-2 in both conventions,
Acc-3/5/7). Every fraction is a fraction (0..1), not a percent.

The EvalManifest's id is the content id of (run id, the prediction files' sha256s,
CODE_VERSION, the scale each regression task was scored on): scoring the same predictions with
the same code gives the same id. Bump CODE_VERSION whenever a metric's definition changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from er_core import (
    ErError,
    EvalManifest,
    RunManifest,
    TaskScores,
    confusion_matrix,
    content_id,
)

from er_eval import __version__
from er_eval.regression import SCALES, Scale, infer_scale, regression_metrics
from er_eval.runs import Predictions, load_predictions

CODE_VERSION = "1"
SPLIT_ORDER = ("dev", "test")


def classification_scores(
    task: str, classes: list[str], y_true: np.ndarray, y_pred: np.ndarray
) -> TaskScores:
    """Accuracy, weighted/macro F1, per-class scores and the confusion matrix (rows = true)."""
    c = len(classes)
    cm = confusion_matrix(y_true, y_pred, c).astype(np.float64)  # (C, C), row = TRUE class
    tp = np.diag(cm)
    truly, predicted = cm.sum(axis=1), cm.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, truly)
    f1 = _ratio(2 * tp, truly + predicted)  # = 2·TP / (2·TP + FP + FN)
    n = float(cm.sum())
    metrics = {
        "accuracy": float(tp.sum() / n),
        "weighted_f1": float(np.sum(f1 * truly) / n),
        "macro_f1": float(np.mean(f1)),
    }
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": float(truly[i]),
        }
        for i, name in enumerate(classes)
    }
    return TaskScores(
        task=task,
        type="classification",
        classes=list(classes),
        n=int(n),
        metrics=metrics,
        per_class=per_class,
        confusion=cm.astype(np.int64).tolist(),
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)  # zero_division=0, as scikit-learn
    return out


def regression_scores(
    task: str, y_true: np.ndarray, y_pred: np.ndarray, scale: Scale
) -> TaskScores:
    return TaskScores(
        task=task,
        type="regression",
        n=int(y_true.size),
        scale=str(scale),
        metrics=regression_metrics(y_true, y_pred, scale),
    )


def task_scores(preds: Predictions, task: str, scale: Scale) -> TaskScores:
    y, p = preds.labels(task), preds.predicted(task)
    if y.size == 0:
        raise ErError(
            f"the {preds.split} predictions hold no utterances",
            at=str(preds.path),
            hint="the split is empty; re-run er-train on a dataset with this split",
        )
    if preds.is_regression(task):
        return regression_scores(task, y, p, scale)
    return classification_scores(task, preds.classes[task], y, p)


def splits_of(run: RunManifest) -> list[str]:
    """The run's prediction splits: dev, test, then any other in name order."""
    known = [s for s in SPLIT_ORDER if s in run.predictions]
    return known + sorted(s for s in run.predictions if s not in SPLIT_ORDER)


def eval_id(run: RunManifest, scales: dict[str, str] | None = None) -> str:
    """Content id of (run id, prediction sha256s, CODE_VERSION, regression task -> scale used)."""
    shas = {split: ref.sha256 for split, ref in run.predictions.items()}
    return content_id(
        {"run": run.id, "predictions": shas, "code": CODE_VERSION, "scales": scales or {}}
    )


def score_run(
    run: RunManifest, *, folder: Path | None = None, scale: Scale | None = None
) -> EvalManifest:
    """Score every split and task of `run` (see the module docstring).

    `folder`: where the run's run.json was found (a moved run folder), see `load_predictions`.
    `scale`: "sims" or "mosi" for regression tasks; None infers it per task from the targets of
    all splits together (max |y| <= 1 -> "sims"), so dev and test use the same bins.
    """
    if scale is not None and scale not in SCALES:
        raise ErError(f"unknown scale '{scale}'", at="--scale", hint="use sims or mosi")
    splits = splits_of(run)
    if not splits:
        raise ErError(
            f"run {run.id[:12]} names no prediction files",
            at=f"{run.run_dir or run.id[:12]}:$.predictions",
            hint="score runs written by er-train (they name dev.safetensors and test.safetensors)",
        )
    loaded = {s: load_predictions(run, s, folder) for s in splits}
    tasks = run.tasks or next(iter(loaded.values())).tasks
    scales: dict[str, Scale] = {}
    for task in tasks:
        having = [p for p in loaded.values() if _has(p, task)]
        if having and all(p.is_regression(task) for p in having):
            scales[task] = scale or infer_scale(np.concatenate([p.labels(task) for p in having]))
    scores: dict[str, dict[str, TaskScores]] = {}
    for split, preds in loaded.items():
        missing = [t for t in tasks if not _has(preds, t)]
        if missing:
            raise ErError(
                f"the {split} predictions hold no task '{missing[0]}' "
                f"(they hold: {', '.join(preds.tasks)})",
                at=str(preds.path),
                hint="the file does not belong to this run; re-run er-train",
            )
        scores[split] = {t: task_scores(preds, t, scales.get(t, "mosi")) for t in tasks}
    return EvalManifest(
        id=eval_id(run, dict(scales)),
        tool=f"er-eval {__version__}",
        run=run.id,
        run_dir=run.run_dir,
        dataset=run.dataset,
        scores=scores,
        predictions=dict(run.predictions),
    )


def _has(preds: Predictions, task: str) -> bool:
    return task in preds.classes


def scale_of(evaluation: EvalManifest, task: str) -> str:
    """The bins of a scored regression task, "sims" or "mosi" (from its metrics); "" if none."""
    for split in evaluation.scores.values():
        ts = split.get(task)
        if ts is not None and ts.type == "regression":
            return ts.scale or ("sims" if "acc2_sims" in ts.metrics else "mosi")
    return ""


def summary_line(run: RunManifest, evaluation: EvalManifest) -> str:
    """One line for stderr: the run, then the main task's headline test (else dev) scores."""
    split = "test" if "test" in evaluation.scores else next(iter(evaluation.scores), "")
    task = run.task or next(iter(evaluation.scores.get(split, {})), "")
    ts = evaluation.scores.get(split, {}).get(task)
    head = f"scored {run.run_dir or run.id[:12]} (seed {run.seed})"
    if ts is None:
        return head
    if ts.type == "regression":
        keys = ["mae", "corr", "acc2_has0", "acc2_non0", "acc7"]
        body = ", ".join(
            f"{k} {ts.metrics[k]:.4f}" if k in ("mae", "corr") else f"{k} {100 * ts.metrics[k]:.2f}"
            for k in keys
            if k in ts.metrics
        )
        body += f" (scale {scale_of(evaluation, task)})"
    else:
        body = ", ".join(
            f"{k} {100 * ts.metrics[k]:.2f}" for k in ("accuracy", "weighted_f1", "macro_f1")
        )
    return f"{head}: {split} {task} {body}"


__all__ = [
    "CODE_VERSION",
    "classification_scores",
    "eval_id",
    "regression_scores",
    "score_run",
    "splits_of",
    "summary_line",
    "task_scores",
]
