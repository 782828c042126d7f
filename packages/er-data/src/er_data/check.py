"""The one check of an utterance table: what `prepare` enforces before writing it, and what every
reader (er-data validate and stats, er-features, er-train, er-eval) enforces again on reading it.

`check` holds the rules (schema, unique ids, splits, dialogue keys, label ranges, media paths);
`check_table` applies them to the table a DatasetManifest names, after checking that the file
is the one `prepare` wrote (its sha256). A broken rule is one ErError naming the row: in
`prepare` the row's `source` (the data file and row it came from), in `check_table` the table
file and row, then the source.

Dialogues never span splits and never repeat a turn: context models read a dialogue's earlier
turns, so a dialogue across splits leaks test utterances into training context, and a repeated
turn makes "earlier" meaningless. The rule has no per-dataset exception: adapters whose source
shares a key across splits (CH-SIMS videos) give each split's part its own dialogue id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl
from er_core import DatasetManifest, ErError, TaskInfo, is_relative_inside, sha256_file

from er_data.table import SPLITS, columns_for, dtypes_for, first_row

_ROW = "__row"  # the row number column errors read; a table's own column of that name is dropped


def tasks_of(manifest: DatasetManifest) -> dict[str, TaskInfo]:
    """The manifest's tasks; a manifest that predates `tasks` names its one task's column."""
    if manifest.tasks:
        return dict(manifest.tasks)
    return {
        manifest.task: TaskInfo(
            type=manifest.task_type,
            column=manifest.label_column or manifest.task,
            classes=list(manifest.classes),
        )
    }


def check_table(manifest: DatasetManifest, *, verify_sha: bool = True) -> pl.DataFrame:
    """The utterance table `manifest` names, read and checked; any broken rule is an ErError.

    With `verify_sha`, the file must be byte for byte the one `prepare` wrote: an edited or
    replaced table is refused before anything reads its rows.
    """
    path = Path(manifest.table.path)
    rerun = "rerun `er-data prepare` to write it again"
    if not path.is_file():
        raise ErError("the manifest's utterance table is gone", at=str(path), hint=rerun)
    if verify_sha and sha256_file(path) != manifest.table.sha256:
        raise ErError(
            "the utterance table's sha256 differs from the one its manifest records",
            at=str(path),
            hint="the table was edited or replaced after `er-data prepare`; " + rerun,
        )
    try:
        frame = pl.read_parquet(path)
    except pl.exceptions.PolarsError as e:
        raise ErError(
            f"cannot read the utterance table as Parquet ({_first_line(e)})",
            at=str(path),
            hint="the file is damaged or not a table er-data wrote; " + rerun,
        ) from None
    tasks = tasks_of(manifest)
    if manifest.task not in tasks:
        raise ErError(
            f"the manifest's task '{manifest.task}' is not among its tasks ({', '.join(tasks)})",
            at="$.task",
            hint="the manifest was edited or is damaged; " + rerun,
        )
    # a manifest that lists text promises every transcript; one that does not may be a dataset
    # mapped without columns.text (all text "") or a hand-made manifest: all or none
    transcripts = True if "text" in manifest.modalities else None
    labelled = manifest.task if has_labels(tasks[manifest.task]) else None
    check(frame, tasks, table_file=str(path), labelled=labelled, transcripts=transcripts)
    return frame


def has_labels(info: TaskInfo) -> bool:
    """False for a classification task without classes: an unlabelled table's (loose clips,
    the `files` adapter), whose classes come from the run that predicts it. Such a table keeps
    every row, each with a null label; any other task's table holds only its labelled rows."""
    return info.type == "regression" or bool(info.classes)


def check(
    frame: pl.DataFrame,
    tasks: Mapping[str, TaskInfo],
    *,
    table_file: str | None = None,
    labelled: str | None = None,
    transcripts: bool | None = True,
) -> None:
    """The rules every table obeys. `table_file`: the table is read back from this file (errors
    name its rows); None: an adapter's fresh table (errors name the data's rows, and a schema
    fault is a bug in er). `labelled`: a task every row has a label for. `transcripts`: True,
    every row has its text; False, none has (a dataset without transcripts, whose features
    are imported); None, either (but never some rows only)."""
    _check_schema(frame, tasks, table_file)
    at = _Where(table_file)
    frame = _numbered(frame)
    _check_keys(frame, at)
    _check_text(frame, transcripts, at)
    for name, info in tasks.items():
        _check_labels(frame, name, info, name == labelled, at)
    for col in ("audio_start", "audio_end", "video_start", "video_end"):
        c = pl.col(col)
        bad = first_row(frame, c.is_not_null() & (~c.is_finite() | (c < 0)))
        if bad is not None:
            raise at.error(
                f"{col} {bad[col]} of utterance '{bad['id']}' is not a time in seconds",
                bad,
                "media times are finite seconds from 0",
            )
    for col in ("audio", "video"):
        escaping = [p for p in frame[col].drop_nulls().unique() if not inside(p)]
        bad = first_row(frame, pl.col(col).is_in(escaping)) if escaping else None
        if bad is not None:
            raise at.error(
                f"media path '{bad[col]}' escapes the dataset root",
                bad,
                "media paths must be relative and stay inside --root",
            )


def _check_text(frame: pl.DataFrame, transcripts: bool | None, at: _Where) -> None:
    empty = pl.col("text").is_null() | (pl.col("text").str.strip_chars() == "")
    if transcripts is None:
        transcripts = not frame.select(empty.all()).item()
    if transcripts:
        bad = first_row(frame, empty)
        if bad is not None:
            raise at.error(
                f"empty text for utterance '{bad['id']}'",
                bad,
                "every utterance needs its transcript (a dataset with none leaves columns.text "
                "unmapped)",
            )
        return
    bad = first_row(frame, ~empty)
    if bad is not None:
        raise at.error(
            f"text for utterance '{bad['id']}' in a dataset without transcripts",
            bad,
            "the table was prepared without columns.text; rerun `er-data prepare`",
        )


def check_keys(frame: pl.DataFrame) -> None:
    """The key rules alone (ids, splits, dialogues, turns), on an adapter's whole table before
    the rows without a label for the chosen task are dropped: a key is wrong whatever the task."""
    _check_keys(_numbered(frame), _Where(None))


def _check_keys(frame: pl.DataFrame, at: _Where) -> None:
    bad = first_row(frame, pl.col("id").is_null() | (pl.col("id") == ""))
    if bad is not None:
        raise at.error("empty utterance id", bad, "every utterance needs an id")
    dup = frame.filter(pl.col("id").is_duplicated())
    if dup.height:
        # the first duplicated id in table order, and the next row holding the same id
        pair = dup.filter(pl.col("id") == dup["id"][0]).head(2).rows(named=True)
        raise at.error(
            f"duplicate utterance id '{pair[0]['id']}' (also at {at.of(pair[1])})",
            pair[0],
            "utterance ids must be unique; check the id columns in the data or the mapping",
        )
    bad = first_row(frame, ~pl.col("split").is_in(list(SPLITS)) | pl.col("split").is_null())
    if bad is not None:
        raise at.error(f"unknown split '{bad['split']}'", bad, f"splits are {', '.join(SPLITS)}")
    _check_dialogues(frame, at)


def renumber_turns(frame: pl.DataFrame) -> pl.DataFrame:
    """Turns counted 0, 1, 2, ... in their given order within each dialogue (row order kept).
    Run after `check`, which refuses repeated and negative turns."""
    rank = pl.col("turn").rank("ordinal").over("dialogue") - 1
    return frame.with_columns(rank.cast(pl.Int32).alias("turn"))


def _numbered(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with its row numbers (columns the check does not know are kept for newer
    writers, but one that takes the row numbers' name is dropped here)."""
    return frame.drop(_ROW, strict=False).with_row_index(_ROW)


class _Where:
    """How an error names a row: its source, or (reading a table back) the table file's row."""

    def __init__(self, table_file: str | None) -> None:
        self.table_file = table_file

    def of(self, row: dict) -> str:
        source = row.get("source") or "unknown source"
        if self.table_file is None:
            return source
        return f"{self.table_file}:row {row[_ROW] + 1} ({source})"

    def error(self, what: str, row: dict, hint: str) -> ErError:
        if self.table_file is not None:  # prepare checks the same rules: the table is stale
            hint += "; then rerun `er-data prepare`"
        return ErError(what, at=self.of(row), hint=hint)


def _check_schema(
    frame: pl.DataFrame, tasks: Mapping[str, TaskInfo], table_file: str | None
) -> None:
    hint = (
        "this is a bug in er (the adapter's table lacks canonical columns)"
        if table_file is None
        else "the table was not written by this er-data, or was edited; rerun `er-data prepare`"
    )
    missing = [c for c in columns_for(tasks) if c not in frame.columns]
    if missing:
        raise ErError(
            f"the utterance table lacks column(s) {', '.join(missing)}", at=table_file, hint=hint
        )
    for col, want in dtypes_for(tasks).items():
        have = frame.schema[col]
        if have != want and not (have == pl.Null and col != "id"):
            raise ErError(
                f"column '{col}' of the utterance table holds {have}, not {want}",
                at=table_file,
                hint=hint,
            )


def _check_dialogues(frame: pl.DataFrame, at: _Where) -> None:
    hint_key = (
        "check the dialogue key (columns.dialogue in a table mapping): it must name one "
        "conversation"
    )
    for col in ("dialogue", "turn"):
        bad = first_row(frame, pl.col(col).is_null() | (pl.col(col).cast(pl.String) == ""))
        if bad is not None:
            raise at.error(
                f"missing {col} for utterance '{bad['id']}'", bad, f"every row needs a {col}"
            )
    bad = first_row(frame, pl.col("turn") < 0)
    if bad is not None:
        raise at.error(
            f"negative turn {bad['turn']} for utterance '{bad['id']}'",
            bad,
            "turns count utterances within a dialogue, from 0 (check the turn column)",
        )
    spans = frame.filter(pl.col("split").n_unique().over("dialogue") > 1)
    if spans.height:
        d = spans["dialogue"][0]
        rows = spans.filter(pl.col("dialogue") == d).unique(
            "split", keep="first", maintain_order=True
        )
        a, b = rows.head(2).rows(named=True)
        raise at.error(
            f"dialogue '{d}' spans splits {a['split']} ({at.of(a)}) and {b['split']} ({at.of(b)})",
            a,
            f"a dialogue's utterances are all in one split; {hint_key} (if dialogue ids "
            "restart in each split, include {split} in it)",
        )
    rep = frame.filter(pl.struct("dialogue", "turn").is_duplicated())
    if rep.height:
        a = rep.row(0, named=True)
        same = rep.filter((pl.col("dialogue") == a["dialogue"]) & (pl.col("turn") == a["turn"]))
        b = same.row(1, named=True)
        raise at.error(
            f"dialogue '{a['dialogue']}' repeats turn {a['turn']} (also at {at.of(b)})",
            a,
            f"each turn of a dialogue appears once; {hint_key}, and columns.turn "
            "(or leave it out to number turns in file order)",
        )


def _check_labels(
    frame: pl.DataFrame, name: str, info: TaskInfo, required: bool, at: _Where
) -> None:
    col = pl.col(info.column)
    if required:
        bad = first_row(frame, col.is_null())
        if bad is not None:
            raise at.error(
                f"utterance '{bad['id']}' has no {name} label",
                bad,
                f"every row of a {name} table is labelled",
            )
    if info.type == "regression":
        bad = first_row(frame, col.is_not_null() & ~col.is_finite())
        if bad is not None:
            raise at.error(
                f"{name} target {bad[info.column]} is not a finite number",
                bad,
                "targets are finite numbers",
            )
        return
    n = len(info.classes)
    bad = first_row(frame, col.is_not_null() & ((col < 0) | (col >= n)))
    if bad is not None:
        raise at.error(
            f"{name} class index {bad[info.column]} is out of range [0, {n})",
            bad,
            f"{name} has classes {', '.join(info.classes)}",
        )
    names = col.replace_strict(dict(enumerate(info.classes)), default=None, return_dtype=pl.String)
    bad = first_row(frame, names.ne_missing(pl.col(f"{info.column}_name")))
    if bad is not None:
        raise at.error(
            f"{name} class index {bad[info.column]} does not match its name "
            f"'{bad[f'{info.column}_name']}'",
            bad,
            f"{name} has classes {', '.join(info.classes)}, in index order",
        )


def inside(rel: str) -> bool:
    """True if a media path, as text, is relative and never climbs out of its root."""
    return "\x00" not in rel and is_relative_inside(rel)


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]
