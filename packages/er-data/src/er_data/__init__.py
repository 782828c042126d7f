"""er-data: dataset adapters -> one canonical utterance table (Parquet) + a DatasetManifest.

The public functions are imported lazily so `er-data --help` does not pay for polars.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "check_table", "prepare", "stats", "synth", "validate"]

_LAZY = {
    "check_table": "er_data.check",
    "prepare": "er_data.preparation",
    "stats": "er_data.table_stats",
    "synth": "er_data.synthetic",
    "validate": "er_data.validation",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'er_data' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip __getattr__ and return this same object
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
