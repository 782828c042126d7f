"""er-eval: metrics, multi-seed tables, paired bootstrap, plots, reports and predictions.

Public names load lazily: `import er_eval` pulls in neither matplotlib, polars nor (for
`predict`, the one part that needs it) torch until a name that needs them is used.
"""

from __future__ import annotations

from er_core.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "read_runs": "er_eval.runs",
    "load_predictions": "er_eval.runs",
    "score_run": "er_eval.score",
    "regression_metrics": "er_eval.regression",
    "summarise": "er_eval.table",
    "render": "er_eval.table",
    "compare_runs": "er_eval.compare",
    "plot_confusion": "er_eval.plots",
    "plot_curves": "er_eval.plots",
    "plot_ablation": "er_eval.plots",
    "write_report": "er_eval.report",
    "predict": "er_eval.prediction",
    "flatten_runs": "er_eval.runs_table",
    "group_runs": "er_eval.grouping",
    "run_recipe": "er_eval.grouping",
    "auto_keys": "er_eval.grouping",
}
__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
