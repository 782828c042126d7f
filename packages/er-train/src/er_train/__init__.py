"""er-train: train fusion and context models on cached features."""

__version__ = "0.1.0"
