"""er-data: dataset adapters -> one canonical utterance table (Parquet) + a DatasetManifest.

The public functions are imported lazily so `er-data --help` does not pay for polars.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "check_table", "prepare", "stats", "synth", "validate"]

_LAZY = {
    "check_table": "er_data.check",
    "prepare": "er_data.prepare",
    "stats": "er_data.stats",
    "synth": "er_data.synth",
    "validate": "er_data.validate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
