"""Any set of runs as one flat table, one row per run, for a notebook or a spreadsheet.

`flatten_runs(runs, evals)` -> a polars DataFrame with the columns, in this order:
- `run` (the id's first 12 characters), `dataset` (its name, else its id's first 12), `seed`;
- every key of the flattened resolved config (`er_core.flatten`: `train.lr`, `fusion.kind`,
  ...), in the order the configs list them; lists and tables as canonical JSON text;
- `encoders.<modality>` (the encoder each modality's features came from), `best_epoch`;
- the final metrics, `dev/<task>/<metric>` then `test/<task>/<metric>`, sorted, as fractions
  (not percent): the run's own, extended by its EvalManifest's when `evals` holds one (so a
  scored stream adds every `er-eval score` metric).
Columns are the union over the runs; a run without a key has an empty cell. A config key named
like a fixed column (the config's own `seed`) is the fixed column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
from er_core import EvalManifest, RunManifest, flatten

from er_eval.grouping import cell
from er_eval.table import column, md_row, plain_format

FIXED = ("run", "dataset", "seed")


def _metrics(run: RunManifest, evaluation: EvalManifest | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for split in ("dev", "test"):
        out |= {f"{split}/{k}": v for k, v in getattr(run, split).items()}
        scored = evaluation.scores.get(split, {}) if evaluation else {}
        for task, ts in scored.items():
            out |= {f"{split}/{task}/{name}": v for name, v in ts.metrics.items()}
    return out


def run_row(run: RunManifest, evaluation: EvalManifest | None = None) -> dict[str, Any]:
    """One run's row (see the module docstring), in column order."""
    row: dict[str, Any] = {
        "run": run.id[:12],
        "dataset": run.dataset_name or run.dataset[:12],
        "seed": run.seed,
    }
    for key, value in flatten(run.config).items():
        if key not in row:
            row[key] = cell(value)
    row |= {f"encoders.{m}": e for m, e in run.encoders.items()}
    row["best_epoch"] = run.best_epoch
    row |= dict(sorted(_metrics(run, evaluation).items()))
    return row


def flatten_runs(
    runs: Sequence[RunManifest], evals: Mapping[str, EvalManifest] | None = None
) -> pl.DataFrame:
    """One row per run, the union of the runs' columns (module docstring)."""
    rows = [run_row(r, (evals or {}).get(r.id)) for r in runs]
    config, lineage, metrics = {}, {}, {}
    for row in rows:
        for key in row:
            if key in FIXED or key == "best_epoch":
                continue
            if key.startswith(("dev/", "test/")):
                metrics[key] = None
            elif key.startswith("encoders."):
                lineage[key] = None
            else:
                config[key] = None
    columns = [*FIXED, *config, *lineage, "best_epoch", *sorted(metrics)]
    return pl.DataFrame([column([row.get(c) for row in rows]).alias(c) for c in columns])


def render_runs(frame: pl.DataFrame, fmt: str = "markdown") -> str:
    """The table as Markdown (numbers with up to 4 decimals, '—' for an empty cell), CSV or
    JSON (records)."""
    if (text := plain_format(frame, fmt)) is not None:
        return text
    lines = [md_row(frame.columns), md_row(["---"] * frame.width)]
    for row in frame.iter_rows():
        lines.append(md_row([_md(v) for v in row]))
    return "\n".join(lines) + "\n"


def _md(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) >= 1e-4 else f"{value:.3g}"
    return str(value)


__all__ = ["flatten_runs", "render_runs", "run_row"]
