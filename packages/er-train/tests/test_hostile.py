"""Hostile use (issue 12): concurrent writers of one run folder, a kill while another process
waits on the folder's lock, runs that diverge, bad tables.

Each test is built from the toy data of conftest.py and real `er-train` processes where the
fault is about processes (locks, kills)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
import torch
from er_core import ErError, RunManifest, is_locked, sha256_file

LOCK = ".lock"


def wait_for(condition, what: str, timeout: float = 120.0, procs=()) -> None:
    """Poll `condition()` every few ms until it holds; fail (naming `what`) after `timeout`
    seconds or as soon as one of `procs` has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        dead = [p for p in procs if p.poll() is not None]
        assert not dead, f"a process ended ({dead[0].returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def manifest(out: Path) -> RunManifest:
    return msgspec.json.decode(out.read_bytes().splitlines()[-1], type=RunManifest)


def history(m: RunManifest) -> list[tuple]:
    return [(e.epoch, e.train_loss, e.lr, e.dev) for e in m.epochs]


# --- class 1: one writer per run folder -------------------------------------------------------


def test_two_recipes_started_together_never_mix(tmp_path, toy, fast_config, spawn, train_run):
    """Same network and seed, other lr, one runs root, started at once: before the folder
    lock both exited 0 and one RunManifest named the other's weights; then one was refused.
    Now each recipe has its own folder: both finish, each record is its own (what the same
    recipe trains alone)."""
    runs = tmp_path / "runs"
    lrs = ["1e-3", "3e-4"]
    procs = [
        spawn(
            toy.stream,
            "-c",
            fast_config,
            "--runs",
            runs,
            "--set",
            f"train.lr={lr}",
            "--quiet",
            name=f"lr{lr}",
        )
        for lr in lrs
    ]
    codes = [p.wait(timeout=300) for p, _, _ in procs]
    assert codes == [0, 0], [e.read_text() for _, _, e in procs]
    ms = [manifest(out) for _, out, _ in procs]
    assert ms[0].run_dir != ms[1].run_dir
    for lr, m in zip(lrs, ms, strict=True):
        assert m.config["train"]["lr"] == float(lr)
        best = m.epochs[m.best_epoch - 1]
        assert best.dev[m.select] == max(e.dev[m.select] for e in m.epochs) == m.dev[m.select]
        alone = train_run(toy.stream, tmp_path / f"alone{lr}", f"train.lr={lr}")
        assert m.id == alone.id and m.weights.sha256 == alone.weights.sha256
        assert history(m) == history(alone)
        assert sha256_file(Path(m.run_dir) / "weights.safetensors") == m.weights.sha256
        assert not is_locked(m.run_dir)


def test_a_killed_run_frees_its_folder_for_the_waiting_process(
    tmp_path, toy, fast_config, spawn, train_run
):
    """A holds the run folder's lock; B, the same run, waits on it; A is killed (SIGKILL) at a
    known step: B takes the folder over, resumes from A's checkpoint and ends with the weights
    of an uninterrupted run."""
    runs = tmp_path / "runs"
    sets = ["train.epochs=40", "train.checkpoint_every=3"]
    args = [toy.stream, "-c", fast_config, "--runs", runs, "--quiet"]
    for s in sets:
        args += ["--set", s]
    # 16 optimizer steps an epoch: step 300 is epoch 19's 12th, a checkpoint step (300 % 3 == 0)
    a, _, a_err = spawn(*args, env={"ER_TRAIN_KILL_AFTER_STEP": "300"}, name="a")
    checkpoints = lambda: list(runs.rglob("checkpoint.safetensors"))  # noqa: E731
    wait_for(lambda: bool(checkpoints()), "A's first checkpoint", procs=[a])
    os.kill(a.pid, signal.SIGSTOP)  # A keeps its lock, frozen, long before step 300
    try:
        folder = checkpoints()[0].parent
        assert is_locked(folder)
        b, b_out, b_err = spawn(*args, name="b")
        wait_for(lambda: "waiting for another process" in b_err.read_text(), "B to wait", procs=[b])
        assert b.poll() is None and is_locked(folder)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    assert a.wait(timeout=300) == -signal.SIGKILL, a_err.read_text()
    assert b.wait(timeout=300) == 0, b_err.read_text()
    err = b_err.read_text()
    assert f"resuming {folder} at epoch 19, step 12" in err

    resumed = manifest(b_out)
    whole = train_run(toy.stream, tmp_path / "whole", *sets)
    assert resumed.id == whole.id
    assert resumed.weights.sha256 == whole.weights.sha256
    assert history(resumed) == history(whole)
    assert not is_locked(folder)


def test_store_put_is_safe_for_identical_files_from_two_runs(tmp_path):
    """Two runs storing identical weights at once: one stored file, both links point at it,
    and no source file is left behind."""
    from concurrent.futures import ThreadPoolExecutor

    from er_train.store import put

    root = tmp_path / "runs"
    srcs = []
    for i in range(8):
        d = tmp_path / f"run{i}"
        d.mkdir()
        (d / "best.safetensors").write_bytes(b"same weights")
        srcs.append(d)
    with ThreadPoolExecutor(8) as pool:
        stored = list(
            pool.map(lambda d: put(root, d / "best.safetensors", d / "weights.safetensors"), srcs)
        )
    assert len(set(stored)) == 1 and stored[0].read_bytes() == b"same weights"
    for d in srcs:
        assert (d / "weights.safetensors").read_bytes() == b"same weights"
        assert not (d / "best.safetensors").exists()


# --- classes 2 and 8: every field carries its range -------------------------------------------


def _numeric_fields(cls, prefix=""):
    """(key path, msgspec type) of every int/float field of a config Struct, sections included."""
    import msgspec.inspect as mi

    for f in mi.type_info(cls).fields:
        t = f.type
        if isinstance(t, mi.StructType):
            yield from _numeric_fields(t.cls, f"{prefix}{f.name}.")
        elif isinstance(t, mi.IntType | mi.FloatType):
            yield f"{prefix}{f.name}", t
        elif isinstance(t, mi.TupleType):
            yield from ((f"{prefix}{f.name}[{i}]", x) for i, x in enumerate(t.item_types))


def test_every_numeric_train_field_has_a_range():
    from er_train.config import TrainConfig

    fields = dict(_numeric_fields(TrainConfig))
    assert {"seed", "train.lr", "train.batch_size", "distill.temperature", "finetune.lr"} <= set(
        fields
    )
    for key, t in fields.items():
        assert t.ge is not None or t.gt is not None, f"{key} has no lower bound"
        if t.__class__.__name__ == "FloatType":
            assert t.le is not None or t.lt is not None, f"{key} may be inf"


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("model.width=0", "model.width"),
        ("model.dropout=2.0", "model.dropout"),
        ("train.lr=inf", "train.lr"),
        ("train.lr=nan", "train.lr"),
        ("train.lr=0", "train.lr"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.eval_batch_size=-1", "train.eval_batch_size"),
        ("train.weight_decay=-0.1", "train.weight_decay"),
        ("train.grad_clip=-1", "train.grad_clip"),
        ("train.grad_clip=inf", "train.grad_clip"),
        ("train.betas=[1.0, 0.999]", "train.betas[0]"),
        ("seed=-1", "seed"),
        ("distill.temperature=0", "distill.temperature"),
        ("finetune.lr=inf", "finetune.lr"),
        ("loss.label_smoothing=1.0", "loss.label_smoothing"),
        ("head.dropout=1.5", "head.dropout"),
        ("aux.spcl.weight=inf", "aux.spcl.weight"),
        ('run.category="../../elsewhere"', "run.category"),
        ("context.positions=rotary", "context.positions"),
    ],
)
def test_a_value_out_of_range_is_refused_before_any_work(tmp_path, toy, fail, value, key):
    """One error line naming the key and a real hint (no "bug in er"), before the stream's
    inputs are read: the stream here holds features of another table, which would be an
    error of its own if it were read first."""
    if key.startswith("context."):
        value = f"context.kind=transformer --set {value}"
    stream = toy.write(tmp_path / "s.ndjson", "text")
    bad = json.loads(toy.dataset_line) | {"id": "0" * 64}
    bad["table"] = bad["table"] | {"sha256": "0" * 64}  # would fail the table check
    stream.write_bytes(json.dumps(bad).encode() + b"\n" + toy.feature_lines["text"] + b"\n")
    err, hint = fail(stream, *[a for part in value.split(" --set ") for a in ("--set", part)])
    assert f"$.{key}" in err and "bug" not in hint


def test_zero_width_features_are_refused(tmp_path, toy, fail, monkeypatch):
    """The importer refuses them now; er-train refuses them too, whoever wrote the shard."""
    import er_train.data as data_mod

    real = data_mod.aligned_features

    def zero_width(fm, ds, ids):
        fs = real(fm, ds, ids)
        if fm.modality == "audio":
            fs.features = fs.features[:, :0]
        return fs

    monkeypatch.setattr(data_mod, "aligned_features", zero_width)
    fail(toy.stream, fragments=["audio features", "width >= 1"])


# --- class 3: a diverging run stops, marked failed, never finished --------------------------


def test_a_diverging_run_stops_at_once_and_is_marked_failed(
    tmp_path, toy, fast_config, cli_here, check_error
):
    runs = tmp_path / "runs"
    args = [toy.stream, "-c", fast_config, "--runs", runs, "--set", "train.lr=1e6"]
    args += ["--set", "train.grad_clip=0"]
    code, out, err = cli_here(*args)
    assert code == 1 and out == ""
    line, hint = check_error(err, "training diverged: the loss is nan at epoch 1 step")
    (folder,) = {p.parent for p in runs.rglob(".lock")}
    assert line.endswith(f", at {folder}")
    assert hint == "hint: lower train.lr, or set train.grad_clip (e.g. 1.0)"
    assert "epoch 1/" not in err  # stopped inside the first epoch, no epoch recorded
    failed = json.loads((folder / "failed.json").read_text())
    assert failed["error"].startswith("training diverged") and failed["epoch"] == 1
    assert not (folder / "run.json").exists() and not (folder / "weights.safetensors").exists()
    assert not is_locked(folder)

    # the same command again: refused (training is deterministic), never "finished run found"
    code, out, err = cli_here(*args)
    assert code == 1 and out == "" and "finished run" not in err
    line, hint = check_error(err, "a run in this folder failed before", "training diverged")
    assert line.endswith(f", at {folder}/failed.json") and "delete the folder" in hint
    # a new recipe trains in a folder of its own; the failed one stays until it is removed
    code, out, err = cli_here(toy.stream, "-c", fast_config, "--runs", runs)
    assert code == 0, err
    assert (folder / "failed.json").is_file()
    shutil.rmtree(folder)
    code, out, err = cli_here(*args)
    assert code == 1 and "training diverged" in err and "failed before" not in err


def test_huge_features_diverge_loudly(tmp_path, toy, import_npz_features, train_run):
    ids = toy.table["id"].to_list()
    rng = np.random.default_rng(0)
    huge = (rng.normal(size=(len(ids), 4)) * 1e30).astype(np.float32)  # finite in float32
    line = import_npz_features(toy.dataset_line, "audio", ids, huge, tmp_path / "huge.npz")
    stream = toy.write(tmp_path / "h.ndjson", "text", extra=[line])
    with pytest.raises(ErError) as e:
        train_run(stream, tmp_path / "runs", "train.grad_clip=0")
    assert e.value.what.startswith("training diverged:")
    assert list((tmp_path / "runs").rglob("failed.json"))
    assert not list((tmp_path / "runs").rglob("run.json"))


def test_non_finite_dev_predictions_stop_the_run(tmp_path, toy, train_run, monkeypatch):
    """Weights that go NaN in the last step of an epoch show first in its dev pass."""
    import er_train.training as train_mod

    real = train_mod.predict

    def poisoned(s, split, batch_size):
        rows, outputs = real(s, split, batch_size)
        return rows, {k: torch.full_like(v, float("nan")) for k, v in outputs.items()}

    monkeypatch.setattr(train_mod, "predict", poisoned)
    with pytest.raises(ErError) as e:
        train_run(toy.stream, tmp_path / "runs")
    assert e.value.what == (
        "training diverged: the dev predictions for emotion are not finite in "
        f"{len(toy.split_ids('dev'))} rows at epoch 1"
    )
    (failed,) = (tmp_path / "runs").rglob("failed.json")
    assert e.value.at == str(failed.parent)
    assert not list((tmp_path / "runs").rglob("best.safetensors"))  # nothing of it kept


# --- class 6: the table is checked by er-data, and named (not the cache) ----------------------


def _table_stream(tmp_path, toy, edit, *, fix_sha: bool = True) -> Path:
    """The toy's stream with its utterance table rewritten by `edit` (a polars frame ->
    frame); with `fix_sha`, the manifest's sha256 is updated too (a table that passes the
    sha check but breaks a rule)."""
    path = tmp_path / "table.parquet"
    edit(toy.table).write_parquet(path)
    ds = json.loads(toy.dataset_line)
    if fix_sha:
        ds["table"] = ds["table"] | {"path": str(path), "sha256": sha256_file(path)}
    else:
        Path(ds["table"]["path"]).write_bytes(path.read_bytes())
    lines = [json.dumps(ds).encode(), *(toy.feature_lines[m] for m in ("text",))]
    stream = tmp_path / "t.ndjson"
    stream.write_bytes(b"".join(line + b"\n" for line in lines))
    return stream


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda t: t.with_columns(pl.col("id").shift(1).fill_null(t["id"][0])), ["duplicate"]),
        (
            lambda t: t.with_columns(
                pl.when(pl.int_range(pl.len()) == 3)
                .then(None)
                .otherwise(pl.col("split"))
                .alias("split")
            ),
            ["split"],
        ),
        (lambda t: t.drop("speaker"), ["lacks column", "speaker"]),
        (lambda t: t.with_columns(pl.col("turn").cast(pl.String)), ["column 'turn'"]),
        (
            lambda t: t.with_columns(
                pl.when(pl.int_range(pl.len()) == 5)
                .then(9)
                .otherwise(pl.col("emotion"))
                .alias("emotion")
            ),
            ["emotion"],
        ),
    ],
    ids=["duplicate-id", "null-split", "missing-column", "wrong-dtype", "label-out-of-range"],
)
def test_a_broken_table_is_one_error_line(tmp_path, toy, fail, edit, fragments):
    """Before the table check these trained, or ended in "this is a bug in er"."""
    _, hint = fail(_table_stream(tmp_path, toy, edit), fragments=fragments)
    assert "bug" not in hint and "er-data prepare" in hint


def test_an_edited_table_is_not_blamed_on_the_feature_cache(tmp_path, toy, fail):
    stream = _table_stream(tmp_path, toy, lambda t: t, fix_sha=True)
    ds = json.loads(stream.read_bytes().splitlines()[0])
    Path(ds["table"]["path"]).write_bytes(b"edited")
    _, hint = fail(stream, fragments=["sha256"])
    assert "er-data prepare" in hint and "cache" not in hint
    Path(ds["table"]["path"]).unlink()
    _, hint = fail(stream, fragments=["table"])
    assert "er-data prepare" in hint and "cache" not in hint


def test_an_edited_run_json_is_one_error_line(tmp_path, toy, train_run, fast_config, cli_here):
    m = train_run(toy.stream, tmp_path / "runs")
    (Path(m.run_dir) / "run.json").write_text('{"kind": "run", "id": 3}')
    code, out, err = cli_here(toy.stream, "-c", fast_config, "--runs", tmp_path / "runs")
    assert code == 1 and out == "" and "bug" not in err
    assert err.startswith("error: run.json is not a RunManifest") and "delete the run folder" in err
