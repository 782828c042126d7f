"""The er-features CLI in a subprocess: streams, exit codes, cache commands, torchrun."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest


def lines(out: bytes) -> list[dict]:
    return [json.loads(x) for x in out.splitlines()]


@pytest.fixture
def text_run(cli, synth_dataset, tiny_bert, tmp_path):
    def run(*extra: str, input: bytes = synth_dataset):
        return cli(
            "extract",
            "--modality",
            "text",
            "--encoder",
            str(tiny_bert),
            "--cache",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "out"),
            *extra,
            input=input,
        )

    return run


def test_help_is_instant_and_imports_no_torch():
    code = "import sys, er_features.cli; sys.exit('torch' in sys.modules or 'cv2' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_extract_passes_the_stream_and_appends_a_manifest(text_run, synth_dataset, tmp_path):
    r = text_run()
    assert r.returncode == 0, r.stderr.decode()
    msgs = lines(r.stdout)
    assert r.stdout.startswith(synth_dataset)  # upstream passes through byte for byte
    assert [m["kind"] for m in msgs] == ["dataset", "features"]
    feats = msgs[1]
    assert feats["dim"] == 32 and feats["count"] == 24 and feats["dataset"] == msgs[0]["id"]
    copy = tmp_path / "out" / "er-features" / feats["id"][:12] / "features.json"
    assert json.loads(copy.read_text()) == feats
    # not a terminal: the progress line a log file keeps (rate, ETA), and no library chatter
    assert re.fullmatch(
        rb"extract text \S+: 24/24 utt \(100%\), [\d.]+ utt/s, elapsed \S+, ETA \S+\n", r.stderr
    )


def test_two_extract_steps_chain(cli, text_run, tiny_bert, tmp_path):
    first = text_run()
    second = cli(
        "extract",
        "-m",
        "text",
        "-e",
        str(tiny_bert),
        "--set",
        "text.context_before=2",
        "--cache",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
        input=first.stdout,
    )
    assert second.returncode == 0, second.stderr.decode()
    msgs = lines(second.stdout)
    assert [m["kind"] for m in msgs] == ["dataset", "features", "features"]
    assert msgs[2]["config"]["context_before"] == 2 and msgs[1]["cache_key"] != msgs[2]["cache_key"]


def test_quiet_silences_progress(text_run, synth_dataset):
    r = text_run("-q")
    assert r.returncode == 0 and r.stderr == b"" and r.stdout.startswith(synth_dataset)


def test_config_file_and_bad_keys(text_run, tmp_path):
    cfg = tmp_path / "enc.toml"
    cfg.write_text('[text]\ncontext_before = 1\npoolin = "mean"\n')
    r = text_run("--config", str(cfg))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "unknown key 'text.poolin'" in err and str(cfg) in err and "hint: known keys" in err


def test_unknown_encoder_and_bad_shard(cli, synth_dataset, tmp_path):
    r = cli(
        "extract", "-m", "text", "-e", "bert-huge", "--cache", str(tmp_path), input=synth_dataset
    )
    assert r.returncode == 1
    err = r.stderr.decode().splitlines()
    assert err[0].startswith("error: unknown encoder 'bert-huge'") and err[1].startswith("hint:")
    r = cli("extract", "-m", "text", "--shard", "3/3", input=synth_dataset)
    assert r.returncode == 2 and b"--shard" in r.stderr


def test_no_input_on_a_terminal_is_usage(cli):
    import pty

    _main, other = pty.openpty()
    r = subprocess.run(
        [sys.executable, "-m", "er_features", "extract", "-m", "text"],
        stdin=other,
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 2 and b"no input" in r.stderr


def test_encoders_lists_the_aliases(cli):
    r = cli("encoders", "--format", "json")
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert {"minilm", "mpnet-base", "whisper-tiny.en", "whisper-base", "fer-xception"} <= set(rows)
    assert rows["minilm"]["modality"] == "text" and rows["whisper-base"]["modality"] == "audio"


def test_cache_commands(cli, text_run, tmp_path):
    feats = lines(text_run().stdout)[1]
    cache = str(tmp_path / "cache")
    ls = cli("cache", "ls", "--cache", cache)
    assert ls.returncode == 0 and b"text" in ls.stdout
    assert cli("cache", "verify", "--cache", cache).returncode == 0
    victim = Path(feats["shards"][0]["path"])
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    bad = cli("cache", "verify", "--cache", cache)
    assert bad.returncode == 1 and victim.name.encode() in bad.stderr
    assert cli("cache", "verify", "--cache", cache, "--fix").returncode == 0
    assert not victim.exists()
    again = text_run()  # the removed shard is recomputed
    assert again.returncode == 0 and lines(again.stdout)[1]["shards"] == feats["shards"]


def test_shard_slices_merge_on_the_command_line(cli, text_run, tmp_path):
    whole = lines(text_run("--set", "shard_size=5").stdout)[1]
    parts = b"".join(
        text_run("--set", "shard_size=5", "--shard", f"{i}/2").stdout for i in range(2)
    )
    merged = cli("merge", "--out", str(tmp_path / "out"), input=parts)
    assert merged.returncode == 0, merged.stderr.decode()
    msgs = lines(merged.stdout)
    assert [m["kind"] for m in msgs] == ["dataset", "features"]
    assert msgs[1] == whole


def test_torchrun_splits_by_rank_and_rank0_prints_the_whole(
    text_run, synth_dataset, tiny_bert, tmp_path
):
    whole = lines(text_run("--set", "shard_size=5").stdout)[1]
    src = tmp_path / "dataset.ndjson"
    src.write_bytes(synth_dataset)
    cache = tmp_path / "cache2"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "er_features",
            "extract",
            str(src),
            "-m",
            "text",
            "-e",
            str(tiny_bert),
            "--set",
            "shard_size=5",
            "--cache",
            str(cache),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    msgs = lines(r.stdout)
    assert [m["kind"] for m in msgs] == ["dataset", "features"]  # rank 0 alone wrote
    got = msgs[1]
    assert got["id"] == whole["id"] and got["count"] == whole["count"]
    assert [s["sha256"] for s in got["shards"]] == [s["sha256"] for s in whole["shards"]]
