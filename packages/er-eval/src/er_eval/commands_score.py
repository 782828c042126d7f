"""`er-eval score`, `table` and `compare`: thin commands over score.py, table.py, compare.py."""

from __future__ import annotations

from typing import Annotated

import typer

from er_eval.app import app

Inputs = Annotated[
    list[str] | None,
    typer.Argument(
        help="Run folders, run.json files or NDJSON streams; '-' or none: stdin.",
        show_default=False,
    ),
]


@app.command()
def score(
    inputs: Inputs = None,
    scale: Annotated[
        str | None,
        typer.Option(
            "--scale",
            help="Regression bins: sims (targets in [-1, 1]) or mosi ([-3, 3]). "
            "Default: sims when every |target| <= 1.",
        ),
    ] = None,
) -> None:
    """Score each run from its prediction files: pass the stream on, append one EvalManifest
    per run (per split and task: accuracy, weighted/macro F1, per-class precision/recall/F1,
    confusion matrix with rows = true class; regression: MAE, Pearson r, Acc-2 both ways,
    Acc-3/5/7). A one-line summary per run goes to stderr.

    Example: er-train -c configs/train/meld.toml < feats.ndjson | er-eval score > scored.ndjson

    Example: er-eval score runs/default/*/*/*/*/ > scored.ndjson
    """
    from er_core import UsageError, info, write_stream

    from er_eval.runs import collect_evals, read_runs, require_runs
    from er_eval.score import score_run, summary_line

    if scale not in (None, "sims", "mosi"):
        raise UsageError(f"unknown --scale '{scale}'", at="--scale", hint="use sims or mosi")
    inp = read_runs(inputs or [])
    upstream = {e.id for e in collect_evals(inp.envelopes).values()}
    new = []
    for run in require_runs(inp):
        evaluation = score_run(run, folder=inp.folder(run), scale=scale)
        if evaluation.id in upstream:
            info(f"already scored in the stream: {run.run_dir or run.id[:12]}")
            continue
        info(summary_line(run, evaluation))
        new.append(evaluation)
    write_stream(inp.envelopes, new)


@app.command()
def table(
    inputs: Inputs = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="Group by these keys, comma-separated or repeated: a shorthand (modalities, "
            "fusion, context, loss, objective, method, encoder, seed, task, dataset), a config "
            "path (train.lr, loss.emotion.kind), or auto (every key that varies across the "
            "runs). Default: one row for all runs.",
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="SPLIT/TASK/METRIC, e.g. test/emotion/macro_f1 (TASK/METRIC, METRIC: test "
            "split). Default: test + the metric the runs were selected on.",
        ),
    ] = None,
    format_: Annotated[
        str, typer.Option("--format", help="markdown (or md), csv or json.")
    ] = "markdown",
    allow_mixed: Annotated[
        bool,
        typer.Option(
            "--allow-mixed",
            help="Pool a group whose runs differ in more than the seed, instead of refusing it: "
            "the row is marked (a 'mixed' column in CSV/JSON, † and a footnote in Markdown).",
        ),
    ] = False,
) -> None:
    """Mean ± sample std (ddof=1; 0 for one run) of a metric over seeds, one row per group,
    with n and the seeds listed; fractions in percent. The runs of a group must share one
    recipe (the resolved config but its labels, plus the features and encoders): a group that
    pools two recipes is refused, naming the keys that differ, unless --allow-mixed. Uses the
    EvalManifests of `er-eval score` when the stream has them, else the runs' own dev/test
    metrics, else scores the runs' prediction files on the fly. CSV and JSON name the metric
    columns `<metric> mean` and `<metric> std` (e.g. `test/emotion/weighted_f1 mean`).

    This command's stdout is the table, NOT an NDJSON stream: it ends a pipe.

    Example: er-eval score runs/default/*/*/*/*/ | er-eval table --by modalities,fusion

    Example: er-eval table runs/ablation-lr/*/*/*/*/ --by train.lr --metric test/emotion/accuracy
    --format csv > lr.csv

    Example: er-eval table runs.ndjson --by auto
    """
    import sys

    from er_core import UsageError

    from er_eval.grouping import group_runs, resolve_by
    from er_eval.runs import read_runs, require_runs
    from er_eval.table import (
        FORMATS,
        check_one_dataset,
        render,
        resolve_metric,
        scores_for,
        tabulate,
    )

    format_ = "markdown" if format_ == "md" else format_
    if format_ not in FORMATS:
        raise UsageError(
            f"unknown --format '{format_}'", at="--format", hint="use markdown, csv or json"
        )
    inp = read_runs(inputs or [])
    runs = require_runs(inp)
    check_one_dataset(runs)  # the cheap checks first: scoring reads every prediction file
    keys = resolve_by(runs, by)
    ref = resolve_metric(runs, metric)
    groups = group_runs(runs, keys, allow_mixed=allow_mixed)
    evals = scores_for(inp, ref, [r for g in groups for r in g.runs])
    frame = tabulate(groups, ref, evals=evals, allow_mixed=allow_mixed)
    sys.stdout.write(render(frame, format_, ref))


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="Run A: a run folder or its run.json.")],
    b: Annotated[str, typer.Argument(help="Run B: a run folder or its run.json.")],
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="METRIC or TASK/METRIC: weighted_f1 (default), accuracy, macro_f1; "
            "regression: mae (default).",
        ),
    ] = None,
    resamples: Annotated[
        int, typer.Option("--resamples", help="Bootstrap resamples of the test utterances.")
    ] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the resampling.")] = 0,
    json_: Annotated[bool, typer.Option("--json", help="One JSON object instead of text.")] = False,
) -> None:
    """Paired bootstrap of run A against run B on the test split: the difference A - B, its
    95% percentile interval and a two-sided p-value (the share of bootstrap differences on the
    far side of 0, doubled; see er_eval.compare). Both runs must have predicted the same
    utterances. Prints a short report (or --json) on stdout, not an NDJSON stream.

    Example: er-eval compare runs/default/meld--emotion/F--b16--ce/T+A+V-concat/fff8c1a32cae--0 runs/default/meld--emotion/F--b16--ce/T-concat/65519e0200f6--0
    --metric macro_f1 --resamples 10000 --seed 1
    """
    import json

    from er_core import ErError

    from er_eval.compare import compare_runs
    from er_eval.runs import read_runs

    picked = []
    for label, src in (("A", a), ("B", b)):
        inp = read_runs([src])
        if len(inp.runs) != 1:
            raise ErError(
                f"run {label} must be one run, found {len(inp.runs)}",
                at=src,
                hint="name one run folder or its run.json",
            )
        picked.append((inp.runs[0], inp.folder(inp.runs[0])))
    (ra, fa), (rb, fb) = picked
    result = compare_runs(
        ra, rb, metric=metric, resamples=resamples, seed=seed, folder_a=fa, folder_b=fb
    )
    print(json.dumps(result.to_dict(), indent=1) if json_ else result.text())
