"""Training in the test process, the way `er-train` does it from the command line, on a recipe
small enough for a test: a 16-wide network, 3 epochs. A run that goes through the same config
merge and validation as the CLI catches the same mistakes, without a subprocess's torch import.

Needs the `train` extra (er-train); imported only when a fixture asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

# What every test run trains with unless it says otherwise: a tiny network, a few epochs.
FAST = """
[model]
width = 16
dropout = 0.1

[head]
kind = "classification"
dropout = 0.0

[train]
epochs = 3
batch_size = 8
eval_batch_size = 64
lr = 0.01
warmup = 0.1
"""


def write_fast_config(folder: Path) -> Path:
    """FAST as `folder/fast.toml`, to pass as --config."""
    path = folder / "fast.toml"
    path.write_text(FAST)
    return path


def train_in_process(
    base: Path,
    stream: Path,
    runs: Path,
    *sets: str,
    config: Sequence[Path] = (),
    resume: Any = None,
    progress: bool = False,
):
    """Train on `stream` with `base` (fast.toml), then the `config` files, then `sets` (--set
    overrides), runs under `runs`: the same merge order as the CLI. Returns the RunManifest."""
    from er_core import merge_sources, read_stream, validate
    from er_train.config import TrainConfig
    from er_train.training import train

    data, origins = merge_sources([base, *config], list(sets))
    data.setdefault("run", {})["root"] = str(runs)
    cfg = validate(data, TrainConfig, origins)
    return train(read_stream([str(stream)]), cfg, origins, progress=progress, resume=resume)
