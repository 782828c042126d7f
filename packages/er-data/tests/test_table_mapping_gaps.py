"""Two real-data gaps of the `table` mapping: datasets without transcripts (columns.text left
out, features imported) and speaker cells holding a list of names; and that neither changes
the id of a table that uses neither."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import polars as pl
import pytest
from er_core import ErError
from er_data import check_table
from er_data.adapters import speakers
from er_data.preparation import prepare
from hypothesis import given, settings
from hypothesis import strategies as st

HEADER = ["conv", "line", "who", "utterance", "label", "fold"]
ROWS = [
    ["c1", "0", "Ann", "Hi, how are you?", "neutral", "train"],
    ["c1", "1", "Bob", "Terrible.", "sad", "train"],
    ["c2", "0", "Cat", "We won!", "happy", "train"],
    ["c3", "0", "Ann", "Fine.", "neutral", "dev"],
    ["c4", "0", "Cat", "I miss her.", "sad", "test"],
]
MAPPING = """
dataset = "chat"
file = "data.csv"
{extra}
[columns]
id = "{{conv}}_{{line}}"
dialogue = "conv"
turn = "line"
speaker = "who"
{text}split = "fold"

[tasks.emotion]
column = "label"
classes = ["neutral", "happy", "sad"]
"""
# the id this exact data and mapping had before speaker_list and optional text existed
# (computed with the er-data of commit 054cc31): a table that uses neither keeps its id
EARLIER_ID = "b41cf108fd3c0e52f0ed88cf73990cf46cfb971488108e4445a1ef4fa834f23b"


def write(root: Path, rows=ROWS, text: bool = True, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "data.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
    mapping = root / "map.toml"
    mapping.write_text(
        MAPPING.format(extra=extra, text='text = "utterance"\n' if text else ""),
        encoding="utf-8",
    )
    return mapping


def run(root: Path, mapping: Path, *sets: str):
    return prepare("table", root, configs=[str(mapping)], overrides=list(sets), out=root / "out")


def table_of(manifest) -> pl.DataFrame:
    return pl.read_parquet(manifest.table.path)


def test_a_table_without_list_cells_keeps_its_earlier_id(tmp_path):
    m = run(tmp_path, write(tmp_path))
    assert m.id == EARLIER_ID
    # stating the default changes nothing either, since it changes no table
    again = run(tmp_path, write(tmp_path / "b", extra='speaker_list = "join"'))
    assert again.id == EARLIER_ID


def test_without_columns_text_the_table_has_empty_text_and_no_text_modality(tmp_path):
    m = run(tmp_path, write(tmp_path, text=False))
    frame = check_table(m)  # every reader's check accepts it
    assert frame["text"].to_list() == [""] * len(ROWS)
    assert "text" not in m.modalities
    assert m.config["columns"]["text"] is None


def test_a_table_with_some_empty_text_is_still_refused(tmp_path):
    rows = [r if i != 2 else [*r[:3], "", *r[4:]] for i, r in enumerate(ROWS)]
    with pytest.raises(ErError) as e:
        run(tmp_path, write(tmp_path, rows))
    assert "empty text for utterance 'c2_0'" in e.value.what
    assert e.value.at == "data.csv:row 3"


@pytest.mark.parametrize(
    "cell, how, want",
    [
        ("['Monica Geller', 'Ross Geller']", "join", "Monica Geller & Ross Geller"),
        ('["Monica Geller", "Ross Geller"]', "join", "Monica Geller & Ross Geller"),
        ("['Ross Geller', 'Monica Geller']", "join", "Ross Geller & Monica Geller"),
        ("['Monica Geller', 'Ross Geller']", "first", "Monica Geller"),
        ("[]", "join", ""),
        ("['Monica Geller', 'Ross Geller']", "off", "['Monica Geller', 'Ross Geller']"),
    ],
)
def test_speaker_list_cells(tmp_path, cell, how, want):
    rows = [r if i != 1 else [r[0], r[1], cell, *r[3:]] for i, r in enumerate(ROWS)]
    m = run(tmp_path, write(tmp_path, rows), f"speaker_list={how}")
    speakers = table_of(m)["speaker"].to_list()
    assert speakers[1] == want
    assert speakers[0] == "Ann"  # plain cells untouched


@pytest.mark.parametrize(
    "cell", ["['Monica Geller', 'Ross", "[Monica, Ross]", "[1, 2]", "[['a']]", "[" * 5000 + "]"]
)
def test_a_malformed_speaker_list_names_file_row_and_column(tmp_path, cell):
    rows = [r if i != 3 else [r[0], r[1], cell, *r[3:]] for i, r in enumerate(ROWS)]
    with pytest.raises(ErError) as e:
        run(tmp_path, write(tmp_path, rows))
    assert e.value.what.startswith("malformed speaker list") and "column who" in e.value.what
    assert e.value.at == "data.csv:row 4"
    assert 'speaker_list = "off"' in (e.value.hint or "")


def test_a_bad_speaker_list_value_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ErError) as e:
        run(tmp_path, write(tmp_path), "speaker_list=all")
    assert "speaker_list" in str(e.value.at) + e.value.what


FUZZ = settings(
    max_examples=int(os.environ.get("ER_FUZZ_EXAMPLES", "200")),
    derandomize="ER_FUZZ_EXAMPLES" not in os.environ,  # the same cases unless asked to explore
    deadline=None,
)


def speaker_of(cell: str, how: str = "join") -> str | None:
    frame = pl.DataFrame({"speaker": [cell.strip()], "source": ["d.csv:row 2"]})
    return speakers.speakers(frame, how, "who")[0]


@FUZZ
@given(names=st.lists(st.text(max_size=8), max_size=4), as_json=st.booleans())
def test_any_list_of_names_reads_back_in_order(names, as_json):
    cell = json.dumps(names) if as_json else repr(names)
    kept = [n.strip() for n in names if n.strip()]
    assert speaker_of(cell, "join") == " & ".join(kept)
    assert speaker_of(cell, "first") == (kept[0] if kept else "")


@FUZZ
@given(cell=st.one_of(st.text(max_size=40).map(lambda t: "[" + t), st.text(max_size=20)))
def test_any_cell_is_a_name_or_an_error_naming_its_row(cell):
    try:
        out = speaker_of(cell)
    except ErError as e:  # never another exception: a parser of user files fails in one line
        assert e.at == "d.csv:row 2" and "column who" in e.what and cell.strip().startswith("[")
        return
    if not cell.strip().startswith("["):
        assert out == cell.strip()  # a plain name is kept as written
