"""Figures of runs: confusion matrices, learning curves and ablation bar charts, as PNG.

Plain functions over plain data: `confusion_of` / `curve_of` pull what a figure needs from a
RunManifest (and its prediction file or EvalManifest), `*_figure` draws it, `save_png` writes
it atomically (temporary name, then rename) and `png_bytes` gives the bytes (for the report).

Every figure has a fixed size at DPI = 100, so its pixel size is known (`PIXELS`):
confusion 700 x 600, curves 1100 x 450, ablation 900 x 500 (width x height). Drawing uses
matplotlib's object API on the Agg canvas: no pyplot, no global state, never a GUI.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from er_core import ErError, EvalManifest, RunManifest, TaskScores, atomic_path, confusion_matrix
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100
SIZES = {"confusion": (7.0, 6.0), "curves": (11.0, 4.5), "ablation": (9.0, 5.0)}  # inches
PIXELS = {k: (round(w * DPI), round(h * DPI)) for k, (w, h) in SIZES.items()}  # (width, height)


def _figure(kind: str) -> Figure:
    fig = Figure(figsize=SIZES[kind], dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # draw with Agg whatever matplotlib's default backend is
    return fig


def save_png(fig: Figure, out: str | Path) -> Path:
    """Write `fig` to `out` as PNG (temporary name, then rename); return the path."""
    out = Path(out)
    with atomic_path(out) as tmp:
        # no Software tag: the same figure gives the same bytes whatever matplotlib version
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return out


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


# --- confusion matrix ------------------------------------------------------------------------


@dataclass(frozen=True)
class Confusion:
    """Counts of one task on one split: `counts[i][j]` = utterances of TRUE class i predicted as
    class j. `source` says where they came from (a prediction file or an EvalManifest)."""

    task: str
    split: str
    classes: list[str]
    counts: np.ndarray  # (C, C) int64, row = true class, column = predicted class
    source: str = ""

    def matrix(self, normalise: bool = True) -> np.ndarray:
        """The matrix a figure shows: counts, or rows normalised to sum to 1 (recall per cell)."""
        return row_normalise(self.counts) if normalise else self.counts


def row_normalise(counts: np.ndarray) -> np.ndarray:
    """(C, C) float64: each row divided by its sum, the true class's support, so row i holds
    where the utterances of class i went (the diagonal is per-class recall). The row of a class
    absent from the split stays all 0 (nothing to distribute)."""
    counts = np.asarray(counts, dtype=np.float64)
    support = counts.sum(axis=1, keepdims=True)
    out = np.zeros_like(counts)
    np.divide(counts, support, out=out, where=support > 0)
    return out


def confusion_from_scores(scores: TaskScores, split: str, source: str = "") -> Confusion:
    if scores.type != "classification" or not scores.confusion:
        raise _regression(scores.task)
    return Confusion(scores.task, split, list(scores.classes), np.array(scores.confusion), source)


def confusion_of(
    run: RunManifest,
    split: str = "test",
    task: str | None = None,
    *,
    folder: Path | None = None,
    evaluation: EvalManifest | None = None,
) -> Confusion:
    """The confusion of `run` on `split` for `task` (default: the main task): from the
    EvalManifest's TaskScores if it holds them, else argmax of `<task>.probs` against
    `<task>.label` in the run's prediction file (sha256-checked, see `runs.load_predictions`)."""
    from er_eval.runs import load_predictions

    task = task or run.task
    scored = evaluation.scores.get(split, {}).get(task) if evaluation else None
    if scored is not None:
        return confusion_from_scores(scored, split, f"EvalManifest {evaluation.id[:12]}")
    preds = load_predictions(run, split, folder)
    if task not in preds.classes:
        raise ErError(
            f"the {split} predictions hold no task '{task}' (they hold: {', '.join(preds.tasks)})",
            at=str(preds.path),
            hint=f"name one of them with --task {preds.tasks[0] if preds.tasks else 'TASK'}",
        )
    if preds.is_regression(task):
        raise _regression(task)
    classes = preds.classes[task]
    counts = confusion_matrix(preds.labels(task), preds.predicted(task), len(classes))
    return Confusion(task, split, classes, counts, str(preds.path))


def _regression(task: str) -> ErError:
    return ErError(
        f"task '{task}' is a regression task: it has no confusion matrix",
        at="--task",
        hint="plot a classification task, or --kind curves / ablation",
    )


def confusion_figure(conf: Confusion, *, normalise: bool = True, title: str = "") -> Figure:
    """Heat map, rows = TRUE class (y axis "true"), columns = predicted (x axis "predicted"),
    class names as ticks, each cell's value written in it (2 decimals, or the count)."""
    m = conf.matrix(normalise)
    c = len(conf.classes)
    fig = _figure("confusion")
    ax = fig.add_subplot()
    vmax = 1.0 if normalise else max(1.0, float(m.max()))
    im = ax.imshow(m, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class" if normalise else "count")
    ax.set_xticks(range(c), labels=conf.classes, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(c), labels=conf.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    size = max(5.0, min(10.0, 70.0 / max(c, 1)))
    support = conf.counts.sum(axis=1)
    for i in range(c):
        for j in range(c):
            text = "–" if normalise and support[i] == 0 else _cell(m[i, j], normalise)
            dark = m[i, j] > 0.6 * vmax
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=size,
                color="white" if dark else "black",
            )
    kind = "row-normalised" if normalise else "counts"
    ax.set_title(title or f"{conf.split} · {conf.task} · {kind} (n={int(conf.counts.sum())})")
    return fig


def _cell(v: float, normalise: bool) -> str:
    return f"{v:.2f}" if normalise else str(int(v))


def plot_confusion(
    conf: Confusion, out: str | Path, *, normalise: bool = True, title: str = ""
) -> Path:
    """Write the confusion figure (700 x 600 px) to `out`."""
    return save_png(confusion_figure(conf, normalise=normalise, title=title), out)


# --- learning curves -------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """One run's epochs: train loss, dev loss (NaN where not recorded), the dev metric and the
    epoch whose weights were selected (-1: none)."""

    label: str
    metric: str  # "<task>/<metric>" as in EpochRecord.dev
    epochs: list[int]
    train_loss: list[float]
    dev_loss: list[float]
    dev: list[float]
    best_epoch: int = -1


def dev_metric_name(run: RunManifest, metric: str | None = None) -> str:
    """The dev key a curve plots: `metric` as `TASK/METRIC`, `dev/TASK/METRIC` or `METRIC`
    (the main task), default the metric that selected the run's epoch."""
    name = metric or run.select or f"{run.task}/weighted_f1"
    parts = name.split("/")
    if parts[0] in ("dev", "test") and len(parts) == 3:
        if parts[0] == "test":
            raise ErError(
                f"no per-epoch test metric ('{name}')",
                at="--metric",
                hint="epochs record dev metrics only (test is read once): use dev/TASK/METRIC",
            )
        parts = parts[1:]
    return "/".join(parts) if len(parts) == 2 else f"{run.task}/{parts[-1]}"


def curve_of(run: RunManifest, metric: str | None = None, label: str | None = None) -> Curve:
    """The curve of `run` from RunManifest.epochs (sorted by epoch number)."""
    if not run.epochs:
        raise ErError(
            f"run {run.id[:12]} records no epochs",
            at=f"{run.run_dir or run.id[:12]}:$.epochs",
            hint="plot curves of runs written by er-train",
        )
    name = dev_metric_name(run, metric)
    epochs = sorted(run.epochs, key=lambda e: e.epoch)
    if not any(name in e.dev for e in epochs):
        have = sorted({k for e in epochs for k in e.dev})
        raise ErError(
            f"run {run.id[:12]} has no dev metric '{name}' per epoch",
            at="--metric",
            hint=f"its epochs record: {', '.join(have) or 'none'}",
        )
    nan = float("nan")
    loss = f"{run.task}/loss"
    return Curve(
        label=label or run_name(run),
        metric=name,
        epochs=[e.epoch for e in epochs],
        train_loss=[e.train_loss for e in epochs],
        dev_loss=[e.dev.get(loss, nan) for e in epochs],
        dev=[e.dev.get(name, nan) for e in epochs],
        best_epoch=run.best_epoch,
    )


def run_name(run: RunManifest) -> str:
    """A short legend label: modalities, fusion, seed and the id's first 6 characters."""
    fusion = run.config.get("fusion")
    parts = [run.config.get("modalities") or "+".join(m[:1].upper() for m in run.modalities)]
    parts.append(fusion.get("kind", "") if isinstance(fusion, dict) else "")
    parts += [f"seed {run.seed}", run.id[:6]]
    return " · ".join(str(p) for p in parts if p)


def curves_figure(curves: Sequence[Curve], *, title: str = "") -> Figure:
    """Left: train loss (solid) and dev loss (dashed) per epoch; right: the dev metric. The
    selected epoch of each run is a star on its curves."""
    if not curves:
        raise ErError("no runs to plot", at="<input>", hint="pipe in er-train's output")
    fig = _figure("curves")
    loss_ax, dev_ax = fig.subplots(1, 2)
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for curve, colour in zip(curves, colours, strict=True):
        x = np.array(curve.epochs)
        loss_ax.plot(x, curve.train_loss, color=colour, marker=".", label=curve.label)
        if not np.all(np.isnan(curve.dev_loss)):
            loss_ax.plot(x, curve.dev_loss, color=colour, linestyle="--", alpha=0.7)
        dev_ax.plot(x, curve.dev, color=colour, marker=".", label=curve.label)
        if curve.best_epoch in curve.epochs:
            i = curve.epochs.index(curve.best_epoch)
            for ax, y in ((loss_ax, curve.train_loss[i]), (dev_ax, curve.dev[i])):
                ax.plot(
                    [x[i]],
                    [y],
                    marker="*",
                    markersize=14,
                    color=colour,
                    markeredgecolor="black",
                    linestyle="none",
                )
    metrics = sorted({c.metric for c in curves})
    loss_ax.set_title("loss (solid: train, dashed: dev)")
    loss_ax.set_ylabel("loss")
    dev_ax.set_title(f"dev {', '.join(metrics)} (★ selected epoch)")
    dev_ax.set_ylabel(", ".join(metrics))
    for ax in (loss_ax, dev_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    dev_ax.legend(fontsize="small" if len(curves) <= 8 else "x-small", ncol=1 + len(curves) // 9)
    if title:
        fig.suptitle(title)
    return fig


def plot_curves(curves: Sequence[Curve], out: str | Path, *, title: str = "") -> Path:
    """Write the learning-curve figure (1100 x 450 px) to `out`."""
    return save_png(curves_figure(curves, title=title), out)


# --- ablation bar chart ----------------------------------------------------------------------


def group_labels(frame: pl.DataFrame) -> list[str]:
    """One label per row of a summary table: its key values joined by ', ' ('—' for none),
    with † after a row that pools several recipes (`mixed`)."""
    from er_eval.table import MARK, metric_columns

    keys = metric_columns(frame)[0]
    mixed = frame["mixed"].to_list() if "mixed" in frame.columns else [""] * frame.height
    names = [
        ", ".join("—" if row[k] is None else str(row[k]) for k in keys) if keys else "all runs"
        for row in frame.iter_rows(named=True)
    ]
    return [f"{t} {MARK}" if m else t for t, m in zip(names, mixed, strict=True)]


def ablation_figure(frame: pl.DataFrame, *, metric_label: str = "", title: str = "") -> Figure:
    """One bar per row of a `table.summarise` frame: height = mean, error bar = std, the
    group's label with `n=<runs>` under it, `mean ± std` above it."""
    from er_eval.table import metric_columns, mixed_note

    keys, mean_col, std_col = metric_columns(frame)
    if frame.height == 0:
        raise ErError(
            "nothing to plot",
            at="<input>",
            hint="plot a table made by er_eval.table.summarise from at least one run",
        )
    metric_label = metric_label or mean_col.removesuffix(" mean")
    labels = group_labels(frame)
    mean, std, n = (frame[c].to_numpy() for c in (mean_col, std_col, "n"))
    fig = _figure("ablation")
    ax = fig.add_subplot()
    x = np.arange(frame.height)
    bars = ax.bar(x, mean, yerr=std, capsize=5, color="C0", alpha=0.85, ecolor="black")
    crowded = frame.height > 6  # value labels turn upright so they do not overlap
    ax.bar_label(
        bars,
        labels=[f"{m:.2f} ± {s:.2f}" for m, s in zip(mean, std, strict=True)],
        padding=3,
        fontsize="x-small" if crowded else "small",
        rotation=90 if crowded else 0,
    )
    slot = 0.85 * PIXELS["ablation"][0] / frame.height  # pixels of axis per bar
    long = crowded or 6.5 * max(len(t) for t in labels) > slot  # ~6.5 px per character
    ticks = [f"{t}\nn={k}" for t, k in zip(labels, n, strict=True)]
    ax.set_xticks(x, labels=ticks)
    if long:  # slanted, each label's right end (and its n) under its bar
        for t in ax.get_xticklabels():
            t.set(rotation=30, ha="right", rotation_mode="anchor", multialignment="right")
    ax.set_ylabel(metric_label)
    lo, hi = min(0.0, float(np.nanmin(mean - std))), max(0.0, float(np.nanmax(mean + std)))
    pad = (0.3 if crowded else 0.15) * (hi - lo) or 1.0
    ax.set_ylim(lo - (pad if lo < 0 else 0.0), hi + pad)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or f"{metric_label} by {', '.join(keys) or 'all runs'} (mean ± std)")
    if "mixed" in frame.columns:  # a footnote per pooled bar: what its runs differ in
        notes = [
            mixed_note(label.removesuffix(" †"), keys_)
            for label, keys_ in zip(labels, frame["mixed"].to_list(), strict=True)
            if keys_
        ]
        if notes:
            fig.supxlabel("\n".join(notes), x=0.01, ha="left", fontsize="x-small")
    return fig


def plot_ablation(
    frame: pl.DataFrame, out: str | Path, *, metric_label: str = "", title: str = ""
) -> Path:
    """Write the ablation bar chart (900 x 500 px) to `out`."""
    return save_png(ablation_figure(frame, metric_label=metric_label, title=title), out)


__all__ = [
    "DPI",
    "PIXELS",
    "Confusion",
    "Curve",
    "ablation_figure",
    "confusion_figure",
    "confusion_from_scores",
    "confusion_of",
    "curve_of",
    "curves_figure",
    "dev_metric_name",
    "group_labels",
    "plot_ablation",
    "plot_confusion",
    "plot_curves",
    "png_bytes",
    "row_normalise",
    "run_name",
    "save_png",
]
