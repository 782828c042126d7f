"""Any CSV, TSV, Parquet or JSON-lines file, described by a TOML mapping: a new dataset needs a
TOML file, not code (`er-data prepare table --root DATA --config mapping.toml`).

The mapping (schema in `table_mapping.py`, a commented example in configs/data/example-table.toml):

    dataset = "name"              task = "emotion"            (the default --task)
    file = "utterances.csv"       or  [files] train = "train.csv", dev = ..., test = ...
    format = "csv"                (default: from the extension: .csv .tsv .parquet .jsonl .ndjson)
    encodings = ["utf-8", "cp1252"]   tried in order (CSV, TSV, JSONL)
    [columns]  id, dialogue (required); text, turn, speaker, split, audio, video,
               audio_start, audio_end, video_start, video_end
    speaker_list = "join"   a speaker cell holding a list: "join" (A & B), "first" or "off"
    [tasks.<name>]  column = "Emotion", classes = [...] (order = index), aliases = {"exc" = "hap"}
                    or  column = "score", type = "regression"
    [split]         dev = 0.1, test = 0.1, seed = 0   (data without a split: whole dialogues)
    [split_names]   valid = "dev"                     (a split column's values -> train/dev/test)
    [splits.train]  clips = "train_splits"            (per-split variables for templates)
    media_optional = true

A [columns] value with no braces names a data column; with braces it is a template: `{split}` is
the row's split, `{name}` a per-split variable where [splits.*] sets one, else a data column
(`{{`, `}}` are literal braces). Data values are read as strings and stripped. `turn` defaults to
the order within the dialogue, in file order; start/end times are seconds or [h:]mm:ss[.,]fff.
A media value may list templates: the first whose file exists wins, else the last. With
`media_optional`, a split's media column none of whose files exist is left empty, as when a
dataset ships without its clips. Without `columns.text` the dataset has no transcripts: its features come from `er-features
import`, every row's text is "" and "text" is not among the manifest's modalities (a text
extract refuses it). A drawn [split] shuffles the sorted dialogue ids with
random.Random(seed) and gives the first `test` fraction to test, the next `dev` to dev. Rows
whose label is empty (or aliased to "") have no label for that task; `prepare` drops them.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from pathlib import Path

import polars as pl
from er_core import ErError, TaskInfo

from er_data.adapters import speakers
from er_data.adapters.base import Loaded
from er_data.adapters.table_mapping import LATE_DEFAULTS, SPLIT_VAR, Options, names, parse
from er_data.check import inside
from er_data.csvio import decode, read_delimited
from er_data.table import SPLITS, encode_labels, finish, first_row

__all__ = ["LATE_DEFAULTS", "Options", "Table"]

_TIME = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:[.,]\d*)?)")
_TIME_HINT = "times are seconds (12.5) or a clock time ([hh:]mm:ss.fff)"


class Table:
    name = "table"
    version = "1"
    Options = Options
    late_defaults = LATE_DEFAULTS

    def inputs(self, root: Path, opts: Options) -> list[Path]:
        return [root / path for path, _ in opts.sources()]

    def load(self, root: Path, opts: Options) -> Loaded:
        frame = pl.concat(
            [_read(root, p, s, opts) for p, s in opts.sources()], how="diagonal_relaxed"
        )
        cols = opts.column_values()
        # ids are built under internal names, so that a data column called `dialogue` or `id`
        # keeps meaning the data's value in the other templates
        dialogue = _expr(opts, "dialogue", cols["dialogue"][0]).alias("__dialogue")
        if opts.columns.split is not None:
            frame = _split_from_column(frame, opts)
        elif opts.split is not None:  # drawn over dialogues, which cannot use {split} (checked)
            split = opts.split
            frame = _draw_split(frame.with_columns(dialogue), split.dev, split.test, split.seed)
        _check_variables(frame, opts)
        frame = frame.with_columns(dialogue, _expr(opts, "id", cols["id"][0]).alias("__id"))
        _no_nulls(frame, "dialogue")
        _no_nulls(frame, "id")
        simple = [c for c in cols if c not in ("id", "dialogue", "split", "audio", "video")]
        table = frame.select(
            pl.col("__id").alias("id"),
            pl.col("__dialogue").alias("dialogue"),
            pl.col("__split").alias("split"),
            "source",
            *[_expr(opts, c, cols[c][0]).alias(c) for c in simple],
            *[pl.col(t.column).alias(f"__raw_{n}") for n, t in opts.tasks.items()],
            *[
                _media(root, frame, opts, k, cols[k]).alias(k)
                for k in ("audio", "video")
                if k in cols
            ],
        )
        if "turn" in cols:
            hint = "columns.turn must give whole numbers (or leave it out: file order)"
            table = table.with_columns(_convert(table, "turn", _int32, "an integer", hint))
        else:
            table = table.with_columns(pl.int_range(pl.len()).over("dialogue").alias("turn"))
        if "speaker" in cols:
            if opts.speaker_list != "off":
                column = cols["speaker"][0]
                table = table.with_columns(speakers.speakers(table, opts.speaker_list, column))
            table = table.with_columns(pl.col("speaker").fill_null(""))
        if "text" not in cols:  # no transcripts: features come from `er-features import`
            table = table.with_columns(pl.lit("", dtype=pl.String).alias("text"))
        for c in [c for c in simple if c.endswith(("_start", "_end"))]:
            table = table.with_columns(_convert(table, c, _clock, "a time", _TIME_HINT))
        tasks: dict[str, TaskInfo] = {}
        for name, t in opts.tasks.items():
            if t.type == "regression":
                hint = f"tasks.{name} is a regression: its values are finite numbers"
                value = _convert(table, f"__raw_{name}", _finite, "a number", hint, name)
                table = table.with_columns(value)
                tasks[name] = TaskInfo(type="regression", column=name)
            else:
                table = encode_labels(table, f"__raw_{name}", name, t.classes, t.aliases)
                tasks[name] = TaskInfo(type="classification", column=name, classes=list(t.classes))
        table = finish(table, tasks)
        present = [m for m in ("audio", "video") if table[m].is_not_null().any()]
        texts = ["text"] if "text" in cols else []
        return Loaded(opts.dataset, table, tasks, [*texts, *present])


def _read(root: Path, rel: str, split: str | None, opts: Options) -> pl.DataFrame:
    """One data file as stripped string columns plus `source` ("file:row N") and `__split`."""
    path, fmt = root / rel, opts.format_of(rel)
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        frame = read_delimited(path, (), separator=sep, encodings=opts.encodings, source_name=rel)
    else:
        if not path.is_file():
            raise ErError("file not found", at=str(path), hint="check --root and the mapping")
        frame = _read_parquet(path) if fmt == "parquet" else _read_jsonl(path, opts.encodings)
        frame = frame.with_columns(
            (pl.lit(f"{rel}:row ") + (pl.int_range(pl.len()) + 1).cast(pl.String)).alias("source")
        )
    data = [c for c in frame.columns if c != "source"]
    _require(frame, opts, rel)
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in data)
    return frame.with_columns(pl.lit(split, dtype=pl.String).alias("__split"))


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
        return frame.with_columns(pl.all().cast(pl.String))
    except pl.exceptions.PolarsError as e:
        raise ErError(
            f"cannot read as Parquet of scalar columns ({str(e).splitlines()[0]})",
            at=str(path),
            hint="columns must be strings or numbers",
        ) from None


def _read_jsonl(path: Path, encodings: tuple[str, ...]) -> pl.DataFrame:
    records: list[dict[str, str | None]] = []
    for line_no, line in enumerate(decode(path, encodings).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ErError(
                f"malformed JSON ({e.msg})",
                at=f"{path}:line {line_no}",
                hint="JSON lines hold one object per line",
            ) from None
        if not isinstance(obj, dict):
            raise ErError(
                "a JSON-lines record must be an object",
                at=f"{path}:line {line_no}",
                hint='write one {"column": value, ...} per line',
            )
        records.append({k: _text(v) for k, v in obj.items()})
    keys = list(dict.fromkeys(k for r in records for k in r))  # first-seen order
    return pl.DataFrame(
        {k: [r.get(k) for r in records] for k in keys}, schema=dict.fromkeys(keys, pl.String)
    )


def _text(v: object) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) if isinstance(v, int | float) else json.dumps(v, ensure_ascii=False)


def _require(frame: pl.DataFrame, opts: Options, rel: str) -> None:
    """Every column the mapping names exists in this file; a template's miss names its key."""
    have = set(frame.columns)
    variables = {SPLIT_VAR} | {v for s in SPLITS for v in opts.variables(s)}
    wanted = [(f"columns.{c}", v) for c, vs in opts.column_values().items() for v in vs]
    wanted += [(f"tasks.{n}.column", t.column) for n, t in opts.tasks.items()]
    for key, value in wanted:
        plain = "{" not in value
        for name in names(value):
            if name in have or (not plain and name in variables):
                continue
            listing = ", ".join(c for c in frame.columns if c != "source")
            if plain:
                raise ErError(
                    f"missing required column '{name}' (mapped by {key})",
                    at=rel,
                    hint=f"the file has columns: {listing}",
                )
            raise ErError(
                f"{key} names column '{name}', which {rel} lacks",
                at=f"$.{key}",
                hint=f"the file has columns: {listing}; per-split variables: "
                + (", ".join(sorted(variables)) or "none"),
            )


def _expr(opts: Options, key: str, template: str) -> pl.Expr:
    """A template as a polars expression over the data columns and `__split`."""
    exprs = []
    for text, is_name in parse(template):
        if not is_name:
            exprs.append(pl.lit(text))
        elif text == SPLIT_VAR and "{" in template:
            exprs.append(pl.col("__split"))
        elif "{" in template and any(text in opts.variables(s) for s in SPLITS):
            lookup = {s: opts.variables(s).get(text) for s in SPLITS}
            exprs.append(pl.col("__split").replace_strict(lookup, default=None))
        else:
            exprs.append(pl.col(text))
    return exprs[0] if len(exprs) == 1 else pl.concat_str(exprs, ignore_nulls=False)


def _check_variables(frame: pl.DataFrame, opts: Options) -> None:
    """A template's per-split variable is defined for every split the data holds."""
    present = set(frame["__split"].unique())
    templates = [(c, v) for c, vs in opts.column_values().items() for v in vs if "{" in v]
    for col, template in templates:
        for name in names(template):
            defined = [s for s in SPLITS if name in opts.variables(s)]
            for split in sorted(present - set(defined)) if defined else ():
                raise ErError(
                    f"columns.{col} uses {{{name}}}, which [splits.{split}] does not set",
                    at=f"$.splits.{split}.{name}",
                    hint=f"set {name} for every split the data holds ({', '.join(sorted(present))})",
                )


def _no_nulls(frame: pl.DataFrame, col: str) -> None:
    row = first_row(frame, pl.col(f"__{col}").is_null() | (pl.col(f"__{col}") == ""))
    if row is not None:
        raise ErError(
            f"empty {col}",
            at=row["source"],
            hint=f"the columns that columns.{col} names need values",
        )


def _split_from_column(frame: pl.DataFrame, opts: Options) -> pl.DataFrame:
    names_ = {k.strip().lower(): v for k, v in opts.split_names.items()}
    value = pl.col(opts.columns.split).str.to_lowercase()
    frame = frame.with_columns(value.replace(names_).alias("__split"))
    frame = frame.filter(pl.col("__split").is_null() | (pl.col("__split") != ""))
    row = first_row(frame, ~pl.col("__split").is_in(list(SPLITS)) | pl.col("__split").is_null())
    if row is not None:
        raise ErError(
            f"unknown split '{row[opts.columns.split]}'",
            at=row["source"],
            hint=f'splits are {", ".join(SPLITS)}; map other names in [split_names], e.g. valid = "dev"',
        )
    return frame


def _draw_split(frame: pl.DataFrame, dev: float, test: float, seed: int) -> pl.DataFrame:
    """Whole dialogues to test, dev, train: sorted ids shuffled by `seed`, so runs agree."""
    dialogues = sorted(frame["__dialogue"].drop_nulls().unique())
    random.Random(seed).shuffle(dialogues)
    n_test, n_dev = round(len(dialogues) * test), round(len(dialogues) * dev)
    which = {d: "test" for d in dialogues[:n_test]}
    which |= {d: "dev" for d in dialogues[n_test : n_test + n_dev]}
    split = pl.col("__dialogue").replace_strict(which, default="train", return_dtype=pl.String)
    return frame.with_columns(split.alias("__split"))


def _convert(
    frame: pl.DataFrame, col: str, parse, kind: str, hint: str, name: str | None = None
) -> pl.Series:
    """`parse` applied to each non-empty value of `col`; a ValueError names the value's row."""
    out = []
    for value, source in frame.select(col, "source").iter_rows():
        try:
            out.append(None if value is None or value == "" else parse(value))
        except ValueError:
            msg = f"{name or col} value '{value}' is not {kind}"
            raise ErError(msg, at=source, hint=hint) from None
    return pl.Series(name or col, out, dtype=pl.Int64 if parse is _int32 else pl.Float64)


def _int32(value: str) -> int:
    """A whole number the table's i32 `turn` holds (negative ones are refused by the check)."""
    if not -(2**31) <= (n := int(value)) < 2**31:
        raise ValueError(value)
    return n


def _finite(value: str) -> float:
    if not math.isfinite(x := float(value)):
        raise ValueError(value)
    return x


def _clock(value: str) -> float:
    """Seconds (`12.5`) or a clock time (`00:16:16,059`) as seconds."""
    if m := _TIME.fullmatch(value):
        h, mi, s = m.groups()
        return int(h or 0) * 3600 + int(mi) * 60 + float(s.replace(",", "."))
    return float(value)


def _media(
    root: Path, frame: pl.DataFrame, opts: Options, kind: str, cands: list[str]
) -> pl.Series:
    """The media path of each row: the first candidate whose file exists, else the last."""
    names_ = [f"__c{i}" for i in range(len(cands))]
    frame = frame.with_columns(
        _expr(opts, kind, t).alias(n) for t, n in zip(cands, names_, strict=True)
    )
    paths = {p for n in names_ for p in frame[n].drop_nulls().unique()}
    bad = next((p for p in sorted(paths) if not inside(p)), None)
    if bad is not None:  # never look outside --root; the same error as table.check's
        row = frame.filter(pl.any_horizontal(pl.col(n) == bad for n in names_)).row(0, named=True)
        raise ErError(
            f"media path '{bad}' escapes the dataset root",
            at=row["source"],
            hint="media paths must be relative and stay inside --root",
        )
    exists = list(_existing(root, paths))
    pick = pl.col(names_[-1])
    for n in reversed(names_[:-1]):
        pick = pl.when(pl.col(n).is_in(exists)).then(pl.col(n)).otherwise(pick)
    frame = frame.with_columns(pick.alias("__path"))
    if opts.media_optional:
        # a split none of whose files exist was shipped without these media: text only there
        found = frame.group_by("__split").agg(pl.col("__path").is_in(exists).any().alias("any"))
        empty = found.filter(~pl.col("any"))["__split"].to_list()
        frame = frame.with_columns(
            pl.when(pl.col("__split").is_in(empty)).then(None).otherwise("__path").alias("__path")
        )
    return frame["__path"]


def _existing(root: Path, paths: set[str]) -> set[str]:
    """The paths that name files: one listing per folder, not one stat per file (MELD: 14k)."""
    listings: dict[str, set[str]] = {}
    out = set()
    for rel in paths:
        folder, _, name = rel.replace("\\", "/").rpartition("/")
        if folder not in listings:
            full = os.path.join(root, folder)
            listings[folder] = (
                {e.name for e in os.scandir(full) if e.is_file()} if os.path.isdir(full) else set()
            )
        if name in listings[folder]:
            out.add(rel)
    return out
