"""The CLI as the other er tools have it: --version with torch, completion, -m letters, -q,
-j, progress lines a log file keeps; and a dataset without transcripts refused by a text
extract. In process through er_core.run where no subprocess is needed (torch loads once)."""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from er_core import DatasetManifest, find, read_stream
from er_core.stream import encode
from er_features.cli import main

LINE = r"(?m)^{label}: (\d+)/(\d+) {unit} \(100%\), [\d.]+ {unit}/s, elapsed \S+, ETA \S+$"


def in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`er-features ARGS` through er_core.run in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["er-features", *args])
    code = 0
    try:
        main()  # returns on success; exits with the code otherwise
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_names_torch(cli):
    r = cli("--version")
    assert r.returncode == 0
    assert re.match(rb"er-features \S+ \(er-core \S+, er-data \S+\); Python \S+; torch ", r.stdout)


def test_completion_and_shared_short_flags(cli):
    assert b"--install-completion" in cli("--help").stdout
    help_ = cli("extract", "--help").stdout.decode()
    for flag in ("-m, --modality", "-e, --encoder", "-c, --config", "-q, --quiet", "-j, --threads"):
        assert flag in help_
    assert "--progress" not in help_
    assert "-q, --quiet" in cli("import", "--help").stdout.decode()
    assert "-q, --quiet" in cli("cache", "verify", "--help").stdout.decode()


@pytest.mark.parametrize("letter, name", [("T", "text"), ("a", "audio"), ("V", "video")])
def test_modality_letters_mean_the_modality(letter, name):
    from er_features.cli import _modality

    assert _modality(letter) == name and _modality(name) == name


def test_an_unknown_modality_is_a_usage_error(monkeypatch, capsys, synth_dataset, tmp_path):
    stream = tmp_path / "d.ndjson"
    stream.write_bytes(synth_dataset)
    code, _, err = in_process(monkeypatch, capsys, "extract", "-m", "X", str(stream))
    assert code == 2
    assert err.splitlines() == [
        "error: unknown --modality 'X', at --modality",
        "hint: use text, audio or video (T, A, V)",
    ]


def test_extract_with_letter_threads_and_progress(
    monkeypatch, capsys, synth_dataset, tiny_bert, tmp_path
):
    import torch

    tmp = tmp_path
    stream = tmp / "d.ndjson"
    stream.write_bytes(synth_dataset)
    args = ["-e", str(tiny_bert), "--cache", str(tmp / "c"), "--out", str(tmp / "o"), str(stream)]
    before = torch.get_num_threads()
    try:
        code, out, err = in_process(monkeypatch, capsys, "extract", "-m", "T", "-j", "2", *args)
        assert code == 0, err
        assert torch.get_num_threads() == 2  # -j reached torch before the work
    finally:
        torch.set_num_threads(before)
    msgs = read_stream(["-"], stdin=io.BytesIO(out.encode()))
    feats = msgs[-1].message
    assert feats.modality == "text" and feats.count == 24
    assert re.search(LINE.format(label="extract text \\S+", unit="utt"), err)
    # the same step spelled out, quiet: the same features (the thread count is in no id)
    code, again, err = in_process(monkeypatch, capsys, "extract", "-m", "text", "-q", *args)
    assert code == 0 and err == "" and again == out


def test_import_and_cache_verify_show_progress(monkeypatch, capsys, synth_dataset, tmp_path):
    import polars as pl

    envs = read_stream(["-"], stdin=io.BytesIO(synth_dataset))
    ids = pl.read_parquet(find(envs, DatasetManifest).table.path)["id"].to_list()
    src = tmp_path / "a.npz"
    np.savez(src, ids=np.array(ids), features=np.ones((len(ids), 3), np.float32))
    stream = tmp_path / "d.ndjson"
    stream.write_bytes(synth_dataset)
    cache = ["--cache", str(tmp_path / "c")]
    code, out, err = in_process(
        monkeypatch, capsys, "import", "-m", "A", "--from", str(src), *cache, str(stream)
    )
    assert code == 0, err
    assert '"modality":"audio"' in out.splitlines()[-1]
    m = re.search(LINE.format(label="import audio", unit="utt"), err)
    assert m and m[1] == m[2] == str(len(ids))
    code, _, err = in_process(monkeypatch, capsys, "cache", "verify", *cache)
    assert code == 0 and re.search(LINE.format(label="cache verify", unit="shards"), err)
    code, _, err = in_process(monkeypatch, capsys, "cache", "verify", "-q", *cache)
    assert code == 0 and err == "cache ok\n"


@pytest.fixture
def no_text_dataset(tmp_path) -> Path:
    """A dataset mapped without columns.text (its features would be imported), as a stream."""
    from er_data.preparation import prepare

    root = tmp_path / "data"
    root.mkdir()
    with open(root / "d.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "video", "fold", "label"])
        w.writerows(
            [["a", "v1", "train", "pos"], ["b", "v2", "dev", "neg"], ["c", "v3", "test", "pos"]]
        )
    (root / "m.toml").write_text(
        'dataset = "clips"\nfile = "d.csv"\n[columns]\nid = "clip"\ndialogue = "video"\n'
        'split = "fold"\n[tasks.emotion]\ncolumn = "label"\nclasses = ["pos", "neg"]\n'
    )
    manifest = prepare("table", root, configs=[str(root / "m.toml")], out=tmp_path / "out")
    stream = tmp_path / "d.ndjson"
    stream.write_bytes(encode(manifest) + b"\n")
    return stream


def test_text_extract_of_a_dataset_without_text_is_refused(
    monkeypatch, capsys, no_text_dataset, tmp_path
):
    # no encoder given: the refusal comes before any weights are looked for
    args = ["extract", "-m", "text", "--cache", str(tmp_path / "c"), str(no_text_dataset)]
    code, out, err = in_process(monkeypatch, capsys, *args)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("error: dataset clips has no text to encode, at ")
    assert lines[1] == (
        "hint: this dataset has no text column (columns.text not mapped); "
        "import its features with er-features import"
    )
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*.safetensors"))
