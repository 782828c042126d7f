"""Plots: the matrices and curves they draw, the PNG files they write, and `er-eval plot`."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import msgspec
import numpy as np
import pytest
from er_core import (
    EpochRecord,
    ErError,
    RunManifest,
    canonical_json,
    per_class_recall,
    read_tensors,
    write_bytes_atomic,
    write_tensors,
)
from er_eval import plots
from er_eval.score import score_run
from er_eval.table import summarise
from er_eval.testing import PREDICTIONS_KEY, make_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature and its CRC."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    length, ctype = struct.unpack(">I4s", data[8:16])
    assert ctype == b"IHDR" and length == 13
    body, (crc,) = data[16:29], struct.unpack(">I", data[29:33])
    assert zlib.crc32(ctype + body) == crc, "IHDR CRC mismatch"
    return struct.unpack(">II", body[:8])


def check_png(data: bytes, kind: str) -> None:
    """A real PNG of the documented pixel size for `kind`, not blank."""
    import io

    from matplotlib.image import imread

    assert png_size(data) == plots.PIXELS[kind]
    pixels = imread(io.BytesIO(data), format="png")  # (H, W, 4) floats in 0..1
    w, h = plots.PIXELS[kind]
    assert pixels.shape[:2] == (h, w)
    assert float(pixels[..., :3].var()) > 1e-4  # something was drawn


def rewrite_test_split(folder: Path, run: RunManifest, labels, predicted) -> RunManifest:
    """Replace the run's test predictions with one-hot `predicted` against `labels`."""
    classes = run.classes[run.task]
    probs = np.full((len(labels), len(classes)), 0.01, dtype=np.float32)
    probs[np.arange(len(labels)), predicted] = 0.97
    meta = {"ids": [f"test/u{i}" for i in range(len(labels))], "split": "test"}
    meta["classes"] = {run.task: classes}
    ref = write_tensors(
        folder / "test.safetensors",
        {f"{run.task}.probs": probs, f"{run.task}.label": np.asarray(labels, dtype=np.int64)},
        metadata={PREDICTIONS_KEY: canonical_json(meta).decode()},
    )
    new = msgspec.structs.replace(run, predictions={**run.predictions, "test": ref})
    write_bytes_atomic(folder / "run.json", msgspec.json.encode(new))
    return new


# --- confusion -------------------------------------------------------------------------------


def test_row_normalised_rows_sum_to_one_and_diagonal_is_recall():
    counts = np.array([[5, 3, 2], [0, 0, 0], [1, 1, 8]])  # class 1 absent from the split
    m = plots.row_normalise(counts)
    assert m.dtype == np.float64
    np.testing.assert_allclose(m.sum(axis=1), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(m[0], [0.5, 0.3, 0.2])
    y_true = np.repeat([0, 0, 0, 2, 2, 2], [5, 3, 2, 1, 1, 8])
    y_pred = np.repeat([0, 1, 2, 0, 1, 2], [5, 3, 2, 1, 1, 8])
    np.testing.assert_allclose(np.diag(m), per_class_recall(y_true, y_pred, 3))


def test_confusion_rows_are_the_true_class(tmp_path):
    run = make_run(tmp_path / "r", n={"dev": 8, "test": 12})
    labels = [0] * 6 + [2] * 6  # every neutral predicted joy, every anger predicted anger
    run = rewrite_test_split(tmp_path / "r", run, labels, [1] * 6 + [2] * 6)
    conf = plots.confusion_of(run, "test")
    assert conf.classes == ["neutral", "joy", "anger", "sadness"]
    assert conf.counts[0, 1] == 6 and conf.counts[2, 2] == 6 and conf.counts.sum() == 12
    assert conf.counts[1, 0] == 0  # not transposed
    m = conf.matrix(normalise=True)
    np.testing.assert_allclose(m.sum(axis=1), [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(conf.matrix(normalise=False), conf.counts)


def test_confusion_from_prediction_file_and_from_eval_agree(tmp_path):
    run = make_run(tmp_path / "r", seed=3)
    tensors, _ = read_tensors(tmp_path / "r" / "test.safetensors")
    y, p = tensors["emotion.label"], tensors["emotion.probs"].argmax(1)
    want = np.zeros((4, 4), dtype=np.int64)
    np.add.at(want, (y, p), 1)
    from_file = plots.confusion_of(run, "test")
    np.testing.assert_array_equal(from_file.counts, want)
    assert from_file.source.endswith("test.safetensors")
    evaluation = score_run(run)
    (tmp_path / "r" / "test.safetensors").unlink()  # the EvalManifest alone suffices
    from_eval = plots.confusion_of(run, "test", evaluation=evaluation)
    np.testing.assert_array_equal(from_eval.counts, want)
    assert from_eval.source.startswith("EvalManifest")


def test_confusion_png_is_labelled_and_sized(tmp_path):
    conf = plots.confusion_of(make_run(tmp_path / "r"), "dev")
    fig = plots.confusion_figure(conf, normalise=True)
    ax = fig.axes[0]
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("true", "predicted")
    assert [t.get_text() for t in ax.get_yticklabels()] == conf.classes
    assert [t.get_text() for t in ax.get_xticklabels()] == conf.classes
    m = conf.matrix(True)
    cells = [t.get_text() for t in ax.texts]
    assert cells == [f"{v:.2f}" for v in m.ravel()]  # row by row: row = true class
    for normalise in (True, False):
        path = plots.plot_confusion(conf, tmp_path / f"c{normalise}.png", normalise=normalise)
        check_png(path.read_bytes(), "confusion")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    counts_fig = plots.confusion_figure(conf, normalise=False)
    assert [t.get_text() for t in counts_fig.axes[0].texts] == [str(v) for v in conf.counts.ravel()]


def test_confusion_errors(tmp_path):
    reg = make_run(tmp_path / "reg", regression=True)
    with pytest.raises(ErError, match="regression task"):
        plots.confusion_of(reg, "test")
    run = make_run(tmp_path / "r")
    with pytest.raises(ErError, match="no task 'sentiment'"):
        plots.confusion_of(run, "test", "sentiment")
    (tmp_path / "r" / "test.safetensors").unlink()
    with pytest.raises(ErError, match=r"test prediction file .* not found"):
        plots.confusion_of(run, "test")


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    conf = plots.confusion_of(make_run(tmp_path / "r"), "test")
    fig = plots.confusion_figure(conf)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(RuntimeError):
        plots.save_png(fig, tmp_path / "out" / "c.png")
    assert list((tmp_path / "out").iterdir()) == []


# --- learning curves -------------------------------------------------------------------------


def curve_run(**kw) -> RunManifest:
    # epochs recorded out of order (a resumed run appends); dev loss recorded for 3 of 4
    eps = [
        EpochRecord(
            epoch=3, train_loss=0.5, dev={"emotion/weighted_f1": 0.62, "emotion/loss": 0.9}
        ),
        EpochRecord(
            epoch=1, train_loss=1.2, dev={"emotion/weighted_f1": 0.40, "emotion/loss": 1.1}
        ),
        EpochRecord(
            epoch=2, train_loss=0.8, dev={"emotion/weighted_f1": 0.65, "emotion/loss": 1.0}
        ),
        EpochRecord(epoch=4, train_loss=0.3, dev={"emotion/weighted_f1": 0.60}),
    ]
    base = dict(id="c" * 64, dataset="d" * 64, task="emotion", select="emotion/weighted_f1")
    return RunManifest(**(base | dict(epochs=eps, best_epoch=2, seed=1) | kw))


def test_curve_reads_the_epochs_in_order():
    c = plots.curve_of(curve_run())
    assert c.epochs == [1, 2, 3, 4]
    assert c.train_loss == [1.2, 0.8, 0.5, 0.3]
    assert c.dev == [0.40, 0.65, 0.62, 0.60]
    assert c.dev_loss[:3] == [1.1, 1.0, 0.9] and np.isnan(c.dev_loss[3])
    assert c.best_epoch == 2 and c.metric == "emotion/weighted_f1"


def test_curve_metric_names():
    run = curve_run(epochs=[EpochRecord(epoch=1, train_loss=1.0, dev={"emotion/accuracy": 0.5})])
    for name in ("accuracy", "emotion/accuracy", "dev/emotion/accuracy"):
        assert plots.curve_of(run, name).dev == [0.5]
    with pytest.raises(ErError, match="no per-epoch test metric"):
        plots.curve_of(run, "test/emotion/accuracy")
    with pytest.raises(ErError, match="no dev metric 'emotion/weighted_f1'") as e:
        plots.curve_of(run)
    assert "emotion/accuracy" in e.value.hint
    with pytest.raises(ErError, match="records no epochs"):
        plots.curve_of(curve_run(epochs=[]))


def test_curves_png_marks_the_selected_epoch(tmp_path):
    curves = [plots.curve_of(curve_run()), plots.curve_of(curve_run(id="e" * 64, best_epoch=3))]
    fig = plots.curves_figure(curves)
    loss_ax, dev_ax = fig.axes
    stars = [ln for ln in dev_ax.get_lines() if ln.get_marker() == "*"]
    assert sorted((float(s.get_xdata()[0]), float(s.get_ydata()[0])) for s in stars) == [
        (2.0, 0.65),
        (3.0, 0.62),
    ]
    assert [ln.get_linestyle() for ln in loss_ax.get_lines()].count("--") == 2  # dev loss
    assert dev_ax.get_xlabel() == "epoch"
    path = plots.plot_curves(curves, tmp_path / "curves.png")
    check_png(path.read_bytes(), "curves")


# --- ablation --------------------------------------------------------------------------------


@pytest.fixture
def ablation_runs(tmp_path) -> list[RunManifest]:
    """Two configs (concat at accuracy 0.5, attention at 0.8) x three seeds."""
    out = []
    for kind, acc in (("concat", 0.5), ("attention", 0.8)):
        for seed in range(3):
            folder = tmp_path / f"{kind}-{seed}"
            out.append(make_run(folder, seed=seed, accuracy=acc, config={"fusion": {"kind": kind}}))
    return out


def test_ablation_bars_are_the_table(tmp_path, ablation_runs):
    evals = {r.id: score_run(r) for r in ablation_runs}
    frame = summarise(ablation_runs, ["fusion"], "test/emotion/accuracy", evals=evals)
    assert frame["n"].to_list() == [3, 3] and frame["seeds"].to_list() == ["0,1,2", "0,1,2"]
    fig = plots.ablation_figure(frame, metric_label="test/emotion/accuracy (%)")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, frame["test/emotion/accuracy mean"].to_list())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["attention\nn=3", "concat\nn=3"]
    assert heights[0] > heights[1]  # accuracy 0.8 beats 0.5
    # the error bars span mean ± std
    from matplotlib.container import ErrorbarContainer

    (errorbar,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    caps_low, caps_high = (np.asarray(c.get_ydata(), dtype=float) for c in errorbar.lines[1])
    std = np.array(frame["test/emotion/accuracy std"].to_list())
    np.testing.assert_allclose(caps_high - caps_low, 2 * std)
    path = plots.plot_ablation(frame, tmp_path / "ab.png", metric_label="accuracy (%)")
    check_png(path.read_bytes(), "ablation")


def test_ablation_of_nothing_is_an_error(ablation_runs):
    evals = {r.id: score_run(r) for r in ablation_runs}
    frame = summarise(ablation_runs, ["fusion"], "accuracy", evals=evals)
    with pytest.raises(ErError, match="nothing to plot"):
        plots.ablation_figure(frame.clear())
    with pytest.raises(ErError, match="no '<metric> mean'"):
        plots.ablation_figure(frame.drop("test/emotion/accuracy mean"))


# --- the command -----------------------------------------------------------------------------


def test_cli_plot_writes_pngs_and_passes_the_stream(tmp_path, ablation_runs, cli):
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    stream = b"".join((f / "run.json").read_bytes() + b"\n" for f in folders)
    expected = {
        "confusion": len(folders),
        "curves": 2,  # one per fusion group
        "ablation": 1,
    }
    for kind, count in expected.items():
        out = tmp_path / f"figs-{kind}"
        r = cli("plot", "--kind", kind, "--by", "fusion", "--out", out, stdin=stream)
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout == stream  # passed through unchanged
        named = [Path(ln) for ln in r.stderr.decode().splitlines()]
        assert sorted(named) == sorted(out.glob("*.png")) and len(named) == count
        for p in named:
            check_png(p.read_bytes(), kind)
    r = cli(
        "plot",
        *folders[:1],
        "--kind",
        "confusion",
        "--counts",
        "--split",
        "dev",
        "--out",
        tmp_path / "f",
    )
    assert r.returncode == 0, r.stderr.decode()
    (png,) = (tmp_path / "f").glob("confusion-dev-emotion-*-counts.png")
    check_png(png.read_bytes(), "confusion")


def test_cli_missing_prediction_file_is_one_error(tmp_path, cli):
    make_run(tmp_path / "r")
    (tmp_path / "r" / "test.safetensors").unlink()
    r = cli("plot", tmp_path / "r", "--kind", "confusion", "--out", tmp_path / "figs")
    assert r.returncode == 1 and r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: test prediction file of run ") and "not found" in lines[0]
    assert lines[1].startswith("hint: ")
    assert not (tmp_path / "figs").exists() or not list((tmp_path / "figs").iterdir())


def test_cli_usage_errors(tmp_path, cli):
    make_run(tmp_path / "r")
    r = cli("plot", tmp_path / "r", "--kind", "pie", "--out", tmp_path / "figs")
    assert r.returncode == 2 and r.stderr.decode().startswith("error: --kind must be one of")
    r = cli("plot", tmp_path / "r", "--kind", "curves")
    assert r.returncode == 2 and "--out is required" in r.stderr.decode()


def test_plots_and_report_run_without_torch(tmp_path):
    make_run(tmp_path / "r")
    code = f"""
import sys
for name in ("torch", "er_models", "er_train"):
    sys.modules[name] = None  # any import of them fails
from pathlib import Path
from er_eval import commands_plot, plots, report
from er_eval.runs import read_runs
inp = read_runs([{str(tmp_path / "r")!r}])
run = inp.runs[0]
plots.plot_confusion(plots.confusion_of(run), Path({str(tmp_path)!r}) / "c.png")
report.write_report(Path({str(tmp_path)!r}) / "r.html", inp.runs, envelopes=inp.envelopes)
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr.decode()
    check_png((tmp_path / "c.png").read_bytes(), "confusion")
