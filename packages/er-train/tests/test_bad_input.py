"""Bad inputs and configs: each is one `error: ..., at ...` line and a `hint:`, exit 1 (2 for
usage), and nothing is trained: no run folder appears."""

from __future__ import annotations

import json
import os

import msgspec
import numpy as np
import pytest
from er_core import ErError, FeatureManifest, FileRef, read_stream, sha256_file
from er_core.stream import encode
from safetensors.numpy import load_file, save_file


@pytest.fixture(scope="module")
def other(tmp_path_factory, make_toy):
    """Another dataset (other name, other rows), with its own features."""
    return make_toy(tmp_path_factory.mktemp("other"), name="other", n_dialogues=12, seed=1)


# --- inputs ----------------------------------------------------------------------------------


def test_features_of_another_dataset(tmp_path, toy, other, fail):
    stream = toy.write(tmp_path / "mixed.ndjson", "text", extra=[other.feature_lines["audio"]])
    index = json.loads(other.feature_lines["audio"])["index"]["path"]
    err, hint = fail(
        stream,
        fragments=["audio features (import:audio.npz) were made for another dataset table"],
    )
    assert err.endswith(f", at {index}")
    assert "er-features" in hint


def test_resume_with_features_of_another_width(
    tmp_path, toy, train_run, import_npz_features, fast_config, cli_here, check_error, files_under
):
    runs = tmp_path / "runs"
    first = train_run(toy.stream, runs, "train.epochs=1")
    folder = first.run_dir
    ids = toy.table["id"].to_list()
    wide = np.random.default_rng(5).normal(size=(len(ids), 20)).astype(np.float32)
    line = import_npz_features(toy.dataset_line, "text", ids, wide, tmp_path / "wide.npz")
    stream = tmp_path / "wide.ndjson"
    stream.write_bytes(
        b"\n".join([toy.dataset_line, line, *(toy.feature_lines[m] for m in ("audio", "video"))])
    )
    before = {p: os.lstat(runs / p).st_mtime_ns for p in files_under(runs)}

    code, out, err = cli_here(
        stream, "-c", fast_config, "--runs", runs, "--set", "train.epochs=1", "--resume", folder
    )
    assert code == 1 and out == ""
    err_line, hint = check_error(
        err, "the checkpoint was trained on text features of width 12, the input's are 20"
    )
    assert err_line.endswith(f", at {folder}/checkpoint.safetensors")
    assert "same encoders" in hint
    assert {p: os.lstat(runs / p).st_mtime_ns for p in files_under(runs)} == before


def test_resume_a_folder_without_checkpoint(tmp_path, toy, fail):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    fail(toy.stream, "--resume", empty, fragments=["no checkpoint to resume", str(empty)])


def test_the_importer_refuses_nan(tmp_path, toy, import_npz_features):
    ids = toy.table["id"].to_list()
    feats = np.zeros((len(ids), 4), np.float32)
    feats[5, 2] = np.nan
    with pytest.raises(ErError) as e:
        import_npz_features(toy.dataset_line, "audio", ids, feats, tmp_path / "nan.npz")
    # er-features words it; what er-train relies on: the row is named, and nothing is cached
    assert ids[5] in e.value.what and ("NaN" in e.value.what or "finite" in e.value.what)
    assert str(tmp_path / "nan.npz") in (e.value.at or "") and e.value.hint


@pytest.fixture
def nan_stream(tmp_path, toy):
    """The toy's stream with its audio shard rewritten: table rows 3 (NaN) and 9 (inf), the
    manifest's sha256 updated to match, so only er-train's own check can catch it."""
    fm = msgspec.json.decode(toy.feature_lines["audio"], type=FeatureManifest)
    (shard,) = fm.shards
    tensors = load_file(shard.path)
    from safetensors import safe_open

    with safe_open(shard.path, framework="numpy") as f:
        meta = f.metadata()
    tensors["features"][3, 0] = np.nan
    tensors["features"][9, 1] = np.inf
    path = tmp_path / "poisoned.safetensors"
    save_file(tensors, str(path), metadata=meta)
    ref = FileRef(path=str(path), sha256=sha256_file(path), bytes=path.stat().st_size)
    bad = msgspec.structs.replace(fm, shards=[ref])
    return toy.write(tmp_path / "nan.ndjson", "text", "video", extra=[encode(bad)]), fm


def test_nan_features_are_refused_before_training(nan_stream, toy, fail):
    from er_train.data import load_data

    stream, fm = nan_stream
    first = toy.table["id"][3]  # import writes the shard in table order
    with pytest.raises(ErError) as e:
        load_data(read_stream([str(stream)]), [], "", [])
    assert e.value.what == (
        f"audio features (import:audio.npz) hold NaN or inf in 2 rows (first: {first})"
    )
    assert e.value.at == fm.index.path and "re-extract" in e.value.hint
    fail(stream, fragments=["hold NaN or inf in 2 rows"])
    # the other modalities alone are fine: the check is per modality
    assert load_data(read_stream([str(stream)]), ["text", "video"], "", []).dims == {
        "text": 12,
        "video": 6,
    }


def test_a_changed_shard_is_refused(tmp_path, toy, fail):
    """A shard rewritten without updating its sha256 in the manifest is caught too."""
    fm = msgspec.json.decode(toy.feature_lines["video"], type=FeatureManifest)
    wrong = msgspec.structs.replace(fm.shards[0], sha256="0" * 64)
    stream = toy.write(
        tmp_path / "s.ndjson",
        "text",
        "audio",
        extra=[encode(msgspec.structs.replace(fm, shards=[wrong]))],
    )
    fail(stream, fragments=["feature shard does not match its sha256"])


def test_a_stream_without_features(tmp_path, toy, fail):
    fail(toy.write(tmp_path / "bare.ndjson"), fragments=["no features for any modality"])


# --- configs and options ----------------------------------------------------------------------


def test_unknown_fusion_lists_the_known_ones(toy, fail):
    from er_models import names

    err, hint = fail(toy.stream, "--set", "fusion.kind=nope", fragments=["unknown fusion 'nope'"])
    assert err.endswith("$.fusion.kind") and "--set fusion.kind=nope" in err
    assert all(k in hint for k in names("fusion"))


def test_unknown_key_in_a_config_file(tmp_path, toy, fail):
    bad = tmp_path / "recipe.toml"
    bad.write_text("[train]\nepochs = 2\nwarmpu = 0.1\n")
    err, hint = fail(toy.stream, "-c", bad, fragments=["unknown key 'train.warmpu'"])
    assert err.endswith(f", at {bad}:$.train.warmpu")
    assert "warmup" in hint  # the known keys of [train]


def test_unknown_key_in_a_part_section(tmp_path, toy, fail):
    bad = tmp_path / "fusion.toml"
    bad.write_text('[fusion]\nkind = "concat"\nexperts = 4\n')
    err, _ = fail(toy.stream, "-c", bad, fragments=["unknown key", "experts"])
    assert f"at {bad}:$.fusion.experts" in err


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (["--set", "task=nope"], 1, ["the dataset has no task 'nope'", "$.task", "emotion, sentiment, arousal"]),
        (["--set", 'tasks=["emotion", "sentiment"]'], 1, ["head 'classification' predicts one", "multi-task"]),
        (["--set", "train.select=f1"], 1, ["unknown selection metric 'f1'", "$.train.select", "emotion/weighted_f1"]),
        (["--set", "train.epochs=0"], 1, ["train.epochs", "$.train.epochs"]),
        (["--modalities", "T+X"], 2, ["unknown modality 'X' in 'T+X'", "at --modalities", "T+A+V"]),
        (["--set", "modalities=T+X"], 1, ["unknown modality 'X' in 'T+X'"]),
        (["--set", "train.precision=fp16"], 2, ["fp16 needs CUDA", "$.train.precision", "bf16"]),
        (["--device", "tpu"], 2, ["unknown --device 'tpu'", "at --device"]),
    ],
    ids=["task", "two-tasks-one-head", "select", "epochs", "modalities", "set-modalities", "fp16", "device"],
)  # fmt: skip
def test_bad_config_or_option(args, code, fragments, toy, fail):
    fail(toy.stream, *args, code=code, fragments=fragments)


def test_modalities_the_stream_lacks(tmp_path, toy, fail):
    stream = toy.write(tmp_path / "t.ndjson", "text")
    fail(stream, "-m", "T+A+V", fragments=["no features for audio, video", "features here: T"])


# --- stdin ------------------------------------------------------------------------------------


def test_empty_stdin(tmp_path, fast_config, cli_here, check_error):
    code, out, err = cli_here("-c", fast_config, "--runs", tmp_path / "runs")
    assert code == 1 and out == ""
    check_error(err, "no 'dataset' message in the input", "<input>")
    assert not (tmp_path / "runs").exists()


def test_a_terminal_on_stdin_is_a_usage_error(tmp_path, fast_config, cli_here, check_error):
    master, replica = os.openpty()
    try:
        with open(replica, encoding="utf-8", closefd=False) as tty:
            assert tty.buffer.isatty()
            code, out, err = cli_here("-c", fast_config, "--runs", tmp_path / "runs", stdin=tty)
    finally:
        os.close(master)
        os.close(replica)
    assert code == 2 and out == ""
    check_error(err, "no input", "pipe", at=False)
    assert not (tmp_path / "runs").exists()
