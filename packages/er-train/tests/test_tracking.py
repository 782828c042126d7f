"""Tracking: metrics.csv (live, atomic, equal to run.json's epochs after a kill and a resume),
per-objective train losses, TensorBoard event files read back by TensorBoard's own reader, the
one-line error when the tensorboard extra is missing, and ETA on the progress lines."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
from er_core import EpochRecord, RunManifest
from er_train.tracking import improvements, metrics_csv
from safetensors import safe_open

# the toy's train split: 16 batches an epoch with fast.toml (see test_resume.py); killed right
# after epoch 2's first optimizer step, so epoch 1 is checkpointed and tracked, epoch 2 is not
KILL_AT = 17

TRACKED = """
[run]
log = ["tensorboard"]

[aux.supcon]
weight = 0.1
"""


def run_folder(root: Path) -> Path:
    (ckpt,) = root.rglob("checkpoint.safetensors")
    return ckpt.parent


def checkpoint_history(folder: Path) -> list[EpochRecord]:
    with safe_open(str(folder / "checkpoint.safetensors"), framework="pt") as f:
        state = json.loads(f.metadata()["er.state"])
    return msgspec.convert(state["history"], list[EpochRecord])


def assert_csv_is(folder: Path, epochs: list[EpochRecord], select: str) -> pl.DataFrame:
    """metrics.csv, read by polars, holds exactly these epochs' numbers (no float rounding)."""
    df = pl.read_csv(folder / "metrics.csv")
    assert df.height == len(epochs)
    assert df["epoch"].to_list() == [e.epoch for e in epochs]
    assert df["train/loss"].to_list() == [e.train_loss for e in epochs]
    assert df["lr"].to_list() == [e.lr for e in epochs]
    assert df["seconds"].to_list() == [e.seconds for e in epochs]
    for name in epochs[0].losses:
        assert df[f"train/{name}"].to_list() == [e.losses[name] for e in epochs]
    for name in epochs[0].dev:
        assert df[f"dev/{name}"].to_list() == [e.dev[name] for e in epochs]
    expected_columns = 1 + 1 + len(epochs[0].losses) + len(epochs[0].dev) + 3
    assert len(df.columns) == expected_columns, df.columns
    assert df["best"].to_list() == improvements(epochs, select, higher=True)
    return df


def tensorboard_curve(folder: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def float32(x: float) -> float:
    return float(np.float32(x))  # TensorBoard stores scalars as float32


def test_metrics_csv_and_tensorboard_survive_a_kill_and_resume(tmp_path, toy, fast_config, cli):
    tracked = tmp_path / "tracked.toml"
    tracked.write_text(TRACKED)
    runs = tmp_path / "runs"
    args = [toy.stream, "-c", fast_config, "-c", tracked, "--runs", runs]
    select, curve = "emotion/weighted_f1", "dev/emotion/weighted_f1"

    code, _, err = cli(*args, env={"ER_TRAIN_KILL_AFTER_STEP": str(KILL_AT)})
    assert code == -9, err
    folder = run_folder(runs)
    assert not (folder / "run.json").exists()  # the run is not over
    (first,) = checkpoint_history(folder)
    df = assert_csv_is(folder, [first], select)
    # every objective has its column, and the parts add up to the loss
    assert {"train/emotion", "train/supcon"} <= set(df.columns)
    assert math.isclose(
        first.losses["emotion"] + first.losses["supcon"], first.train_loss, rel_tol=1e-6
    )
    assert tensorboard_curve(folder, curve) == [(1, float32(first.dev[select]))]
    assert not list(folder.glob("*.tmp"))

    code, out, err = cli(*args)
    assert code == 0, err
    m = msgspec.json.decode(out.splitlines()[-1], type=RunManifest)
    assert [e.epoch for e in m.epochs] == [1, 2, 3]
    assert m.epochs[0] == first  # the resumed run kept the killed process's epoch
    assert_csv_is(folder, m.epochs, select)
    # epoch 1 was written by both processes; TensorBoard shows it once (purge_step)
    assert len(list((folder / "tensorboard").iterdir())) == 2
    assert tensorboard_curve(folder, curve) == [(e.epoch, float32(e.dev[select])) for e in m.epochs]
    losses = tensorboard_curve(folder, "train/supcon")
    assert losses == [(e.epoch, float32(e.losses["supcon"])) for e in m.epochs]
    assert [s for s, _ in tensorboard_curve(folder, "lr")] == [1, 2, 3]


@pytest.fixture(scope="module")
def teacher(toy, train_run, tmp_path_factory):
    runs = tmp_path_factory.mktemp("teacher")
    return train_run(toy.write(runs / "t.ndjson", "text"), runs)


def test_every_objective_is_recorded_and_lines_show_eta(
    toy, train_run, teacher, tmp_path, monkeypatch, capfd
):
    """Tasks, aux objectives, distillation and branches each get their mean per batch; they
    sum to the train loss. Progress lines (every step with ER_PROGRESS_EVERY=0) carry the rate
    and the epoch's ETA; the epoch lines carry the run's ETA."""
    monkeypatch.setenv("ER_PROGRESS_EVERY", "0")
    sets = ("model.branches=true", "aux.supcon.weight=0.1", "distill.kl=0.5")
    m = train_run(toy.stream, tmp_path, *sets, f"distill.teacher={teacher.run_dir}", progress=True)
    parts = {"emotion", "supcon", "kd", "branch/text", "branch/audio", "branch/video"}
    for e in m.epochs:
        assert set(e.losses) == parts
        assert all(v > 0 for v in e.losses.values())
        assert math.isclose(sum(e.losses.values()), e.train_loss, rel_tol=1e-6)
    assert_csv_is(Path(m.run_dir), m.epochs, "emotion/weighted_f1")
    assert not (Path(m.run_dir) / "tensorboard").exists()  # not asked for

    lines = capfd.readouterr().err.splitlines()
    inside = [ln for ln in lines if ln.startswith("  epoch 2: batch ")]
    assert len(inside) == 16, lines  # one line per optimizer step
    assert " batch/s, ETA " in inside[0] and inside[-1].split(", ")[2] == "ETA 0s"
    ends = [ln for ln in lines if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in ends] == ["1/3", "2/3", "3/3"]
    assert all(" ETA " in ln for ln in ends) and ends[-1].endswith("ETA 0s")


def test_quiet_runs_print_no_progress(toy, train_run, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("ER_PROGRESS_EVERY", "0")
    m = train_run(toy.stream, tmp_path, "modalities=T")
    assert "epoch" not in capfd.readouterr().err
    assert pl.read_csv(Path(m.run_dir) / "metrics.csv").height == 3  # tracked all the same


def test_missing_tensorboard_is_one_error_line(tmp_path, toy, fail, monkeypatch):
    tracked = tmp_path / "tb.toml"
    tracked.write_text('[run]\nlog = ["tensorboard"]\n')
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if the extra were not installed
    fail(
        toy.stream,
        "-c",
        tracked,
        fragments=("TensorBoard logging needs tensorboard", "pip install 'er-train[tensorboard]'"),
        at=False,
    )


def test_csv_flags_improvements_and_leaves_missing_parts_empty():
    """`best` follows the selection metric's direction; a record from before per-objective
    losses (a resumed old checkpoint) gets empty cells, read as null."""
    history = [
        EpochRecord(epoch=1, train_loss=2.0, lr=0.1, dev={"a/mae": 0.5}, seconds=1.0),
        EpochRecord(epoch=2, train_loss=1.5, dev={"a/mae": 0.7}, losses={"a": 1.5}),
        EpochRecord(epoch=3, train_loss=1.0, dev={"a/mae": 0.4}, losses={"a": 1.0}),
    ]
    assert improvements(history, "a/mae", higher=False) == [True, False, True]
    assert improvements(history, "a/mae", higher=True) == [True, True, False]
    df = pl.read_csv(metrics_csv(history, "a/mae", higher=False))
    assert df.columns == ["epoch", "train/loss", "train/a", "dev/a/mae", "lr", "seconds", "best"]
    assert df["train/a"].to_list() == [None, 1.5, 1.0]
    assert df["best"].to_list() == [True, False, True]
    assert pl.read_csv(metrics_csv([], "a/mae", higher=False)).height == 0
