"""The er-eval Typer app. Each command lives in its own `commands_*.py` module, a thin layer
over plain functions; `cli.py` imports them all and runs the app."""

from __future__ import annotations

from typing import Annotated

import typer
from er_core import app_settings, version_option

app = typer.Typer(
    **app_settings(
        "er-eval",
        "Score er-train runs, tabulate them over seeds, compare two systems, plot, report, "
        "flatten runs into one table, and apply a trained run to new data.\n\n"
        "Example: er-train ... | er-eval score | er-eval table --by modalities,fusion",
        no_args_is_help=True,
    )
)


@app.callback()
def root(version: Annotated[bool, version_option("er-eval", torch=True)] = False) -> None:
    """Metrics, multi-seed tables, paired bootstrap, plots, reports and predictions."""
