"""The end of a run: the selected weights read dev and test once, the weights go to the store,
and run.json (the RunManifest) is written last, so its presence means the run finished.

Under torchrun every rank predicts its block of dev and test (see distributed.py); rank 0 alone
writes, and the others return the manifest it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from er_core import FileRef, RunManifest, info, sha256_file, write_bytes_atomic
from er_models import NetworkSpec, count_params

from er_train import __version__, distributed
from er_train.checkpoint import load_weights
from er_train.config import TrainConfig
from er_train.loop import Setup, predict
from er_train.predictions import write_predictions
from er_train.runs import RunState, finished
from er_train.scoring import split_metrics
from er_train.store import put


def finish(
    s: Setup,
    cfg: TrainConfig,
    spec: NetworkSpec,
    folder: Path,
    root: Path,
    state: RunState,
    resolved: dict[str, Any],
    select: str,
    device: str,
    recipe_hash: str = "",
) -> RunManifest:
    """Load the selected weights, read dev and test once, store the weights, write run.json."""
    data = s.data
    main = distributed.is_main()
    best, linked = folder / "best.safetensors", folder / "weights.safetensors"
    distributed.barrier()  # rank 0's best weights are on disk
    # a run killed after storing its weights but before run.json has only the link left
    if s.tower is not None and s.fresh_tower is not None:
        # a LoRA run's selected adapters go onto a freshly loaded base encoder: the weights file
        # alone (adapters + network) reproduces the run's predictions
        s.tower = s.fresh_tower().to(s.device)
    load_weights(best if best.is_file() else linked, s.model, s.tower)
    distributed.barrier()  # every rank has read them before rank 0 moves them to the store
    groups = data.dialogues if spec.context.kind != "none" else data.singles
    preds, results = {}, {}
    for split in ("dev", "test"):
        if groups[split].size == 0:
            info(f"warning: the {split} split is empty; no {split} metrics")
            continue
        rows, outputs = predict(s, groups[split], cfg.train.eval_batch_size)
        results[split] = split_metrics(data, rows, outputs)
        if main:
            preds[split] = write_predictions(
                folder / f"{split}.safetensors", split, data, rows.cpu(), outputs
            )
    if not main:
        distributed.barrier()  # rank 0 has written run.json
        return finished(folder, state.run_id)
    if best.is_file():
        put(root, best, linked)
    weights = FileRef(
        path=str(linked.absolute()), sha256=sha256_file(linked), bytes=linked.stat().st_size
    )
    manifest = RunManifest(
        id=state.run_id,
        tool=f"er-train {__version__}",
        dataset=data.dataset.id,
        dataset_name=data.dataset.dataset,
        task=data.main,
        tasks=list(data.tasks),
        classes={n: t.class_names for n, t in data.tasks.items()},
        modalities=data.modalities,
        features={m: f.id for m, f in data.features.items()},
        encoders={m: f.encoder for m, f in data.features.items()}
        | ({"text": cfg.finetune.encoder} if s.tower is not None else {}),
        encoder_keys={m: f.cache_key for m, f in data.features.items()}
        | ({"text": s.tower.key} if s.tower is not None else {}),
        dims=data.dims,
        config=resolved,
        network_hash=spec.hash,
        recipe_hash=recipe_hash,
        params=count_params(s.model)["total"],
        seed=cfg.seed,
        run_dir=str(folder.resolve()),
        select=select,
        best_epoch=state.best_epoch,
        epochs=state.history,
        dev=results.get("dev", {}),
        test=results.get("test", {}),
        predictions=preds,
        weights=weights,
        device=distributed.device_label(device),
        seconds=state.seconds,
    )
    write_bytes_atomic(folder / "run.json", msgspec.json.encode(manifest))
    distributed.barrier()
    return manifest
