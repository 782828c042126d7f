"""The torch half of `er-eval predict`: the run's network with its checked weights
(er_models.loading, shared with `er-eval export` and `load_run`), run over a table in the
batches er-train uses (er_models.layout).

Imported only by `er_eval.prediction.predict` when a model has to run: er-eval's other commands,
and this module's importers, never need torch.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import polars as pl
from er_core import ErError, Progress, RunManifest, warn

try:
    import torch
    from er_models.layout import Groups, groups_by_split, make_layout, single_groups, speaker_slots
    from er_models.loading import build_run
except ImportError as e:  # er-models is the `predict` extra of er-eval
    raise ErError(
        f"er-eval predict needs er-models and torch ({e})",
        hint="install er-eval[predict] (uv sync --extra predict, or pip install 'er-eval[predict]')",
    ) from None

SPLITS = ("train", "dev", "test")


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The run's precision, as er-train's evaluation used it (fp16 needs CUDA: fp32 there)."""
    if precision == "bf16" or (precision == "fp16" and device.type == "cuda"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=device.type, dtype=dtype)
    if precision == "fp16":
        warn("the run evaluated in fp16, which needs CUDA: predicting in fp32 on the CPU")
    return contextlib.nullcontext()


def table_groups(table: pl.DataFrame, contextual: bool) -> list[Groups]:
    """Every row of the table in batching groups: each split's dialogues (turn order) with a
    context model, its single utterances without, split by split as er-train evaluates."""
    splits = table["split"].to_list()
    names = [*SPLITS, *sorted({s for s in splits if s not in SPLITS}, key=str)]
    dialogue, turn = table["dialogue"].to_numpy(), table["turn"].to_numpy()
    per_split = groups_by_split(dialogue, turn, splits, names)
    out = [g if contextual else single_groups(g.rows) for g in per_split.values()]
    assert sum(g.size for g in out) == table.height  # every utterance, once
    return out


@torch.no_grad()
def run_model(
    run: RunManifest,
    folder: Path,
    classes: dict[str, list[str]],
    table: pl.DataFrame,
    feats: dict[str, np.ndarray],
    present: np.ndarray,
    batch_size: int,
    device: str,
    quiet: bool = False,
) -> dict[str, np.ndarray]:
    """task -> (n, C) softmax probabilities, or (n,) values, for every row of `table`.

    `feats` maps each of the run's modalities to (n, d) float32 in table order; `present` is
    (n, M) bool in the same modality order (False: a fallback row). Progress in utterances on
    stderr unless `quiet`."""
    dev = torch.device(device)
    model = build_run(run, folder, classes).to(dev)
    spec = model.spec
    x = {m: torch.from_numpy(np.ascontiguousarray(feats[m])).to(dev) for m in spec.modalities}
    mask = torch.from_numpy(present).to(dev)
    cols = [table[c].to_numpy() for c in ("dialogue", "turn", "speaker")]
    slots = torch.from_numpy(speaker_slots(*cols))
    precision = str(run.config.get("train", {}).get("precision", "fp32"))
    n = table.height
    out = {t: np.zeros((n, len(c)) if c else (n,), np.float32) for t, c in classes.items()}
    contextual = spec.context.kind != "none"
    with Progress(n, "er-eval predict", unit="utt", quiet=quiet) as bar:
        for groups in table_groups(table, contextual):
            for lo in range(0, groups.groups, batch_size):
                picked = np.arange(lo, min(lo + batch_size, groups.groups))
                rows, layout, speakers = make_layout(groups, picked, slots, spec.model.max_speakers)
                r = rows.to(dev)
                with _autocast(dev, precision):
                    o = model(
                        {m: v[r] for m, v in x.items()}, mask[r], layout.to(dev), speakers.to(dev)
                    )
                for task, names in classes.items():
                    y = o.outputs[task].float().cpu()
                    out[task][rows.numpy()] = (torch.softmax(y, dim=-1) if names else y).numpy()
                bar.update(len(rows))
    return out
