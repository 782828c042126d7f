"""Per-utterance predictions of one split, as SafeTensors next to the run.

Tensors: `<task>.probs` (n, C) softmax probabilities and `<task>.label` (n,) the true class, or
for regression `<task>.pred` (n,) and `<task>.label` (n,). Metadata: one key, `er.predictions`,
holding canonical JSON {"ids": the utterance ids row for row, "split", "classes": task -> class
names ([] for regression)}. One key, because safetensors writes several metadata keys in a
random order, and identical predictions must give identical bytes. er-eval reads these files
without torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from er_core import PREDICTIONS_KEY, FileRef, canonical_json, write_tensors

from er_train.data import Data

META_KEY = PREDICTIONS_KEY  # er_core.run_folder reads it back


def write_predictions(
    path: Path, split: str, data: Data, rows: torch.Tensor, outputs: dict[str, torch.Tensor]
) -> FileRef:
    tensors: dict[str, np.ndarray] = {}
    for name, out in outputs.items():
        task = data.tasks[name]
        label = task.target[rows].numpy()
        if task.spec.regression:
            tensors[f"{name}.pred"] = out.float().numpy()
        else:
            tensors[f"{name}.probs"] = torch.softmax(out.float(), dim=-1).numpy()
        tensors[f"{name}.label"] = label
    info = {
        "ids": [data.ids[i] for i in rows.tolist()],
        "split": split,
        "classes": {n: t.class_names for n, t in data.tasks.items()},
    }
    return write_tensors(path, tensors, metadata={META_KEY: canonical_json(info).decode()})
