"""The generic `table` adapter: a TOML mapping over CSV, TSV, Parquet or JSON-lines data.

Every test writes its data and mapping into tmp_path and goes through `er_data.preparation.prepare`
(or the real CLI), as a user would.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import msgspec
import polars as pl
import pytest
from er_core import DatasetManifest, ErError

REPO = Path(__file__).resolve().parents[3]
HEADER = ["conv", "line", "who", "utterance", "label", "arousal", "fold"]
# two conversations per fold; labels in mixed case and padded, as real files have them
ROWS = [
    ["c1", "0", "Ann", "Hi, how are you?", "Neutral", "0.1", "train"],
    ["c1", "1", "Bob", " Terrible. ", "sad", "0.7", "train"],
    ["c2", "0", "Cat", "We won!", "HAPPY ", "0.9", "train"],
    ["c2", "1", "Dan", "Get out.", "angry", "0.8", "train"],
    ["c3", "0", "Ann", "Fine.", "neutral", "0.2", "valid"],
    ["c3", "1", "Bob", "Really fine?", "neutral", "0.3", "valid"],
    ["c4", "0", "Cat", "I miss her.", "sad", "0.4", "test"],
    ["c4", "1", "Dan", "Me too.", "sad", "0.5", "test"],
]
CLASSES = ["neutral", "happy", "sad", "angry"]
MAPPING = """
dataset = "chat"
file = "{file}"
{extra}
[columns]
id = "{{conv}}_{{line}}"
dialogue = "conv"
turn = "line"
speaker = "who"
text = "utterance"
split = "fold"

[split_names]
valid = "dev"

[tasks.emotion]
column = "label"
classes = ["neutral", "happy", "sad", "angry"]

[tasks.arousal]
column = "arousal"
type = "regression"
"""


def changed(row: list[str], index: int, value: str) -> list[str]:
    return [value if i == index else v for i, v in enumerate(row)]


def write_rows(path: Path, rows=ROWS, header=HEADER, fmt: str = "csv") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("csv", "tsv"):
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        w.writerows([header, *rows])
        path.write_text(buf.getvalue(), encoding="utf-8")
    elif fmt == "parquet":  # real types, not strings: the adapter reads them as text
        frame = pl.DataFrame([dict(zip(header, r, strict=True)) for r in rows])
        frame = frame.with_columns(
            pl.col("line").cast(pl.Int64), pl.col("arousal").cast(pl.Float64)
        )
        assert frame.schema["line"] == pl.Int64
        frame.write_parquet(path)
    else:
        lines = []
        for r in rows:
            rec = dict(zip(header, r, strict=True))
            rec["line"], rec["arousal"] = int(rec["line"]), float(rec["arousal"])  # JSON numbers
            lines.append(json.dumps(rec))
        path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")  # a blank line is skipped
    return path


def write_mapping(path: Path, text: str | None = None, *, file="utts.csv", extra="") -> Path:
    path.write_text(text if text is not None else MAPPING.format(file=file, extra=extra))
    return path


def run(root: Path, mapping: Path, out: Path, **kwargs) -> DatasetManifest:
    from er_data.preparation import prepare

    return prepare("table", root, configs=[str(mapping)], out=out, **kwargs)


def table(m: DatasetManifest) -> pl.DataFrame:
    return pl.read_parquet(m.table.path)


def dataset(tmp_path: Path, **kw) -> tuple[Path, Path]:
    """(root, mapping) of the standard chat dataset as utts.csv."""
    root = tmp_path / "data"
    write_rows(root / "utts.csv")
    return root, write_mapping(tmp_path / "chat.toml", **kw)


# --- reading ------------------------------------------------------------------------------


def test_csv_with_split_column_templates_and_labels(tmp_path):
    root, mapping = dataset(tmp_path)
    m = run(root, mapping, tmp_path / "out")
    assert m.dataset == "chat" and m.adapter == "table" and m.task == "emotion"
    assert m.classes == CLASSES and m.splits == {"train": 4, "dev": 2, "test": 2}
    assert set(m.tasks) == {"emotion", "arousal"} and m.modalities == ["text"]
    t = table(m)
    assert t["id"].to_list()[:3] == ["c1_0", "c1_1", "c2_0"]
    assert t["text"][1] == "Terrible."  # stripped
    assert t["emotion_name"].to_list()[:4] == ["neutral", "sad", "happy", "angry"]
    assert t["emotion"].to_list()[:4] == [0, 2, 1, 3]
    assert t["split"].to_list() == ["train"] * 4 + ["dev"] * 2 + ["test"] * 2
    assert t["turn"].to_list() == [0, 1] * 4 and t["turn"].dtype == pl.Int32
    assert t["source"][0] == "utts.csv:row 1" and t["audio"].null_count() == t.height


@pytest.mark.parametrize("fmt", ["tsv", "parquet", "jsonl"])
def test_every_format_gives_the_same_table(tmp_path, fmt):
    root, mapping = dataset(tmp_path)
    base = table(run(root, mapping, tmp_path / "out"))
    write_rows(root / f"utts.{fmt}", fmt=fmt)
    other = table(run(root, write_mapping(mapping, file=f"utts.{fmt}"), tmp_path / "out"))
    assert other.drop("source").equals(base.drop("source"))
    assert other["source"][-1] == f"utts.{fmt}:row 8"


def test_format_key_overrides_the_extension(tmp_path):
    root, mapping = dataset(tmp_path)
    write_rows(root / "utts.txt", fmt="tsv")
    m = run(root, write_mapping(mapping, file="utts.txt", extra='format = "tsv"'), tmp_path / "o")
    assert m.splits == {"train": 4, "dev": 2, "test": 2}


def test_encodings_are_tried_in_order(tmp_path):
    root, mapping = dataset(tmp_path)
    rows = [changed(r, 3, "You’re late!") for r in ROWS]
    (root / "utts.csv").write_bytes(
        "\n".join(",".join(r) for r in [HEADER, *rows]).encode("cp1252")
    )
    with pytest.raises(ErError) as e:
        run(root, mapping, tmp_path / "out")
    assert e.value.at == f"{root / 'utts.csv'}:line 2"
    m = run(root, write_mapping(mapping, extra='encodings = ["utf-8", "cp1252"]'), tmp_path / "o")
    assert table(m)["text"][0] == "You’re late!"


PER_SPLIT = """
dataset = "chat"

[files]
train = "text/train.csv"
dev = "text/dev.csv"
test = "text/test.csv"

[columns]
id = "{split}/{conv}_{line}"
dialogue = "{split}/{conv}"
text = "utterance"
video = "{clips}/{conv}_{line}.mp4"
audio = ["{clips}/{conv}_{line}.wav", "{clips}/{conv}_{line}.mp4"]

[splits.train]
clips = "clips_tr"
[splits.dev]
clips = "clips_dev"
[splits.test]
clips = "clips_test"

[tasks.emotion]
column = "label"
classes = ["neutral", "happy", "sad", "angry"]
"""


def test_per_split_files_variables_and_media(tmp_path):
    root = tmp_path / "data"
    for split, rows in (("train", ROWS[:4]), ("dev", ROWS[4:6]), ("test", ROWS[6:])):
        write_rows(root / "text" / f"{split}.csv", rows)
    (root / "clips_tr").mkdir()
    (root / "clips_tr" / "c1_0.wav").write_bytes(b"")  # only this row has its own WAV
    mapping = tmp_path / "m.toml"
    mapping.write_text(PER_SPLIT)
    m = run(root, mapping, tmp_path / "out")
    t = table(m)
    assert m.splits == {"train": 4, "dev": 2, "test": 2}
    assert t["id"].to_list()[4] == "dev/c3_0" and t["dialogue"][6] == "test/c4"
    assert t["video"].to_list()[:2] == ["clips_tr/c1_0.mp4", "clips_tr/c1_1.mp4"]
    assert t["audio"].to_list()[:2] == ["clips_tr/c1_0.wav", "clips_tr/c1_1.mp4"]
    assert t["video"][7] == "clips_test/c4_1.mp4"
    assert t["source"][4] == "text/dev.csv:row 1"
    assert t["speaker"].to_list() == [""] * 8  # speaker not mapped
    assert any(i.path == "clips_test/c4_1.mp4" for i in m.media_issues)  # missing: reported
    assert m.modalities == ["text", "audio", "video"]
    # media_optional: splits without any file are text-only, the others keep their paths
    mapping.write_text("media_optional = true\n" + mapping.read_text())
    t = table(run(root, mapping, tmp_path / "out2"))
    assert t["audio"].to_list()[:2] == ["clips_tr/c1_0.wav", "clips_tr/c1_1.mp4"]
    assert t["video"].null_count() == 8 and t["audio"][4:].null_count() == 4


def test_drawn_split_keeps_dialogues_whole_and_follows_the_seed(tmp_path):
    root = tmp_path / "data"
    rows = [
        [f"d{d:02}", str(u), "A", f"line {d} {u}", "sad", "0", ""]
        for d in range(40)
        for u in range(3)
    ]
    write_rows(root / "utts.csv", rows)
    text = MAPPING.format(file="utts.csv", extra="").replace('split = "fold"\n', "")
    drawn = "[split]\ndev = 0.2\ntest = 0.1\nseed = 0\n"
    text = text.replace('[split_names]\nvalid = "dev"\n', drawn)
    m = run(root, write_mapping(tmp_path / "m.toml", text), tmp_path / "out")
    t = table(m)
    per = t.group_by("dialogue").agg(pl.col("split").n_unique().alias("n"), pl.col("split").first())
    assert per["n"].max() == 1  # every dialogue in exactly one split
    assert dict(per.group_by("split").len().iter_rows()) == {"train": 28, "dev": 8, "test": 4}
    again = table(run(root, write_mapping(tmp_path / "m.toml", text), tmp_path / "out2"))
    assert again.equals(t)
    seed1 = text.replace("seed = 0", "seed = 1")
    other = table(run(root, write_mapping(tmp_path / "m.toml", seed1), tmp_path / "out3"))
    assert not other["split"].equals(t["split"])


def test_data_columns_named_like_canonical_ones(tmp_path):
    root = tmp_path / "data"
    header = ["id", "dialogue", "text", "label", "split"]
    write_rows(
        root / "t.csv",
        [["u1", "d1", "Hi.", "sad", "train"], ["u2", "", "Ok.", "sad", "dev"]],
        header,
    )
    text = (
        MAPPING.split("[columns]")[0].format(file="t.csv", extra="")
        + """
[columns]
dialogue = "{split}/{dialogue}"
id = "{dialogue}/{id}"
text = "text"
split = "split"

[tasks.emotion]
column = "label"
classes = ["sad"]
"""
    )
    mapping = write_mapping(tmp_path / "m.toml", text)
    e = error(root, mapping, tmp_path)  # the data's own empty dialogue, not the template's
    assert e.what == "empty dialogue" and e.at == "t.csv:row 2"
    write_rows(
        root / "t.csv",
        [["u1", "d1", "Hi.", "sad", "train"], ["u2", "d2", "Ok.", "sad", "dev"]],
        header,
    )
    t = table(run(root, mapping, tmp_path / "out"))
    assert t["id"].to_list() == ["d1/u1", "d2/u2"]  # {dialogue} is the data's column
    assert t["dialogue"].to_list() == ["train/d1", "dev/d2"]


def test_turn_defaults_to_file_order_within_each_dialogue(tmp_path):
    root, mapping = dataset(tmp_path)
    rows = [ROWS[0], ROWS[2], ROWS[1], ROWS[3], *ROWS[4:]]  # dialogues interleave
    write_rows(root / "utts.csv", rows)
    mapping.write_text(mapping.read_text().replace('turn = "line"\n', ""))
    t = table(run(root, mapping, tmp_path / "out"))
    assert t["turn"].to_list()[:4] == [0, 0, 1, 1]


def test_start_and_end_times(tmp_path):
    root = tmp_path / "data"
    write_rows(
        root / "utts.csv", [[*r, "00:01:02,500", "63.25"] for r in ROWS], [*HEADER, "t0", "t1"]
    )
    media = 'audio = "rec/{conv}.wav"\naudio_start = "t0"\naudio_end = "t1"\n'
    mapping = write_mapping(tmp_path / "m.toml")
    mapping.write_text(mapping.read_text().replace("[split_names]", media + "[split_names]"))
    t = table(run(root, mapping, tmp_path / "out"))
    assert t["audio_start"][0] == 62.5 and t["audio_end"][0] == 63.25


def test_regression_task(tmp_path):
    root, mapping = dataset(tmp_path)
    m = run(root, mapping, tmp_path / "out", task="arousal")
    assert m.task_type == "regression" and m.classes == [] and m.label_column == "arousal"
    assert table(m)["arousal"].to_list()[:2] == [0.1, 0.7]


def test_aliases_merge_and_drop_labels(tmp_path):
    root, mapping = dataset(tmp_path)
    rows = [
        changed(r, 4, lab)
        for r, lab in zip(
            ROWS, ["exc", "xxx", "happy", "angry", "neutral", "xxx", "sad", "Excited"], strict=True
        )
    ]
    write_rows(root / "utts.csv", rows)
    text = mapping.read_text().replace(
        'classes = ["neutral", "happy", "sad", "angry"]',
        'classes = ["neutral", "happy", "sad", "angry"]\naliases = { "exc" = "happy", "Excited" = "happy", "xxx" = "" }',
    )
    mapping.write_text(text)
    m = run(root, mapping, tmp_path / "out")
    t = table(m)
    assert m.splits == {"train": 3, "dev": 1, "test": 2}  # "xxx" rows have no label: dropped
    assert t["emotion_name"].to_list() == ["happy", "happy", "angry", "neutral", "sad", "happy"]


# --- errors -------------------------------------------------------------------------------


def error(root: Path, mapping: Path, tmp_path: Path, **kw) -> ErError:
    with pytest.raises(ErError) as e:
        run(root, mapping, tmp_path / "out", **kw)
    assert e.value.hint, "every error says how to fix it"
    assert not list((tmp_path / "out").glob("er-data/*")), "a failed run leaves no output"
    return e.value


def test_missing_column_lists_the_files_columns(tmp_path):
    root, mapping = dataset(tmp_path)
    mapping.write_text(mapping.read_text().replace('text = "utterance"', 'text = "Utterance"'))
    e = error(root, mapping, tmp_path)
    assert "missing required column 'Utterance'" in e.what and e.at == "utts.csv"
    assert "conv, line, who, utterance" in e.hint


def test_template_naming_an_unknown_column_names_the_key(tmp_path):
    root, mapping = dataset(tmp_path)
    mapping.write_text(mapping.read_text().replace("{conv}_{line}", "{conv}_{Line}"))
    e = error(root, mapping, tmp_path)
    assert e.at.endswith("$.columns.id") and "'Line'" in e.what and "utts.csv" in e.what
    assert "line" in e.hint


def test_unknown_label_names_the_row(tmp_path):
    root, mapping = dataset(tmp_path)
    write_rows(root / "utts.csv", [*ROWS[:2], changed(ROWS[2], 4, "joy"), *ROWS[3:]])
    e = error(root, mapping, tmp_path)
    assert "unknown emotion label 'joy'" in e.what and e.at == "utts.csv:row 3"


def test_non_numeric_regression_target_names_the_row(tmp_path):
    root, mapping = dataset(tmp_path)
    write_rows(root / "utts.csv", [*ROWS[:3], changed(ROWS[3], 5, "high"), *ROWS[4:]])
    e = error(root, mapping, tmp_path)
    assert "'high' is not a number" in e.what and e.at == "utts.csv:row 4"


@pytest.mark.parametrize(
    ("change", "at", "what"),
    [
        (("text =", "txet ="), "$.columns.txet", "unknown key"),
        (('"happy", "sad"', '"Happy", "sad"'), "$.tasks.emotion.classes[1]", "lower case"),
        (('file = "utts.csv"', 'file = "../utts.csv"'), "$.file", "inside --root"),
        (('file = "utts.csv"', 'file = "/etc/utts.csv"'), "$.file", "inside --root"),
        (('file = "utts.csv"', 'file = "utts.dat"'), "$.file", "format"),
        (('split = "fold"', ""), "$.split", "no split"),
        (('valid = "dev"', 'valid = "validation"'), "$.split_names.valid", "not one of"),
        (('id = "{conv}_{line}"', 'id = "{conv}_{line"'), "$.columns.id", "unbalanced"),
        (
            ('text = "utterance"', 'text = "utterance"\nvideo = []'),
            "$.columns.video",
            "no template",
        ),
        # msgspec does not say which key of a table of tables holds a bad value (er_core shows [...])
        (('type = "regression"', 'type = "ordinal"'), "$.tasks[...].type", "bad value"),
    ],
)
def test_mapping_mistakes_name_the_file_and_key(tmp_path, change, at, what):
    root, mapping = dataset(tmp_path)
    mapping.write_text(mapping.read_text().replace(*change))
    e = error(root, mapping, tmp_path)
    assert e.at == f"{mapping}:{at}" and what in e.what, (e.what, e.at)


def test_per_split_variable_missing_for_a_split(tmp_path):
    root = tmp_path / "data"
    for split, rows in (("train", ROWS[:4]), ("dev", ROWS[4:6]), ("test", ROWS[6:])):
        write_rows(root / "text" / f"{split}.csv", rows)
    mapping = write_mapping(tmp_path / "m.toml", PER_SPLIT.replace('clips = "clips_dev"', ""))
    e = error(root, mapping, tmp_path)
    assert e.at.endswith("$.splits.dev.clips") and "{clips}" in e.what
    both = PER_SPLIT.replace("[files]", 'file = "text/train.csv"\n[files]')
    e = error(root, write_mapping(mapping, both), tmp_path)
    assert e.at == f"{mapping}:$.file" and "not both" in e.what
    # a drawn split is drawn over the dialogues, so their ids cannot depend on it
    files = PER_SPLIT[PER_SPLIT.index("[files]") : PER_SPLIT.index("[columns]")]
    drawn = PER_SPLIT.replace(files, 'file = "text/train.csv"\n[split]\n')
    e = error(root, write_mapping(mapping, drawn), tmp_path)
    assert e.at == f"{mapping}:$.columns.dialogue" and "drawn" in e.what


def test_malformed_toml_names_the_file(tmp_path):
    root, mapping = dataset(tmp_path)
    mapping.write_text(mapping.read_text().replace("[columns]", "[columns"))
    e = error(root, mapping, tmp_path)
    assert e.at == str(mapping) and "malformed TOML" in e.what


@pytest.mark.parametrize("template", ["../{conv}.wav", "/abs/{conv}.wav", "a/../../{conv}.wav"])
def test_media_escaping_the_root_names_the_row(tmp_path, template):
    root, mapping = dataset(tmp_path)
    mapping.write_text(
        mapping.read_text().replace('split = "fold"', f'split = "fold"\naudio = "{template}"')
    )
    e = error(root, mapping, tmp_path)
    assert "escapes the dataset root" in e.what and e.at == "utts.csv:row 1"


def test_unknown_split_value_names_the_row_and_split_names(tmp_path):
    root, mapping = dataset(tmp_path)
    mapping.write_text(mapping.read_text().replace('valid = "dev"', 'other = "dev"'))
    e = error(root, mapping, tmp_path)
    assert "unknown split 'valid'" in e.what and e.at == "utts.csv:row 5"
    assert "split_names" in e.hint


def test_duplicate_ids_name_the_row(tmp_path):
    root, mapping = dataset(tmp_path)
    mapping.write_text(mapping.read_text().replace('id = "{conv}_{line}"', 'id = "{conv}"'))
    e = error(root, mapping, tmp_path)
    assert "duplicate utterance id 'c1'" in e.what and e.at == "utts.csv:row 1"


def test_malformed_jsonl_names_the_line(tmp_path):
    root, mapping = dataset(tmp_path)
    write_rows(root / "utts.jsonl", fmt="jsonl")
    (root / "utts.jsonl").write_text((root / "utts.jsonl").read_text().replace("}", "", 1))
    e = error(root, write_mapping(mapping, file="utts.jsonl"), tmp_path)
    assert "malformed JSON" in e.what and e.at == f"{root / 'utts.jsonl'}:line 1"


def test_data_file_missing(tmp_path):
    root, mapping = dataset(tmp_path)
    e = error(root, write_mapping(mapping, file="nope.parquet"), tmp_path)
    assert e.what == "file not found" and e.at == str(root / "nope.parquet")


def assert_cli_error(r, out: Path, *where: str) -> None:
    assert r.returncode == 1, r.stderr
    lines = r.stderr.decode().splitlines()
    assert lines[0].startswith("error:") and all(w in lines[0] for w in where), lines
    assert lines[1].startswith("hint:") and r.stdout == b""
    assert not list(out.glob("er-data/*")), "a failed run leaves no output folder"


def test_cli_errors(tmp_path, cli):
    root, mapping = dataset(tmp_path)
    out = tmp_path / "out"
    args = ["prepare", "table", "--root", str(root), "--config", str(mapping), "--out", str(out)]
    mapping.write_text(mapping.read_text().replace("text =", "txet ="))
    assert_cli_error(cli(*args), out, f"at {mapping}:$.columns.txet")
    mapping.write_text(mapping.read_text().replace("txet =", "text ="))
    write_rows(root / "utts.csv", [*ROWS[:5], changed(ROWS[5], 4, "bored"), *ROWS[6:]])
    assert_cli_error(cli(*args), out, "'bored'", "at utts.csv:row 6")
    write_rows(root / "utts.csv")
    bad = mapping.read_text().replace('split = "fold"', 'split = "fold"\nvideo = "../v/{conv}.mp4"')
    mapping.write_text(bad)
    assert_cli_error(cli(*args), out, "escapes the dataset root", "at utts.csv:row 1")
    mapping.write_text(bad.replace("../v/", "v/"))
    r = cli(*args, "--set", "media_optional=true")
    assert r.returncode == 0, r.stderr
    m = msgspec.json.decode(r.stdout, type=DatasetManifest)
    assert m.adapter == "table" and m.splits == {"train": 4, "dev": 2, "test": 2}


# --- MELD: a TOML file instead of the meld adapter ---------------------------------------


def write_meld(root: Path) -> Path:
    header = [
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
    rows = {
        "train_sent_emo.csv": [
            ["Hi.", "Joey", "neutral", "neutral", 0, 0],
            ["You’re late!", "Monica ", "Anger", "negative", 0, 1],
            ["Yes!", "Ross", "joy", "positive", 1, 2],
        ],
        "dev_sent_emo.csv": [["Eww…", "Rachel", "disgust", "negative", 0, 0]],
        "test_sent_emo.csv": [
            ["What?", "Ross", "fear", "negative", 3, 0],
            ["“Yay!”", "Joey", "surprise", "positive", 3, 1],
        ],
    }
    for name, rs in rows.items():
        full = [[i, *r, 8, 21, "00:16:16,059", "00:16:21,731"] for i, r in enumerate(rs, start=1)]
        write_rows(root / name, [[str(x) for x in r] for r in full], header)
    return root


def same_as_meld(root: Path, tmp_path: Path) -> tuple[DatasetManifest, DatasetManifest]:
    from er_data.preparation import prepare

    mapping = REPO / "configs" / "data" / "meld-table.toml"
    a = prepare("meld", root, out=tmp_path / "a")
    b = prepare("table", root, configs=[str(mapping)], out=tmp_path / "b")
    assert table(b).equals(table(a))
    assert b.table.sha256 == a.table.sha256
    assert (b.splits, b.class_counts, b.tasks, b.modalities) == (
        a.splits,
        a.class_counts,
        a.tasks,
        a.modalities,
    )
    assert b.media_issues == a.media_issues
    return a, b


def test_meld_mapping_equals_the_meld_adapter(tmp_path):
    root = write_meld(tmp_path / "MELD")
    same_as_meld(root, tmp_path / "text")
    (root / "train_splits").mkdir()  # clips for train only; a WAV beside one of them
    for name in ("dia0_utt0.mp4", "dia0_utt0.wav", "dia0_utt1.mp4"):
        (root / "train_splits" / name).write_bytes(b"")
    a, _ = same_as_meld(root, tmp_path / "clips")
    assert table(a)["audio"].to_list()[:3] == [
        "train_splits/dia0_utt0.wav",
        "train_splits/dia0_utt1.mp4",
        "train_splits/dia1_utt2.mp4",
    ]


@pytest.mark.realdata
def test_meld_mapping_on_the_real_meld(shared_data, tmp_path):
    _, b = same_as_meld(shared_data / "meld", tmp_path)
    assert b.splits == {"train": 9989, "dev": 1109, "test": 2610}
    assert b.class_counts["test"]["neutral"] == 1256
