"""Runs made without training, for er-eval's tests and examples: real prediction files and a
RunManifest that names them by sha256, exactly as er-train writes them, but with predictions
drawn at random around a chosen accuracy. No torch needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from er_core import (
    PREDICTIONS_KEY,
    EpochRecord,
    RunManifest,
    canonical_json,
    content_id,
    write_bytes_atomic,
    write_tensors,
)


def make_run(
    folder: Path,
    *,
    seed: int = 0,
    dataset: str = "d" * 64,
    dataset_name: str = "toy",
    task: str = "emotion",
    classes: list[str] | None = None,
    n: dict[str, int] | None = None,
    accuracy: float = 0.6,
    regression: bool = False,
    config: dict[str, Any] | None = None,
    epochs: int = 3,
    modalities: list[str] | None = None,
) -> RunManifest:
    """Write dev/test prediction files and run.json into `folder`; return the RunManifest.

    Classification: labels uniform over `classes`; the predicted distribution puts most mass on
    the true class with probability `accuracy`, else on a random class. Regression: targets in
    [-1, 1] and predictions = target + noise (scaled by 1 - accuracy). The utterance ids of a
    split are the same for every seed (`<split>/u<i>`), so runs of one dataset pair up.
    """
    classes = [] if regression else (classes or ["neutral", "joy", "anger", "sadness"])
    n = n or {"dev": 40, "test": 60}
    modalities = modalities or ["text"]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    preds, scores = {}, {}
    for split, count in n.items():
        labels_rng = np.random.default_rng(list(map(ord, split)))  # same labels for every seed
        ids = [f"{split}/u{i}" for i in range(count)]
        if regression:
            y = labels_rng.uniform(-1, 1, count).astype(np.float32)
            p = (y + rng.normal(0, 1 - accuracy, count)).astype(np.float32)
            tensors = {f"{task}.pred": p, f"{task}.label": y}
            scores[split] = {
                f"{task}/mae": float(np.abs(p - y).mean()),
                f"{task}/mse": float(((p - y) ** 2).mean()),
                f"{task}/corr": float(np.corrcoef(p, y)[0, 1]),
            }
        else:
            c = len(classes)
            y = labels_rng.integers(0, c, count)
            hit = rng.uniform(size=count) < accuracy
            top = np.where(hit, y, rng.integers(0, c, count))
            logits = rng.normal(0, 0.5, (count, c))
            logits[np.arange(count), top] += 3.0
            probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            tensors = {
                f"{task}.probs": probs.astype(np.float32),
                f"{task}.label": y.astype(np.int64),
            }
        meta = {"ids": ids, "split": split, "classes": {task: classes}}
        preds[split] = write_tensors(
            folder / f"{split}.safetensors",
            tensors,
            metadata={PREDICTIONS_KEY: canonical_json(meta).decode()},
        )
    cfg = {"seed": seed, "modalities": "+".join(m[0].upper() for m in modalities), "task": task}
    cfg |= {
        "fusion": {"kind": "concat"},
        "context": {"kind": "none"},
        "loss": {task: {"kind": "ce"}},
    }
    cfg |= config or {}
    select = f"{task}/{'mae' if regression else 'weighted_f1'}"
    history = [  # the selection metric improves every epoch, so the last one is selected
        EpochRecord(
            epoch=e + 1,
            train_loss=1.0 / (e + 1),
            lr=1e-3,
            dev={select: (0.5 - 0.1 * e) if regression else (0.3 + 0.1 * e)},
        )
        for e in range(epochs)
    ]
    manifest = RunManifest(
        id=content_id({"config": cfg, "dataset": dataset, "seed": seed}),
        tool="er-eval testing",
        dataset=dataset,
        dataset_name=dataset_name,
        task=task,
        tasks=[task],
        classes={task: classes},
        modalities=modalities,
        encoders={m: "minilm" if m == "text" else "x" for m in modalities},
        config=cfg,
        network_hash="n" * 64,
        seed=seed,
        run_dir=str(folder.resolve()),
        select=select,
        best_epoch=epochs,
        epochs=history,
        dev=scores.get("dev", {}),
        test=scores.get("test", {}),
        predictions=preds,
    )
    write_bytes_atomic(folder / "run.json", msgspec.json.encode(manifest))
    return manifest
