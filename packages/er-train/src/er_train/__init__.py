"""er-train: train fusion and context models on cached features.

The Python API (see the README's "Python API"): `train` makes the run `er-train` makes and
returns its RunManifest; `load_run` gives a finished run back as a torch module in eval mode
with its class names. The names are imported lazily, so `er-train --help` does not pay for
torch, and cached on first use, so every lookup returns the same object.
"""

from __future__ import annotations

from er_core.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
