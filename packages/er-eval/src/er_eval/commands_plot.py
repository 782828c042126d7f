"""`er-eval plot` and `er-eval report`: thin commands over plots.py and report.py.

Both pass the input stream through unchanged on stdout (so they sit anywhere in a pipe) and
name the files they wrote on stderr.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from er_eval.app import app

if TYPE_CHECKING:
    from er_core import EvalManifest, RunManifest

    from er_eval.runs import RunInputs

KINDS = ("confusion", "curves", "ablation")

Inputs = Annotated[
    list[str] | None,
    typer.Argument(
        help="Run folders, run.json files or NDJSON streams; '-' or none: stdin.",
        show_default=False,
    ),
]
By = Annotated[
    list[str] | None,
    typer.Option(
        "--by",
        help="Group by these keys, comma-separated or repeated: modalities, fusion, context, "
        "loss, encoder, seed, task, dataset, a config path (train.lr), or auto (every key "
        "that varies). A group's runs must share one recipe (all but the seed).",
    ),
]
AllowMixed = Annotated[
    bool,
    typer.Option(
        "--allow-mixed",
        help="Pool a group whose runs differ in more than the seed (marked †), instead of "
        "refusing it.",
    ),
]


def _safe(text: str) -> str:
    """A file-name-safe form of a label taken from a manifest."""
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "_", text).strip("_.") or "_"


@app.command()
def plot(
    inputs: Inputs = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Required: confusion, curves or ablation.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Required: the folder for the PNG files (made if needed)."
        ),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="confusion: dev or test.")] = "test",
    task: Annotated[
        str | None, typer.Option("--task", help="confusion: the task (default: the main task).")
    ] = None,
    normalise: Annotated[
        bool,
        typer.Option(
            "--normalise/--counts",
            help="confusion: rows normalised to sum to 1 (each true class), or raw counts.",
        ),
    ] = True,
    by: By = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="ablation: SPLIT/TASK/METRIC as in `table` (default: test + the selection "
            "metric); curves: the dev metric TASK/METRIC (default: the selection metric).",
        ),
    ] = None,
    allow_mixed: AllowMixed = False,
) -> None:
    """Plot runs as PNG (fixed size, 100 dpi): confusion (one per run, 700x600; rows = true
    class, columns = predicted), curves (train/dev loss and the dev metric per epoch, selected
    epoch starred, 1100x450; one file, or one per --by group) or ablation (one bar per --by
    group, mean ± std over seeds, n under each bar, 900x500). A group (curves, ablation) must
    hold runs of one recipe, differing only by seed: else it is refused, naming the keys that
    differ, unless --allow-mixed (the group is pooled and marked †). The stream passes through
    on stdout unchanged; the files written are named on stderr.

    Example: er-eval plot runs/default/*/*/*/*/ --kind ablation --by modalities,fusion
    --metric test/emotion/macro_f1 --out figs/

    Example: er-train -c configs/train/meld.toml < feats.ndjson | er-eval plot --kind confusion
    --counts --out figs/ | er-eval score
    """
    from er_core import UsageError, info, write_stream

    from er_eval.keys import split_keys
    from er_eval.runs import read_runs, require_runs

    if kind not in KINDS:
        raise UsageError(
            f"--kind must be one of {', '.join(KINDS)}" + (f", not '{kind}'" if kind else ""),
            at="--kind",
            hint="e.g. er-eval plot runs/*/*/*/*/*/ --kind curves --out figs/",
        )
    if out is None:
        raise UsageError("--out is required", at="--out", hint="name a folder: --out figs/")
    inp = read_runs(inputs or [])
    runs = require_runs(inp)
    if kind == "confusion":
        paths = _confusions(inp, runs, out, split, task, normalise)
    elif kind == "curves":
        paths = _curves(runs, out, split_keys(by), metric, allow_mixed)
    else:
        paths = [_ablation(inp, runs, out, split_keys(by), metric, allow_mixed)]
    for p in paths:
        info(str(p))
    write_stream(inp.envelopes)


def _confusions(
    inp: RunInputs,
    runs: Sequence[RunManifest],
    out: Path,
    split: str,
    task: str | None,
    normalise: bool,
) -> list[Path]:
    from er_eval.plots import confusion_of, plot_confusion
    from er_eval.runs import collect_evals

    evals = collect_evals(inp.envelopes)
    confs = [
        (r, confusion_of(r, split, task, folder=inp.folder(r), evaluation=evals.get(r.id)))
        for r in runs
    ]  # read everything first: a bad input fails before any file is written
    suffix = "" if normalise else "-counts"
    names = [_safe(f"confusion-{split}-{c.task}-{r.id[:12]}{suffix}") for r, c in confs]
    return [
        plot_confusion(c, out / f"{name}.png", normalise=normalise)
        for name, (_, c) in zip(names, confs, strict=True)
    ]


def _curves(
    runs: Sequence[RunManifest], out: Path, by: list[str], metric: str | None, allow_mixed: bool
) -> list[Path]:
    from er_eval.grouping import group_runs, resolve_by
    from er_eval.plots import curve_of, plot_curves
    from er_eval.table import MARK

    groups = group_runs(runs, resolve_by(runs, by), allow_mixed=allow_mixed)
    paths = []
    for g in groups:
        curves = [curve_of(r, metric) for r in g.runs]
        label = g.label if g.by else ""
        name = "curves" + (f"-{_safe(label)}" if label else "")
        title = label + (f" {MARK} pools several recipes: {', '.join(g.mixed)}" if g.mixed else "")
        paths.append(plot_curves(curves, out / f"{name}.png", title=title))
    return paths


def _ablation(
    inp: RunInputs,
    runs: Sequence[RunManifest],
    out: Path,
    by: list[str],
    metric: str | None,
    allow_mixed: bool,
) -> Path:
    from er_eval.grouping import group_runs, resolve_by
    from er_eval.plots import plot_ablation
    from er_eval.table import check_one_dataset, resolve_metric, tabulate

    check_one_dataset(runs)
    keys = resolve_by(runs, by)
    ref = resolve_metric(runs, metric)
    groups = group_runs(runs, keys, allow_mixed=allow_mixed)  # refused before any scoring
    pooled = [r for g in groups for r in g.runs]
    frame = tabulate(groups, ref, evals=_evals_for(inp, pooled, metric), allow_mixed=allow_mixed)
    name = _safe(f"ablation-{'+'.join(keys) or 'all'}-{ref}")
    return plot_ablation(frame, out / f"{name}.png", metric_label=ref.label)


def _evals_for(
    inp: RunInputs, runs: Sequence[RunManifest], metric: str | None
) -> dict[str, EvalManifest]:
    """The stream's EvalManifests, plus a fresh score of each run that has neither one nor the
    metric among its own dev/test metrics (read from its prediction files)."""
    from er_eval.runs import collect_evals
    from er_eval.score import score_run
    from er_eval.table import resolve_metric

    evals = dict(collect_evals(inp.envelopes))
    ref = resolve_metric(runs, metric)
    for r in runs:
        own = getattr(r, ref.split, {})
        if r.id not in evals and f"{ref.task}/{ref.name}" not in own and r.predictions:
            evals[r.id] = score_run(r, folder=inp.folder(r))
    return evals


@app.command()
def report(
    inputs: Inputs = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Required: the HTML file to write.")
    ] = None,
    by: By = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="Results table metric, SPLIT/TASK/METRIC (default: test + the selection metric).",
        ),
    ] = None,
    title: Annotated[str, typer.Option("--title", help="The page title.")] = "er-eval report",
    allow_mixed: AllowMixed = False,
) -> None:
    """Write one self-contained HTML page (figures inline as base64 PNG, CSS inline, no
    external files): the results table per dataset (mean ± std over seeds, grouped by
    modalities,fusion unless --by; a group of several recipes is refused unless --allow-mixed,
    which marks it †), then per run its lineage (dataset, encoders, cache keys,
    FeatureManifest ids, network hash, seed, selected epoch), dev/test metrics, test per-class
    scores, learning curve, test confusion matrix and resolved config. Runs without an
    EvalManifest in the stream are scored from their prediction files. The stream passes
    through on stdout unchanged.

    Example: er-eval score runs/default/*/*/*/*/ | er-eval report --out report.html --by fusion
    > /dev/null
    """
    from er_core import UsageError, info, write_stream

    from er_eval.keys import split_keys
    from er_eval.report import write_report

    if out is None:
        raise UsageError("--out is required", at="--out", hint="name a file: --out report.html")
    from er_eval.runs import read_runs, require_runs

    inp = read_runs(inputs or [])
    runs = require_runs(inp)
    path = write_report(
        out,
        runs,
        envelopes=inp.envelopes,
        folders=inp.folders,
        by=split_keys(by) or None,
        metric=metric,
        title=title,
        allow_mixed=allow_mixed,
    )
    info(str(path))
    write_stream(inp.envelopes)
