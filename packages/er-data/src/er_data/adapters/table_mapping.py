"""The `table` adapter's mapping: the TOML schema, its static checks, and column templates.

Everything that can be checked without reading the data is checked here, while the config is
validated, so a mistake is reported with the TOML file and key that hold it
(`error: ..., at configs/data/x.toml:$.tasks.emotion.classes`). See `er_data.adapters.table`
for the schema in prose and `configs/data/example-table.toml` for a commented example.
"""

from __future__ import annotations

import codecs
import re
from pathlib import PurePosixPath
from typing import Literal

import msgspec
from er_core import Config, NonNegativeInt

from er_data.check import inside
from er_data.table import BASE_COLUMNS, MEDIA_COLUMNS, SPLITS, Fraction

Format = Literal["csv", "tsv", "parquet", "jsonl"]
EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
# `{split}` in a template is the row's split name, never a data column
SPLIT_VAR = "split"
# options added after outputs were first published: at these values they change no table, so
# `prepare` leaves them out of the output's id and earlier outputs keep their ids
LATE_DEFAULTS = {"speaker_list": "join"}


class Files(Config, frozen=True):
    """One data file per split (paths relative to --root)."""

    train: str | None = None
    dev: str | None = None
    test: str | None = None


class Columns(Config, frozen=True):
    """Canonical column <- a data column name, or a template like "{split}/dia{Dialogue_ID}"."""

    id: str
    dialogue: str
    # None: the dataset has no transcripts (its features come from `er-features import`); the
    # table's text is then "" in every row and a text extract refuses it
    text: str | None = None
    turn: str | None = None  # None: position within the dialogue, in file order
    speaker: str | None = None
    split: str | None = None  # a column name only (a template could not name the split)
    # a media value may list templates: the first whose file exists wins, else the last one
    audio: str | tuple[str, ...] | None = None
    audio_start: str | None = None
    audio_end: str | None = None
    video: str | tuple[str, ...] | None = None
    video_start: str | None = None
    video_end: str | None = None


class Task(Config, frozen=True):
    """A prediction target read from one data column."""

    column: str
    type: Literal["classification", "regression"] = "classification"
    classes: tuple[str, ...] = ()  # order = class index
    aliases: dict[str, str] = {}  # other spelling -> class ("" = no label for this row)


class Split(Config, frozen=True):
    """A seeded split of whole dialogues, for data that ships without one."""

    dev: Fraction = 0.1  # fractions of the dialogues, in [0, 1)
    test: Fraction = 0.1
    seed: NonNegativeInt = 0


class SplitVars(Config, frozen=True):
    """Per-split template variables, e.g. `[splits.train] clips = "train_splits"`."""

    train: dict[str, str] = {}
    dev: dict[str, str] = {}
    test: dict[str, str] = {}


class Options(Config, frozen=True, kw_only=True):
    """A whole mapping: where the data is, how its columns map, which tasks it holds."""

    dataset: str
    task: str = "emotion"
    file: str | None = None
    files: Files | None = None
    format: Format | None = None  # None: from each file's extension
    encodings: tuple[str, ...] = ("utf-8",)  # tried in order, for CSV/TSV/JSONL
    columns: Columns
    tasks: dict[str, Task]
    split: Split | None = None
    split_names: dict[str, str] = {}  # a split column's value -> train/dev/test ("" = drop row)
    splits: SplitVars = msgspec.field(default_factory=SplitVars)
    media_optional: bool = False  # a split's media column whose files all lack -> text only
    # a speaker cell holding a list ("['Monica Geller', 'Ross Geller']", Python or JSON):
    # "join" the names with " & " in the given order, keep the "first", or "off": as written
    # (er_data.adapters.speakers); left out of the output's id at its default (LATE_DEFAULTS)
    speaker_list: Literal["join", "first", "off"] = "join"

    def __post_init__(self) -> None:
        _check(self)

    def sources(self) -> list[tuple[str, str | None]]:
        """(path relative to root, split it holds or None) for every data file, in split order."""
        if self.file is not None:
            return [(self.file, None)]
        assert self.files is not None
        return [(p, s) for s in SPLITS if (p := getattr(self.files, s)) is not None]

    def format_of(self, path: str) -> Format:
        return self.format or EXTENSIONS[PurePosixPath(path).suffix.lower()]

    def variables(self, split: str) -> dict[str, str]:
        return getattr(self.splits, split)

    def column_values(self) -> dict[str, list[str]]:
        """Every mapped canonical column -> its template(s)."""
        out: dict[str, list[str]] = {}
        for name in msgspec.structs.fields(Columns):
            value = getattr(self.columns, name.name)
            if value is not None:
                out[name.name] = [value] if isinstance(value, str) else list(value)
        return out


_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]|[^{}]+")


def parse(template: str) -> list[tuple[str, bool]]:
    """Split a template into (text, is_name) parts.

    A value with no braces is a plain column name. `{{` and `}}` are literal braces.
    """
    if "{" not in template and "}" not in template:
        return [(template.strip(), True)]
    parts: list[tuple[str, bool]] = []
    for m in _TOKEN.finditer(template):
        tok = m.group(0)
        if tok in ("{{", "}}"):
            parts.append((tok[0], False))
        elif tok.startswith("{") and tok.endswith("}") and len(tok) > 1:
            if not m.group(1).strip():
                raise ValueError(f"empty placeholder '{{}}' in template '{template}'")
            parts.append((m.group(1).strip(), True))
        elif tok in ("{", "}"):
            raise ValueError(f"unbalanced '{tok}' in template '{template}' (write '{tok * 2}')")
        else:
            parts.append((tok, False))
    return parts


def names(template: str) -> list[str]:
    return [text for text, is_name in parse(template) if is_name]


def _bad(key: str, message: str) -> ValueError:
    # msgspec reports a top-level __post_init__ error with no path of its own; ending the message
    # with msgspec's path syntax lets er_core.validate name this key and the file that set it.
    return ValueError(f"{message} - at `$.{key}`")


def _check(o: Options) -> None:
    if (o.file is None) == (o.files is None):
        raise _bad("file", "give either `file` (one data file) or a [files] table, not both")
    for key, path in [("file", o.file)] + [
        (f"files.{s}", getattr(o.files, s) if o.files else None) for s in SPLITS
    ]:
        if path is None:
            continue
        if not path.strip() or not inside(path):
            raise _bad(key, f"data file '{path}' is not a relative path inside --root")
        if o.format is None and PurePosixPath(path).suffix.lower() not in EXTENSIONS:
            raise _bad(
                key, f"cannot tell the format of '{path}'; set format = csv|tsv|parquet|jsonl"
            )
    if o.files is not None and not o.sources():
        raise _bad("files", "[files] names no file; set train, dev and/or test")
    if not o.encodings:
        raise _bad("encodings", "name at least one encoding")
    for i, enc in enumerate(o.encodings):
        try:
            codecs.lookup(enc)
        except LookupError:
            raise _bad(f"encodings[{i}]", f"unknown encoding '{enc}'") from None
    _check_columns(o)
    _check_split(o)
    _check_tasks(o)


def _check_columns(o: Options) -> None:
    for col, values in o.column_values().items():
        if not values:
            raise _bad(f"columns.{col}", "lists no template")
        for value in values:
            try:
                parts = parse(value)
            except ValueError as e:
                raise _bad(f"columns.{col}", str(e)) from None
            if not any(text for text, _ in parts):
                raise _bad(f"columns.{col}", "is empty")
    if o.columns.split is not None and "{" in o.columns.split:
        raise _bad("columns.split", "must name a column, not a template")
    for split in SPLITS:
        if SPLIT_VAR in o.variables(split):
            raise _bad(f"splits.{split}.{SPLIT_VAR}", "`split` is reserved for the split name")


def _check_split(o: Options) -> None:
    has_own = o.files is not None or o.columns.split is not None
    if o.files is not None and o.columns.split is not None:
        raise _bad("columns.split", "per-split [files] already give the split; drop columns.split")
    if has_own and o.split is not None:
        raise _bad("split", "the data has its split (columns.split or [files]); remove [split]")
    if not has_own and o.split is None:
        raise _bad(
            "split",
            "no split: map columns.split, give per-split [files], "
            "or add [split] (dev = 0.1, test = 0.1, seed = 0)",
        )
    if o.split is not None:
        for key in ("dev", "test"):
            if not 0 <= getattr(o.split, key) < 1:
                raise _bad(f"split.{key}", "is a fraction of the dialogues, from 0 to below 1")
        if o.split.dev + o.split.test >= 1:
            raise _bad("split", "dev + test must leave dialogues for train (sum below 1)")
        # the split is drawn over dialogues, so dialogue ids cannot depend on the split
        used = set(names(o.columns.dialogue)) & {SPLIT_VAR, *_all_variables(o)}
        if used:
            raise _bad("columns.dialogue", f"cannot use {sorted(used)} when the split is drawn")
    for value, target in o.split_names.items():
        if target not in (*SPLITS, ""):
            raise _bad(f"split_names.{value}", f"'{target}' is not one of {', '.join(SPLITS)}")


def _check_tasks(o: Options) -> None:
    if not o.tasks:
        raise _bad("tasks", "name at least one task, e.g. [tasks.emotion]")
    reserved = {*BASE_COLUMNS, *MEDIA_COLUMNS, "source"}
    for name, t in o.tasks.items():
        key = f"tasks.{name}"
        if name in reserved or name.endswith("_name") or name.startswith("_"):
            raise _bad(key, f"'{name}' is a reserved column name; pick another task name")
        if not t.column.strip() or "{" in t.column or "}" in t.column:
            # the label is one data column, read as is: a template has no meaning here
            raise _bad(f"{key}.column", f"'{t.column}' is not a column name (no templates here)")
        if t.type == "regression":
            if t.classes or t.aliases:
                raise _bad(key, "a regression task has no classes or aliases")
            continue
        if not t.classes:
            raise _bad(f"{key}.classes", "a classification task needs its classes")
        for i, c in enumerate(t.classes):
            # labels are matched stripped and lower-cased (er_data.table.encode_labels)
            if c != c.strip().lower() or not c:
                raise _bad(f"{key}.classes[{i}]", f"write class '{c}' in lower case, unpadded")
        if len(set(t.classes)) != len(t.classes):
            raise _bad(f"{key}.classes", "classes repeat")
        for alias, target in t.aliases.items():
            if target not in (*t.classes, ""):
                raise _bad(f"{key}.aliases.{alias}", f"'{target}' is not a class (nor \"\")")


def _all_variables(o: Options) -> set[str]:
    return {v for s in SPLITS for v in o.variables(s)}
