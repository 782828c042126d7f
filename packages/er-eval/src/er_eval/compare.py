"""Paired bootstrap of two runs on the test split (Koehn 2004; Berg-Kirkpatrick et al. 2012).

Both runs must have predicted the same test utterances (same ids; B is reordered to A's order if
needed) with the same true labels. Each of B resamples draws n utterances with replacement, the
SAME draw for both systems (that is the pairing), and computes δ* = metric(A) − metric(B) on it.

Reported: the observed δ = metric(A) − metric(B) on the whole test split; the 95% percentile
interval [q2.5, q97.5] of the δ*; and the two-sided p-value

    p = min(1, 2 · (1 + min(#{δ* ≤ 0}, #{δ* ≥ 0})) / (B + 1))

that is, the share of bootstrap differences on the far side of 0 from the bulk, doubled, with
the +1 correction so that a finite B never claims p = 0 (Davison & Hinkley 1997, §4.2).
Why this estimator: it is the percentile interval inverted (Efron & Tibshirani 1993, §15.4), so
p < 0.05 exactly when the reported 95% interval excludes 0 (up to ties at 0 and the +1): the
two numbers we print cannot contradict each other. For a bootstrap distribution symmetric about δ
it equals the two-sided form of Berg-Kirkpatrick et al.'s shifted test (δ* − δ on the far side
of δ, i.e. δ* > 2δ), and it makes no assumption on the sign of δ. Ties at 0 (two systems
agreeing on every drawn utterance) count on both sides, so identical runs give p = 1. We also
report Koehn's figure: the share of resamples in which A beats B.

Metrics: classification `weighted_f1` (default), `accuracy`, `macro_f1` (over all the task's
classes, as er-eval score computes them); regression `mae` (default; lower is better).
Vectorised: each chunk of resamples is a (k, n) count matrix W (how often each utterance was
drawn), and every count a metric needs (support, predicted, true positives per class; summed
absolute errors) is W @ a per-utterance indicator matrix. 10,000 × 2,610 takes well under a
second. The draw depends only on (seed, B, n): results are reproducible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from er_core import ErError, RunManifest

from er_eval.runs import Predictions, load_predictions, run_label

CLASSIFICATION = ("weighted_f1", "accuracy", "macro_f1")
REGRESSION = ("mae",)
CHUNK = 500  # resamples per matrix product; fixed, so the draw depends on the seed alone


@dataclass(frozen=True)
class Comparison:
    """The result of `compare_runs`; scores and differences are fractions (or raw for mae)."""

    a: str  # run folder (or id) of A
    b: str
    run_a: str  # RunManifest ids
    run_b: str
    split: str
    task: str
    metric: str
    lower_is_better: bool
    n: int  # utterances
    resamples: int
    seed: int
    score_a: float
    score_b: float
    difference: float  # score_a - score_b
    low: float  # 95% percentile interval of the bootstrap differences
    high: float
    p_value: float
    a_wins: float  # share of resamples where A is better (Koehn 2004)

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        """A few human lines (fractions shown in percent)."""
        k, d = (1.0, 4) if self.lower_is_better else (100.0, 2)
        what = f"{self.split} {self.task} {self.metric}" + ("" if k == 1.0 else " (%)")
        better = "lower" if self.lower_is_better else "higher"
        return "\n".join(
            [
                f"A {self.a}: {what} = {k * self.score_a:.{d}f}",
                f"B {self.b}: {what} = {k * self.score_b:.{d}f}",
                f"A - B = {k * self.difference:+.{d}f}, 95% interval "
                f"[{k * self.low:+.{d}f}, {k * self.high:+.{d}f}], p = {self.p_value:.4f} "
                f"({better} is better)",
                f"A better in {100 * self.a_wins:.1f}% of {self.resamples} paired bootstrap "
                f"resamples of {self.n} utterances (seed {self.seed})",
            ]
        )


def _aligned(pa: Predictions, pb: Predictions, task: str) -> np.ndarray:
    """Row order that puts B's rows in A's id order; an ErError if the ids differ."""
    if pa.ids == pb.ids:
        return np.arange(len(pb.ids))
    sa, sb = set(pa.ids), set(pb.ids)
    if sa != sb or len(sa) != len(pa.ids) or len(sb) != len(pb.ids):
        only_a, only_b = sorted(sa - sb), sorted(sb - sa)
        example = (
            f"e.g. '{only_a[0]}' only in A"
            if only_a
            else f"e.g. '{only_b[0]}' only in B"
            if only_b
            else "an id repeats"
        )
        raise ErError(
            f"the runs predicted different {pa.split} utterances ({len(pa.ids)} in A, "
            f"{len(pb.ids)} in B, {len(sa & sb)} shared; {example})",
            at=str(pb.path),
            hint="compare two runs on the same dataset and split",
        )
    where = {u: i for i, u in enumerate(pb.ids)}
    return np.array([where[u] for u in pa.ids])


def _features(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, c: int) -> np.ndarray:
    """(n, F) per-utterance indicators whose W-weighted sums give every count a metric needs.

    Classification (F = 5C): [y==c, a==c, y==a==c, b==c, y==b==c]. Regression (F = 2): |errors|.
    """
    if c == 0:
        return np.stack([np.abs(pred_a - y), np.abs(pred_b - y)], axis=1)
    eye = np.eye(c)
    yt, pa, pb = eye[y], eye[pred_a], eye[pred_b]
    return np.concatenate([yt, pa, yt * pa, pb, yt * pb], axis=1)


def _metric(counts: np.ndarray, metric: str, c: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(k,) metric of A and of B from (k, F) summed indicators."""
    if c == 0:  # mae
        return counts[:, 0] / n, counts[:, 1] / n
    support = counts[:, :c]
    out = []
    for off in (c, 3 * c):
        predicted, tp = counts[:, off : off + c], counts[:, off + c : off + 2 * c]
        if metric == "accuracy":
            out.append(tp.sum(axis=1) / n)
            continue
        den = support + predicted
        f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
        out.append((f1 * support).sum(axis=1) / n if metric == "weighted_f1" else f1.mean(axis=1))
    return out[0], out[1]


def paired_bootstrap(
    y: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    *,
    n_classes: int,
    metric: str,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float, np.ndarray]:
    """(metric of A, metric of B, (resamples,) bootstrap differences A − B).

    `n_classes` = 0 means regression (`metric` "mae"); else predictions are class indices.
    """
    n = y.size
    feats = _features(y, pred_a, pred_b, n_classes)
    a, b = _metric(feats.sum(axis=0, keepdims=True), metric, n_classes, n)
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    for start in range(0, resamples, CHUNK):
        k = min(CHUNK, resamples - start)
        idx = rng.integers(0, n, size=(k, n))  # (k, n) drawn utterances
        # (k, n) how often each utterance was drawn in each resample
        w = np.bincount((idx + n * np.arange(k)[:, None]).ravel(), minlength=k * n)
        ma, mb = _metric(w.reshape(k, n).astype(np.float64) @ feats, metric, n_classes, n)
        diffs[start : start + k] = ma - mb
    return float(a[0]), float(b[0]), diffs


def p_value(diffs: np.ndarray) -> float:
    """Two-sided: min(1, 2 · (1 + min(#{δ* ≤ 0}, #{δ* ≥ 0})) / (B + 1)) (module docstring)."""
    tail = min(int(np.sum(diffs <= 0)), int(np.sum(diffs >= 0)))
    return min(1.0, 2.0 * (1 + tail) / (diffs.size + 1))


def parse_metric(metric: str | None, run: RunManifest) -> tuple[str, str]:
    """`METRIC` or `TASK/METRIC` (or `test/TASK/METRIC`) -> (task, metric); None = default."""
    parts = (metric or "").split("/")
    if len(parts) == 3 and parts[0] == "test":
        parts = parts[1:]
    task, name = parts if len(parts) == 2 else [run.task, parts[0]]
    if len(parts) > 2 or not task:
        raise ErError(
            f"bad metric '{metric}'",
            at="--metric",
            hint="write METRIC or TASK/METRIC, e.g. --metric emotion/macro_f1",
        )
    return task, name


def compare_runs(
    run_a: RunManifest,
    run_b: RunManifest,
    *,
    metric: str | None = None,
    resamples: int = 10_000,
    seed: int = 0,
    folder_a: Path | None = None,
    folder_b: Path | None = None,
) -> Comparison:
    """Paired bootstrap of A against B on the test split (see the module docstring)."""
    if resamples < 1:
        raise ErError(f"--resamples {resamples}", at="--resamples", hint="use at least 1 (10000)")
    pa = load_predictions(run_a, "test", folder_a)
    pb = load_predictions(run_b, "test", folder_b)
    task, name = parse_metric(metric, run_a)
    for p, label in ((pa, "A"), (pb, "B")):
        if task not in p.classes:
            raise ErError(
                f"run {label} has no task '{task}' (it has: {', '.join(p.classes)})",
                at=str(p.path),
                hint="name a task both runs predicted: --metric TASK/METRIC",
            )
    regression = pa.is_regression(task)
    if regression != pb.is_regression(task) or pa.classes[task] != pb.classes[task]:
        raise ErError(
            f"the runs' '{task}' tasks differ (classes {pa.classes[task]} vs {pb.classes[task]})",
            at=str(pb.path),
            hint="compare two runs of the same dataset and task",
        )
    allowed = REGRESSION if regression else CLASSIFICATION
    name = name or allowed[0]
    if name not in allowed:
        raise ErError(
            f"metric '{name}' is not available for a {'regression' if regression else 'classification'} task",
            at="--metric",
            hint=f"use one of {', '.join(allowed)}",
        )
    order = _aligned(pa, pb, task)
    y, yb = pa.labels(task), pb.labels(task)[order]
    if not np.array_equal(y, yb):
        raise ErError(
            f"the runs disagree on the true '{task}' of {int(np.sum(y != yb))} test utterances",
            at=str(pb.path),
            hint="compare two runs of the same dataset (same labels)",
        )
    c = 0 if regression else len(pa.classes[task])
    a, b, diffs = paired_bootstrap(
        y,
        pa.predicted(task),
        pb.predicted(task)[order],
        n_classes=c,
        metric=name,
        resamples=resamples,
        seed=seed,
    )
    low, high = np.quantile(diffs, [0.025, 0.975])
    wins = np.mean(diffs < 0) if regression else np.mean(diffs > 0)
    return Comparison(
        a=run_label(run_a),
        b=run_label(run_b),
        run_a=run_a.id,
        run_b=run_b.id,
        split="test",
        task=task,
        metric=name,
        lower_is_better=regression,
        n=int(y.size),
        resamples=resamples,
        seed=seed,
        score_a=a,
        score_b=b,
        difference=a - b,
        low=float(low),
        high=float(high),
        p_value=p_value(diffs),
        a_wins=float(wins),
    )


__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "Comparison",
    "compare_runs",
    "p_value",
    "paired_bootstrap",
]
