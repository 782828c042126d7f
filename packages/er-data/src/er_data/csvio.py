"""Reading delimited text the way real dataset files are: odd encodings, missing columns."""

from __future__ import annotations

import codecs
import io
from collections.abc import Sequence
from pathlib import Path

import polars as pl
from er_core import ErError


def decode(path: Path, encodings: Sequence[str] = ("utf-8",)) -> str:
    """The file's text in the first encoding that decodes it whole.

    Errors name the line of the first bad byte. cp1252 leaves five bytes undefined, so even a
    utf-8 -> cp1252 fallback can fail on a damaged file.
    """
    check_encodings(encodings)
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    last: UnicodeDecodeError | None = None
    for enc in encodings:
        try:
            return data.decode(enc)
        except UnicodeDecodeError as e:
            last = e  # the last encoding is the most permissive: its failure is the real one
    assert last is not None
    line = data[: last.start].count(b"\n") + 1
    raise ErError(
        f"undecodable bytes {data[last.start : last.start + 4]!r} (tried {', '.join(encodings)})",
        at=f"{path}:line {line}",
        hint="re-save the file as UTF-8, or name its encoding in the config",
    )


def check_encodings(encodings: Sequence[str]) -> None:
    """The `encodings` option of every adapter: at least one, each a codec Python knows."""
    hint = 'name Python codecs, e.g. encodings = ["utf-8", "cp1252"]'
    if not encodings:
        raise ErError("no encoding to try", at="$.encodings", hint=hint)
    for i, enc in enumerate(encodings):
        try:
            codecs.lookup(enc)
        except LookupError:
            raise ErError(f"unknown encoding '{enc}'", at=f"$.encodings[{i}]", hint=hint) from None


def read_delimited(
    path: Path,
    required: Sequence[str],
    *,
    separator: str = ",",
    encodings: Sequence[str] = ("utf-8",),
    source_name: str | None = None,
) -> pl.DataFrame:
    """A CSV/TSV as all-string columns plus `source` ("file:row N", N counting data rows from 1).

    A missing required column is an error that lists the columns the file has.
    """
    if not path.is_file():
        raise ErError("file not found", at=str(path), hint="check --root and the dataset layout")
    text = decode(path, encodings)
    try:
        frame = pl.read_csv(
            io.StringIO(text), separator=separator, infer_schema=False, quote_char='"'
        )
    except pl.exceptions.PolarsError as e:
        raise ErError(
            f"cannot parse as delimited text ({str(e).splitlines()[0]})",
            at=str(path),
            hint="check the separator (CSV ',' or TSV tab) and that quotes are balanced",
        ) from None
    frame = frame.rename({c: c.strip() for c in frame.columns})
    check_columns(frame, required, str(path))
    name = source_name or path.name
    return frame.with_columns(
        (pl.lit(f"{name}:row ") + (pl.int_range(pl.len()) + 1).cast(pl.String)).alias("source")
    )


def check_columns(frame: pl.DataFrame, required: Sequence[str], where: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ErError(
            f"missing required column '{missing[0]}'",
            at=where,
            hint=f"the file has columns: {', '.join(frame.columns)}",
        )
