"""er-train: train fusion and context models on cached features.

The Python API (see the README's "Python API"): `train` makes the run `er-train` makes and
returns its RunManifest; `load_run` gives a finished run back as a torch module in eval mode
with its class names. The names are imported lazily, so `er-train --help` does not pay for
torch, and cached on first use, so every lookup returns the same object.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute). No public name is also a submodule's name: importing
# that submodule would replace the function on the package with the module.
_LAZY = {
    "LoadedRun": ("er_train.loading", "LoadedRun"),
    "TrainConfig": ("er_train.config", "TrainConfig"),
    "load_run": ("er_train.loading", "load_run"),
    "train": ("er_train.api", "train"),
    "train_config": ("er_train.api", "train_config"),
}
__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'er_train' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(import_module(module), attr)
    globals()[name] = value  # later lookups skip __getattr__ and return this same object
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
