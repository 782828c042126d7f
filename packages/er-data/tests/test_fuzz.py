"""Property-based fuzzing of the parsers of user files (issue 12): the CSV reader and the table
mapping TOML, through the real `prepare("table", ...)` code path, in process.

Whatever the input, prepare either writes a table that passes `check_table`, or raises an
ErError whose `lines()` are one `error:` line and one `hint:` line (never another exception
type, never "bug in er"), and leaves no file under the output root.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from er_core import ErError
from er_data import check_table
from er_data.preparation import prepare
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

SETTINGS = settings(
    max_examples=int(os.environ.get("ER_FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,  # no .hypothesis folder in the working tree
    # the same cases on every run; ER_FUZZ_EXAMPLES=5000 explores further, with fresh cases
    derandomize="ER_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow],
)

CELLS = [
    *("c1", "c2", "c3", "0", "1", "2", "-1", "01", "train", "dev", "test", "valid", "Train"),
    *("neutral", "sad", " Sad ", "", " ", "a.wav", "../x.wav", "/etc/passwd", "1:02.5"),
    *("nan", "inf", "-0.5", "99999999999", "1e309", '"', '""', "a,b", "\t", "{x}", "é"),
]
cell = st.one_of(st.sampled_from(CELLS), st.text(max_size=6))
HEADERS = ["conv", "line", "utterance", "label", "fold", "wav", "start", "end", "Conv", "x"]

CSV_MAPPING = """
dataset = "fuzz"
file = "utts.csv"
encodings = ["utf-8", "cp1252"]
[columns]
id = "{conv}_{line}"
dialogue = "conv"
turn = "line"
text = "utterance"
split = "fold"
audio = ["clips/{conv}.wav", "wav"]
audio_start = "start"
audio_end = "end"
[split_names]
valid = "dev"
[tasks.emotion]
column = "label"
classes = ["neutral", "sad"]
"""


def outcome(root: Path, mapping: Path | None, out: Path, adapter: str = "table") -> None:
    """The property: a checked table, or one error line and one hint, and nothing written."""
    try:
        m = prepare(adapter, root, configs=[str(mapping)] if mapping else [], out=out)
    except ErError as e:
        event(e.what[:28])  # --hypothesis-show-statistics: which errors the inputs reach
        lines = e.lines()
        assert len(lines) == 2, lines
        assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), lines
        assert "bug in er" not in lines[1], lines
        left = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
        assert left == [], left
    else:
        event("prepared")
        check_table(m)


VALID = {
    "conv": ["c1", "c2", "c3"],
    "line": ["0", "1", "2", "3"],
    "utterance": ["Hi.", "Bye now", "ok"],
    "label": ["neutral", "sad", "Sad "],
    "fold": ["train", "dev", "test", "valid"],
    "wav": ["a.wav", "clips/c1.wav", ""],
    "start": ["", "0", "1.5"],
    "end": ["", "2", "0:03.0"],
}


@st.composite
def csv_bytes(draw) -> bytes:
    """Delimited text as users make it: mostly well-formed rows of plausible values, with odd
    cells, ragged rows, odd headers, stray quotes and separators, sometimes other encodings."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.binary(max_size=80))
    header = list(VALID)
    if draw(st.integers(0, 4)) == 0:
        header = draw(st.lists(st.sampled_from([*HEADERS, *VALID]), min_size=1, max_size=9))
    rows = []
    fold = {c: draw(st.sampled_from(VALID["fold"])) for c in VALID["conv"]}
    for n in range(draw(st.integers(0, 8))):
        conv = draw(st.sampled_from(VALID["conv"]))
        # mostly consistent keys (a conversation in one fold, a line once), so that some
        # cases get through to a written table
        plausible = {"conv": conv, "line": str(n), "fold": fold[conv]}
        row = [
            (plausible.get(h) or draw(st.sampled_from(VALID[h])))
            if h in VALID and draw(st.integers(0, 7))
            else draw(cell)
            for h in header
        ]
        if draw(st.integers(0, 9)) == 0:  # ragged
            row = row[:-1] if draw(st.booleans()) else [*row, draw(cell)]
        rows.append(row)
    sep = draw(st.sampled_from([",", ",", ",", ",", ",", ",", ";", "\t"]))
    end = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    text = end.join(sep.join(r) for r in [header, *rows]) + end
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "cp1252"])), "replace")


@given(data=csv_bytes())
@SETTINGS
def test_fuzz_csv(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "data" / "clips").mkdir(parents=True)
        (base / "data" / "clips" / "c1.wav").write_bytes(b"RIFF")
        (base / "data" / "utts.csv").write_bytes(data)
        (base / "map.toml").write_text(CSV_MAPPING)
        outcome(base / "data", base / "map.toml", base / "out")


# --- the mapping TOML --------------------------------------------------------------------------

DATA = (
    "conv,line,utterance,label,fold,score\n"
    "c1,0,Hi.,neutral,train,0.5\nc1,1,Bye.,sad,train,-1\n"
    "c2,0,Yes.,sad,valid,0.1\nc3,0,No.,neutral,test,0\n"
)
TEMPLATES = [
    *("conv", "line", "utterance", "label", "fold", "score", "missing", "{conv}_{line}"),
    *("{conv}", "{split}/{conv}", "{clips}/{conv}.wav", "{", "}", "{}", "{{x}}", "{ conv }"),
    *("", " ", "{line}{line}", "{split}"),
]
template = st.one_of(st.sampled_from(TEMPLATES), st.text(max_size=8))
scalar = st.one_of(
    template,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
CLASSES = [["neutral", "sad"], ["Neutral"], [], ["sad", "sad"], ["neutral", " sad"], [""]]


def maybe(strategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


BASE: dict[str, Any] = {
    "dataset": "fuzz",
    "file": "utts.csv",
    "columns": {"id": "{conv}_{line}", "dialogue": "conv", "turn": "line", "text": "utterance"},
    "tasks": {
        "emotion": {"column": "label", "classes": ["neutral", "sad"]},
        "score": {"column": "score", "type": "regression"},
    },
    "split": {"dev": 0.3, "test": 0.3, "seed": 1},
}
# (path of the key, what to put there); None deletes the key
FILES = [
    "utts.csv",
    "utts.tsv",
    "../utts.csv",
    "/etc/passwd",
    "",
    "utts",
    "no.csv",
    "a/../utts.csv",
]
MUTATIONS: list[tuple[tuple[str, ...], st.SearchStrategy]] = [
    (("dataset",), maybe(scalar)),
    (("task",), st.sampled_from(["emotion", "score", "nope", ""])),
    (("file",), maybe(st.one_of(st.sampled_from(FILES), st.text(max_size=6)))),
    (
        ("files",),
        st.dictionaries(st.sampled_from(["train", "dev", "test", "all"]), st.sampled_from(FILES)),
    ),
    (("format",), st.sampled_from(["csv", "tsv", "parquet", "jsonl", "xml", ""])),
    (
        ("encodings",),
        st.lists(st.sampled_from(["utf-8", "cp1252", "nope", "", "utf-16"]), max_size=3),
    ),
    (("columns", "id"), maybe(template)),
    (("columns", "dialogue"), maybe(template)),
    (("columns", "turn"), maybe(template)),
    (("columns", "text"), maybe(template)),
    (("columns", "speaker"), maybe(template)),
    (("columns", "split"), maybe(st.sampled_from(["fold", "{fold}", "conv", "label"]))),
    (("columns", "audio"), st.one_of(template, st.lists(template, max_size=3))),
    (("columns", "audio_start"), template),
    (("columns", "video_end"), template),
    (("tasks",), st.sampled_from([{}, {"id": {"column": "label", "classes": ["sad"]}}])),
    (("tasks", "emotion", "column"), maybe(template)),
    (("tasks", "emotion", "type"), st.sampled_from(["classification", "regression", "ordinal"])),
    (("tasks", "emotion", "classes"), st.sampled_from(CLASSES)),
    (
        ("tasks", "emotion", "aliases"),
        st.dictionaries(st.text(max_size=4), st.sampled_from(["sad", "", "joy"]), max_size=2),
    ),
    (("tasks", "score", "type"), st.sampled_from(["classification", "regression"])),
    (("tasks", "score", "column"), template),
    (
        ("split",),
        maybe(st.fixed_dictionaries({}, optional={"dev": scalar, "test": scalar, "seed": scalar})),
    ),
    (("split", "dev"), scalar),
    (("split", "seed"), scalar),
    (
        ("split_names",),
        st.dictionaries(st.text(max_size=5), st.sampled_from(["dev", "", "val"]), max_size=2),
    ),
    (
        ("splits",),
        st.fixed_dictionaries(
            {},
            optional={
                "train": st.dictionaries(
                    st.sampled_from(["clips", "split", "x"]), template, max_size=2
                )
            },
        ),
    ),
    (("media_optional",), st.one_of(st.booleans(), scalar)),
    (("colour",), scalar),
]


@st.composite
def mapping(draw) -> dict[str, Any]:
    """The valid BASE mapping with a few keys deleted or set to odd values."""
    m = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(0, 3))):
        path, strategy = draw(st.sampled_from(MUTATIONS))
        value, node = draw(strategy), m
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
        if value is None:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return m


def toml(value: Any) -> str:
    """A TOML value (inline tables and arrays; strings as basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value).replace("nan", "nan").replace("inf", "inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return (
        "{"
        + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml(v)}" for k, v in value.items())
        + "}"
    )


@given(
    doc=st.one_of(
        mapping().map(
            lambda m: "\n".join(
                f"{json.dumps(k, ensure_ascii=False)} = {toml(v)}" for k, v in m.items()
            )
        ),
        st.text(max_size=60),
    )
)
@SETTINGS
def test_fuzz_mapping(doc: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "data").mkdir()
        (base / "data" / "utts.csv").write_text(DATA)
        (base / "data" / "utts.tsv").write_text(DATA.replace(",", "\t"))
        (base / "map.toml").write_text(doc, encoding="utf-8", errors="surrogatepass")
        outcome(base / "data", base / "map.toml", base / "out")


# --- the dataset adapters' own files: MELD's CSVs and CH-SIMS's label.csv ------------------------

MELD_HEAD = [
    "Sr No.",
    "Utterance",
    "Speaker",
    "Emotion",
    "Sentiment",
    "Dialogue_ID",
    "Utterance_ID",
]
MELD_VALID = [
    ["1"],
    ["Hi.", "Oh my God!", "“quoted”"],
    ["Ann", "", "Joey"],
    ["joy", "neutral", "anger", "Joy "],
    ["positive", "neutral", "negative"],
    ["0", "1", "01"],
    ["0", "1", "2"],
]
SIMS_HEAD = ["video_id", "clip_id", "text", "label", "label_T", "mode"]
SIMS_VALID = [
    ["video_0001", "video_0002"],
    ["1", "2", "0010"],
    ["我们走吧。", "好"],
    ["-1.0", "0", "0.1", "1"],
    ["0.5", "-0.2"],
    ["train", "valid", "test", "Train"],
]


def rows_of(draw, head: list[str], valid: list[list[str]]) -> bytes:
    rows = [
        [draw(st.sampled_from(v)) if draw(st.integers(0, 7)) else draw(cell) for v in valid]
        for _ in range(draw(st.integers(0, 6)))
    ]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([head, *rows])
    return buf.getvalue().encode(
        draw(st.sampled_from(["utf-8", "utf-8", "cp1252", "gb18030"])), "replace"
    )


@given(data=st.data())
@settings(SETTINGS, max_examples=SETTINGS.max_examples // 2)  # two prepares per case
def test_fuzz_meld_and_sims_files(data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        meld, sims = Path(tmp) / "meld", Path(tmp) / "sims"
        meld.mkdir()
        sims.mkdir()
        for split in ("train", "dev", "test"):
            text = rows_of(data.draw, MELD_HEAD, MELD_VALID)
            (meld / f"{split}_sent_emo.csv").write_bytes(text)
        (sims / "label.csv").write_bytes(rows_of(data.draw, SIMS_HEAD, SIMS_VALID))
        outcome(meld, None, Path(tmp) / "out-meld", adapter="meld")
        outcome(sims, None, Path(tmp) / "out-sims", adapter="sims")
