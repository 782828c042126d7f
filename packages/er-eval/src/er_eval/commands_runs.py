"""`er-eval runs`: a thin command over runs_table.py (any set of runs as one flat table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from er_eval.app import app


@app.command()
def runs(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Run folders, run.json files or NDJSON streams; '-' or none: stdin.",
            show_default=False,
        ),
    ] = None,
    format_: Annotated[
        str, typer.Option("--format", help="markdown (or md), csv or json.")
    ] = "markdown",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the table to this file (default: stdout)."),
    ] = None,
) -> None:
    """One row per run: run id (12 characters), dataset, seed, every key of the resolved
    config flattened (train.lr, fusion.kind, ...), the encoders, the selected epoch and the
    final dev and test metrics (dev/<task>/<metric>, test/<task>/<metric>; fractions, not
    percent; with the stream's EvalManifests, every `er-eval score` metric). Columns are the
    union over the runs; a run without a key has an empty cell. Nothing is scored or grouped.

    This command's output is the table, NOT an NDJSON stream: it ends a pipe.

    Example: er-eval runs runs/default/*/*/*/*/ --format csv -o runs.csv

    Example: er-eval score runs.ndjson | er-eval runs --format json > runs.json
    """
    import sys

    from er_core import UsageError, write_bytes_atomic

    from er_eval.runs import collect_evals, read_runs, require_runs
    from er_eval.runs_table import flatten_runs, render_runs
    from er_eval.table import FORMATS

    format_ = "markdown" if format_ == "md" else format_
    if format_ not in FORMATS:
        raise UsageError(
            f"unknown --format '{format_}'", at="--format", hint="use markdown, csv or json"
        )
    inp = read_runs(inputs or [])
    text = render_runs(flatten_runs(require_runs(inp), collect_evals(inp.envelopes)), format_)
    if out is None:
        sys.stdout.write(text)
    else:
        write_bytes_atomic(out, text.encode("utf-8"))
