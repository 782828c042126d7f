"""The er-eval Typer app. Each command lives in its own `commands_*.py` module, a thin layer
over plain functions; `cli.py` imports them all and runs the app."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="er-eval",
    help=(
        "Score er-train runs, tabulate them over seeds, compare two systems, plot, report, and "
        "apply a trained run to new data.\n\n"
        "Example: er-train ... | er-eval score | er-eval table --by modalities,fusion"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
