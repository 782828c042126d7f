"""The MELD adapter end to end: `prepare()` and the real CLI, on small fixture CSVs in MELD's layout."""

from __future__ import annotations

import copy
import csv
import io
import shlex
import subprocess
import sys
from pathlib import Path

import msgspec
import polars as pl
import pytest
from er_core import DatasetManifest, ErError, sha256_file

HEADER = [
    "Sr No.",
    "Utterance",
    "Speaker",
    "Emotion",
    "Sentiment",
    "Dialogue_ID",
    "Utterance_ID",
    "Season",
    "Episode",
    "StartTime",
    "EndTime",
]
FILES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
EMOTIONS = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
SENTIMENTS = ["neutral", "positive", "negative"]


def row(text, speaker, emotion, sentiment, dia, utt):
    return {
        "Utterance": text,
        "Speaker": speaker,
        "Emotion": emotion,
        "Sentiment": sentiment,
        "Dialogue_ID": str(dia),
        "Utterance_ID": str(utt),
    }


# Dialogue ids restart in every split, as in MELD. Train dialogue 1 skips utterance 1, so
# turn (= Utterance_ID) differs from the row's rank. Text uses ’ … “ ” (all in cp1252).
ROWS = {
    "train": [
        row("Hi there.", "Chandler", "neutral", "neutral", 0, 0),
        row("You’re late!", "Monica", "anger", "negative", 0, 1),
        row("Oh my God!", "Rachel", "surprise", "positive", 0, 2),
        row("Great, great.", "Joey", "joy", "positive", 1, 0),
        row("I’m so sorry.", "Ross", "sadness", "negative", 1, 2),
    ],
    "dev": [
        row("Hey.", "Phoebe", "neutral", "neutral", 0, 0),
        row("Eww… gross.", "Rachel", "disgust", "negative", 0, 1),
    ],
    "test": [
        row("What was that?", "Ross", "fear", "negative", 0, 0),
        row("Nothing, nothing.", "Monica", "neutral", "neutral", 0, 1),
        row("“Yay!”", "Joey", "joy", "positive", 1, 0),
    ],
}


def write_meld(
    root: Path,
    rows: dict[str, list[dict[str, str]]] | None = None,
    *,
    encoding: str = "utf-8",
    drop: str | None = None,
) -> Path:
    """MELD's three CSVs under `root`, with MELD's exact columns (minus `drop`)."""
    root.mkdir(parents=True, exist_ok=True)
    header = [c for c in HEADER if c != drop]
    for split, fname in FILES.items():
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for i, r in enumerate((rows or ROWS)[split], start=1):
            full = {
                "Sr No.": str(i),
                **r,
                "Season": "8",
                "Episode": "21",
                "StartTime": "00:16:16,059",
                "EndTime": "00:16:21,731",
            }
            w.writerow([full[c] for c in header])
        (root / fname).write_bytes(buf.getvalue().encode(encoding))
    return root


def mutated(split: str, index: int, **changes: str) -> dict[str, list[dict[str, str]]]:
    rows = copy.deepcopy(ROWS)
    rows[split][index].update(changes)
    return rows


def run_prepare(root: Path, out: Path, **kwargs) -> DatasetManifest:
    from er_data.preparation import prepare

    return prepare("meld", root, out=out, **kwargs)


def table(m: DatasetManifest) -> pl.DataFrame:
    return pl.read_parquet(m.table.path)


# --- the table ------------------------------------------------------------------------------


def test_counts_and_class_counts(tmp_path):
    m = run_prepare(write_meld(tmp_path / "MELD"), tmp_path / "out", task="emotion")
    assert m.dataset == "meld" and m.task == "emotion" and m.task_type == "classification"
    assert m.classes == EMOTIONS and m.label_column == "emotion"
    assert m.splits == {"train": 5, "dev": 2, "test": 3}
    z = dict.fromkeys(EMOTIONS, 0)
    assert m.class_counts == {
        "train": {**z, "neutral": 1, "anger": 1, "surprise": 1, "joy": 1, "sadness": 1},
        "dev": {**z, "neutral": 1, "disgust": 1},
        "test": {**z, "fear": 1, "neutral": 1, "joy": 1},
    }
    assert list(m.class_counts["train"]) == EMOTIONS  # class order, not count order
    s = run_prepare(write_meld(tmp_path / "MELD"), tmp_path / "out", task="sentiment")
    assert s.classes == SENTIMENTS and s.label_column == "sentiment"
    assert s.class_counts == {
        "train": {"neutral": 1, "positive": 2, "negative": 2},
        "dev": {"neutral": 1, "positive": 0, "negative": 1},
        "test": {"neutral": 1, "positive": 1, "negative": 1},
    }
    assert set(m.tasks) == {"emotion", "sentiment"}


def test_default_task_is_emotion(tmp_path):
    m = run_prepare(write_meld(tmp_path / "MELD"), tmp_path / "out")
    assert m.task == "emotion"


def test_ids_dialogues_turns_and_labels(tmp_path):
    m = run_prepare(write_meld(tmp_path / "MELD"), tmp_path / "out")
    t = table(m)
    assert t.height == 10
    got = {r["id"]: r for r in t.iter_rows(named=True)}
    # dialogue 0 exists in every split: the split keeps them apart
    assert {"train/dia0_utt0", "dev/dia0_utt0", "test/dia0_utt0"} <= set(got)
    assert got["dev/dia0_utt1"]["dialogue"] == "dev/dia0"
    assert got["train/dia0_utt1"]["dialogue"] == "train/dia0"
    assert t.filter(pl.col("split") == "train")["dialogue"].n_unique() == 2
    assert t["dialogue"].n_unique() == 5
    # turns count from 0 in Utterance_ID order (train dialogue 1 has no utterance 1)
    assert got["train/dia1_utt2"]["turn"] == 1
    assert got["train/dia1_utt0"]["turn"] == 0
    r = got["train/dia0_utt1"]
    assert (r["speaker"], r["text"], r["split"]) == ("Monica", "You’re late!", "train")
    assert (r["emotion"], r["emotion_name"]) == (EMOTIONS.index("anger"), "anger")
    assert (r["sentiment"], r["sentiment_name"]) == (SENTIMENTS.index("negative"), "negative")
    assert r["source"] == "train_sent_emo.csv:row 2"
    assert got["test/dia1_utt0"]["text"] == "“Yay!”"
    assert t["audio"].null_count() == t["video"].null_count() == 10
    assert t.schema["turn"] == pl.Int32 and t.schema["emotion"] == pl.Int32


def test_manifest_describes_its_files(tmp_path):
    root = write_meld(tmp_path / "MELD")
    m = run_prepare(root, tmp_path / "out")
    p = Path(m.table.path)
    assert p.is_file() and p.is_absolute()
    assert p.parent == (tmp_path / "out" / "er-data" / m.id[:12]).resolve()
    assert m.table.sha256 == sha256_file(p) and m.table.bytes == p.stat().st_size
    assert m.source_root == str(root.resolve())
    assert m.inputs == {f: sha256_file(root / f) for f in FILES.values()}
    assert m.adapter == "meld" and m.tool.startswith("er-data ")
    assert m.config["task"] == "emotion"
    saved = msgspec.json.decode((p.parent / "manifest.json").read_bytes(), type=DatasetManifest)
    assert saved == m


def test_labels_are_matched_case_and_space_insensitively(tmp_path):
    root = write_meld(tmp_path / "MELD", mutated("train", 0, Emotion=" JOY ", Sentiment="Positive"))
    t = table(run_prepare(root, tmp_path / "out"))
    r = t.filter(pl.col("id") == "train/dia0_utt0").row(0, named=True)
    assert (r["emotion_name"], r["sentiment_name"]) == ("joy", "positive")


def test_cp1252_copy_reads_the_same(tmp_path):
    utf8 = run_prepare(write_meld(tmp_path / "utf8"), tmp_path / "out")
    root = write_meld(tmp_path / "cp1252", encoding="cp1252")
    raw = (root / "train_sent_emo.csv").read_bytes()
    assert b"You\x92re late!" in raw  # really cp1252, not utf-8
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    old = run_prepare(root, tmp_path / "out")
    assert table(old).filter(pl.col("id") == "train/dia0_utt1")["text"].item() == "You’re late!"
    assert table(old).equals(table(utf8))
    assert old.id != utf8.id  # different bytes in, different output


def test_utf8_bom_is_ignored(tmp_path):
    root = write_meld(tmp_path / "MELD")
    p = root / "train_sent_emo.csv"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    t = table(run_prepare(root, tmp_path / "out"))
    assert t.filter(pl.col("split") == "train").height == 5


# --- content addressing ---------------------------------------------------------------------


def test_same_inputs_same_folder_and_second_run_is_a_no_op(tmp_path):
    root = write_meld(tmp_path / "MELD")
    out = tmp_path / "out"
    first = run_prepare(root, out)
    folder = Path(first.table.path).parent
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    second = run_prepare(root, out)
    assert second == first
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # nothing rewritten
    assert sorted(p.name for p in (out / "er-data").iterdir()) == [first.id[:12]]
    # an identical copy of the data elsewhere gives the same id (content, not location)
    other = run_prepare(write_meld(tmp_path / "copy"), tmp_path / "out2")
    assert other.id == first.id


def test_cli_rerun_prints_the_same_manifest(tmp_path, cli):
    root = write_meld(tmp_path / "MELD")
    args = ["prepare", "meld", "--root", str(root), "--out", str(tmp_path / "out")]
    a, b = cli(*args), cli(*args)
    assert a.returncode == b.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    assert a.stdout.count(b"\n") == 1 and a.stdout.endswith(b"\n")
    m = msgspec.json.decode(a.stdout, type=DatasetManifest)
    assert (Path(m.table.path).parent / "manifest.json").read_bytes() == a.stdout


def test_prepare_into_head_is_quiet(tmp_path):
    """`er-data prepare meld ... | head -1` through a real shell pipe."""
    root = write_meld(tmp_path / "MELD")
    r = subprocess.run(
        f"{shlex.quote(sys.executable)} -m er_data prepare meld --root {shlex.quote(str(root))}"
        f" --out {shlex.quote(str(tmp_path / 'out'))} | head -1",
        shell=True,
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0
    m = msgspec.json.decode(r.stdout, type=DatasetManifest)
    assert m.splits == {"train": 5, "dev": 2, "test": 3}
    assert b"Traceback" not in r.stderr and b"BrokenPipe" not in r.stderr


def test_different_task_or_data_gives_a_different_id(tmp_path):
    root = write_meld(tmp_path / "MELD")
    out = tmp_path / "out"
    emo = run_prepare(root, out, task="emotion")
    sent = run_prepare(root, out, task="sentiment")
    assert emo.id != sent.id
    assert Path(emo.table.path).parent != Path(sent.table.path).parent
    assert len(list((out / "er-data").iterdir())) == 2
    write_meld(root, mutated("dev", 0, Utterance="Hey!"))
    assert run_prepare(root, out, task="emotion").id != emo.id


# --- media ----------------------------------------------------------------------------------


def test_no_clip_folders_is_text_only(tmp_path, cli):
    root = write_meld(tmp_path / "MELD")
    r = cli("prepare", "meld", "--root", str(root), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    m = msgspec.json.decode(r.stdout, type=DatasetManifest)
    assert m.modalities == ["text"]
    assert m.media_issues == []
    assert b"warning" not in r.stderr


def test_clip_folder_with_missing_and_junk_clips(tmp_path, cli, tiny_media):
    pytest.importorskip("av")
    root = write_meld(tmp_path / "MELD")
    clips = root / "train_splits"
    clips.mkdir()
    for stem in ("dia0_utt0", "dia0_utt2", "dia1_utt0"):  # dia0_utt1 is missing
        tiny_media.clip(clips / f"{stem}.mp4")
    tiny_media.wav(clips / "dia1_utt0.wav")  # a WAV beside a clip is its audio
    (clips / "dia1_utt2.mp4").write_bytes(b"this is not a video")
    r = cli("prepare", "meld", "--root", str(root), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    m = msgspec.json.decode(r.stdout, type=DatasetManifest)
    assert m.modalities == ["text", "audio", "video"]
    by_utt: dict[str, set[tuple[str, str]]] = {}
    for issue in m.media_issues:
        by_utt.setdefault(issue.utterance, set()).add((issue.path, issue.problem))
    assert set(by_utt) == {"train/dia0_utt1", "train/dia1_utt2"}
    assert by_utt["train/dia0_utt1"] == {("train_splits/dia0_utt1.mp4", "missing")}
    junk = by_utt["train/dia1_utt2"]
    assert {p for p, _ in junk} == {"train_splits/dia1_utt2.mp4"}
    assert all(problem.startswith("does not open") for _, problem in junk), junk
    err = r.stderr.decode()
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert any("train_splits/dia0_utt1.mp4" in w and "missing" in w for w in warnings), err
    assert any("train_splits/dia1_utt2.mp4" in w for w in warnings), err
    assert "Traceback" not in err
    t = table(m)
    got = {r["id"]: r for r in t.iter_rows(named=True)}
    assert got["train/dia0_utt0"]["video"] == "train_splits/dia0_utt0.mp4"
    assert got["train/dia0_utt0"]["audio"] == "train_splits/dia0_utt0.mp4"  # the clip's track
    assert got["train/dia1_utt0"]["audio"] == "train_splits/dia1_utt0.wav"
    assert got["dev/dia0_utt0"]["video"] is None  # dev has no clip folder
    # media=false: text only, even with clips present
    r = cli(
        "prepare",
        "meld",
        "--root",
        str(root),
        "--out",
        str(tmp_path / "out"),
        "--set",
        "media=false",
    )
    assert r.returncode == 0, r.stderr
    m2 = msgspec.json.decode(r.stdout, type=DatasetManifest)
    assert m2.modalities == ["text"] and m2.media_issues == [] and m2.id != m.id


# --- bad input, through the real CLI ----------------------------------------------------------


def assert_fails(r, out: Path, at_endswith: str, *in_error: str, code: int = 1) -> str:
    """Exit `code`, stdout empty, exactly `error: ..., at <place>` and `hint: ...` on stderr, and
    no output folder left behind."""
    err = r.stderr.decode()
    assert r.returncode == code, err
    assert r.stdout == b""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("error: "), err
    assert ", at " in lines[0], err
    assert lines[0].rsplit(", at ", 1)[1].endswith(at_endswith), err
    for s in in_error:
        assert s in lines[0], err
    assert lines[1].startswith("hint: ") and len(lines[1]) > len("hint: "), err
    assert not (out / "er-data").exists() or list((out / "er-data").iterdir()) == []
    return lines[0]


def prepare_cli(cli, root: Path, out: Path, *extra: str):
    return cli("prepare", "meld", "--root", str(root), "--out", str(out), *extra)


def test_missing_root(tmp_path, cli):
    out = tmp_path / "out"
    r = prepare_cli(cli, tmp_path / "nope", out)
    assert_fails(r, out, str(tmp_path / "nope"), "not found")


def test_missing_csv(tmp_path, cli):
    root = write_meld(tmp_path / "MELD")
    (root / "dev_sent_emo.csv").unlink()
    out = tmp_path / "out"
    assert_fails(prepare_cli(cli, root, out), out, "dev_sent_emo.csv", "not found")


def test_missing_required_column(tmp_path, cli):
    root = write_meld(tmp_path / "MELD", drop="Emotion")
    out = tmp_path / "out"
    line = assert_fails(prepare_cli(cli, root, out), out, "train_sent_emo.csv", "'Emotion'")
    assert "missing" in line


def test_unknown_label_names_file_and_row(tmp_path, cli):
    out = tmp_path / "out"
    root = write_meld(tmp_path / "a", mutated("train", 3, Emotion="happyish"))
    assert_fails(prepare_cli(cli, root, out), out, "train_sent_emo.csv:row 4", "'happyish'")
    root = write_meld(tmp_path / "b", mutated("test", 2, Sentiment="meh"))
    assert_fails(prepare_cli(cli, root, out), out, "test_sent_emo.csv:row 3", "'meh'")


def test_duplicate_utterance_id(tmp_path, cli):
    rows = copy.deepcopy(ROWS)
    rows["train"][3].update(Dialogue_ID="0", Utterance_ID="1")  # same as data row 2
    root = write_meld(tmp_path / "MELD", rows)
    out = tmp_path / "out"
    line = assert_fails(prepare_cli(cli, root, out), out, "train_sent_emo.csv:row 2")
    assert "duplicate" in line and "train/dia0_utt1" in line and "row 4" in line


def test_duplicate_report_names_rows_of_the_same_id():
    # two duplicated ids, interleaved: the "also at" row must hold the same id as the first
    from er_core import TaskInfo
    from er_data.check import check
    from er_data.table import finish

    tasks = {"emotion": TaskInfo(type="classification", column="emotion", classes=["a"])}
    ids = ["B", "A", "x", "A", "B"] + [f"u{i}" for i in range(6)] + ["C", "C"]
    frame = pl.DataFrame(
        {
            "id": ids,
            "dialogue": ["d"] * len(ids),
            "turn": list(range(len(ids))),
            "speaker": [""] * len(ids),
            "text": ["hi"] * len(ids),
            "split": ["train"] * len(ids),
            "emotion": [0] * len(ids),
            "emotion_name": ["a"] * len(ids),
            "source": [f"t.csv:row {i}" for i in range(1, len(ids) + 1)],
        }
    )
    with pytest.raises(ErError) as info:
        check(finish(frame, tasks), tasks)
    # row 1 is B, and B's other row is row 5 (not row 2, which is A; not row 12, which sorts
    # before "row 2" as a string)
    assert info.value.at == "t.csv:row 1"
    assert "'B'" in info.value.what and "t.csv:row 5" in info.value.what


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text(tmp_path, cli, text):
    root = write_meld(tmp_path / "MELD", mutated("dev", 1, Utterance=text))
    out = tmp_path / "out"
    line = assert_fails(prepare_cli(cli, root, out), out, "dev_sent_emo.csv:row 2", "dev/dia0_utt1")
    assert "empty text" in line


def test_undecodable_bytes_name_the_line(tmp_path, cli):
    root = write_meld(tmp_path / "MELD", mutated("train", 2, Utterance="Oh my BAD!"))
    p = root / "train_sent_emo.csv"
    p.write_bytes(p.read_bytes().replace(b"BAD", b"\x81"))  # undefined in utf-8 and in cp1252
    out = tmp_path / "out"
    # data row 3 is line 4 (after the header)
    assert_fails(prepare_cli(cli, root, out), out, "train_sent_emo.csv:line 4", "undecodable")


def test_undecodable_line_in_a_cp1252_file(tmp_path, cli):
    # the file is cp1252 (\x92 on line 3, valid there); only line 5's \x81 is bad in cp1252 too
    root = write_meld(
        tmp_path / "MELD", mutated("train", 3, Utterance="Great BAD"), encoding="cp1252"
    )
    p = root / "train_sent_emo.csv"
    p.write_bytes(p.read_bytes().replace(b"BAD", b"\x81"))
    out = tmp_path / "out"
    assert_fails(prepare_cli(cli, root, out), out, "train_sent_emo.csv:line 5", "undecodable")


@pytest.mark.parametrize(("column", "value"), [("Dialogue_ID", "abc"), ("Utterance_ID", "1.5")])
def test_non_integer_ids(tmp_path, cli, column, value):
    root = write_meld(tmp_path / "MELD", mutated("test", 1, **{column: value}))
    out = tmp_path / "out"
    assert_fails(prepare_cli(cli, root, out), out, "test_sent_emo.csv:row 2", column, value)


def test_unknown_set_key(tmp_path, cli):
    root = write_meld(tmp_path / "MELD")
    out = tmp_path / "out"
    line = assert_fails(prepare_cli(cli, root, out, "--set", "bogus=1"), out, "$.bogus", "'bogus'")
    assert "--set bogus=1" in line


def test_bad_set_value_type(tmp_path, cli):
    root = write_meld(tmp_path / "MELD")
    out = tmp_path / "out"
    assert_fails(
        prepare_cli(cli, root, out, "--set", "media=maybe"), out, "$.media", "--set media=maybe"
    )


def test_unknown_task(tmp_path, cli):
    root = write_meld(tmp_path / "MELD")
    out = tmp_path / "out"
    assert_fails(prepare_cli(cli, root, out, "--task", "arousal"), out, "--task", "'arousal'")


def test_config_file_unknown_key(tmp_path, cli):
    root = write_meld(tmp_path / "MELD")
    cfg = tmp_path / "meld.toml"
    cfg.write_text('task = "sentiment"\nencoding = "latin-1"\n')
    out = tmp_path / "out"
    assert_fails(prepare_cli(cli, root, out, "--config", str(cfg)), out, f"{cfg}:$.encoding")


def test_unknown_adapter_is_a_usage_error(tmp_path, cli):
    root = write_meld(tmp_path / "MELD")
    out = tmp_path / "out"
    r = cli("prepare", "nosuch", "--root", str(root), "--out", str(out))
    assert r.returncode == 2
    assert r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert lines[0].startswith("error: ") and "'nosuch'" in lines[0]
    assert lines[1].startswith("hint: ") and "meld" in lines[1]
    assert not out.exists()


def test_missing_root_option_is_a_usage_error(tmp_path, cli):
    r = cli("prepare", "meld", "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stdout == b""
    assert b"--root" in r.stderr
    assert b"Traceback" not in r.stderr


# --- the real MELD CSVs (../shared/data/meld) -------------------------------------------------

REAL_EMOTION = {
    "train": [4710, 1743, 1205, 1109, 683, 271, 268],
    "dev": [470, 163, 150, 153, 111, 22, 40],
    "test": [1256, 402, 281, 345, 208, 68, 50],
}
REAL_SENTIMENT = {
    "train": [4710, 2334, 2945],
    "dev": [470, 233, 406],
    "test": [1256, 521, 833],
}


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("task", "classes", "counts"),
    [("emotion", EMOTIONS, REAL_EMOTION), ("sentiment", SENTIMENTS, REAL_SENTIMENT)],
)
def test_real_meld_counts(shared_data, tmp_path, task, classes, counts):
    m = run_prepare(shared_data / "meld", tmp_path / "out", task=task)
    assert m.splits == {"train": 9989, "dev": 1109, "test": 2610}
    assert m.class_counts == {s: dict(zip(classes, c, strict=True)) for s, c in counts.items()}
    assert m.modalities == ["text"] and m.media_issues == []
    t = table(m)
    assert t["id"].n_unique() == t.height == 9989 + 1109 + 2610
    dialogues = t.group_by("split").agg(pl.col("dialogue").n_unique())
    assert dict(dialogues.iter_rows()) == {"train": 1038, "dev": 114, "test": 280}


@pytest.mark.realdata
def test_real_meld_cp1252_copy_gives_the_same_rows(shared_data, tmp_path):
    src = shared_data / "meld"
    copy_root = tmp_path / "cp1252"
    copy_root.mkdir()
    for fname in FILES.values():
        text = (src / fname).read_text(encoding="utf-8")
        # every non-ASCII character of the real files exists in cp1252 (é ó – — ‘ ’ “ ” …)
        assert {c for c in text if ord(c) > 127} <= set(
            bytes(range(128, 256)).decode("cp1252", "ignore")
        )
        (copy_root / fname).write_bytes(text.encode("cp1252"))
    assert b"\x92" in (copy_root / "train_sent_emo.csv").read_bytes()
    utf8 = table(run_prepare(src, tmp_path / "out"))
    cp = table(run_prepare(copy_root, tmp_path / "out"))
    assert cp.equals(utf8)
    assert utf8["text"].str.contains("’").sum() > 0
