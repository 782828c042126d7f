"""Speaker cells that hold a list of names, as some releases write them for lines spoken by
several people at once (MELD-style CSVs exported from pandas: `"['Monica Geller', 'Ross Geller']"`).

A cell is a list when, stripped, it starts with `[` (so a list cut short is caught); it is read as JSON or as a
Python literal (never evaluated as code: `ast.literal_eval` reads literals only) and must be a
list of strings. `speaker_list` in the mapping says what becomes of it: "join" keeps every name,
in the given order, joined with " & " (so the speaker stays one string, and the same group is
the same speaker wherever it speaks); "first" keeps the first name; "off" leaves cells as written
(for a dataset whose speakers are really named like `[crowd]`). A cell that looks like a list but
is not one is an error naming the file, row and column: silently keeping the brackets would make
a new, wrong speaker.
"""

from __future__ import annotations

import ast
import json

import polars as pl
from er_core import ErError

JOINER = " & "


def is_list(value: str | None) -> bool:
    return value is not None and value.startswith("[")


def parse_list(value: str) -> list[str] | None:
    """The names a list cell holds (stripped, empty ones dropped), or None if it is malformed."""
    try:
        names = json.loads(value)
    except (ValueError, RecursionError):
        try:
            names = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return [n.strip() for n in names if n.strip()]


def speakers(frame: pl.DataFrame, how: str, column: str) -> pl.Series:
    """The `speaker` column of `frame` with list cells read as `how` says ("join"/"first").

    `column` names the data column (or template) the speaker came from, for the error.
    """
    out = []
    for value, source in frame.select("speaker", "source").iter_rows():
        if not is_list(value):
            out.append(value)
            continue
        names = parse_list(value)
        if names is None:
            shown = value if len(value) <= 60 else value[:57] + "..."
            raise ErError(
                f"malformed speaker list {shown!r} in column {column}",
                at=source,
                hint="write a list of quoted names, e.g. ['Monica Geller', 'Ross Geller'] "
                'or ["A", "B"]; or set speaker_list = "off" to keep such cells as written',
            )
        out.append(JOINER.join(names) if how == "join" else (names[0] if names else ""))
    return pl.Series("speaker", out, dtype=pl.String)
