"""er-features: text, audio and video encoders -> SafeTensors feature shards + a FeatureManifest.

The public names are imported lazily so `er-features --help` does not pay for torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "AudioConfig",
    "Encoded",
    "ExtractConfig",
    "Item",
    "TextConfig",
    "VideoConfig",
    "__version__",
    "extract_features",
    "import_features",
    "merge_slices",
    "resolve",
]

# public name -> (module, attribute); `extract` and `merge` are also submodule names, so the
# functions are exported under names a submodule import cannot shadow
_LAZY = {
    "AudioConfig": ("er_features.audio", "AudioConfig"),
    "Encoded": ("er_features.base", "Encoded"),
    "ExtractConfig": ("er_features.extract", "ExtractConfig"),
    "Item": ("er_features.base", "Item"),
    "TextConfig": ("er_features.text", "TextConfig"),
    "VideoConfig": ("er_features.video", "VideoConfig"),
    "extract_features": ("er_features.extract", "extract"),
    "import_features": ("er_features.importer", "import_features"),
    "merge_slices": ("er_features.merge", "merge"),
    "resolve": ("er_features.registry", "resolve"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'er_features' has no attribute {name!r}")
    from importlib import import_module

    module, attr = _LAZY[name]
    value = getattr(import_module(module), attr)
    globals()[name] = value  # later lookups skip __getattr__ and return this same object
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
