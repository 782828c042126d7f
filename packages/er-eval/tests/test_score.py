"""`score`: classification metrics equal scikit-learn's; prediction files are checked; the
stream passes through byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import numpy as np
import pytest
from er_core import EvalManifest, RunManifest, canonical_json, read_stream, write_tensors
from er_eval.runs import load_predictions, read_runs
from er_eval.score import classification_scores, eval_id, score_run
from sklearn import metrics as sk

PREDICTIONS_KEY = "er.predictions"


def _random_case(seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Random labels over 6 classes where class 4 never occurs in y_true and class 5 is never
    predicted (and, on odd seeds, class 0 neither)."""
    rng = np.random.default_rng(seed)
    c, n = 6, int(rng.integers(20, 300))
    y = rng.choice([0, 1, 2, 3, 5], size=n)
    p = np.where(rng.uniform(size=n) < 0.5, y, rng.integers(0, c, n))
    p[p == 5] = 4
    if seed % 2:
        p[p == 0] = 1
    return [f"c{i}" for i in range(c)], y, p


@pytest.mark.parametrize("seed", range(6))
def test_classification_matches_sklearn(seed: int) -> None:
    classes, y, p = _random_case(seed)
    labels = list(range(len(classes)))
    ts = classification_scores("emotion", classes, y, p)
    assert ts.n == y.size and ts.type == "classification" and ts.classes == classes
    assert ts.metrics["accuracy"] == pytest.approx(sk.accuracy_score(y, p), abs=1e-9)
    for avg in ("weighted", "macro"):
        want = sk.f1_score(y, p, labels=labels, average=avg, zero_division=0)
        assert ts.metrics[f"{avg}_f1"] == pytest.approx(want, abs=1e-9)
    prec, rec, f1, sup = sk.precision_recall_fscore_support(y, p, labels=labels, zero_division=0)
    for i, name in enumerate(classes):
        got = ts.per_class[name]
        assert got["precision"] == pytest.approx(prec[i], abs=1e-9)
        assert got["recall"] == pytest.approx(rec[i], abs=1e-9)
        assert got["f1"] == pytest.approx(f1[i], abs=1e-9)
        assert got["support"] == sup[i]
    assert ts.per_class["c4"]["support"] == 0 and ts.per_class["c5"]["precision"] == 0
    # rows = TRUE class, as scikit-learn's confusion_matrix
    assert ts.confusion == sk.confusion_matrix(y, p, labels=labels).tolist()


def test_confusion_rows_are_true_class() -> None:
    ts = classification_scores("t", ["a", "b"], np.array([0, 0, 0]), np.array([1, 1, 0]))
    assert ts.confusion == [[1, 2], [0, 0]]  # 3 true "a": 1 kept, 2 predicted as "b"
    assert ts.per_class["a"]["recall"] == pytest.approx(1 / 3)
    assert ts.per_class["b"]["precision"] == 0.0


def test_score_run_reads_the_files(runs) -> None:
    folder = runs("r", seed=3, n={"dev": 30, "test": 50})
    inp = read_runs([str(folder)])
    run = inp.runs[0]
    ev = score_run(run, folder=inp.folder(run))
    assert ev.run == run.id and set(ev.scores) == {"dev", "test"}
    assert ev.predictions == run.predictions
    preds = load_predictions(run, "test")
    y, p = preds.labels("emotion"), preds.predicted("emotion")
    ts = ev.scores["test"]["emotion"]
    assert ts.n == 50
    assert ts.metrics["weighted_f1"] == pytest.approx(
        sk.f1_score(y, p, labels=range(4), average="weighted", zero_division=0), abs=1e-9
    )
    # the id: same predictions + code -> same id (the scale means nothing to classification)
    assert ev.id == score_run(run).id == score_run(run, scale="mosi").id == eval_id(run)


def test_score_regression_infers_scale(runs) -> None:
    folder = runs("reg", regression=True, task="sentiment")
    run = read_runs([str(folder)]).runs[0]
    ts = score_run(run).scores["test"]["sentiment"]
    assert ts.type == "regression" and ts.per_class == {} and ts.confusion == []
    assert {"mae", "corr", "acc2_has0", "acc2_non0", "acc7", "acc2_sims"} <= set(ts.metrics)
    mosi = score_run(run, scale="mosi").scores["test"]["sentiment"]
    assert "acc2_sims" not in mosi.metrics and mosi.metrics["mae"] == ts.metrics["mae"]
    auto, sims = score_run(run).id, score_run(run, scale="sims").id
    assert auto == sims != score_run(run, scale="mosi").id  # the id names the scale used


def test_moved_run_folder_still_scores(runs, tmp_path: Path) -> None:
    folder = runs("orig", seed=1)
    moved = tmp_path / "elsewhere" / "run"
    shutil.move(str(folder), moved)
    inp = read_runs([str(moved)])
    ev = score_run(inp.runs[0], folder=inp.folder(inp.runs[0]))
    assert ev.scores["test"]["emotion"].n == 60


def test_cli_score_passes_the_stream_through(runs, cli, tmp_path: Path) -> None:
    a, b = runs("a", seed=0), runs("b", seed=1)
    foreign = b'{"kind":"future-thing","schema":9,"x":[1,2,3],  "spacing":"kept"}'
    upstream = foreign + b"\n" + (a / "run.json").read_bytes() + b"\n"
    upstream += (b / "run.json").read_bytes() + b"\n"
    r = cli("score", stdin=upstream)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(upstream)  # byte for byte, then the new messages
    new = r.stdout[len(upstream) :].splitlines()
    evals = [msgspec.json.decode(line, type=EvalManifest) for line in new]
    assert [e.run_dir for e in evals] == [str(a.resolve()), str(b.resolve())]
    summary = r.stderr.decode().splitlines()
    assert len(summary) == 2 and summary[0].startswith("scored ") and "weighted_f1" in summary[0]
    # scoring a scored stream again adds nothing
    again = cli("score", stdin=r.stdout)
    assert again.returncode == 0 and again.stdout == r.stdout
    assert "already scored" in again.stderr.decode()


def test_cli_score_accepts_folders_and_run_json(runs, cli) -> None:
    a, b = runs("a", seed=0), runs("b", seed=1)
    r = cli("score", a, b / "run.json")
    assert r.returncode == 0, r.stderr
    kinds = [e.kind for e in read_stream(["-"], stdin=_Bytes(r.stdout))]
    assert kinds == ["run", "run", "eval", "eval"]


def test_cli_missing_prediction_file(runs, cli, one_error) -> None:
    folder = runs("a")
    (folder / "test.safetensors").unlink()
    r = cli("score", folder)
    assert r.returncode == 1 and r.stdout == b""
    error, hint = one_error(r.stderr)
    assert "test prediction file" in error and "not found" in error
    assert "test.safetensors" in error
    assert "re-run er-train" in hint


def test_cli_altered_prediction_file(runs, cli, one_error) -> None:
    folder = runs("a")
    path = folder / "test.safetensors"
    meta = {
        "ids": [f"test/u{i}" for i in range(60)],
        "split": "test",
        "classes": {"emotion": ["a"]},
    }
    write_tensors(
        path,
        {"emotion.probs": np.ones((60, 1), np.float32), "emotion.label": np.zeros(60, np.int64)},
        metadata={PREDICTIONS_KEY: canonical_json(meta).decode()},
    )
    r = cli("score", folder / "run.json")
    assert r.returncode == 1
    error, hint = one_error(r.stderr)
    assert "altered" in error and str(path.resolve()) in error
    assert "restore it or re-run er-train" in hint


def test_cli_folder_without_run_json(cli, tmp_path: Path, one_error) -> None:
    r = cli("score", tmp_path)
    assert r.returncode == 1
    error, _ = one_error(r.stderr)
    assert "no run.json" in error


def test_cli_no_runs_in_stream(cli, one_error) -> None:
    r = cli("score", stdin=b'{"kind":"future-thing"}\n')
    assert r.returncode == 1
    error, _ = one_error(r.stderr)
    assert "no 'run' message" in error


def test_cli_bad_scale_is_usage_error(runs, cli) -> None:
    r = cli("score", runs("a"), "--scale", "imdb")
    assert r.returncode == 2 and b"--scale" in r.stderr


def test_running_runs_are_skipped(runs) -> None:
    folder = runs("a")
    run = msgspec.json.decode((folder / "run.json").read_bytes(), type=RunManifest)
    running = msgspec.structs.replace(run, id="x" * 64, status="running")
    (folder / "s.ndjson").write_bytes(msgspec.json.encode(running) + b"\n")
    assert read_runs([str(folder / "s.ndjson")]).runs == []


class _Bytes:
    """A minimal binary stdin for read_stream."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data

    def isatty(self) -> bool:
        return False
