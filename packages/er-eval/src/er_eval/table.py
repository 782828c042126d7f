"""Multi-seed tables: group runs by config keys, report mean ± std of one metric with the seeds.

`summarise(runs, by, metric)` gives one row per group: the `by` columns, then `mean`, `std`,
`n` and `seeds`.
- `std` is the SAMPLE standard deviation (ddof = 1) over the group's runs; 0.0 when n = 1.
- Fractions (accuracy, F1, precision, recall, Acc-k) are in PERCENT (0..100); raw values
  (mae, mse, corr, support) are as they are (`MetricRef.percent` tells which).
- `seeds` lists the seeds of the group's runs, sorted and comma-joined ("0,1,2,3,4").

Keys (`by`) are dotted paths into `RunManifest.config` (`fusion.kind`, `train.lr`,
`loss.emotion.kind`), or a shorthand: `modalities` ("T+A"), `fusion` (fusion.kind), `context`
(context.kind), `loss` (the main task's loss kind), `objective` (that loss, the run's `[aux]`
objectives and "kd" for a distilled run: "ce+spcl+kd"), `method` (F frozen features, L LoRA,
T full fine-tuning), `encoder` (modality=encoder, comma-joined:
"text=minilm,audio=whisper-tiny.en"), `seed`, `task` (the main task), `dataset` (its name).
A run without the key gets an empty cell; a key no run has is an error listing those there are.

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
from er_core import ErError, EvalManifest, RunManifest, canonical_json, warn

from er_eval.runs import RunInputs, collect_evals

SPLITS = ("dev", "test")
RAW = ("mae", "mse", "corr", "loss", "support")  # not fractions: shown as they are
SHORTHANDS = (
    "modalities",
    "fusion",
    "context",
    "loss",
    "objective",
    "method",
    "encoder",
    "seed",
    "task",
    "dataset",
)
STATS = ("mean", "std", "n", "seeds")
FORMATS = ("markdown", "csv", "json")
_MISSING = object()


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


def scores_for(inputs: RunInputs, ref: MetricRef) -> dict[str, EvalManifest]:
    """run id -> EvalManifest: the stream's own, plus a fresh `score_run` of each run that has
    neither an EvalManifest nor `ref` among its own dev/test metrics (prediction files are read
    and checked then, as `er-eval score` does)."""
    from er_eval.score import score_run

    evals = collect_evals(inputs.envelopes)
    for run in inputs.runs:
        if run.id not in evals and f"{ref.task}/{ref.name}" not in getattr(run, ref.split, {}):
            evals[run.id] = score_run(run, folder=inputs.folder(run))
    return evals


def _path(config: Mapping[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def key_value(run: RunManifest, key: str) -> Any:
    """The run's value of a key (see the module docstring); `_MISSING` if it has none."""
    cfg = run.config
    if key == "modalities":
        tag = cfg.get("modalities")
        return tag if tag else "+".join(m[:1].upper() for m in run.modalities) or _MISSING
    if key in ("fusion", "context"):
        return _path(cfg, f"{key}.kind")
    if key == "loss":
        v = _path(cfg, f"loss.{run.task}.kind")
        return v if v is not _MISSING else _path(cfg, "loss.kind")
    if key == "objective":
        loss = key_value(run, "loss")
        if loss is _MISSING:
            return _MISSING
        aux = [v.get("kind", k) for k, v in sorted(cfg.get("aux", {}).items())]
        return "+".join([loss, *aux, *(["kd"] if "distill" in cfg else [])])
    if key == "method":
        return _path(cfg, "run.method")
    if key == "encoder":
        order = [m for m in run.modalities if m in run.encoders] or list(run.encoders)
        order += [m for m in run.encoders if m not in order]
        return ",".join(f"{m}={run.encoders[m]}" for m in order) or _MISSING
    if key == "seed":
        return run.seed
    if key == "task":
        return run.task
    if key == "dataset":
        return run.dataset_name or run.dataset[:12]
    return _path(cfg, key)


def available_keys(runs: Sequence[RunManifest]) -> list[str]:
    """The shorthands, then every dotted config path some run has, sorted."""
    paths: set[str] = set()

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for k, v in node.items():
            paths.add(prefix + k)
            if isinstance(v, Mapping):
                walk(v, f"{prefix}{k}.")

    for r in runs:
        walk(r.config, "")
    return list(SHORTHANDS) + sorted(paths - set(SHORTHANDS))


def _cell(v: Any) -> Any:
    if v is _MISSING or v is None:
        return None
    if isinstance(v, list | dict):
        return canonical_json(v).decode()
    return v


def _column(values: list[Any]) -> pl.Series:
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


def check_keys(runs: Sequence[RunManifest], by: Sequence[str]) -> list[str]:
    """`by` stripped and without repeats; an ErError for a key no run has (listing the keys)."""
    keys = list(dict.fromkeys(k.strip() for k in by if k.strip()))
    for key in keys:
        if key in STATS:
            raise ErError(f"'{key}' cannot be a key", at="--by", hint="it names a statistic column")
        if all(key_value(r, key) is _MISSING for r in runs):
            known = ", ".join(available_keys(runs))
            raise ErError(f"unknown key '{key}'", at="--by", hint=f"keys of these runs: {known}")
    return keys


def summarise(
    runs: Sequence[RunManifest],
    by: Sequence[str],
    metric: str | None = None,
    *,
    evals: Mapping[str, EvalManifest] | None = None,
) -> pl.DataFrame:
    """One row per group of runs with equal `by` values: the `by` columns, `mean`, `std`
    (sample std, ddof=1; 0.0 for a group of one), `n` and `seeds` (sorted, comma-joined), in
    percent for fractions. Rows are sorted by the `by` columns (empty cells last).

    `evals` maps a run id to its EvalManifest (`runs.collect_evals`); `metric` as in
    `resolve_metric`. Errors: no runs, runs of two datasets, an unknown key, a missing metric.
    """
    if not runs:
        raise ErError("no runs to tabulate", at="<input>", hint="pipe in er-train's output")
    check_one_dataset(runs)
    by = check_keys(runs, by)
    ref = resolve_metric(runs, metric)
    scale = 100.0 if ref.percent else 1.0
    groups: dict[tuple, list[RunManifest]] = {}
    cells: dict[tuple, list[Any]] = {}
    for r in runs:
        row = [_cell(key_value(r, k)) for k in by]
        gkey = tuple((type(v).__name__, v) for v in row)
        groups.setdefault(gkey, []).append(r)
        cells.setdefault(gkey, row)
    out: dict[str, list[Any]] = {k: [] for k in [*by, *STATS]}
    for gkey, members in groups.items():
        vals = np.array([metric_value(r, ref, (evals or {}).get(r.id)) for r in members]) * scale
        seeds = sorted(r.seed for r in members)
        if len(set(seeds)) < len(seeds):
            label = ", ".join(f"{k}={v}" for k, v in zip(by, cells[gkey], strict=True)) or "all"
            warn(
                f"group {label} has seed(s) more than once ({seeds}): it mixes configurations; "
                "add the key that differs to --by"
            )
        for k, v in zip(by, cells[gkey], strict=True):
            out[k].append(v)
        out["mean"].append(float(vals.mean()))
        out["std"].append(float(vals.std(ddof=1)) if vals.size > 1 else 0.0)
        out["n"].append(int(vals.size))
        out["seeds"].append(",".join(map(str, seeds)))
    frame = pl.DataFrame(
        [_column(out[k]).alias(k) for k in by]
        + [
            pl.Series("mean", out["mean"], dtype=pl.Float64),
            pl.Series("std", out["std"], dtype=pl.Float64),
            pl.Series("n", out["n"], dtype=pl.Int64),
            pl.Series("seeds", out["seeds"], dtype=pl.String),
        ]
    )
    return frame.sort(by, nulls_last=True, maintain_order=True) if by else frame


def render(frame: pl.DataFrame, fmt: str = "markdown", ref: MetricRef | None = None) -> str:
    """The table as Markdown (a pipe table, `mean ± std`), CSV or JSON (records)."""
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "json":
        return json.dumps(frame.to_dicts(), indent=1) + "\n"
    if fmt != "markdown":
        raise ErError(f"unknown format '{fmt}'", at="--format", hint="use markdown, csv or json")
    by = [c for c in frame.columns if c not in STATS]
    digits = 2 if ref is None or ref.percent else 4
    head = [*by, ref.label if ref else "mean ± std", "n", "seeds"]
    lines = [_md_row(head), _md_row(["---"] * len(by) + ["---:", "---:", "---"])]
    for row in frame.iter_rows(named=True):
        cells = ["—" if row[k] is None else str(row[k]) for k in by]
        cells += [f"{row['mean']:.{digits}f} ± {row['std']:.{digits}f}", str(row["n"])]
        lines.append(_md_row([*cells, row["seeds"]]))
    return "\n".join(lines) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


__all__ = [
    "FORMATS",
    "SHORTHANDS",
    "MetricRef",
    "available_keys",
    "check_keys",
    "check_one_dataset",
    "key_value",
    "metric_value",
    "render",
    "resolve_metric",
    "scores_for",
    "summarise",
]
