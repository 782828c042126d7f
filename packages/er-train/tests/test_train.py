"""A whole run, end to end: the RunManifest, the run folder, the weights store, predictions,
re-runs, refusals, a learnable toy, multi-task heads and context models."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
from er_core import RunManifest, sha256_file
from safetensors import safe_open

SPLIT_METRICS = ("emotion/accuracy", "emotion/weighted_f1", "emotion/macro_f1")


def read_predictions(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with safe_open(path, framework="numpy") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())  # noqa: SIM118


def ids_of(stream: Path) -> dict[str, str]:
    """kind -> id of each message in a stream file."""
    return {json.loads(x)["kind"]: json.loads(x)["id"] for x in stream.read_text().splitlines()}


@pytest.fixture(scope="module")
def trained(toy, train_run, tmp_path_factory):
    """One finished T+A+V run (concat fusion, no context, seed 0): (manifest, runs root)."""
    runs = tmp_path_factory.mktemp("runs")
    return train_run(toy.stream, runs), runs


# --- the manifest ------------------------------------------------------------------------------


def test_manifest_names_its_inputs(trained, toy):
    m, _ = trained
    ids = {json.loads(x)["modality"]: json.loads(x)["id"] for x in toy.feature_lines.values()}
    assert m.dataset == ids_of(toy.stream)["dataset"] and m.dataset_name == "toy"
    assert m.features == ids and m.modalities == ["text", "audio", "video"]
    assert m.dims == {"text": 12, "audio": 6, "video": 6}
    assert m.encoders == {k: f"import:{k}.npz" for k in ids}
    assert m.task == "emotion" and m.tasks == ["emotion"] and m.seed == 0
    assert m.config["modalities"] == "T+A+V" and m.config["train"]["epochs"] == 3
    assert m.config["fusion"]["kind"] == "concat" and m.config["loss"]["emotion"]["kind"] == "ce"
    assert len(m.id) == 64 and len(m.network_hash) == 64 and m.network_hash != m.id
    assert m.params > 0 and m.status == "complete" and m.device == "cpu"


def test_manifest_history_and_selection(trained):
    m, _ = trained
    assert [e.epoch for e in m.epochs] == [1, 2, 3]
    assert all(np.isfinite(e.train_loss) and e.train_loss > 0 for e in m.epochs)
    assert m.epochs[-1].train_loss < m.epochs[0].train_loss  # it learned something
    assert all(set(e.dev) == {*SPLIT_METRICS, "emotion/loss"} for e in m.epochs)
    assert m.epochs[-1].lr < m.epochs[0].lr  # cosine decay
    assert m.select == "emotion/weighted_f1"
    scores = [e.dev[m.select] for e in m.epochs]
    assert m.best_epoch == 1 + scores.index(max(scores))  # the first best epoch
    # dev and test are the selected weights' metrics: dev equals that epoch's dev pass
    assert set(m.dev) == set(m.test) == set(SPLIT_METRICS)
    for k in SPLIT_METRICS:
        assert m.dev[k] == m.epochs[m.best_epoch - 1].dev[k]


def test_manifest_is_appended_after_the_upstream_lines(tmp_path, toy, fast_config, cli, cli_here):
    """Through the real CLI, stream on stdin: it passes through byte for byte, the RunManifest
    comes last, stdout holds only JSON lines, progress goes to stderr."""
    upstream = toy.stream.read_bytes()
    runs = tmp_path / "runs"
    code, out, err = cli("-c", fast_config, "--runs", runs, input=upstream)
    assert code == 0, err
    lines = out.encode().splitlines(keepends=True)
    assert b"".join(lines[:-1]) == upstream  # passed through unchanged
    kinds = [json.loads(x)["kind"] for x in lines]
    assert kinds == ["dataset", "features", "features", "features", "run"]
    m = msgspec.json.decode(lines[-1], type=RunManifest)
    assert [ln for ln in err.splitlines() if ln.startswith("epoch ")][-1].startswith("epoch 3/3")
    assert "train loss" in err and "dev emotion/weighted_f1" in err
    assert msgspec.json.decode((Path(m.run_dir) / "run.json").read_bytes(), type=RunManifest) == m

    # the same command again is a no-op that prints the same stream (run here: no torch import)
    stamp = (Path(m.run_dir) / "checkpoint.safetensors").stat().st_mtime_ns
    code, again, err = cli_here(toy.stream, "-c", fast_config, "--runs", runs)
    assert code == 0 and again == out
    assert "nothing to do" in err and "epoch " not in err
    assert (Path(m.run_dir) / "checkpoint.safetensors").stat().st_mtime_ns == stamp
    assert m.weights.sha256 == sha256_file(Path(m.weights.path))


def test_cli_matches_the_function(tmp_path, toy, fast_config, cli, train_run):
    """The CLI (a file argument, another process) trains exactly what er_train.training.train
    does in this one: same run id, weights and metrics."""
    code, out, err = cli(toy.stream, "-c", fast_config, "--runs", tmp_path / "a", "--quiet")
    assert code == 0, err
    assert "epoch " not in err  # --quiet: no progress lines
    m = msgspec.json.decode(out.splitlines()[-1], type=RunManifest)
    here = train_run(toy.stream, tmp_path / "b")
    assert m.id == here.id and m.weights.sha256 == here.weights.sha256
    assert (m.dev, m.test, m.best_epoch) == (here.dev, here.test, here.best_epoch)


# --- the run folder and the store ------------------------------------------------------------


def test_run_folder_layout(trained):
    m, runs = trained
    folder = Path(m.run_dir)
    want = runs / "default" / "toy--emotion" / "F--b8--ce" / "T+A+V-concat"
    assert folder == (want / f"{m.recipe_hash[:12]}--0").resolve()
    assert m.recipe_hash not in (m.id, m.network_hash) and len(m.recipe_hash) == 64
    names = {p.name for p in folder.iterdir()}
    assert names == {
        ".lock",  # the writer's lock (released: the run is over)
        "checkpoint.safetensors",
        "weights.safetensors",
        "dev.safetensors",
        "test.safetensors",
        "run.json",
        "summary.txt",
        "metrics.csv",
    }  # best.safetensors went into the store


def test_weights_are_a_relative_link_into_the_store(trained):
    m, runs = trained
    link = Path(m.run_dir) / "weights.safetensors"
    assert link.is_symlink()
    target = os.readlink(link)
    assert not os.path.isabs(target)
    stored = (link.parent / target).resolve()
    assert stored.parent.parent == (runs / ".store").resolve()
    assert (
        stored.name == f"{m.weights.sha256}.safetensors" and stored.parent.name == stored.name[:2]
    )
    assert m.weights.path == str(link.absolute())
    assert m.weights.sha256 == sha256_file(stored) and m.weights.bytes == stored.stat().st_size
    # the manifest alone rebuilds the network (same hash), and the stored weights load into it
    from er_models import build_model, parse_network
    from er_train.checkpoint import load_weights

    parts = {k: m.config[k] for k in ("model", "fusion", "context", "head")}
    spec = parse_network(parts, m.dims, {"emotion": 4})
    assert spec.hash == m.network_hash
    load_weights(stored, build_model(spec))


def test_identical_weights_are_stored_once(tmp_path, toy, train_run):
    runs = tmp_path / "runs"
    a = train_run(toy.stream, runs, "run.category=a")
    b = train_run(toy.stream, runs, "run.category=b")
    assert a.run_dir != b.run_dir and a.id == b.id  # the category is no part of the identity
    assert a.weights.sha256 == b.weights.sha256
    stored = [p for p in (runs / ".store").rglob("*") if p.is_file()]
    assert len(stored) == 1
    for m in (a, b):
        assert Path(m.weights.path).resolve() == stored[0].resolve()


def test_moving_the_runs_root_keeps_the_run_usable(tmp_path, toy, train_run, monkeypatch):
    first = train_run(toy.stream, tmp_path / "old")
    shutil.move(tmp_path / "old", tmp_path / "new")
    folder = tmp_path / "new" / Path(first.run_dir).relative_to((tmp_path / "old").resolve())
    link = folder / "weights.safetensors"
    assert link.is_file() and sha256_file(link) == first.weights.sha256  # the link still resolves
    # re-running the step on the moved root finds the run: nothing is trained, and every path
    # the returned manifest names is there
    import er_train.training as tr

    monkeypatch.setattr(tr, "train_epoch", lambda *a, **k: pytest.fail("trained again"))
    again = train_run(toy.stream, tmp_path / "new")
    assert again.id == first.id and again.weights.sha256 == first.weights.sha256
    assert Path(again.run_dir) == folder.resolve()
    for ref in [again.weights, *again.predictions.values()]:
        assert Path(ref.path).is_file() and sha256_file(Path(ref.path)) == ref.sha256


# --- predictions -----------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["dev", "test"])
def test_prediction_files(trained, toy, split):
    m, _ = trained
    ref = m.predictions[split]
    assert ref.sha256 == sha256_file(Path(ref.path)) and ref.bytes == Path(ref.path).stat().st_size
    tensors, meta = read_predictions(ref.path)
    ids = json.loads(meta["er.predictions"])["ids"]
    assert json.loads(meta["er.predictions"])["split"] == split
    assert json.loads(meta["er.predictions"])["classes"] == {
        "emotion": ["neutral", "happy", "sad", "angry"]
    }
    assert len(ids) == len(set(ids)) and set(ids) == set(toy.split_ids(split))
    probs, label = tensors["emotion.probs"], tensors["emotion.label"]
    assert probs.shape == (len(ids), 4) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5) and (probs >= 0).all()
    truth = dict(zip(toy.table["id"], toy.table["emotion"], strict=True))
    assert label.tolist() == [truth[u] for u in ids]
    # the manifest's metrics are these predictions' metrics
    accuracy = float((probs.argmax(axis=1) == label).mean())
    assert accuracy == pytest.approx(getattr(m, split)["emotion/accuracy"])


def test_the_toy_is_learned(trained):
    m, _ = trained
    assert m.test["emotion/accuracy"] > 0.7  # chance is 0.25
    assert m.test["emotion/macro_f1"] > 0.6


# --- re-runs ---------------------------------------------------------------------------------


def test_an_identical_rerun_is_a_noop(trained, toy, train_run, monkeypatch):
    m, runs = trained
    folder = Path(m.run_dir)
    stamps = {p.name: p.lstat().st_mtime_ns for p in folder.iterdir()}
    import er_train.finish as fin
    import er_train.training as tr

    monkeypatch.setattr(tr, "train_epoch", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(tr, "predict", lambda *a, **k: pytest.fail("evaluated again"))
    monkeypatch.setattr(fin, "predict", lambda *a, **k: pytest.fail("evaluated again"))
    again = train_run(toy.stream, runs)
    assert again == m
    assert {p.name: p.lstat().st_mtime_ns for p in folder.iterdir()} == stamps


def test_a_sweep_keeps_every_recipe_and_trains_each_once(trained, toy, fast_config, cli_here):
    """Another learning rate, same network and seed: its own folder beside the first (the
    recipe hash names it), nothing of the first touched; a second pass trains nothing."""
    m, runs = trained
    folder = Path(m.run_dir)
    stamps = {p.name: p.lstat().st_mtime_ns for p in folder.iterdir()}
    code, out, err = cli_here(
        toy.stream, "-c", fast_config, "--runs", runs, "--set", "train.lr=0.02", "--quiet"
    )
    assert code == 0, err
    other = msgspec.json.decode(out.splitlines()[-1], type=RunManifest)
    assert Path(other.run_dir).parent == folder.parent and other.run_dir != m.run_dir
    assert Path(other.run_dir).name == f"{other.recipe_hash[:12]}--0"
    assert other.network_hash == m.network_hash and other.recipe_hash != m.recipe_hash
    assert other.config["train"]["lr"] == 0.02 and m.config["train"]["lr"] != 0.02
    assert {p.name: p.lstat().st_mtime_ns for p in folder.iterdir()} == stamps
    code, out, err = cli_here(
        toy.stream, "-c", fast_config, "--runs", runs, "--set", "train.lr=0.02"
    )
    assert code == 0 and "finished run found, nothing to do" in err


def test_seeds_of_one_recipe_share_its_hash(trained, toy, train_run):
    m, runs = trained
    other = train_run(toy.stream, runs, "seed=1")
    assert other.recipe_hash == m.recipe_hash and other.id != m.id
    assert Path(other.run_dir).name == f"{m.recipe_hash[:12]}--1"


def test_a_run_of_another_id_in_the_folder_is_refused(trained, toy, fast_config, cli_here):
    """A folder whose run.json has another id (another er-train version) is refused in one
    line; nothing in it is touched."""
    m, runs = trained
    folder = Path(m.run_dir)
    manifest = folder / "run.json"
    saved = manifest.read_bytes()
    try:
        manifest.write_bytes(saved.replace(m.id.encode(), b"f" * 64))
        stamps = {p.name: p.lstat().st_mtime_ns for p in folder.iterdir()}
        code, out, err = cli_here(toy.stream, "-c", fast_config, "--runs", runs)
        assert code == 1 and out == ""
        lines = [ln for ln in err.splitlines() if ln.startswith(("error:", "hint:"))]
        assert len(lines) == 2, err
        assert lines[0].startswith("error: another run is in this folder")
        assert lines[0].endswith(f", at {runs / folder.relative_to(runs.resolve())}")
        assert lines[1].startswith("hint: ") and "--runs" in lines[1]
        assert {p.name: p.lstat().st_mtime_ns for p in folder.iterdir()} == stamps
    finally:
        manifest.write_bytes(saved)


def test_killed_while_finishing_completes_without_training(tmp_path, toy, train_run, monkeypatch):
    """Killed after the weights went into the store but before run.json: the next run reads the
    stored weights, trains nothing, and writes the same manifest; another recipe trains in its
    own folder and leaves this one as it is."""
    first = train_run(toy.stream, tmp_path / "runs")
    folder = Path(first.run_dir)
    (folder / "run.json").unlink()
    assert not (folder / "best.safetensors").exists()  # moved into the store
    stamps = {p.name: p.lstat().st_mtime_ns for p in folder.iterdir()}
    other = train_run(toy.stream, tmp_path / "runs", "train.lr=0.02")
    assert other.run_dir != first.run_dir
    assert {p.name: p.lstat().st_mtime_ns for p in folder.iterdir()} == stamps
    import er_train.training as tr

    monkeypatch.setattr(tr, "train_epoch", lambda *a, **k: pytest.fail("trained again"))
    again = train_run(toy.stream, tmp_path / "runs")
    # equal but for the prediction files' hashes: their bytes vary (see test_determinism)
    no_preds = {"predictions": {}}
    assert msgspec.structs.replace(again, **no_preds) == msgspec.structs.replace(first, **no_preds)
    assert again.predictions.keys() == first.predictions.keys()
    assert (folder / "run.json").is_file()


# --- variants --------------------------------------------------------------------------------


def test_multi_task_head(tmp_path, toy, train_run):
    m = train_run(
        toy.stream,
        tmp_path / "runs",
        'tasks=["emotion", "sentiment"]',
        "head.kind=multi-task",
        "head.weights.sentiment=0.5",
    )
    assert m.task == "emotion" and m.tasks == ["emotion", "sentiment"]
    assert m.select == "emotion/weighted_f1"
    assert {"sentiment/accuracy", "sentiment/macro_f1"} <= set(m.test)
    assert m.config["head"]["weights"] == {"sentiment": 0.5}
    assert m.test["sentiment/accuracy"] > 0.6  # chance about 0.33
    assert "/toy--emotion/" in m.run_dir  # the main task names the folder
    tensors, meta = read_predictions(m.predictions["test"].path)
    ids = json.loads(meta["er.predictions"])["ids"]
    assert tensors["sentiment.probs"].shape == (len(ids), 3)
    truth = dict(zip(toy.table["id"], toy.table["sentiment"], strict=True))
    assert tensors["sentiment.label"].tolist() == [truth[u] for u in ids]
    assert json.loads(meta["er.predictions"])["classes"]["sentiment"] == [
        "negative",
        "neutral",
        "positive",
    ]


def test_patience_stops_early(tmp_path, toy, train_run):
    # the toy reaches a perfect dev score within a few epochs; it cannot be beaten after that
    m = train_run(toy.stream, tmp_path / "runs", "train.epochs=10", "train.patience=2")
    assert len(m.epochs) < 10
    assert len(m.epochs) == m.best_epoch + 2  # stopped after 2 epochs without a better dev
    assert m.config["train"]["patience"] == 2
    # the dev predictions are the best epoch's weights, not the last epoch's: their loss is the
    # one that epoch recorded (the later epochs kept training, so theirs differ)
    tensors, _ = read_predictions(m.predictions["dev"].path)
    probs, label = tensors["emotion.probs"], tensors["emotion.label"]
    loss = float(-np.log(probs[np.arange(label.size), label]).mean())
    losses = [e.dev["emotion/loss"] for e in m.epochs]
    assert loss == pytest.approx(losses[m.best_epoch - 1], rel=1e-4)
    assert all(abs(x - loss) > 1e-3 for x in losses[m.best_epoch :])


def test_regression_task_selects_on_the_lowest_dev_error(tmp_path, toy, train_run):
    m = train_run(
        toy.stream, tmp_path / "runs", "task=arousal", "head.kind=regression", "loss.kind=mse"
    )
    assert m.task == "arousal" and m.select == "arousal/mae"
    assert set(m.test) == {"arousal/mae", "arousal/mse", "arousal/corr"}
    errors = [e.dev["arousal/mae"] for e in m.epochs]
    assert m.best_epoch == 1 + errors.index(min(errors))  # lower is better
    assert m.dev["arousal/mae"] == min(errors)
    assert m.test["arousal/corr"] > 0.5 and m.test["arousal/mae"] < 0.3  # the target spans 0..0.9
    assert "/toy--arousal/F--b8--mse/" in m.run_dir
    tensors, meta = read_predictions(m.predictions["test"].path)
    ids = json.loads(meta["er.predictions"])["ids"]
    truth = dict(zip(toy.table["id"], toy.table["arousal"], strict=True))
    assert tensors["arousal.pred"].shape == (len(ids),)
    assert np.allclose(tensors["arousal.label"], [truth[u] for u in ids])
    mae = float(np.abs(tensors["arousal.pred"] - tensors["arousal.label"]).mean())
    assert mae == pytest.approx(m.test["arousal/mae"], rel=1e-5)
    assert json.loads(meta["er.predictions"])["classes"]["arousal"] == []


def test_fallback_rows_count_as_missing(tmp_path, toy, train_run):
    """Rows whose features are a fallback (flags != 0 in the index; `er-features import` flags
    none, so the index is rewritten here) are absent for the model, and training still works."""
    from er_core import FeatureManifest, FileRef, read_stream
    from er_core.stream import encode
    from er_train.data import load_data
    from safetensors.numpy import load_file, save_file

    fm = msgspec.json.decode(toy.feature_lines["video"], type=FeatureManifest)
    index = load_file(fm.index.path)
    with safe_open(fm.index.path, framework="numpy") as f:
        meta = f.metadata()
    flags = index["flags"].copy()
    flags[::4] = 1  # every 4th row of the table: no face found
    path = tmp_path / "index.safetensors"
    save_file({**index, "flags": flags}, str(path), metadata=meta)
    ref = FileRef(path=str(path), sha256=sha256_file(path), bytes=path.stat().st_size)
    flagged = msgspec.structs.replace(fm, index=ref, fallbacks={"no_face": int(flags.sum())})
    stream = toy.write(tmp_path / "s.ndjson", "text", "audio", extra=[encode(flagged)])

    data = load_data(read_stream([str(stream)]), [], "", [])
    assert data.modalities == ["text", "audio", "video"]
    assert data.present[:, 2].tolist() == (flags == 0).tolist()
    assert data.present[:, :2].all()
    m = train_run(stream, tmp_path / "runs")
    assert m.test["emotion/accuracy"] > 0.7


def test_a_dataset_without_test_split(tmp_path_factory, make_toy, train_run, capfd):
    no_test = make_toy(tmp_path_factory.mktemp("no-test"), mapping='[split_names]\ntest = ""\n')
    assert set(no_test.table["split"]) == {"train", "dev"}
    m = train_run(no_test.stream, tmp_path_factory.mktemp("runs"))
    assert m.test == {} and list(m.predictions) == ["dev"] and m.dev
    assert "warning: the test split is empty; no test metrics" in capfd.readouterr().err


def test_modalities_subset(tmp_path, toy, train_run):
    m = train_run(toy.stream, tmp_path / "runs", "modalities=T")
    assert m.modalities == ["text"] and m.dims == {"text": 12} and list(m.features) == ["text"]
    assert "/T-concat/" in m.run_dir


def _context_kinds() -> list[str]:
    from er_models import names

    return sorted(({"gru", "transformer"} | set(names("context"))) - {"none"})


CONTEXT_SETS = {
    "gru": ["context.hidden=16"],
    "transformer": ["context.width=16", "context.heads=2", "context.layers=1"],
}


@pytest.mark.parametrize("kind", _context_kinds())
def test_context_models_train_end_to_end(kind, tmp_path, toy, train_run):
    from er_models import names

    assert kind in names("context"), f"context '{kind}' is not registered in er_models"
    m = train_run(
        toy.stream, tmp_path / "runs", f"context.kind={kind}", *CONTEXT_SETS.get(kind, [])
    )
    assert m.config["context"]["kind"] == kind
    assert len(m.epochs) == 3 and m.epochs[-1].train_loss < m.epochs[0].train_loss
    assert m.test["emotion/accuracy"] > 0.6
    for split in ("dev", "test"):
        _, meta = read_predictions(m.predictions[split].path)
        assert sorted(json.loads(meta["er.predictions"])["ids"]) == sorted(toy.split_ids(split))


def test_dialogue_batches_keep_their_turns_together(toy):
    """What a context model sees: each batch row is one dialogue in turn order."""
    from er_core import read_stream
    from er_train.batches import epoch_order, iter_batches
    from er_train.data import load_data

    data = load_data(read_stream([str(toy.stream)]), [], "", [])
    t = toy.table
    split = data.dialogues["train"]
    order = epoch_order(split, 0, 0)
    seen = []
    for b in iter_batches(split, order, 8, data.speakers, 8):
        for g in range(b.layout.shape[0]):
            pos = b.layout[g][b.layout[g] >= 0]
            rows = b.rows[pos].tolist()
            assert len({t["dialogue"][r] for r in rows}) == 1
            assert [t["turn"][r] for r in rows] == list(range(len(rows)))
            seen += rows
    assert sorted(seen) == sorted(
        t.with_row_index().filter(pl.col("split") == "train")["index"].to_list()
    )
