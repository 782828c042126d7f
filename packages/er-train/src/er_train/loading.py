"""`er_train.load_run`: a trained run back as a ready torch module, for Python callers.

er-train writes runs; loading one belongs to er-models, which builds the network and checks the
weights (er_models.loading). This module only re-exports it, so `from er_train import load_run`
works beside `train` without a second implementation.
"""

from __future__ import annotations

from er_models.loading import LoadedRun, load_run

__all__ = ["LoadedRun", "load_run"]
