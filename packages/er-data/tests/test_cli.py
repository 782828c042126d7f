"""The er-data command line as a user's shell runs it: imports, help, `stats`, pipes."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys

import pytest
from er_core import DatasetManifest
from er_core.stream import encode

CLASSES = ["neutral", "joy", "anger"]
SPLITS = {"train": 6, "dev": 3, "test": 2}
COUNTS = {
    "train": {"neutral": 3, "joy": 2, "anger": 1},
    "dev": {"neutral": 1, "joy": 1, "anger": 1},
    "test": {"neutral": 2, "joy": 0, "anger": 0},
}


def manifest(folder, make_table, **kw) -> DatasetManifest:
    """A manifest and its real table (in `folder`), which passes the table check."""
    counts = kw.get("class_counts", COUNTS) or kw.get("splits", SPLITS)
    fields = {
        "id": "f" * 64,
        "tool": "er-data 0.1.0",
        "dataset": "meld",
        "task": "emotion",
        "classes": CLASSES,
        "label_column": "emotion",
        "splits": SPLITS,
        "class_counts": COUNTS,
        "table": make_table(
            folder / "utterances.parquet",
            counts,
            kw.get("classes", CLASSES),
            task=kw.get("task", "emotion"),
        ),
    }
    return DatasetManifest(**{**fields, **kw})


# a newer tool's message: must pass through stats untouched
FUTURE = b'{"kind":"report_v9","encoder": "minilm" ,"shards":[1,2]}'  # a kind this version lacks


@pytest.fixture
def manifest_file(tmp_path, make_table):
    p = tmp_path / "manifest.json"
    p.write_bytes(encode(manifest(tmp_path, make_table)) + b"\n")
    return p


def no_heavy_imports(code: str) -> None:
    check = (
        code + "\nbad = [m for m in ('torch', 'polars') if m in sys.modules]\nassert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_importing_the_cli_pulls_in_no_torch_or_polars():
    no_heavy_imports("import sys\nimport er_data, er_data.cli")


def test_help_pulls_in_no_torch_or_polars():
    no_heavy_imports(
        "import sys\nimport er_data.cli as c\nsys.argv = ['er-data', '--help']\n"
        "try:\n    c.main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
    )


def test_help_lists_the_commands(cli):
    r = cli("--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    commands = out.split("Commands:", 1)[1]
    for name in ("prepare", "stats", "validate", "synth", "adapters"):
        assert f"\n  {name} " in commands, out
    for name in ("prepare", "stats"):
        r = cli(name, "--help")
        assert r.returncode == 0 and b"Example:" in r.stdout


def test_adapters_lists_every_layout(cli):
    r = cli("adapters")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["files", "iemocap", "meld", "sims", "table"]


def parse_table(text: str) -> dict[str, list[str]]:
    rows = [[c.strip() for c in line.split("|")] for line in text.strip().splitlines()]
    return {r[0]: r[1:] for r in rows}


def test_stats_table_on_stderr_stream_on_stdout(cli, manifest_file):
    r = cli("stats", str(manifest_file))
    assert r.returncode == 0, r.stderr
    assert r.stdout == manifest_file.read_bytes()  # the manifest passes through byte for byte
    table = parse_table(r.stderr.decode())
    assert table == {
        "class": ["train", "dev", "test"],
        "neutral": ["3", "1", "2"],
        "joy": ["2", "1", "0"],
        "anger": ["1", "1", "0"],
        "total": ["6", "3", "2"],
    }


def test_stats_reads_stdin_and_passes_other_messages_through(cli, manifest_file):
    stream = FUTURE + b"\n" + manifest_file.read_bytes() + FUTURE + b"\n"
    r = cli("stats", input=stream)
    assert r.returncode == 0, r.stderr
    assert r.stdout == stream
    r = cli("stats", "-", input=stream)
    assert r.stdout == stream


def test_stats_csv(cli, manifest_file):
    r = cli("stats", str(manifest_file), "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout.decode())))
    got = {(x["split"], x["class"]): (int(x["count"]), float(x["share"])) for x in rows}
    assert len(rows) == 9
    assert got[("train", "neutral")] == (3, 0.5)
    assert got[("train", "anger")] == (1, pytest.approx(1 / 6))
    assert got[("dev", "joy")] == (1, pytest.approx(1 / 3))
    assert got[("test", "neutral")] == (2, 1.0)
    assert got[("test", "joy")] == (0, 0.0)
    assert b"neutral" not in r.stderr  # the data went to stdout, not a table on stderr


def test_stats_json(cli, manifest_file):
    r = cli("stats", str(manifest_file), "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(rows) == 9
    assert all(set(x) == {"split", "class", "count", "share"} for x in rows)
    by = {(x["split"], x["class"]): x for x in rows}
    assert by[("dev", "anger")]["count"] == 1
    assert by[("train", "joy")]["count"] == 2
    assert by[("train", "joy")]["share"] == pytest.approx(2 / 6)
    assert sum(x["count"] for x in rows if x["split"] == "train") == 6


def test_stats_regression_manifest(cli, tmp_path, make_table):
    m = manifest(
        tmp_path,
        make_table,
        task="regression",
        task_type="regression",
        classes=[],
        class_counts={},
        label_column="regression",
    )
    p = tmp_path / "m.json"
    p.write_bytes(encode(m) + b"\n")
    r = cli("stats", str(p), "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert [(x["split"], x["count"], x["share"]) for x in rows] == [
        ("train", 6, 1.0),
        ("dev", 3, 1.0),
        ("test", 2, 1.0),
    ]


def test_stats_bad_format_is_a_usage_error(cli, manifest_file):
    r = cli("stats", str(manifest_file), "--format", "bogus")
    assert r.returncode == 2
    assert r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert lines[0].startswith("error: ") and "bogus" in lines[0]
    assert lines[1].startswith("hint: ")


def test_stats_without_a_dataset_message(cli):
    r = cli("stats", input=FUTURE + b"\n")
    assert r.returncode == 1
    assert r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 2 and "no 'dataset' message" in lines[0] and lines[1].startswith("hint: ")
    r = cli("stats", input=b"")
    assert r.returncode == 1


def test_stats_missing_file_and_bad_json(cli, tmp_path):
    r = cli("stats", str(tmp_path / "nope.json"))
    assert r.returncode == 1
    assert r.stderr.decode().splitlines()[0].endswith(f", at {tmp_path / 'nope.json'}")
    bad = tmp_path / "bad.json"
    bad.write_bytes(FUTURE + b"\n{oops\n")
    r = cli("stats", str(bad))
    assert r.returncode == 1 and r.stdout == b""
    assert r.stderr.decode().splitlines()[0].endswith(f", at {bad}:2")


def test_stats_on_a_terminal_with_no_input_says_how_to_use_it():
    # a real pseudo-terminal on stdin: nothing is piped in and no file is named
    leader, follower = pty.openpty()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "er_data", "stats"],
            stdin=follower,
            capture_output=True,
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert r.returncode == 2
    assert r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert lines[0].startswith("error: ") and "no input" in lines[0]
    assert lines[1].startswith("hint: ")


def test_stats_into_a_closed_pipe_is_quiet(manifest_file, tmp_path):
    # `er-data stats big.jsonl | head -1`: far more than a pipe buffer, reader leaves after a line
    big = tmp_path / "big.jsonl"
    big.write_bytes(FUTURE + b"\n" + manifest_file.read_bytes() * 5000)
    writer = subprocess.Popen(
        [sys.executable, "-m", "er_data", "stats", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.readline())"],
        stdin=writer.stdout,
        stdout=subprocess.PIPE,
    )
    assert writer.stdout is not None
    writer.stdout.close()
    head, _ = reader.communicate(timeout=120)
    _, err = writer.communicate(timeout=120)
    assert head == FUTURE + b"\n"
    text = err.decode()
    assert "Traceback" not in text and "BrokenPipe" not in text and "Exception ignored" not in text


def two_lines(stderr: bytes) -> list[str]:
    lines = stderr.decode().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), lines
    assert "bug in er" not in lines[1] and "Traceback" not in stderr.decode(), lines
    return lines


def test_stats_with_stdout_closed(manifest_file):
    """`er-data stats m.json >&-`: one error line, no traceback."""
    r = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m er_data stats "{manifest_file}" >&-'],
        capture_output=False,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    assert r.returncode == 1
    two_lines(r.stderr)


def test_prepare_into_a_full_disk(tmp_path):
    """`er-data prepare ... > /dev/full`: one error line saying the disk is full."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    root = tmp_path / "MELD"
    root.mkdir()
    head = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
    for split in ("train", "dev", "test"):
        (root / f"{split}_sent_emo.csv").write_text(head + "1,Hi.,Ann,joy,positive,0,0\n")
    with open("/dev/full", "wb") as full:
        r = subprocess.run(
            [sys.executable, "-m", "er_data", "prepare", "meld", "--root", str(root)],
            cwd=tmp_path,
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    assert r.returncode == 1
    assert "no space" in two_lines(r.stderr)[0]
