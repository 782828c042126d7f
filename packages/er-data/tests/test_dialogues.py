"""Dataset keys that make no sense fail loudly (issue 12, class 9; and class 8's negative turn).

`prepare` refuses a dialogue that spans splits or repeats a turn, naming the dialogue and two
of its rows with a hint about the dialogue key, refuses a negative turn, and renumbers turns
from 0 in their given order within each dialogue.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest
from er_core import DatasetManifest, ErError
from er_data.preparation import prepare

MAPPING = """
dataset = "toy"
file = "utts.csv"
[columns]
id = "{{scene}}_{{line}}"
dialogue = "{dialogue}"
turn = "line"
text = "utterance"
split = "fold"
[tasks.emotion]
column = "label"
classes = ["neutral", "sad"]
"""


def run(tmp_path: Path, rows: list[dict], dialogue: str = "scene", **kw) -> DatasetManifest:
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    pl.DataFrame(rows).write_csv(root / "utts.csv")
    mapping = tmp_path / "map.toml"
    mapping.write_text(MAPPING.format(dialogue=dialogue))
    return prepare("table", root, configs=[str(mapping)], out=tmp_path / "out", **kw)


def row(scene: str, line: int | str, fold: str, **kw) -> dict:
    base = {"scene": scene, "line": str(line), "utterance": f"{scene} says {line}"}
    return base | {"label": "sad", "fold": fold, "room": scene[:2]} | kw


def refused(tmp_path: Path, rows: list[dict], *needles: str, **kw) -> ErError:
    with pytest.raises(ErError) as e:
        run(tmp_path, rows, **kw)
    lines = e.value.lines()
    assert len(lines) == 2 and lines[1].startswith("hint: "), lines
    for n in needles:
        assert n in lines[0], lines
    assert not list((tmp_path / "out").rglob("*.parquet"))
    return e.value


def test_the_issue_example_a_wrong_dialogue_key(tmp_path: Path) -> None:
    """827 scenes of 3 lines, split by scene, keyed on a column with 20 values: unique ids, but
    "dialogues" that span splits."""
    rng = random.Random(0)
    rows = []
    for s in range(827):
        fold = rng.choice(["train"] * 8 + ["dev", "test"])
        rows += [row(f"s{s}", n, fold, act=f"a{s % 20}") for n in range(3)]
    e = refused(tmp_path, rows, "dialogue 'a", "spans splits", "utts.csv:row ", dialogue="act")
    assert "dialogue key" in (e.hint or "") and "columns.dialogue" in (e.hint or "")
    assert run(tmp_path, rows).splits["train"] > 0  # the right key prepares


def test_a_dialogue_repeating_a_turn(tmp_path: Path) -> None:
    # rooms r1 holds scenes r1a and r1b, both in train: two turn 0s in dialogue "r1"
    rows = [row("r1a", 0, "train"), row("r1a", 1, "train"), row("r1b", 0, "train")]
    rows += [row("r2a", 0, "dev"), row("r3a", 0, "test")]
    e = refused(
        tmp_path, rows, "dialogue 'r1' repeats turn 0", "also at utts.csv:row 3", dialogue="room"
    )
    assert e.at == "utts.csv:row 1" and "columns.turn" in (e.hint or "")


def test_turns_are_renumbered_from_0_in_their_order(tmp_path: Path) -> None:
    # 1-based, with a gap, and listed out of order: 0-based, dense, in the order of the numbers
    rows = [row("a", 3, "train"), row("a", 1, "train"), row("a", 7, "train")]
    rows += [row("b", 1, "dev"), row("c", 1, "test"), row("c", 2, "test")]
    t = pl.read_parquet(run(tmp_path, rows).table.path)
    assert dict(zip(t["id"], t["turn"], strict=True)) == {
        "a_3": 1,
        "a_1": 0,
        "a_7": 2,
        "b_1": 0,
        "c_1": 0,
        "c_2": 1,
    }
    assert t["id"].to_list()[:3] == ["a_3", "a_1", "a_7"]  # the rows keep their file order


def test_turns_count_over_all_tasks_rows(tmp_path: Path) -> None:
    """Rows without this task's label are dropped after renumbering: a turn is the same
    whichever task the table is for."""
    rows = [row("a", 1, "train"), row("a", 2, "train", label=""), row("a", 3, "train")]
    rows += [row("b", 1, "dev"), row("c", 1, "test")]
    t = pl.read_parquet(run(tmp_path, rows).table.path)
    assert dict(zip(t["id"], t["turn"], strict=True)) == {"a_1": 0, "a_3": 2, "b_1": 0, "c_1": 0}


@pytest.mark.parametrize("line", ["-1", "-7"])
def test_a_negative_turn_names_its_row(tmp_path: Path, line: str) -> None:
    rows = [row("a", 0, "train"), row("a", line, "train"), row("b", 0, "dev")]
    e = refused(tmp_path, [*rows, row("c", 0, "test")], f"negative turn {line}")
    assert e.at == "utts.csv:row 2"


def test_a_turn_too_large_for_the_table(tmp_path: Path) -> None:
    rows = [row("a", "99999999999", "train"), row("b", 0, "dev"), row("c", 0, "test")]
    refused(tmp_path, rows, "turn value '99999999999' is not an integer")


def write_meld(root: Path, utterance_id: str) -> Path:
    """The three MELD CSVs, one dialogue each; train's second utterance has `utterance_id`."""
    head = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
    root.mkdir()
    for split, name in (("train", "train"), ("dev", "dev"), ("test", "test")):
        second = utterance_id if split == "train" else "1"
        body = f"1,Hi.,Ann,joy,positive,0,0\n2,Bye.,Bob,anger,negative,0,{second}\n"
        (root / f"{name}_sent_emo.csv").write_text(head + body)
    return root


@pytest.mark.parametrize(
    ("uid", "needle"), [("-1", "negative turn -1"), ("3000000000", "too large")]
)
def test_meld_utterance_id(tmp_path: Path, cli, uid: str, needle: str) -> None:
    root = write_meld(tmp_path / "MELD", uid)
    r = cli("prepare", "meld", "--root", str(root), "--out", str(tmp_path / "out"))
    lines = r.stderr.decode().splitlines()
    assert r.returncode == 1 and r.stdout == b"" and len(lines) == 2, lines
    assert needle in lines[0] and lines[0].endswith("at train_sent_emo.csv:row 2"), lines
    assert lines[1].startswith("hint: ")
