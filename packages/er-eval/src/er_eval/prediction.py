"""`er-eval predict`: a trained run applied to a dataset -> per-utterance predictions (Parquet).

The network is rebuilt from the run's resolved config with er-models (and must hash to the run's
`network_hash`), its weights file is checked against the run's sha256, and every utterance of
the table (all splits) is predicted in the batches training used: with a context model, each
split's dialogues in turn order (er_models.layout, as er-train groups them), so predicting a
run's own test split reproduces its test predictions; without, single utterances.

The input stream must hold, for each of the run's modalities, features from the run's encoder
(the FeatureManifest's `cache_key` equals the run's `encoder_keys[modality]`) at the run's width,
made for the stream's dataset. torch and er-models are imported only when the model runs.

The table may be unlabelled (`er-data prepare files`: new clips, a task without classes): the
classes are always the run's.

Output: `<out>/er-eval/<id[:12]>/predictions.parquet` (or `predictions.csv` with
`format="csv"`), id = content id of (run, dataset, features), so re-running identical inputs
reuses the file. Columns, in the table's row order: `id`, `split`, then per task of the run
`pred_<task>` (predicted class name, or the value), `gold_<task>` (the table's class name or
value, only when the table has labels for that task: null in a row without one) and, for a
classification, `<task>.p.<class>` (probabilities, float32, in the run's class order). The
prefixes keep a prediction from ever sitting in a column named like the utterance table's label
column, which holds a class index there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from er_core import (
    DatasetManifest,
    Envelope,
    ErError,
    FeatureManifest,
    FileRef,
    PredictionManifest,
    RunManifest,
    TaskInfo,
    UsageError,
    aligned_features,
    atomic_path,
    content_id,
    find,
    info,
    output_dir,
    read_run,
    run_classes,
    sha256_file,
    warn,
)
from er_data import check_table, has_labels, tasks_of

from er_eval import __version__

TOOL = f"er-eval {__version__}"
FORMATS = ("parquet", "csv")
# bumped when the file's columns change (2: pred_/gold_ columns), so an older file is not reused
COLUMNS_VERSION = 2


def run_encoders(run_path: str | Path) -> dict[str, str]:
    """modality -> the encoder the run's features came from, as `er-features extract
    --encoder` names it: what new data needs extracted before `predict` (tools/predict.sh asks
    with `er-eval predict --print-encoders`). Imported features have no encoder to run again."""
    run, folder = read_run(run_path)
    out = {m: run.encoders.get(m, "") for m in run.modalities}
    for m, enc in out.items():
        if not enc or enc.startswith("import:"):
            raise ErError(
                f"the run's {m} features were imported ({enc or 'no encoder recorded'}), not "
                "extracted: new clips cannot be encoded the same way",
                at=str(folder / "run.json"),
                hint=f"import {m} features for the new data with the same tool that made the "
                "run's, then pipe them into er-eval predict",
            )
    return out


def select_features(
    envelopes: Sequence[Envelope], ds: DatasetManifest, run: RunManifest
) -> dict[str, FeatureManifest]:
    """modality -> the stream's FeatureManifest from the run's encoder (the last one made for
    `ds` if there are several), at the run's width."""
    found = [e.message for e in envelopes if isinstance(e.message, FeatureManifest)]
    out = {}
    for m in run.modalities:
        mine = [f for f in found if f.modality == m]
        key, enc = run.encoder_keys.get(m, ""), run.encoders.get(m, "?")
        match = [f for f in mine if (f.cache_key == key if key else f.encoder == enc)]
        if not match:
            have = ", ".join(f"{f.encoder} (key {f.cache_key[:12] or 'none'})" for f in mine)
            raise ErError(
                f"no {m} features from the run's encoder in the input: the run used {enc} "
                f"(key {key[:12] or 'none'}), the input has {have or 'no ' + m + ' features'}",
                at="<input>",
                hint=f"extract {m} features of this dataset with the same encoder config as the "
                f"run (er-features extract --modality {m} --encoder {enc}, same --config/--set)",
            )
        fm = ([f for f in match if f.dataset == ds.id] or match)[-1]
        if fm.dim != run.dims.get(m):
            raise ErError(
                f"{m} features ({fm.encoder}) are {fm.dim} wide, the run was trained on "
                f"{run.dims.get(m)}",
                at=fm.index.path,
                hint=f"extract with the run's encoder config ({enc})",
            )
        out[m] = fm
    return out


def _features(fm: FeatureManifest, ds: DatasetManifest, ids: list[str]) -> tuple[np.ndarray, ...]:
    fs = aligned_features(fm, ds, ids)
    bad = ~np.isfinite(fs.features).all(axis=1)
    if bad.any():
        raise ErError(
            f"{fm.modality} features ({fm.encoder}) hold NaN or inf in {int(bad.sum())} rows "
            f"(first: {ids[int(np.argmax(bad))]})",
            at=fm.index.path,
            hint="re-extract the features; an importer or encoder wrote non-finite values",
        )
    return fs.features, fs.flags == 0


def prediction_id(run: RunManifest, ds: DatasetManifest, feats: dict[str, FeatureManifest]) -> str:
    return content_id(
        {
            "run": run.id,
            "dataset": ds.id,
            "features": {m: f.id for m, f in feats.items()},
            "columns": COLUMNS_VERSION,
        }
    )


def predict(
    envelopes: Sequence[Envelope],
    run_path: str | Path,
    *,
    out: str | Path = "er-out",
    device: str = "cpu",
    batch_size: int | None = None,
    format: str = "parquet",
    quiet: bool = False,
) -> PredictionManifest:
    """Predict every utterance of the stream's dataset with the run at `run_path` (module doc)
    into a Parquet or CSV file (`format`); progress on stderr (er_core.Progress) unless `quiet`."""
    if format not in FORMATS:
        raise UsageError(f"unknown --format '{format}'", at="--format", hint="use parquet or csv")
    run, folder = read_run(run_path)
    ds = find(envelopes, DatasetManifest)
    manifests = select_features(envelopes, ds, run)
    classes = run_classes(run, folder)
    cid = prediction_id(run, ds, manifests)
    path = Path(output_dir(str(out), "er-eval", cid)) / f"predictions.{format}"
    table = check_table(ds)  # the one table check every reader shares (schema, ids, sha256)
    ids = table["id"].to_list()
    if not _reusable(path, ids, format):
        feats, present = {}, []
        for m, fm in manifests.items():
            feats[m], here = _features(fm, ds, ids)
            present.append(here)
        from er_eval.predict_model import run_model

        size = batch_size or int(run.config.get("train", {}).get("eval_batch_size", 256))
        outputs = run_model(
            run, folder, classes, table, feats, np.stack(present, 1), size, device, quiet=quiet
        )
        frame = _frame(table, tasks_of(ds), classes, outputs)
        with atomic_path(path) as tmp:
            if format == "csv":
                frame.write_csv(tmp)
            else:
                frame.write_parquet(tmp)
        if not quiet:
            info(f"er-eval predict: {len(ids)} utterances of {ds.dataset} -> {path}")
    elif not quiet:
        info(f"er-eval predict: same inputs, reusing {path}")
    p = path.resolve()
    return PredictionManifest(
        id=cid,
        tool=TOOL,
        run=run.id,
        dataset=ds.id,
        features={m: f.id for m, f in manifests.items()},
        tasks=list(classes),
        count=len(ids),
        table=FileRef(path=str(p), sha256=sha256_file(p), bytes=p.stat().st_size),
    )


def _reusable(path: Path, ids: list[str], format: str) -> bool:
    if not path.is_file():
        return False
    try:
        if format == "csv":  # every column read as text: an id like 007 stays itself
            done = pl.read_csv(path, columns=["id"], infer_schema=False)
        else:
            done = pl.read_parquet(path, columns=["id"])
        same = done["id"].to_list() == ids
    except Exception:  # polars raises several types for a damaged file
        same = False
    if not same:
        warn(f"{path} does not hold these predictions; writing it again")
    return same


def _frame(
    table: pl.DataFrame,
    table_tasks: dict[str, TaskInfo],
    classes: dict[str, list[str]],
    outputs: dict[str, np.ndarray],
) -> pl.DataFrame:
    cols: dict[str, Any] = {"id": table["id"], "split": table["split"]}
    for task, names in classes.items():
        o = outputs[task]
        if names:
            pred = pl.Series(np.asarray(names, dtype=object)[o.argmax(1)], dtype=pl.String)
        else:
            pred = pl.Series(o, dtype=pl.Float32)
        cols[f"pred_{task}"] = pred
        gold = _gold(table, table_tasks.get(task))
        if gold is not None:
            cols[f"gold_{task}"] = gold
        for j, name in enumerate(names):
            cols[f"{task}.p.{name}"] = pl.Series(o[:, j], dtype=pl.Float32)
    return pl.DataFrame(cols)


def _gold(table: pl.DataFrame, info: TaskInfo | None) -> pl.Series | None:
    """The table's labels of a task (class names, or values), or None where the table has
    none: the task is not the table's, or no row is labelled (new clips)."""
    if info is None or not has_labels(info):
        return None
    col = f"{info.column}_name" if info.type == "classification" else info.column
    if col not in table.columns or table[col].is_null().all():
        return None
    return table[col]


def check_device(device: str) -> None:
    """--device is cpu, cuda or cuda:N, and CUDA is there if named (a usage error otherwise)."""
    if device != "cpu" and not device.startswith("cuda"):
        raise UsageError(
            f"unknown --device '{device}'", at="--device", hint="use cpu, cuda or cuda:N"
        )
    if device.startswith("cuda"):
        try:
            import torch
        except ImportError:
            return  # predict itself says what to install
        if not torch.cuda.is_available():
            raise UsageError(
                "--device cuda, but torch sees no CUDA device",
                at="--device",
                hint="use --device cpu",
            )
