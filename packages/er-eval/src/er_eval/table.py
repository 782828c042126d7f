"""Multi-seed tables: group runs by keys, report mean ± std of one metric with the seeds.

`summarise(runs, by, metric)` gives one row per group (er_eval.grouping: the runs of a group
must share one recipe, or `allow_mixed`): the `by` columns, then `<metric> mean`,
`<metric> std` (e.g. `test/emotion/weighted_f1 mean`), `n`, `seeds`, and with `allow_mixed` a
`mixed` column (the recipe keys a pooled row's runs differ in, comma-joined; "" for none).
- `std` is the SAMPLE standard deviation (ddof = 1) over the group's runs; 0.0 when n = 1.
- Fractions (accuracy, F1, precision, recall, Acc-k) are in PERCENT (0..100); raw values
  (mae, mse, corr, support) are as they are (`MetricRef.percent` tells which).
- `seeds` lists the seeds of the group's runs, sorted and comma-joined ("0,1,2,3,4").

Keys (`by`): see er_eval.keys (shorthands such as `modalities`, `fusion`, `encoder`, or dotted
config paths such as `train.lr`), or `auto` (every key that varies, grouping.auto_keys). A run
without the key gets an empty cell; a key no run has is an error listing those there are.

Metrics are `SPLIT/TASK/METRIC` (`test/emotion/weighted_f1`); `TASK/METRIC` and `METRIC` mean
the test split and (for `METRIC`) the run's main task; the default is test + the metric the runs
were selected on. A value comes from the run's EvalManifest when the stream holds one (every
`er-eval score` metric, and per class `f1.<class>`, `precision.<class>`, `recall.<class>`,
`support.<class>`), else from the RunManifest's own dev/test metrics (`scores_for` scores the
runs that have neither).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from er_core import ErError, EvalManifest, RunManifest

from er_eval.grouping import Group, group_runs, resolve_by
from er_eval.keys import SHORTHANDS, available_keys, check_keys, key_value
from er_eval.runs import RunInputs, collect_evals

SPLITS = ("dev", "test")
RAW = ("mae", "mse", "corr", "loss", "support")  # not fractions: shown as they are
MEAN, STD = " mean", " std"  # suffixes of the metric columns
STATS = ("n", "seeds", "mixed")  # the other statistic columns
FORMATS = ("markdown", "csv", "json")
MARK = "†"  # a row that pools several recipes (allow_mixed)


@dataclass(frozen=True)
class MetricRef:
    """A metric of one split and task, e.g. test / emotion / weighted_f1."""

    split: str
    task: str
    name: str

    @property
    def percent(self) -> bool:
        """Whether `summarise` reports it in percent (a fraction), or as it is."""
        return self.name.split(".")[0] not in RAW

    @property
    def label(self) -> str:
        return f"{self.split}/{self.task}/{self.name}" + (" (%)" if self.percent else "")

    def __str__(self) -> str:
        return f"{self.split}/{self.task}/{self.name}"


def _select_name(run: RunManifest) -> str:
    if run.select:
        return run.select.rsplit("/", 1)[-1]
    regression = run.task in run.classes and not run.classes[run.task]
    return "mae" if regression or f"{run.task}/mae" in run.test else "weighted_f1"


def resolve_metric(runs: Sequence[RunManifest], metric: str | None = None) -> MetricRef:
    """Parse `SPLIT/TASK/METRIC` (or `TASK/METRIC`, `METRIC`, None = the selection metric)."""
    tasks = {r.task for r in runs}
    if metric is None:
        names = {_select_name(r) for r in runs}
        if len(names) > 1:
            raise ErError(
                f"the runs were selected on different metrics ({', '.join(sorted(names))})",
                at="--metric",
                hint="name the metric to tabulate, e.g. --metric test/emotion/weighted_f1",
            )
        metric = names.pop() if names else "weighted_f1"
    parts = metric.split("/")
    if len(parts) == 1:
        parts = ["test", "", *parts]
    elif len(parts) == 2:
        parts = [parts[0], "", parts[1]] if parts[0] in SPLITS else ["test", *parts]
    if len(parts) != 3 or not all(parts[::2]) or parts[0] not in SPLITS:
        raise ErError(
            f"bad metric '{metric}'",
            at="--metric",
            hint="write SPLIT/TASK/METRIC with SPLIT dev or test, e.g. test/emotion/weighted_f1",
        )
    split, task, name = parts
    if not task:
        if len(tasks) > 1:
            raise ErError(
                f"the runs have different main tasks ({', '.join(sorted(tasks))})",
                at="--metric",
                hint=f"name the task: --metric {split}/TASK/{name}",
            )
        task = next(iter(tasks), "")
    return MetricRef(split, task, name)


def metric_value(run: RunManifest, ref: MetricRef, evaluation: EvalManifest | None = None) -> float:
    """The run's value of `ref` (a fraction, as stored), from its EvalManifest if given."""
    ts = evaluation.scores.get(ref.split, {}).get(ref.task) if evaluation else None
    if ts is not None:
        if ref.name in ts.metrics:
            return ts.metrics[ref.name]
        stat, _, cls = ref.name.partition(".")
        if cls in ts.per_class and stat in ts.per_class[cls]:
            return ts.per_class[cls][stat]
    own = getattr(run, ref.split, {})
    if f"{ref.task}/{ref.name}" in own:
        return own[f"{ref.task}/{ref.name}"]
    have = {f"{ref.split}/{k}" for k in own}
    if ts is not None:
        have |= {f"{ref.split}/{ref.task}/{m}" for m in ts.metrics}
        have |= {f"{ref.split}/{ref.task}/f1.{c}" for c in ts.per_class}
    hint = "pipe the runs through `er-eval score` first for the full set of metrics"
    raise ErError(
        f"run {run.id[:12]} has no metric {ref} (it has: {', '.join(sorted(have)) or 'none'})",
        at=run.run_dir or run.id[:12],
        hint=hint if evaluation is None else "name one of the metrics it has with --metric",
    )


def scores_for(
    inputs: RunInputs, ref: MetricRef, runs: Sequence[RunManifest] | None = None
) -> dict[str, EvalManifest]:
    """run id -> EvalManifest: the stream's own, plus a fresh `score_run` of each run (of `runs`,
    default all the inputs') that has neither an EvalManifest nor `ref` among its own dev/test
    metrics (prediction files are read and checked then, as `er-eval score` does)."""
    from er_eval.score import score_run

    evals = collect_evals(inputs.envelopes)
    for run in inputs.runs if runs is None else runs:
        if run.id not in evals and f"{ref.task}/{ref.name}" not in getattr(run, ref.split, {}):
            evals[run.id] = score_run(run, folder=inputs.folder(run))
    return evals


def column(values: list[Any]) -> pl.Series:
    """A table column of cells: Boolean, Int64, Float64 when every cell is one (ints with
    floats: Float64), else String; None stays an empty cell."""
    real = [v for v in values if v is not None]
    if real and all(isinstance(v, bool) for v in real):
        return pl.Series(values, dtype=pl.Boolean)
    if real and all(isinstance(v, int) and not isinstance(v, bool) for v in real):
        return pl.Series(values, dtype=pl.Int64)
    if real and all(isinstance(v, int | float) and not isinstance(v, bool) for v in real):
        return pl.Series([None if v is None else float(v) for v in values], dtype=pl.Float64)
    return pl.Series([None if v is None else str(v) for v in values], dtype=pl.String)


def check_one_dataset(runs: Sequence[RunManifest]) -> None:
    """An ErError naming two of the datasets if the runs are not all of one dataset."""
    first = runs[0]
    for r in runs[1:]:
        if r.dataset != first.dataset:
            a = f"{first.dataset_name or '?'} ({first.dataset[:12]})"
            b = f"{r.dataset_name or '?'} ({r.dataset[:12]})"
            raise ErError(
                f"runs of two datasets in one table: {a} and {b}",
                at=r.run_dir or r.id[:12],
                hint="make one table per dataset: pass only that dataset's runs",
            )


def metric_columns(frame: pl.DataFrame) -> tuple[list[str], str, str]:
    """(the key columns, the mean column, the std column) of a `summarise` frame."""
    means = [c for c in frame.columns if c.endswith(MEAN)]
    stds = [c for c in frame.columns if c.endswith(STD)]
    if len(means) != 1 or len(stds) != 1:
        raise ErError(
            "the table has no '<metric> mean' and '<metric> std' columns",
            at="<input>",
            hint="use a table made by er_eval.table.summarise",
        )
    keys = [c for c in frame.columns if c not in (*STATS, means[0], stds[0])]
    return keys, means[0], stds[0]


def metric_name(frame: pl.DataFrame) -> str:
    """The metric a `summarise` frame holds, e.g. `test/emotion/weighted_f1`."""
    return metric_columns(frame)[1].removesuffix(MEAN)


def tabulate(
    groups: Sequence[Group],
    ref: MetricRef,
    *,
    evals: Mapping[str, EvalManifest] | None = None,
    allow_mixed: bool = False,
) -> pl.DataFrame:
    """The summary frame of `groups` (grouping.group_runs), sorted by the key columns (empty
    cells last); see the module docstring for its columns."""
    by = list(groups[0].by) if groups else []
    scale = 100.0 if ref.percent else 1.0
    out: dict[str, list[Any]] = {k: [] for k in [*by, "mean", "std", *STATS]}
    for g in groups:
        vals = np.array([metric_value(r, ref, (evals or {}).get(r.id)) for r in g.runs]) * scale
        for k, v in zip(by, g.cells, strict=True):
            out[k].append(v)
        out["mean"].append(float(vals.mean()))
        out["std"].append(float(vals.std(ddof=1)) if vals.size > 1 else 0.0)
        out["n"].append(int(vals.size))
        out["seeds"].append(",".join(map(str, sorted(r.seed for r in g.runs))))
        out["mixed"].append(",".join(g.mixed))
    frame = pl.DataFrame(
        [column(out[k]).alias(k) for k in by]
        + [
            pl.Series(f"{ref}{MEAN}", out["mean"], dtype=pl.Float64),
            pl.Series(f"{ref}{STD}", out["std"], dtype=pl.Float64),
            pl.Series("n", out["n"], dtype=pl.Int64),
            pl.Series("seeds", out["seeds"], dtype=pl.String),
        ]
        + ([pl.Series("mixed", out["mixed"], dtype=pl.String)] if allow_mixed else [])
    )
    return frame.sort(by, nulls_last=True, maintain_order=True) if by else frame


def summarise(
    runs: Sequence[RunManifest],
    by: Sequence[str],
    metric: str | None = None,
    *,
    evals: Mapping[str, EvalManifest] | None = None,
    allow_mixed: bool = False,
) -> pl.DataFrame:
    """One row per group of runs with equal `by` values (`auto`: every key that varies), each
    group one recipe unless `allow_mixed` (grouping.group_runs): see the module docstring.

    `evals` maps a run id to its EvalManifest (`runs.collect_evals`); `metric` as in
    `resolve_metric`. Errors: no runs, runs of two datasets, an unknown key, a group of two
    recipes, a missing metric.
    """
    if not runs:
        raise ErError("no runs to tabulate", at="<input>", hint="pipe in er-train's output")
    check_one_dataset(runs)
    keys = resolve_by(runs, by)
    ref = resolve_metric(runs, metric)
    groups = group_runs(runs, keys, allow_mixed=allow_mixed)
    return tabulate(groups, ref, evals=evals, allow_mixed=allow_mixed)


def plain_format(frame: pl.DataFrame, fmt: str) -> str | None:
    """The frame as CSV or JSON (records) for those formats, None for Markdown (the caller
    draws it); an unknown format is an error naming --format."""
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "json":
        return json.dumps(frame.to_dicts(), indent=1) + "\n"
    if fmt != "markdown":
        raise ErError(f"unknown format '{fmt}'", at="--format", hint="use markdown, csv or json")
    return None


def render(frame: pl.DataFrame, fmt: str = "markdown", ref: MetricRef | None = None) -> str:
    """The table as Markdown (a pipe table, `mean ± std` under a header naming the metric; a
    pooled row marked † with a footnote), CSV or JSON (records, the frame's own columns)."""
    if (text := plain_format(frame, fmt)) is not None:
        return text
    by, mean, std = metric_columns(frame)
    digits = 2 if ref is None or ref.percent else 4
    head = [*by, ref.label if ref else mean.removesuffix(MEAN), "n", "seeds"]
    lines = [md_row(head), md_row(["---"] * len(by) + ["---:", "---:", "---"])]
    notes = []
    for row in frame.iter_rows(named=True):
        cells = ["—" if row[k] is None else str(row[k]) for k in by]
        mark = f" {MARK}" if row.get("mixed") else ""
        cells += [f"{row[mean]:.{digits}f} ± {row[std]:.{digits}f}{mark}", str(row["n"])]
        lines.append(md_row([*cells, row["seeds"]]))
        if mark:
            label = ", ".join(f"{k}={'—' if row[k] is None else row[k]}" for k in by)
            notes.append(mixed_note(label or "all runs", row["mixed"]))
    return "\n".join([*lines, *(["", *notes] if notes else [])]) + "\n"


def mixed_note(label: str, keys: str) -> str:
    """The footnote of a pooled row: which group, which recipe keys differ."""
    return f"{MARK} {label} pools several recipes (--allow-mixed), differing in: {keys}"


def md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


__all__ = [
    "FORMATS",
    "MARK",
    "SHORTHANDS",
    "MetricRef",
    "available_keys",
    "check_keys",
    "check_one_dataset",
    "key_value",
    "metric_columns",
    "metric_name",
    "metric_value",
    "mixed_note",
    "render",
    "resolve_metric",
    "scores_for",
    "summarise",
    "tabulate",
]
