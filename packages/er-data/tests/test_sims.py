"""The CH-SIMS adapter end to end: `prepare()` and the real CLI, on a small generated label.csv
(and clips) in CH-SIMS's layout."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import msgspec
import polars as pl
import pytest
from er_core import DatasetManifest, ErError

HEADER = [
    "video_id",
    "clip_id",
    "text",
    "label",
    "label_T",
    "label_A",
    "label_V",
    "annotation",
    "mode",
]
# The multimodal labels sit on MMSA's bin edges (-1, -0.7, -0.1, 0, 0.1, 0.7, 1) and between
# them. video_0001's clips are listed out of order, and clip 10 comes after clip 2.
ROWS = [
    ["video_0001", "1", "我们走吧。", "1.0", "1.0", "0.8", "0.6", "Positive", "train"],
    ["video_0001", "10", "不行。", "-0.1", "0.0", "-0.2", "-0.2", "Negative", "train"],
    ["video_0001", "2", "好吧。", "0.0", "0.2", "-0.2", "0.0", "Neutral", "train"],
    ["video_0002", "1", "太糟糕了！", "-1.0", "-1.0", "-0.8", "-1.0", "Negative", "train"],
    ["video_0002", "2", "还可以。", "0.1", "0.2", "0.0", "0.0", "Neutral", "valid"],
    ["video_0003", "1", "真不错。", "0.7", "0.6", "0.8", "0.6", "Positive", "valid"],
    ["video_0004", "1", "有点难过。", "-0.7", "-0.8", "-0.6", "-0.6", "Negative", "test"],
    ["video_0004", "2", "非常好！", "0.8", "1.0", "0.6", "0.8", "Positive", "test"],
    ["video_0004", "3", "我不喜欢。", "-0.4", "-0.2", "-0.6", "-0.4", "Negative", "test"],
]
# value -> (sentiment2, sentiment3, sentiment5) under edges[i] < v <= edges[i + 1]
BINNED = {
    1.0: ("positive", "positive", "strong_positive"),
    -0.1: ("negative", "negative", "weak_negative"),
    0.0: ("negative", "neutral", "neutral"),
    -1.0: ("negative", "negative", "strong_negative"),
    0.1: ("positive", "neutral", "neutral"),
    0.7: ("positive", "positive", "weak_positive"),
    -0.7: ("negative", "negative", "strong_negative"),
    0.8: ("positive", "positive", "strong_positive"),
    -0.4: ("negative", "negative", "weak_negative"),
}
CLASSES = {
    "sentiment2": ["negative", "positive"],
    "sentiment3": ["negative", "neutral", "positive"],
    "sentiment5": [
        "strong_negative",
        "weak_negative",
        "neutral",
        "weak_positive",
        "strong_positive",
    ],
}


def write_sims(root: Path, rows=None, *, header=HEADER) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows or ROWS:
        w.writerow([dict(zip(HEADER, r, strict=True))[c] for c in header])
    (root / "label.csv").write_text(buf.getvalue(), encoding="utf-8")
    return root


def changed(index: int, col: str, value: str) -> list[list[str]]:
    rows = [list(r) for r in ROWS]
    rows[index][HEADER.index(col)] = value
    return rows


def run_prepare(root: Path, out: Path, **kwargs) -> DatasetManifest:
    from er_data.preparation import prepare

    return prepare("sims", root, out=out, **kwargs)


def rows(m: DatasetManifest) -> dict[str, dict]:
    return {r["id"]: r for r in pl.read_parquet(m.table.path).iter_rows(named=True)}


# --- the table ------------------------------------------------------------------------------


def test_regression_is_the_default(tmp_path):
    m = run_prepare(write_sims(tmp_path / "SIMS"), tmp_path / "out")
    assert (m.dataset, m.task, m.task_type, m.label_column) == (
        "sims",
        "regression",
        "regression",
        "regression",
    )
    assert m.classes == [] and m.class_counts == {}
    assert set(m.tasks) == {
        "regression",
        "regression_T",
        "regression_A",
        "regression_V",
        "sentiment2",
        "sentiment3",
        "sentiment5",
    }
    # mode train / valid / test -> train / dev / test
    assert m.splits == {"train": 4, "dev": 2, "test": 3}
    assert m.inputs.keys() == {"label.csv"} and m.modalities == ["text"]
    t = pl.read_parquet(m.table.path)
    assert t.schema["regression"] == pl.Float64
    got = rows(m)
    r = got["video_0002/1"]
    assert (r["regression"], r["regression_T"], r["regression_A"], r["regression_V"]) == (
        -1.0,
        -1.0,
        -0.8,
        -1.0,
    )
    # video_0002 has a clip in train and one in dev: one dialogue per split
    assert (r["dialogue"], r["speaker"], r["text"], r["split"]) == (
        "video_0002@train",
        "",
        "太糟糕了！",
        "train",
    )
    assert r["source"] == "label.csv:row 4"
    assert r["audio"] is None and r["video"] is None


def test_bins_at_the_edges(tmp_path):
    root = write_sims(tmp_path / "SIMS")
    for task, classes in CLASSES.items():
        m = run_prepare(root, tmp_path / "out", task=task)
        assert (m.task_type, m.classes, m.label_column) == ("classification", classes, task)
        k = list(CLASSES).index(task)
        for uid, r in rows(m).items():
            want = BINNED[r["regression"]][k]
            assert (r[f"{task}_name"], r[task]) == (want, classes.index(want)), (task, uid)
    m3 = run_prepare(root, tmp_path / "out", task="sentiment3")
    assert m3.class_counts == {
        "train": {"negative": 2, "neutral": 1, "positive": 1},
        "dev": {"negative": 0, "neutral": 1, "positive": 1},
        "test": {"negative": 2, "neutral": 0, "positive": 1},
    }


def test_turns_follow_the_clip_number(tmp_path):
    m = run_prepare(write_sims(tmp_path / "SIMS"), tmp_path / "out")
    got = rows(m)
    assert [got[f"video_0001/{c}"]["turn"] for c in (1, 2, 10)] == [0, 1, 2]
    assert [got[f"video_0004/{c}"]["turn"] for c in (1, 2, 3)] == [0, 1, 2]
    assert got["video_0003/1"]["turn"] == 0
    assert got["video_0003/1"]["dialogue"] == "video_0003"
    # a video across splits: each split's clips are a dialogue of their own, counted from 0
    assert [
        (got[f"video_0002/{c}"]["dialogue"], got[f"video_0002/{c}"]["turn"]) for c in (1, 2)
    ] == [
        ("video_0002@train", 0),
        ("video_0002@dev", 0),
    ]


def test_unimodal_columns_are_optional(tmp_path):
    header = [c for c in HEADER if c not in ("label_T", "label_A", "label_V")]
    m = run_prepare(write_sims(tmp_path / "SIMS", header=header), tmp_path / "out")
    assert set(m.tasks) == {"regression", "sentiment2", "sentiment3", "sentiment5"}
    with pytest.raises(ErError, match="no task 'regression_T'"):
        run_prepare(tmp_path / "SIMS", tmp_path / "out", task="regression_T")


# --- media ----------------------------------------------------------------------------------


def test_clips_padded_unpadded_missing_and_junk(tmp_path, tiny_media):
    pytest.importorskip("av")
    root = write_sims(tmp_path / "SIMS")
    raw = root / "Raw"
    for video, clip in [
        ("video_0001", 1),
        ("video_0001", 2),
        ("video_0001", 10),
        ("video_0002", 1),
    ]:
        tiny_media.clip(raw / video / f"{clip:04d}.mp4")
    tiny_media.clip(raw / "video_0004" / "2.mp4")  # an unpadded name is found too
    (raw / "video_0004").mkdir(exist_ok=True)
    (raw / "video_0004" / "0003.mp4").write_bytes(b"not a video")
    m = run_prepare(root, tmp_path / "out")
    assert m.modalities == ["text", "audio", "video"]
    got = rows(m)
    assert (
        got["video_0001/10"]["video"] == got["video_0001/10"]["audio"] == "Raw/video_0001/0010.mp4"
    )
    assert got["video_0004/2"]["video"] == "Raw/video_0004/2.mp4"
    assert got["video_0002/2"]["video"] == "Raw/video_0002/0002.mp4"  # missing: the official name
    assert all(r["video_start"] is None and r["audio_start"] is None for r in got.values())
    problems: dict[str, set[str]] = {}
    for i in m.media_issues:
        problems.setdefault(i.utterance, set()).add(i.problem.split(" (")[0])
    assert problems == {
        "video_0002/2": {"missing"},
        "video_0003/1": {"missing"},
        "video_0004/1": {"missing"},
        "video_0004/3": {"does not open"},
    }
    # a template for clips named by their bare number
    bare = run_prepare(root, tmp_path / "out", overrides=["clip_name={clip_id}.mp4"])
    assert rows(bare)["video_0001/10"]["video"] == "Raw/video_0001/10.mp4"
    with pytest.raises(ErError, match="clip_name") as e:
        run_prepare(root, tmp_path / "out", overrides=["clip_name={clip}.mp4"])
    assert e.value.at == "label.csv:row 1"
    text_only = run_prepare(root, tmp_path / "out", overrides=["media=false"])
    assert text_only.modalities == ["text"] and text_only.media_issues == []


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "col", "value", "at"),
    [
        (3, "label", "1.5", "label.csv:row 4"),
        (0, "label", "-1.01", "label.csv:row 1"),
        (6, "label", "positive", "label.csv:row 7"),
        (4, "label", "", "label.csv:row 5"),
        (8, "label_A", "nan", "label.csv:row 9"),
    ],
)
def test_labels_outside_the_range_name_their_row(tmp_path, index, col, value, at):
    root = write_sims(tmp_path / "SIMS", changed(index, col, value))
    with pytest.raises(ErError, match=f"{col} '.*' is not a number in \\[-1, 1\\]") as e:
        run_prepare(root, tmp_path / "out")
    assert e.value.at == at and e.value.hint
    assert not (tmp_path / "out" / "er-data").exists()


def test_unknown_mode(tmp_path):
    root = write_sims(tmp_path / "SIMS", changed(5, "mode", "training"))
    with pytest.raises(ErError, match="unknown mode 'training'") as e:
        run_prepare(root, tmp_path / "out")
    assert e.value.at == "label.csv:row 6"


# --- through the CLI --------------------------------------------------------------------------


def test_cli_prepare(tmp_path, cli):
    root = write_sims(tmp_path / "SIMS")
    r = cli(
        "prepare",
        "sims",
        "--root",
        str(root),
        "--out",
        str(tmp_path / "out"),
        "--task",
        "sentiment5",
    )
    assert r.returncode == 0, r.stderr
    m = msgspec.json.decode(r.stdout, type=DatasetManifest)
    assert m.task == "sentiment5" and m.classes == CLASSES["sentiment5"]
    assert m.class_counts["test"] == {
        "strong_negative": 1,
        "weak_negative": 1,
        "neutral": 0,
        "weak_positive": 0,
        "strong_positive": 1,
    }


def test_cli_out_of_range_label_fails_cleanly(tmp_path, cli):
    root = write_sims(tmp_path / "SIMS", changed(1, "label", "2"))
    out = tmp_path / "out"
    r = cli("prepare", "sims", "--root", str(root), "--out", str(out))
    err = r.stderr.decode()
    assert r.returncode == 1 and r.stdout == b"", err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0] == "error: label '2' is not a number in [-1, 1], at label.csv:row 2"
    assert lines[1].startswith("hint: ") and "-1" in lines[1]
    assert not (out / "er-data").exists() or list((out / "er-data").iterdir()) == []


def test_cli_missing_column(tmp_path, cli):
    root = write_sims(tmp_path / "SIMS", header=[c for c in HEADER if c != "mode"])
    r = cli("prepare", "sims", "--root", str(root), "--out", str(tmp_path / "out"))
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert err.startswith("error: missing required column 'mode', at ") and "label.csv" in err
    assert "hint: the file has columns: video_id, clip_id" in err


def test_empty_clip_id(tmp_path):
    root = write_sims(tmp_path / "SIMS", changed(2, "clip_id", " "))
    with pytest.raises(ErError, match="empty clip_id") as e:
        run_prepare(root, tmp_path / "out")
    assert e.value.at == "label.csv:row 3"
