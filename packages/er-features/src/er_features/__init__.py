"""er-features: text, audio and video encoders -> SafeTensors feature shards + a FeatureManifest.

The Python API (see the README's "Python API"): `extract` encodes one modality of a dataset
stream into the cache and returns its FeatureManifest; `load_features` reads features back as
(ids, (n, d) float32 array). Fine-tuning a text encoder (er-train's methods L and T) goes
through `text_model`, `text_prompts` and `split_layers` (module er_features.tuning). The names are imported lazily, so `er-features --help` does not
pay for torch, and cached on first use, so every lookup returns the same object.
"""

from __future__ import annotations

from er_core.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> (module, attribute). No public name is also a submodule's name: importing
# that submodule would replace the function on the package with the module.
_LAZY = {
    "AudioConfig": ("er_features.audio", "AudioConfig"),
    "Encoded": ("er_features.base", "Encoded"),
    "ExtractConfig": ("er_features.extraction", "ExtractConfig"),
    "Item": ("er_features.base", "Item"),
    "Prompt": ("er_features.prompts", "Prompt"),
    "TextConfig": ("er_features.text", "TextConfig"),
    "TextModel": ("er_features.tuning", "TextModel"),
    "VideoConfig": ("er_features.video", "VideoConfig"),
    "extract": ("er_features.extraction", "extract"),
    "extract_features": ("er_features.extraction", "extract"),  # the name before `extract`
    "import_features": ("er_features.importer", "import_features"),
    "load_features": ("er_features.reading", "load_features"),
    "merge_slices": ("er_features.merge", "merge"),
    "resolve": ("er_features.registry", "resolve"),
    "split_layers": ("er_features.tuning", "split_layers"),
    "text_model": ("er_features.tuning", "text_model"),
    "text_prompts": ("er_features.tuning", "text_prompts"),
}
__all__ = ["__version__", *sorted(_LAZY)]


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
