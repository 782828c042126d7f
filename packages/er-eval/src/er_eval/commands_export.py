"""`er-eval export`: a thin command over er_eval.export (torch is imported only when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from er_core import Threads

from er_eval.app import app


@app.command()
def export(
    run: Annotated[
        str,
        typer.Argument(help="The trained run: its folder, or its run.json.", show_default=False),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Required: the bundle folder to create (must not exist)."),
    ] = None,
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            help="The stream the run was trained on (its dataset and features; '-' = stdin): "
            "its test split goes through the exported program, which must reproduce the run's "
            "test probabilities within 1e-6; the inputs are kept in the bundle's check/.",
            show_default=False,
        ),
    ] = None,
    threads: Threads = None,
) -> None:
    """Export a trained run as a standalone bundle that torch alone can load: a TorchScript
    program (one dialogue's per-modality features, a mask of present modalities and speaker ids
    -> probabilities per task), the weights, the resolved network, class names, the encoders'
    identities, bundle.json and a README with a torch-only example. Every export compares the
    program with the run's network on random dialogues; --check also with the run's own test
    predictions, and reports the largest difference on stderr. Nothing goes to stdout.

    Example: er-eval export runs/default/meld--emotion/F--b16--ce/T-concat/0123abcd4567--0
    --out meld-text-model --check meld-features.ndjson
    """
    from er_core import UsageError, read_stream, set_threads

    if out is None:
        raise UsageError("--out is required", at="--out", hint="name a new folder: --out bundle")
    set_threads(threads)
    envelopes = read_stream([check]) if check is not None else None
    from er_eval.export import export_run

    export_run(run, out, check=envelopes)
