"""The er-eval command line: the app from app.py with every command module registered."""

from __future__ import annotations

# isort: off
# registration order is the order of `er-eval --help`: score, table, compare, predict, plot,
# report, runs, export
from er_eval import commands_score  # noqa: F401
from er_eval import commands_predict  # noqa: F401
from er_eval import commands_plot  # noqa: F401
from er_eval import commands_runs  # noqa: F401
from er_eval import commands_export  # noqa: F401

# isort: on
from er_eval.app import app


def main() -> None:
    from er_core import run

    run(app, prog_name="er-eval")
