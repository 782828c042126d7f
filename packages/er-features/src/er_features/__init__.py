"""er-features: text, audio and video encoders -> SafeTensors feature shards + a FeatureManifest."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
