"""The CLI as the other er tools have it: --version, shell completion, -q, progress lines a log
file keeps, and a missing optional extra read as `error: ... needs ...` + `hint: pip install`."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from er_core.stream import encode
from er_data.cli import main

# a progress line off a terminal: label, count, rate and ETA
LINE = re.compile(r"(?m)^(?P<label>[\w :]+): (?P<done>\d+)/(?P<total>\d+) \w+ .*/s, .*ETA \S+$")


def in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run `er-data ARGS` through er_core.run in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["er-data", *args])
    code = 0
    try:
        main()  # returns on success; exits with the code otherwise
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_names_the_tool_and_er_core(cli):
    r = cli("--version")
    assert r.returncode == 0
    assert re.match(rb"er-data \S+ \(er-core \S+\); Python 3\.", r.stdout)


def test_completion_can_be_installed(cli):
    r = cli("--help")
    assert r.returncode == 0 and b"--install-completion" in r.stdout


@pytest.mark.parametrize("command", ["prepare", "validate", "synth"])
def test_long_commands_take_quiet(cli, command):
    help_ = cli(command, "--help").stdout.decode()
    assert "-q, --quiet" in help_ and "--progress" not in help_


def test_synth_without_opencv_says_what_to_install(monkeypatch, capsys, tmp_path: Path):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` fails as if not installed
    code, out, err = in_process(monkeypatch, capsys, "synth", "--out", str(tmp_path / "d"))
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith("error: er-data synth (drawing the video clips) needs opencv")
    assert lines[1] == "hint: pip install 'er-data[media]'"
    assert len(lines) == 2 and not (tmp_path / "d").exists()  # refused before any work


def test_validate_without_pyav_says_what_to_install(monkeypatch, capsys, tmp_path, make_table):
    from er_core import DatasetManifest

    table = make_table(tmp_path / "t.parquet", {"train": {"a": 2}}, ["a"])
    manifest = DatasetManifest(id="f" * 64, dataset="x", task="emotion", classes=["a"], table=table)
    stream = tmp_path / "m.ndjson"
    stream.write_bytes(encode(manifest) + b"\n")
    monkeypatch.setitem(sys.modules, "av", None)
    code, _, err = in_process(monkeypatch, capsys, "validate", str(stream))
    assert code == 1
    assert err.splitlines() == [
        "error: validating media needs av, which is not installed",
        "hint: pip install 'er-data[media]'",
    ]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    pytest.importorskip("cv2")
    pytest.importorskip("av")
    from er_data.synthetic import synth

    return synth(tmp_path_factory.mktemp("s") / "meld", utterances=12, seed=1, quiet=True)


def test_progress_lines_reach_a_log_file_and_quiet_silences_them(cli, synth_root, tmp_path):
    # stderr is a pipe here, as when a script's log is redirected to a file
    out = str(tmp_path / "o")
    prepared = cli("prepare", "meld", "--root", str(synth_root), "--out", out)
    assert prepared.returncode == 0, prepared.stderr.decode()
    lines = {m["label"]: m for m in LINE.finditer(prepared.stderr.decode())}
    assert lines["prepare: media"]["done"] == lines["prepare: media"]["total"] == "12"
    checked = cli("validate", input=prepared.stdout)
    assert checked.returncode == 0, checked.stderr.decode()
    final = LINE.search(checked.stderr.decode())
    assert final and final["label"] == "validate: decode" and final["done"] == final["total"]
    quiet = cli("validate", "-q", input=prepared.stdout)
    assert quiet.returncode == 0 and quiet.stderr == b"" and quiet.stdout == prepared.stdout


def test_synth_shows_its_progress(cli, tmp_path):
    pytest.importorskip("cv2")
    r = cli("synth", "--out", str(tmp_path / "d"), "-n", "6")
    assert r.returncode == 0, r.stderr.decode()
    m = LINE.search(r.stderr.decode())
    assert m and m["label"] == "synth" and m["done"] == m["total"] == "6"
    quiet = cli("synth", "--out", str(tmp_path / "e"), "-n", "6", "-q")
    assert quiet.returncode == 0 and b"utt/s" not in quiet.stderr
