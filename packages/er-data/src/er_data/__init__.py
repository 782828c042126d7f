"""er-data: dataset adapters -> one canonical utterance table (Parquet) + a DatasetManifest.

The Python API (see the README's "Python API"): `prepare` writes a dataset's table and returns
its manifest, `load_table` reads the table back (checked), `stats` counts classes per split,
`validate` decodes every media file, `synth` writes a synthetic dataset, `check_table` is the
one table check every reader calls; `tasks_of` and `has_labels` read a manifest's tasks. Each name is imported lazily, so `er-data --help` does not
pay for polars, and cached on first use, so every lookup returns the same object.
"""

from __future__ import annotations

from er_core.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> (module, attribute)
_LAZY = {
    "check_table": ("er_data.check", "check_table"),
    "has_labels": ("er_data.check", "has_labels"),
    "load_table": ("er_data.table", "load_table"),
    "prepare": ("er_data.preparation", "prepare"),
    "stats": ("er_data.table_stats", "stats_frame"),
    "synth": ("er_data.synthetic", "synth"),
    "tasks_of": ("er_data.check", "tasks_of"),
    "validate": ("er_data.validation", "validate"),
}
__all__ = ["__version__", *sorted(_LAZY)]


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
