"""`er-data prepare files`: loose clips with no labels, named on the command line or in a folder,
as one table that every reader accepts (er-eval predict classifies it with a run's classes)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from er_core import DatasetManifest, ErError, TaskInfo, merge_sources
from er_core.stream import decode_line
from er_data.adapters.files import named_clips, toml_string
from er_data.check import check_table, has_labels
from er_data.preparation import prepare


def run_cli(cli, *args: str, out: Path, cwd: Path | None = None) -> DatasetManifest:
    r = cli("prepare", "files", *args, "--out", str(out), "-q", cwd=cwd)
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    m = decode_line(lines[0], "<stdout>").message
    assert isinstance(m, DatasetManifest)
    return m


def rows(m: DatasetManifest) -> list[dict]:
    return check_table(m).to_dicts()  # the reader's check passes on an unlabelled table


def test_one_utterance_named_on_the_command_line(tmp_path, cli, tiny_media):
    clips = tmp_path / "clips"
    tiny_media.wav(clips / "voice.wav")
    tiny_media.clip(clips / "face.mp4")
    m = run_cli(
        cli, "--text", "I love it", "--audio", "voice.wav", "--video", "face.mp4",
        out=tmp_path / "out", cwd=clips,
    )  # fmt: skip
    assert (m.dataset, m.adapter, m.task, m.classes) == ("files", "files", "emotion", [])
    assert m.tasks == {"emotion": TaskInfo(type="classification", column="emotion", classes=[])}
    assert m.splits == {"train": 0, "dev": 0, "test": 1}
    assert m.modalities == ["text", "audio", "video"]
    assert Path(m.source_root) == clips.resolve()
    assert set(m.inputs) == {"voice.wav", "face.mp4"}  # the clips' bytes name the output
    (row,) = rows(m)
    assert row["id"] == row["dialogue"] == "face" and row["turn"] == 0
    assert (row["text"], row["audio"], row["video"]) == ("I love it", "voice.wav", "face.mp4")
    assert row["split"] == "test" and row["emotion"] is None and row["emotion_name"] is None


def test_several_utterances_in_order_and_one_dialogue(tmp_path, tiny_media):
    a = tiny_media.clip(tmp_path / "x" / "b_clip.mp4")
    b = tiny_media.wav(tmp_path / "y" / "a_voice.wav")
    root, sets = named_clips(["first", "second"], ["", str(b)], [str(a), ""])
    assert root == tmp_path.resolve()  # the deepest folder holding both
    m = prepare("files", root, overrides=sets, out=tmp_path / "out", quiet=True)
    got = rows(m)
    assert [r["id"] for r in got] == ["b_clip", "a_voice"]  # given order, not sorted
    assert [r["dialogue"] for r in got] == ["b_clip", "a_voice"]  # each clip on its own
    assert got[0]["audio"] == got[0]["video"] == "x/b_clip.mp4"  # the clip's own sound track
    assert (got[1]["audio"], got[1]["video"]) == ("y/a_voice.wav", None)
    one = prepare("files", root, overrides=[*sets, 'dialogue="chat"'], out=tmp_path / "o2")
    got = rows(one)
    assert [(r["dialogue"], r["turn"]) for r in got] == [("chat", 0), ("chat", 1)]
    assert one.id != m.id


def test_a_folder_of_clips(tmp_path, cli, tiny_media):
    d = tmp_path / "new"
    tiny_media.clip(d / "b.mp4")
    tiny_media.wav(d / "b.wav")
    (d / "b.txt").write_text("  so happy  \n", encoding="utf-8")
    tiny_media.wav(d / "a.wav")
    (d / "a.txt").write_text("who is it", encoding="utf-8")
    (d / "c.txt").write_text("only words", encoding="utf-8")
    (d / "notes.md").write_text("not a clip")
    (d / ".hidden.wav").write_bytes(b"")
    tiny_media.wav(d / "sub" / "deeper.wav")  # subfolders are not read
    m = run_cli(cli, str(d), out=tmp_path / "out")
    got = rows(m)
    assert [r["id"] for r in got] == ["a", "b", "c"]
    assert [r["text"] for r in got] == ["who is it", "so happy", "only words"]
    assert [(r["audio"], r["video"]) for r in got] == [
        ("a.wav", None),
        ("b.wav", "b.mp4"),  # an audio file of its own beats the clip's track
        (None, None),
    ]
    assert set(m.inputs) == {"a.wav", "a.txt", "b.mp4", "b.wav", "b.txt", "c.txt"}
    same = run_cli(cli, "--root", str(d), out=tmp_path / "out")  # --root means the same
    assert same == m


def test_new_bytes_under_the_same_name_are_new_data(tmp_path, tiny_media):
    d = tmp_path / "d"
    tiny_media.wav(d / "v.wav", seconds=0.1)
    a = prepare("files", d, out=tmp_path / "out", quiet=True)
    wav = (d / "v.wav").read_bytes()
    (d / "v.wav").write_bytes(wav[:-2] + b"\x01\x00")  # same size, other sound
    b = prepare("files", d, out=tmp_path / "out", quiet=True)
    assert a.id != b.id


def test_same_stem_in_two_folders_gets_a_number(tmp_path, tiny_media):
    one, two = tiny_media.wav(tmp_path / "a" / "s.wav"), tiny_media.wav(tmp_path / "b" / "s.wav")
    root, sets = named_clips([], [str(one), str(two)], [])
    got = rows(prepare("files", root, overrides=sets, out=tmp_path / "out", quiet=True))
    assert [r["id"] for r in got] == ["s", "s#2"]
    assert [r["audio"] for r in got] == ["a/s.wav", "b/s.wav"]


def test_text_alone(tmp_path, cli):
    m = run_cli(cli, "--text", "hello", "--text", "bye now", out=tmp_path / "out", cwd=tmp_path)
    assert m.modalities == ["text"]
    assert [(r["id"], r["text"]) for r in rows(m)] == [("u1", "hello"), ("u2", "bye now")]


def test_clips_without_transcripts(tmp_path, tiny_media):
    tiny_media.wav(tmp_path / "d" / "x.wav")
    m = prepare("files", tmp_path / "d", out=tmp_path / "out", quiet=True)
    assert m.modalities == ["audio"] and rows(m)[0]["text"] == ""


@pytest.mark.parametrize("value", ['say "hi"', "back\\slash", "tab\there", "é ☺", "", "a\x7fb"])
def test_option_values_survive_the_set_syntax(value):
    data, _ = merge_sources([], [f"text=[{toml_string(value)}]", f"dialogue={toml_string(value)}"])
    assert data == {"text": [value], "dialogue": value}


# --- errors ---------------------------------------------------------------------------------


def one_error(r, code: int = 1) -> str:
    err = r.stderr.decode()
    assert r.returncode == code and r.stdout == b"", err
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    return lines[0]


def test_a_missing_clip_is_named(tmp_path, cli, tiny_media):
    tiny_media.wav(tmp_path / "ok.wav")
    r = cli("prepare", "files", "--audio", "ok.wav", "--video", "gone.mp4", cwd=tmp_path)
    assert one_error(r) == "error: video clip not found, at gone.mp4"


def test_a_missing_clip_in_the_options_is_named(tmp_path):
    with pytest.raises(ErError) as e:
        prepare("files", tmp_path, overrides=['audio=["nope.wav"]'], out=tmp_path / "out")
    assert e.value.what == "clip not found" and e.value.at == str(tmp_path / "nope.wav")


def test_counts_that_do_not_line_up_are_a_usage_error(tmp_path, cli, tiny_media):
    tiny_media.wav(tmp_path / "a.wav")
    r = cli("prepare", "files", "--text", "a", "--text", "b", "--audio", "a.wav", cwd=tmp_path)
    assert "--audio is given for 1 of 2 utterances" in one_error(r, code=2)


def test_two_audio_files_of_one_stem(tmp_path, tiny_media):
    tiny_media.wav(tmp_path / "x.wav")
    (tmp_path / "x.mp3").write_bytes(b"\x00" * 10)
    with pytest.raises(ErError, match=r"clip 'x' has 2 audio files: x\.mp3, x\.wav"):
        prepare("files", tmp_path, out=tmp_path / "out")


def test_mixed_transcripts_are_refused(tmp_path, tiny_media):
    tiny_media.wav(tmp_path / "a.wav")
    tiny_media.wav(tmp_path / "b.wav")
    (tmp_path / "a.txt").write_text("words")
    with pytest.raises(ErError, match="empty text for utterance 'b'") as e:
        prepare("files", tmp_path, out=tmp_path / "out")
    assert e.value.at == "b.wav"


def test_an_empty_folder(tmp_path):
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(ErError, match="no clips to prepare"):
        prepare("files", tmp_path, out=tmp_path / "out")


def test_a_bad_task_name(tmp_path):
    with pytest.raises(ErError, match="'text' cannot name a task"):
        prepare("files", tmp_path, task="text", overrides=['text=["hi"]'], out=tmp_path / "o")


@pytest.mark.parametrize(
    "args",
    [
        ["prepare", "meld", "--root", ".", "--text", "hi"],  # another adapter's table
        ["prepare", "files", ".", "--text", "hi"],  # clips and a folder
        ["prepare", "files", ".", "--root", "."],  # the folder twice
        ["prepare", "files"],  # nothing at all
    ],
)
def test_usage_errors(tmp_path, cli, args):
    one_error(cli(*args, cwd=tmp_path), code=2)


# --- the unlabelled table among the others ---------------------------------------------------


def test_only_a_classless_classification_is_unlabelled():
    assert not has_labels(TaskInfo(type="classification", column="emotion", classes=[]))
    assert has_labels(TaskInfo(type="classification", column="emotion", classes=["a", "b"]))
    assert has_labels(TaskInfo(type="regression", column="score"))


def test_a_labelled_table_still_needs_every_label(tmp_path, make_table):
    """The unlabelled rule is the classless task's alone: a null label in a labelled table is
    still refused by every reader."""
    ref = make_table(tmp_path / "t.parquet", {"test": {"a": 1, "b": 1}}, ["a", "b"])
    frame = pl.read_parquet(ref.path)
    frame = frame.with_columns(pl.lit(None, dtype=pl.Int32).alias("emotion"))
    frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("emotion_name"))
    frame.write_parquet(ref.path)
    from er_core import FileRef, sha256_file

    ref = FileRef(path=ref.path, sha256=sha256_file(ref.path), bytes=1)
    m = DatasetManifest(
        id="0" * 64, tool="t", dataset="d", task="emotion", classes=["a", "b"], table=ref
    )
    with pytest.raises(ErError, match="has no emotion label"):
        check_table(m)


def test_validate_and_stats_read_it(tmp_path, cli, tiny_media):
    tiny_media.clip(tmp_path / "d" / "c.mp4")
    r = cli("prepare", "files", str(tmp_path / "d"), "--out", str(tmp_path / "out"), "-q")
    assert r.returncode == 0, r.stderr.decode()
    v = cli("validate", "-q", input=r.stdout)
    assert v.returncode == 0 and v.stdout == r.stdout, v.stderr.decode()
    s = cli("stats", "--format", "json", input=r.stdout)
    assert s.returncode == 0, s.stderr.decode()
    counts = [json.loads(line) for line in s.stdout.splitlines()]
    assert [(c["split"], c["count"]) for c in counts] == [("train", 0), ("dev", 0), ("test", 1)]
