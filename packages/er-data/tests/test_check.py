"""`er_data.check_table`: the one check every reader of an utterance table runs (issue 12, class 6).

A toy dataset is prepared once; each test damages a copy of its table (with polars, keeping or
fixing the manifest's sha256 as the case needs) and expects one `error:` line naming the table
file (and row) and a `hint:` line.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec
import polars as pl
import pytest
from er_core import DatasetManifest, ErError, FileRef, sha256_file
from er_core.stream import encode
from er_data import check_table

CSV = """conv,line,utterance,label,arousal,fold
c1,0,Hi there.,neutral,0.1,train
c1,1,Terrible.,sad,0.7,train
c2,0,We won!,happy,0.9,train
c2,1,Get out.,sad,0.8,train
c3,0,Fine.,neutral,0.2,valid
c3,1,Really?,neutral,0.3,valid
c4,0,I miss her.,sad,0.4,test
c4,1,Me too.,happy,0.5,test
"""
MAPPING = """
dataset = "toy"
file = "utts.csv"
[columns]
id = "{conv}_{line}"
dialogue = "conv"
turn = "line"
text = "utterance"
split = "fold"
[split_names]
valid = "dev"
[tasks.emotion]
column = "label"
classes = ["neutral", "happy", "sad"]
[tasks.arousal]
column = "arousal"
type = "regression"
"""


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> DatasetManifest:
    from er_data.preparation import prepare

    base = tmp_path_factory.mktemp("toy")
    (base / "data").mkdir()
    (base / "data" / "utts.csv").write_text(CSV)
    (base / "map.toml").write_text(MAPPING)
    return prepare("table", base / "data", configs=[str(base / "map.toml")], out=base / "out")


def damaged(
    m: DatasetManifest,
    folder: Path,
    edit: Callable[[pl.DataFrame], pl.DataFrame] | None,
    *,
    fix_sha: bool = True,
) -> DatasetManifest:
    """A copy of the manifest's table, edited, and a manifest naming it (sha fixed or not)."""
    path = folder / "utterances.parquet"
    shutil.copyfile(m.table.path, path)
    if edit is not None:
        edit(pl.read_parquet(path)).write_parquet(path)
    sha = sha256_file(path) if fix_sha else m.table.sha256
    return msgspec.structs.replace(m, table=FileRef(path=str(path), sha256=sha))


def refused(m: DatasetManifest, *needles: str) -> ErError:
    with pytest.raises(ErError) as e:
        check_table(m)
    lines = e.value.lines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    assert "bug in er" not in lines[1]
    for n in needles:
        assert n in lines[0], lines
    return e.value


def test_a_prepared_table_passes(prepared) -> None:
    frame = check_table(prepared)
    assert frame.height == 8 and frame["turn"].to_list() == [0, 1] * 4


def test_a_missing_table(prepared, tmp_path: Path) -> None:
    m = msgspec.structs.replace(
        prepared, table=FileRef(path=str(tmp_path / "gone.parquet"), sha256="0" * 64)
    )
    e = refused(m, "table is gone", str(tmp_path / "gone.parquet"))
    assert "er-data prepare" in (e.hint or "")


def test_an_edited_table_fails_its_sha(prepared, tmp_path: Path) -> None:
    edit = lambda f: f.with_columns(pl.col("text").str.to_uppercase())  # noqa: E731
    m = damaged(prepared, tmp_path, edit, fix_sha=False)
    e = refused(m, "sha256", str(tmp_path / "utterances.parquet"))
    assert "edited or replaced" in (e.hint or "") and "cache" not in str(e)
    assert check_table(m, verify_sha=False)["text"][0] == "HI THERE."


def test_not_parquet(prepared, tmp_path: Path) -> None:
    m = damaged(prepared, tmp_path, None)
    Path(m.table.path).write_bytes(b"id,text\nx,y\n")
    m = msgspec.structs.replace(
        m, table=FileRef(path=m.table.path, sha256=sha256_file(m.table.path))
    )
    refused(m, "cannot read the utterance table as Parquet")


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (lambda f: f.drop("speaker"), ["lacks column(s) speaker"]),
        (lambda f: f.drop("emotion_name"), ["lacks column(s) emotion_name"]),
        (lambda f: f.with_columns(pl.col("turn").cast(pl.String)), ["'turn'", "String"]),
        (lambda f: f.with_columns(pl.col("arousal").cast(pl.String)), ["'arousal'"]),
        (lambda f: f.with_columns(pl.col("emotion").cast(pl.Float64)), ["'emotion'"]),
    ],
)
def test_schema(prepared, tmp_path: Path, edit, needles) -> None:
    refused(damaged(prepared, tmp_path, edit), *needles)


def at_row(col: str, row: int, value) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Set `col` of table row `row` (0-based) to `value`, keeping the column's type."""

    def edit(f: pl.DataFrame) -> pl.DataFrame:
        return f.with_columns(
            pl.when(pl.int_range(pl.len()) == row)
            .then(pl.lit(value, dtype=f.schema[col]))
            .otherwise(pl.col(col))
            .alias(col)
        )

    return edit


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (at_row("id", 3, "c1_0"), ["duplicate utterance id 'c1_0'", ":row 4 (utts.csv:row 4)"]),
        (at_row("id", 2, None), ["empty utterance id", ":row 3 "]),
        (at_row("split", 5, None), ["unknown split 'None'", ":row 6 "]),
        (at_row("split", 5, "valid"), ["unknown split 'valid'"]),
        (at_row("text", 1, " "), ["empty text", "'c1_1'"]),
        (at_row("dialogue", 0, None), ["missing dialogue", "'c1_0'"]),
        (at_row("turn", 0, None), ["missing turn", "'c1_0'"]),
        (at_row("turn", 0, -1), ["negative turn -1", "'c1_0'", ":row 1 (utts.csv:row 1)"]),
        (at_row("split", 7, "train"), ["dialogue 'c4' spans splits test", "and train"]),
        (at_row("turn", 1, 0), ["dialogue 'c1' repeats turn 0", ":row 1 "]),
        (at_row("emotion", 2, 3), ["emotion class index 3 is out of range [0, 3)", ":row 3 "]),
        (at_row("emotion", 2, -1), ["emotion class index -1 is out of range"]),
        (at_row("emotion", 2, 0), ["does not match its name 'happy'"]),
        (at_row("emotion_name", 2, None), ["does not match its name 'None'"]),
        (at_row("emotion", 4, None), ["utterance 'c3_0' has no emotion label"]),
        (at_row("arousal", 4, float("inf")), ["arousal target inf is not a finite number"]),
        (at_row("arousal", 4, float("nan")), ["arousal target nan"]),
        (at_row("audio", 0, "../../../../etc/passwd"), ["'../../../../etc/passwd' escapes"]),
        (at_row("video", 6, "/etc/passwd"), ["'/etc/passwd' escapes", ":row 7 "]),
        (at_row("video", 6, "a/\x00b"), ["escapes"]),
    ],
)
def test_rows(prepared, tmp_path: Path, edit, needles) -> None:
    e = refused(damaged(prepared, tmp_path, edit), *needles)
    assert e.at and e.at.startswith(str(tmp_path / "utterances.parquet") + ":row ")
    assert "rerun `er-data prepare`" in (e.hint or "")


def test_a_null_regression_target_of_another_task_is_allowed(prepared, tmp_path: Path) -> None:
    # rows may lack a label for tasks other than the manifest's own (IEMOCAP's emotion4)
    assert check_table(damaged(prepared, tmp_path, at_row("arousal", 4, None))).height == 8


def test_extra_columns_are_kept(prepared, tmp_path: Path) -> None:
    """A newer writer may add columns; even one named like the check's row numbers is fine."""
    edit = lambda f: f.with_columns(pl.lit(7).alias("__row"), pl.lit("x").alias("new"))  # noqa: E731
    frame = check_table(damaged(prepared, tmp_path, edit))
    assert frame["__row"].to_list() == [7] * 8 and frame["new"][0] == "x"
    edit = lambda f: at_row("turn", 0, -1)(f).with_columns(pl.lit(7).alias("__row"))  # noqa: E731
    refused(damaged(prepared, tmp_path, edit), ":row 1 ")


def test_a_manifest_from_before_tasks(prepared, tmp_path: Path) -> None:
    """Old manifests name one task by label_column: the check falls back to it."""
    m = msgspec.structs.replace(damaged(prepared, tmp_path, at_row("emotion", 0, 9)), tasks={})
    refused(m, "emotion class index 9")


def test_a_manifest_task_without_its_column(prepared, tmp_path: Path) -> None:
    refused(msgspec.structs.replace(prepared, task="sentiment"), "task 'sentiment' is not among")


def test_cli_readers_check_the_table(prepared, tmp_path: Path, cli) -> None:
    edit = lambda f: f.with_columns(pl.col("text").str.to_uppercase())  # noqa: E731
    stream = encode(damaged(prepared, tmp_path, edit, fix_sha=False)) + b"\n"
    for cmd in ("validate", "stats"):
        r = cli(cmd, input=stream)
        lines = r.stderr.decode().splitlines()
        assert r.returncode == 1 and r.stdout == b"", (cmd, lines)
        assert len(lines) == 2 and "sha256 differs" in lines[0] and lines[1].startswith("hint: ")


def test_a_damaged_earlier_output_is_not_reused(tmp_path: Path) -> None:
    """prepare finds its earlier output by id: a table edited since then is refused, not
    passed on as the result."""
    from er_data.preparation import prepare

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "utts.csv").write_text(CSV)
    (tmp_path / "map.toml").write_text(MAPPING)
    args = ("table", tmp_path / "data")
    m = prepare(*args, configs=[str(tmp_path / "map.toml")], out=tmp_path / "out")
    table = Path(m.table.path)
    pl.read_parquet(table).head(7).write_parquet(table)
    with pytest.raises(ErError) as e:
        prepare(*args, configs=[str(tmp_path / "map.toml")], out=tmp_path / "out")
    assert "sha256" in e.value.what and str(table.parent) in (e.value.hint or "")
