"""The IEMOCAP adapter end to end: `prepare()` and the real CLI, on a small generated tree in the
layout of `IEMOCAP_full_release`."""

from __future__ import annotations

from pathlib import Path

import msgspec
import polars as pl
import pytest
from er_core import DatasetManifest, ErError

EMOTION6 = ["hap", "sad", "neu", "ang", "exc", "fru"]
EMOTION4 = ["hap", "sad", "neu", "ang"]


def dialogs(s: int) -> dict[str, list[tuple[str, float, float, str, str]]]:
    """Session s's dialogues: (utterance suffix, start, end, label, text), in the order their
    label lines appear in the file. Each dialogue is written out of time order on purpose."""
    return {
        f"Ses0{s}F_impro01": [
            ("F000", 6.2901, 8.2357, "neu", "Excuse me."),
            ("F001", 10.01, 11.3925, "exc", "Yeah, that's right!"),
            ("M000", 8.9, 9.95, "fru", "Do you have your forms?"),
            ("M001", 12.0, 13.5, "xxx", "Let me see them."),
        ],
        f"Ses0{s}M_script01_1": [
            ("F000", 2.0, 3.5, "hap", "What a day."),
            ("M000", 0.5, 1.8, "ang", "Get out."),
            ("F001", 5.5, 6.0, "sur", "Really?"),
            ("M001", 4.0, 5.0, "sad", "I miss her."),
        ],
    }


HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def write_iemocap(
    root: Path,
    sessions=range(1, 6),
    *,
    extra: dict[int, dict[str, list]] | None = None,
    no_text: tuple[str, ...] = (),
) -> Path:
    """An IEMOCAP_full_release tree (text only) under `root`; `extra` adds dialogues per session,
    `no_text` leaves those utterances out of the transcripts."""
    for s in sessions:
        base = root / f"Session{s}" / "dialog"
        (base / "EmoEvaluation").mkdir(parents=True)
        (base / "transcriptions").mkdir(parents=True)
        for dialog, turns in {**dialogs(s), **(extra or {}).get(s, {})}.items():
            emo = [HEADER]
            for suffix, start, end, label, _ in turns:
                emo.append(
                    f"[{start:.4f} - {end:.4f}]\t{dialog}_{suffix}\t{label}\t[2.5000, 3.0000, 2.0000]\n"
                    f"C-E1:\tNeutral;\t()\nC-E2:\tNeutral; Frustration;\t()\n"
                    f"A-E1:\tval 3; act 2; dom  2;\t()\n\n"
                )
            (base / "EmoEvaluation" / f"{dialog}.txt").write_text("".join(emo))
            lines = [
                f"{dialog}_{suffix} [{start:08.4f}-{end:08.4f}]: {text}\n"
                for suffix, start, end, _, text in sorted(turns, key=lambda t: t[1])
                if f"{dialog}_{suffix}" not in no_text
            ]
            # not utterances, or not labelled: skipped
            lines += ["M: breathing\n", f"{dialog}_MXX1 [014.0000-015.0000]: Okay.\n"]
            (base / "transcriptions" / f"{dialog}.txt").write_text("".join(lines), newline="\r\n")
    return root


def run_prepare(root: Path, out: Path, **kwargs) -> DatasetManifest:
    from er_data.preparation import prepare

    return prepare("iemocap", root, out=out, **kwargs)


def table(m: DatasetManifest) -> pl.DataFrame:
    return pl.read_parquet(m.table.path)


def rows(m: DatasetManifest) -> dict[str, dict]:
    return {r["id"]: r for r in table(m).iter_rows(named=True)}


# --- the table ------------------------------------------------------------------------------


def test_emotion6_is_the_default_and_keeps_six_classes(tmp_path):
    m = run_prepare(write_iemocap(tmp_path / "IEMOCAP_full_release"), tmp_path / "out")
    assert (m.dataset, m.task, m.classes) == ("iemocap", "emotion6", EMOTION6)
    assert set(m.tasks) == {"emotion6", "emotion4"}
    # 3 turns in the six classes per dialogue (xxx and sur dropped); 8 training dialogues,
    # of which round(0.1 * 8) = 1 is dev; session 5 is test
    assert m.splits == {"train": 21, "dev": 3, "test": 6}
    assert m.class_counts["test"] == dict.fromkeys(EMOTION6, 1)
    assert sum(m.class_counts["train"].values()) == 21
    t = table(m)
    assert t.height == 30
    assert not t["id"].str.contains("impro01_M001").any()  # xxx
    assert not t["id"].str.contains("script01_1_F001").any()  # sur
    assert not t["id"].str.contains("XX").any()  # transcript-only turns
    assert m.modalities == ["text"] and m.media_issues == []


def test_emotion4_merges_exc_into_hap_and_drops_fru(tmp_path):
    root = write_iemocap(tmp_path / "IEMOCAP_full_release")
    m = run_prepare(root, tmp_path / "out", task="emotion4")
    assert (m.task, m.classes, m.label_column) == ("emotion4", EMOTION4, "emotion4")
    assert m.class_counts["test"] == {"hap": 2, "sad": 1, "neu": 1, "ang": 1}
    # fru leaves the impro dialogues with 2 turns each, the script ones keep 3
    assert m.splits["train"] + m.splits["dev"] == 4 * 5 and m.splits["test"] == 5
    got = rows(m)
    exc = got["Ses05F_impro01_F001"]
    assert (exc["emotion4"], exc["emotion4_name"]) == (0, "hap")
    assert (exc["emotion6"], exc["emotion6_name"]) == (4, "exc")
    assert "Ses05F_impro01_M000" not in got  # fru: no emotion4 label
    # ... but fru is kept, as class 5, for emotion6
    m6 = run_prepare(root, tmp_path / "out", task="emotion6")
    fru = rows(m6)["Ses05F_impro01_M000"]
    assert (fru["emotion6"], fru["emotion6_name"], fru["emotion4"]) == (5, "fru", None)
    # a turn is the same whatever the task: emotion4 keeps the gap fru leaves (F000, M000, F001)
    assert (got["Ses05F_impro01_F000"]["turn"], exc["turn"]) == (0, 2)
    assert rows(m6)["Ses05F_impro01_F001"]["turn"] == 2 and fru["turn"] == 1


def test_ids_dialogues_speakers_turns_and_sources(tmp_path):
    m = run_prepare(write_iemocap(tmp_path / "IEMOCAP_full_release"), tmp_path / "out")
    got = rows(m)
    r = got["Ses01F_impro01_F000"]
    assert (r["dialogue"], r["speaker"], r["text"]) == ("Ses01F_impro01", "Ses01_F", "Excuse me.")
    assert r["source"] == "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt:line 3"
    # the man of session 2 speaks in a dialogue the woman leads, and vice versa
    assert got["Ses02F_impro01_M000"]["speaker"] == "Ses02_M"
    assert got["Ses02M_script01_1_F000"]["speaker"] == "Ses02_F"
    # turn = order by start time among the labelled turns (the xxx one counts, then is dropped)
    impro = {k[-4:]: v["turn"] for k, v in got.items() if k.startswith("Ses03F_impro01")}
    assert impro == {"F000": 0, "M000": 1, "F001": 2}
    script = {k[-4:]: v["turn"] for k, v in got.items() if k.startswith("Ses03M_script01_1")}
    assert script == {"M000": 0, "F000": 1, "M001": 2}
    t = table(m)
    assert t.schema["turn"] == pl.Int32 and t["text"].str.contains("\r").sum() == 0
    assert t["audio"].null_count() == t["video"].null_count() == t.height


def test_session5_is_test_and_dev_is_whole_dialogues(tmp_path):
    m = run_prepare(write_iemocap(tmp_path / "IEMOCAP_full_release"), tmp_path / "out")
    t = table(m)
    session = t["id"].str.slice(3, 2).cast(pl.Int32)
    assert set(t.filter(session == 5)["split"]) == {"test"}
    assert set(t.filter(pl.col("split") == "test")["dialogue"].str.slice(3, 2)) == {"05"}
    per_dialogue = t.group_by("dialogue").agg(pl.col("split").n_unique())
    assert per_dialogue["split"].max() == 1  # no dialogue in two splits
    assert t.filter(pl.col("split") == "dev")["dialogue"].n_unique() == 1


def test_dev_depends_on_the_seed_only(tmp_path):
    # 4 dialogues per session: 16 training dialogues, dev_fraction 0.25 -> 4 of them
    extra = {
        s: {f"Ses0{s}F_impro0{k}": dialogs(s)[f"Ses0{s}F_impro01"] for k in (2, 3)}
        for s in range(1, 6)
    }
    root = write_iemocap(tmp_path / "IEMOCAP_full_release", extra=extra)

    def dev(seed: int, out: str) -> set[str]:
        m = run_prepare(root, tmp_path / out, overrides=[f"seed={seed}", "dev_fraction=0.25"])
        t = table(m)
        assert t.filter(pl.col("split") == "test")["dialogue"].n_unique() == 4
        return set(t.filter(pl.col("split") == "dev")["dialogue"])

    first = dev(0, "a")
    assert len(first) == 4
    assert dev(0, "b") == first  # same seed, fresh output folder: the same dialogues
    others = [dev(seed, "a") for seed in (1, 2, 3)]
    assert any(o != first for o in others)
    assert all(len(o) == 4 for o in others)
    # no dev at all when asked for none
    m = run_prepare(root, tmp_path / "c", overrides=["dev_fraction=0"])
    assert m.splits["dev"] == 0 and m.splits["train"] == 16 * 3


def test_test_session_option_and_inputs(tmp_path):
    root = write_iemocap(tmp_path / "IEMOCAP_full_release")
    m = run_prepare(root, tmp_path / "out", overrides=["test_session=3"])
    t = table(m)
    assert set(t.filter(pl.col("split") == "test")["dialogue"]) == {
        "Ses03F_impro01",
        "Ses03M_script01_1",
    }
    assert set(t.filter(pl.col("dialogue").str.starts_with("Ses05"))["split"]) <= {"train", "dev"}
    expected = sorted(
        f"Session{s}/dialog/{kind}/{d}.txt"
        for s in range(1, 6)
        for d in dialogs(s)
        for kind in ("EmoEvaluation", "transcriptions")
    )
    assert sorted(m.inputs) == expected and len(m.inputs) == 20


def test_root_may_hold_the_release_folder(tmp_path, tiny_media):
    release = write_iemocap(tmp_path / "data" / "IEMOCAP_full_release")
    tiny_media.wav(
        release / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_F000.wav"
    )
    m = run_prepare(tmp_path / "data", tmp_path / "out")
    assert m.splits == {"train": 21, "dev": 3, "test": 6}
    assert m.source_root == str((tmp_path / "data").resolve())
    r = rows(m)["Ses01F_impro01_F000"]
    assert (
        r["audio"]
        == "IEMOCAP_full_release/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    )
    assert all(k.startswith("IEMOCAP_full_release/Session") for k in m.inputs)


def test_macos_resource_forks_are_ignored(tmp_path):
    root = write_iemocap(tmp_path / "IEMOCAP_full_release")
    (root / "Session1/dialog/EmoEvaluation/._Ses01F_impro01.txt").write_bytes(
        b"\x00\x05\x16\x07\xff"
    )
    m = run_prepare(root, tmp_path / "out")
    assert m.splits == {"train": 21, "dev": 3, "test": 6}
    assert not any("._" in k for k in m.inputs)


# --- media ----------------------------------------------------------------------------------


def test_media_paths_times_and_issues(tmp_path, tiny_media):
    pytest.importorskip("av")
    root = write_iemocap(tmp_path / "IEMOCAP_full_release")
    for dialog, turns in dialogs(1).items():  # real WAVs for every utterance of session 1
        for suffix, *_ in turns:
            tiny_media.wav(root / "Session1/sentences/wav" / dialog / f"{dialog}_{suffix}.wav")
    divx = root / "Session1/dialog/avi/DivX"
    divx.mkdir(parents=True)
    (divx / "Ses01F_impro01.avi").write_bytes(b"not a video")  # Ses01M_script01_1.avi is missing
    m = run_prepare(root, tmp_path / "out")
    assert m.modalities == ["text", "audio", "video"]
    r = rows(m)["Ses01F_impro01_M000"]
    assert r["audio"] == "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav"
    assert r["audio_start"] is None and r["audio_end"] is None
    assert r["video"] == "Session1/dialog/avi/DivX/Ses01F_impro01.avi"
    assert (r["video_start"], r["video_end"]) == (8.9, 9.95)  # the EmoEvaluation times
    other = rows(m)["Ses02F_impro01_F000"]  # session 2 has no media folders
    assert other["audio"] is None and other["video"] is None
    issues = {(i.utterance, i.path, i.problem.split(" (")[0]) for i in m.media_issues}
    assert all(not i.path.endswith(".wav") for i in m.media_issues)  # the real WAVs all open
    assert issues == {
        *(
            (f"Ses01F_impro01_{u}", "Session1/dialog/avi/DivX/Ses01F_impro01.avi", "does not open")
            for u in ("F000", "M000", "F001")
        ),
        *(
            (f"Ses01M_script01_1_{u}", "Session1/dialog/avi/DivX/Ses01M_script01_1.avi", "missing")
            for u in ("M000", "F000", "M001")
        ),
    }
    text_only = run_prepare(root, tmp_path / "out", overrides=["media=false"])
    assert text_only.modalities == ["text"] and text_only.media_issues == []


# --- through the CLI --------------------------------------------------------------------------


def test_cli_prepare_prints_the_manifest(tmp_path, cli):
    root = write_iemocap(tmp_path / "IEMOCAP_full_release")
    r = cli(
        "prepare",
        "iemocap",
        "--root",
        str(root),
        "--out",
        str(tmp_path / "out"),
        "--task",
        "emotion4",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(b"\n") == 1
    m = msgspec.json.decode(r.stdout, type=DatasetManifest)
    assert m.task == "emotion4" and m.splits["test"] == 5
    assert (Path(m.table.path).parent / "manifest.json").read_bytes() == r.stdout


def test_untranscribed_utterances_are_dropped_with_a_warning(tmp_path, cli):
    root = write_iemocap(
        tmp_path / "IEMOCAP_full_release", no_text=("Ses02F_impro01_F000", "Ses05M_script01_1_M001")
    )
    r = cli("prepare", "iemocap", "--root", str(root), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    m = msgspec.json.decode(r.stdout, type=DatasetManifest)
    assert sum(m.splits.values()) == 28 and m.splits["test"] == 5
    got = rows(m)
    assert "Ses02F_impro01_F000" not in got and "Ses05M_script01_1_M001" not in got
    warnings = [ln for ln in r.stderr.decode().splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1, r.stderr
    assert "2 labelled utterances with no transcript" in warnings[0]
    assert "Ses02F_impro01_F000" in warnings[0]


def assert_fails(r, out: Path, at_endswith: str, *in_error: str) -> list[str]:
    """Exit 1, nothing on stdout, `error: ..., at <place>` and `hint: ...` on stderr, and no
    output folder left behind."""
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert r.stdout == b""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("error: ") and ", at " in lines[0], err
    assert lines[0].rsplit(", at ", 1)[1].endswith(at_endswith), err
    for s in in_error:
        assert s in lines[0], err
    assert lines[1].startswith("hint: ") and len(lines[1]) > len("hint: "), err
    assert not (out / "er-data").exists() or list((out / "er-data").iterdir()) == []
    return lines


def prepare_cli(cli, root: Path, out: Path, *extra: str):
    return cli("prepare", "iemocap", "--root", str(root), "--out", str(out), *extra)


def test_no_session_folders(tmp_path, cli):
    root = tmp_path / "empty"
    (root / "IEMOCAP_full_release").mkdir(parents=True)
    out = tmp_path / "out"
    lines = assert_fails(prepare_cli(cli, root, out), out, str(root), "no Session1..5 folders")
    assert "IEMOCAP_full_release" in lines[1]


def test_malformed_label_line(tmp_path, cli):
    root = write_iemocap(tmp_path / "IEMOCAP_full_release")
    emo = root / "Session2/dialog/EmoEvaluation/Ses02M_script01_1.txt"
    text = emo.read_text().replace("[4.0000 - 5.0000]", "[4.0000 - 5.O000]")
    emo.write_text(text)
    line = 1 + text.splitlines().index(next(ln for ln in text.splitlines() if "5.O000" in ln))
    out = tmp_path / "out"
    assert_fails(
        prepare_cli(cli, root, out),
        out,
        f"Session2/dialog/EmoEvaluation/Ses02M_script01_1.txt:line {line}",
        "malformed label line",
    )


def test_missing_transcription_file(tmp_path, cli):
    root = write_iemocap(tmp_path / "IEMOCAP_full_release")
    (root / "Session4/dialog/transcriptions/Ses04F_impro01.txt").unlink()
    out = tmp_path / "out"
    assert_fails(
        prepare_cli(cli, root, out), out, "Ses04F_impro01.txt", "transcription file not found"
    )


def test_bad_options(tmp_path):
    root = write_iemocap(tmp_path / "IEMOCAP_full_release")
    with pytest.raises(ErError, match=r"test_session.*<= 5"):
        run_prepare(root, tmp_path / "out", overrides=["test_session=6"])
    with pytest.raises(ErError, match=r"dev_fraction.*< 1"):
        run_prepare(root, tmp_path / "out", overrides=["dev_fraction=1.5"])
    partial = write_iemocap(tmp_path / "partial", sessions=(1, 2))
    with pytest.raises(ErError, match="Session5 not found") as e:
        run_prepare(partial, tmp_path / "out")
    assert "Session1, Session2" in (e.value.hint or "")
    with pytest.raises(ErError, match="no task 'emotion'"):
        run_prepare(root, tmp_path / "out", task="emotion")
    assert not (tmp_path / "out" / "er-data").exists()
