"""The canonical utterance table every adapter produces, and the checks every table passes.

One row per utterance. Columns, in this order:

    id           str   unique utterance id (e.g. "train/dia3_utt0")
    dialogue     str   dialogue id (e.g. "train/dia3"); never in two splits (CH-SIMS: the source
                       video, or `<video>@<split>` for a video whose clips are in several)
    turn         i32   position of the utterance in its dialogue, from 0: `prepare` refuses a
                       repeated or negative turn, then renumbers 0, 1, 2, ... in the given
                       order, over the adapter's whole table (before rows without a label for
                       the chosen task are dropped, so that task's table may have gaps)
    speaker      str   speaker name ("" if unknown)
    text         str   transcript, never empty; or "" in every row of a dataset without
                       transcripts (a table mapping without columns.text: features imported)
    split        str   "train" | "dev" | "test"
    <task>       i32   class index, per classification task (e.g. "emotion")
    <task>_name  str   class name
    <task>       f64   target, per regression task (e.g. "regression" on CH-SIMS)
    audio        str?  media path relative to the source root (null if none)
    audio_start  f64?  seconds into the audio file where the utterance starts (null: whole file)
    audio_end    f64?
    video        str?  relative path of the video
    video_start  f64?
    video_end    f64?
    source       str   where the row came from, "file:row N" (for error messages downstream)

Media paths are relative to the manifest's `source_root` so a table stays valid when the data
folder moves; `resolve_media` joins them (readers confine them with `er_core.confine`, honouring
the manifest's `follow_links`). The rules are checked by `er_data.check`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

import polars as pl
from er_core import ErError, TaskInfo
from msgspec import Meta

SPLITS = ("train", "dev", "test")
# a share of the dialogues held out (dev, test): from 0 up to, not including, all of them
Fraction = Annotated[float, Meta(ge=0.0, lt=1.0)]
BASE_COLUMNS = ("id", "dialogue", "turn", "speaker", "text", "split")
MEDIA_COLUMNS = ("audio", "audio_start", "audio_end", "video", "video_start", "video_end")

_DTYPES: dict[str, pl.DataType] = {
    "id": pl.String(),
    "dialogue": pl.String(),
    "turn": pl.Int32(),
    "speaker": pl.String(),
    "text": pl.String(),
    "split": pl.String(),
    "audio": pl.String(),
    "audio_start": pl.Float64(),
    "audio_end": pl.Float64(),
    "video": pl.String(),
    "video_start": pl.Float64(),
    "video_end": pl.Float64(),
    "source": pl.String(),
}


def columns_for(tasks: Mapping[str, TaskInfo]) -> list[str]:
    cols = list(BASE_COLUMNS)
    for info in tasks.values():
        cols += (
            [info.column, f"{info.column}_name"] if info.type == "classification" else [info.column]
        )
    return [*cols, *MEDIA_COLUMNS, "source"]


def dtypes_for(tasks: Mapping[str, TaskInfo]) -> dict[str, pl.DataType]:
    """Every column of the table -> its type."""
    out = dict(_DTYPES)
    for info in tasks.values():
        if info.type == "classification":
            out[info.column] = pl.Int32()
            out[f"{info.column}_name"] = pl.String()
        else:
            out[info.column] = pl.Float64()
    return {c: out[c] for c in columns_for(tasks)}


def first_row(frame: pl.DataFrame, mask: pl.Expr) -> dict | None:
    """The first row where `mask` holds, as a dict, or None: what a row-naming error reports."""
    hit = frame.filter(mask).head(1)
    return hit.row(0, named=True) if hit.height else None


def encode_labels(
    frame: pl.DataFrame,
    raw: str,
    task: str,
    classes: Sequence[str],
    aliases: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Add `task` (class index) and `task_name` from the string column `raw`.

    Values are matched after stripping and lower-casing; `aliases` maps other spellings (or
    labels to merge) onto a class. A value mapped to "" is dropped (that row has no label for
    this task: the column is null). Any other unknown value is an error naming its row.
    """
    aliases = {k.strip().lower(): v for k, v in (aliases or {}).items()}
    norm = pl.col(raw).cast(pl.String).str.strip_chars().str.to_lowercase()
    name = norm.replace(aliases) if aliases else norm
    frame = frame.with_columns(name.alias(f"{task}_name"))
    frame = frame.with_columns(
        pl.when(pl.col(f"{task}_name") == "")
        .then(None)
        .otherwise(pl.col(f"{task}_name"))
        .alias(f"{task}_name")
    )
    lookup = {c: i for i, c in enumerate(classes)}
    bad = first_row(
        frame, pl.col(f"{task}_name").is_not_null() & ~pl.col(f"{task}_name").is_in(list(classes))
    )
    if bad is not None:
        raise ErError(
            f"unknown {task} label '{bad[raw]}'",
            at=bad["source"],
            hint=f"known labels: {', '.join(classes)}"
            + ("" if not aliases else f"; aliases: {', '.join(aliases)}"),
        )
    return frame.with_columns(
        pl.col(f"{task}_name")
        .replace_strict(lookup, default=None, return_dtype=pl.Int32)
        .alias(task)
    )


def finish(frame: pl.DataFrame, tasks: Mapping[str, TaskInfo]) -> pl.DataFrame:
    """Add absent media columns as nulls, cast to the canonical types, order the columns."""
    for col in MEDIA_COLUMNS:
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=_DTYPES[col]).alias(col))
    if "speaker" not in frame.columns:
        frame = frame.with_columns(pl.lit("").alias("speaker"))
    if "turn" in frame.columns and frame.schema["turn"].is_integer():
        # an i32 column: a larger number (a damaged id column) is the data's fault, not a crash
        bad = first_row(frame, (pl.col("turn") >= 2**31) | (pl.col("turn") < -(2**31)))
        if bad is not None:
            raise ErError(
                f"turn {bad['turn']} of utterance '{bad['id']}' is too large",
                at=bad["source"],
                hint="turns count utterances within a dialogue (check the turn or utterance id)",
            )
    casts = {c: t for c, t in dtypes_for(tasks).items() if c in frame.columns}
    frame = frame.with_columns([pl.col(c).cast(t) for c, t in casts.items()])
    return frame.select(columns_for(tasks))


def resolve_media(root: str | Path, rel: str | None) -> Path | None:
    return None if rel is None else Path(root) / rel


def class_counts(
    frame: pl.DataFrame, info: TaskInfo
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Rows per split, and per split per class (classification) in class order."""
    splits = {s: frame.filter(pl.col("split") == s).height for s in SPLITS}
    per_class: dict[str, dict[str, int]] = {}
    if info.type == "classification":
        name = f"{info.column}_name"
        for s in SPLITS:
            sub = frame.filter(pl.col("split") == s)
            counts = dict(sub.group_by(name).len().iter_rows())
            per_class[s] = {c: int(counts.get(c, 0)) for c in info.classes}
    return splits, per_class


def load_table(source: object) -> pl.DataFrame:
    """The canonical utterance table of a dataset, read and checked (`check.check_table`).

    `source` is a DatasetManifest, or anything holding one: prepare's `manifest.json`, a stream
    file (the last dataset in it), read_stream's list or a list of messages. Python callers get
    the same table every reader gets, refused the same way if it was edited after `prepare`.
    """
    from er_core import DatasetManifest, find

    from er_data.check import check_table

    if not isinstance(source, DatasetManifest):
        source = find(source, DatasetManifest)
    return check_table(source)
