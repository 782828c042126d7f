"""`er-eval predict`: real runs trained by er-train on a tiny table, applied again.

The key check: predicting a run's own dataset reproduces the run's test (and dev) predictions,
for a model without context and for dialogue context models. Then new data, wrong inputs, a
tampered run, the CLI and the Parquet file.

Datasets are built with the real tools (`er-data prepare table`, `er-features import` from
NPZ). Imported features are named by their file's hash (`cache_key`): features of a NEW
dataset "from the run's encoder" are imported ones with the run's key written in (what
`er-features extract` with the same encoder config gives), the untouched import is "another
encoder".
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
from er_core import (
    ErError,
    FeatureManifest,
    FileRef,
    PredictionManifest,
    RunManifest,
    read_stream,
    read_tensors,
    sha256_file,
)
from er_core.stream import decode_line, encode

CLASSES = ["neutral", "happy", "sad", "angry"]
AROUSAL = {"neutral": 0.0, "happy": 0.6, "sad": 0.2, "angry": 0.9}
DIMS = {"text": 12, "audio": 6, "video": 6}
STRENGTH = {"text": 1.5, "audio": 0.7, "video": 0.7}
MAPPING = """
dataset = "{name}"
task = "emotion"
file = "utterances.csv"

[columns]
id = "{{conv}}_{{line}}"
dialogue = "conv"
text = "utterance"
turn = "line"
speaker = "who"
split = "fold"

[tasks.emotion]
column = "label"
classes = ["neutral", "happy", "sad", "angry"]

[tasks.arousal]
column = "arousal"
type = "regression"
"""
FAST = """
[model]
width = 16
dropout = 0.1

[head]
dropout = 0.0

[train]
epochs = 3
batch_size = 8
eval_batch_size = 4
lr = 0.01
warmup = 0.1
"""
# run name -> --set overrides: no context (two of the three modalities); a GRU over dialogues
# with a regression task beside the classes; a transformer context evaluated in bf16
RUNS = {
    "none": ["modalities=T+A", "seed=1"],
    "gru": [
        "context.kind=gru",
        "context.hidden=16",
        'tasks=["emotion", "arousal"]',
        "head.kind=multi-task",
        "seed=2",
    ],
    "transformer-bf16": [
        "context.kind=transformer",
        "context.width=16",
        "context.heads=2",
        "train.precision=bf16",
        "seed=3",
    ],
}


@dataclass
class Data:
    dataset: bytes  # the DatasetManifest line
    features: dict[str, bytes]  # modality -> FeatureManifest line
    table: pl.DataFrame

    def stream(self, path: Path, *lines: bytes) -> Path:
        """A stream file: the dataset, then `lines` (default: its own T, A, V features)."""
        body = [self.dataset, *(lines or self.features.values())]
        path.write_bytes(b"".join(x + b"\n" for x in body))
        return path


def _csv(path: Path, n_dialogues: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_dialogues):
        fold = {4: "dev", 5: "test"}.get(d % 6, "train")
        people = ["ann", "bob", "cy"][: int(rng.integers(2, 4))]
        for t in range(int(rng.integers(3, 9))):
            label = CLASSES[int(rng.integers(4))]
            who = people[int(rng.integers(len(people)))] if t else people[0]
            arousal = round(AROUSAL[label] + 0.05 * float(rng.normal()), 3)
            rows.append([f"d{d:02d}", t, who, f"line {t} of {d}", label, arousal, fold])
    rows = [rows[i] for i in rng.permutation(len(rows))]  # not in dialogue order
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["conv", "line", "who", "utterance", "label", "arousal", "fold"])
        w.writerows(rows)


def planted(labels: np.ndarray, dim: int, strength: float, means: int, noise: int) -> np.ndarray:
    """(n, dim): class means drawn from seed `means` (shared across datasets) + N(0, 1) noise."""
    centre = np.random.default_rng(means).normal(size=(len(CLASSES), dim)) * strength
    return (centre[labels] + np.random.default_rng(noise).normal(size=(labels.size, dim))).astype(
        np.float32
    )


def import_npz(dataset: bytes, modality: str, ids: list[str], x: np.ndarray, src: Path) -> bytes:
    from er_features.importer import import_features

    np.savez(src, ids=np.array(ids), features=x)
    envs = read_stream(["-"], stdin=io.BytesIO(dataset + b"\n"))
    m = import_features(envs, modality, src, cache=src.parent / "cache", out=src.parent / "out")
    return encode(m)


def build(root: Path, name: str, n_dialogues: int, seed: int, dims=DIMS) -> Data:
    from er_data.preparation import prepare

    (root / "data").mkdir(parents=True)
    _csv(root / "data" / "utterances.csv", n_dialogues, seed)
    (root / "mapping.toml").write_text(MAPPING.format(name=name))
    manifest = prepare(
        "table", root / "data", configs=[str(root / "mapping.toml")], out=root / "out"
    )
    table = pl.read_parquet(manifest.table.path)
    ids, labels = table["id"].to_list(), table["emotion"].to_numpy().astype(np.int64)
    line = encode(manifest)
    feats = {
        m: import_npz(
            line, m, ids, planted(labels, d, STRENGTH[m], k, 100 * seed + k), root / f"{m}.npz"
        )
        for k, (m, d) in enumerate(dims.items())
    }
    return Data(line, feats, table)


def retag(line: bytes, **changes) -> bytes:
    """A FeatureManifest line with fields changed (e.g. the run's encoder key written in)."""
    fm = decode_line(line, "<test>").message
    assert isinstance(fm, FeatureManifest)
    return encode(msgspec.structs.replace(fm, **changes))


@dataclass
class World:
    root: Path
    toy: Data
    toy_stream: Path
    runs: dict[str, RunManifest]

    def folder(self, name: str) -> Path:
        return Path(self.runs[name].run_dir)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """The toy dataset (30 dialogues, T/A/V features) and the RUNS trained on it."""
    import torch
    from er_core import merge_sources, validate
    from er_train.config import TrainConfig
    from er_train.training import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("predict")
    toy = build(root / "toy", "toy", 30, 0)
    stream = toy.stream(root / "toy.ndjson")
    (root / "fast.toml").write_text(FAST)
    runs = {}
    for name, sets in RUNS.items():
        data, origins = merge_sources([root / "fast.toml"], sets)
        data.setdefault("run", {})["root"] = str(root / "runs")
        cfg = validate(data, TrainConfig, origins)
        runs[name] = train(read_stream([str(stream)]), cfg, origins, progress=False)
    return World(root, toy, stream, runs)


def predict(stream: Path, run: Path | str, out: Path, **kw) -> PredictionManifest:
    from er_eval.prediction import predict as run_predict

    return run_predict(read_stream([str(stream)]), run, out=out, **kw)


# --- the key check: a run's own test predictions, reproduced ------------------------------------


@pytest.mark.parametrize("name", list(RUNS))
def test_reproduces_the_runs_own_predictions(name, world, tmp_path):
    run = world.runs[name]
    m = predict(world.toy_stream, world.folder(name), tmp_path / "out")
    frame = pl.read_parquet(m.table.path)
    assert frame["id"].to_list() == world.toy.table["id"].to_list()  # every utterance, table order
    assert frame["split"].to_list() == world.toy.table["split"].to_list()
    by_id = {u: i for i, u in enumerate(frame["id"].to_list())}
    for split in ("dev", "test"):
        tensors, meta = read_tensors(run.predictions[split].path)
        ids = json.loads(meta["er.predictions"])["ids"]
        assert sorted(ids) == sorted(frame.filter(pl.col("split") == split)["id"].to_list())
        rows = [by_id[u] for u in ids]
        probs = frame.select(f"emotion.p.{c}" for c in CLASSES).to_numpy()[rows]
        assert probs.shape == tensors["emotion.probs"].shape
        np.testing.assert_allclose(probs, tensors["emotion.probs"], rtol=0, atol=1e-5)
        if "arousal" in run.tasks:
            values = frame["pred_arousal"].to_numpy()[rows]
            np.testing.assert_allclose(values, tensors["arousal.pred"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["none", "gru"])
def test_batch_size_changes_nothing(name, world, tmp_path):
    """One dialogue per batch (no padding) or all at once: the same outputs."""
    a = predict(world.toy_stream, world.folder(name), tmp_path / "a", batch_size=1)
    b = predict(world.toy_stream, world.folder(name), tmp_path / "b", batch_size=1000)
    fa, fb = pl.read_parquet(a.table.path), pl.read_parquet(b.table.path)
    cols = [c for c in fa.columns if ".p." in c]
    np.testing.assert_allclose(fa.select(cols).to_numpy(), fb.select(cols).to_numpy(), atol=1e-5)


def test_parquet_columns_and_manifest(world, tmp_path):
    run = world.runs["gru"]
    m = predict(world.toy_stream, world.folder("gru"), tmp_path / "out")
    frame = pl.read_parquet(m.table.path)
    probs = [f"emotion.p.{c}" for c in CLASSES]
    assert frame.columns == [
        "id",
        "split",
        "pred_emotion",
        "gold_emotion",
        *probs,
        "pred_arousal",
        "gold_arousal",
    ]
    assert frame.schema["pred_emotion"] == frame.schema["gold_emotion"] == pl.String
    assert frame.schema["pred_arousal"] == pl.Float32
    p = frame.select(probs).to_numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert (p >= 0).all()
    assert frame["pred_emotion"].to_list() == [CLASSES[i] for i in p.argmax(axis=1)]
    # gold: the table's class names and targets, row for row
    assert frame["gold_emotion"].to_list() == world.toy.table["emotion_name"].to_list()
    assert frame["gold_arousal"].to_list() == world.toy.table["arousal"].to_list()
    # the toy is learnable: the run's weights, not random ones, made these
    acc = np.mean(frame["pred_emotion"].to_numpy() == frame["gold_emotion"].to_numpy())
    assert acc > 0.6
    assert (m.run, m.dataset, m.tasks, m.count) == (
        run.id,
        run.dataset,
        ["emotion", "arousal"],
        frame.height,
    )
    assert m.features == run.features
    assert m.table.sha256 == sha256_file(m.table.path) and m.table.bytes > 0
    assert Path(m.table.path).parent.name == m.id[:12]
    assert Path(m.table.path).parent.parent.name == "er-eval"


def test_same_inputs_reuse_the_file(world, tmp_path):
    a = predict(world.toy_stream, world.folder("none"), tmp_path / "out")
    before = os.stat(a.table.path).st_mtime_ns
    b = predict(world.toy_stream, world.folder("none"), tmp_path / "out")
    assert a == b and os.stat(b.table.path).st_mtime_ns == before
    # another run, same data: another file
    c = predict(world.toy_stream, world.folder("gru"), tmp_path / "out")
    assert c.id != a.id and c.table.path != a.table.path


# --- new data -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh(world) -> Data:
    """Another dataset (12 dialogues, other rows, new noise) whose features share the toy's
    class means: what the run's encoder would give on new utterances."""
    return build(world.root / "fresh", "fresh", 12, 7)


def test_new_dataset_from_the_runs_encoder(world, fresh, tmp_path):
    run = world.runs["gru"]
    lines = [retag(fresh.features[m], cache_key=run.encoder_keys[m]) for m in run.modalities]
    m = predict(fresh.stream(tmp_path / "s.ndjson", *lines), world.folder("gru"), tmp_path / "o")
    frame = pl.read_parquet(m.table.path)
    assert frame["id"].to_list() == fresh.table["id"].to_list()
    assert m.count == fresh.table.height and m.dataset != run.dataset
    truth = fresh.table["emotion_name"].to_numpy()
    assert np.mean(frame["pred_emotion"].to_numpy() == truth) > 0.6  # chance: 0.25


def test_features_from_another_encoder_are_refused(world, fresh, tmp_path):
    stream = fresh.stream(tmp_path / "s.ndjson")  # imported: their own cache keys
    with pytest.raises(ErError) as e:
        predict(stream, world.folder("none"), tmp_path / "o")
    run = world.runs["none"]
    assert "no text features from the run's encoder" in e.value.what
    assert run.encoder_keys["text"][:12] in e.value.what
    assert "import:text.npz" in e.value.what and "encoder config" in e.value.hint


def test_a_missing_modality_is_refused(world, tmp_path):
    stream = world.toy.stream(tmp_path / "s.ndjson", world.toy.features["text"])
    with pytest.raises(ErError, match="no audio features"):
        predict(stream, world.folder("none"), tmp_path / "o")


def test_wrong_width_is_refused(world, tmp_path):
    run = world.runs["none"]
    other = build(tmp_path / "wide", "toy", 30, 0, dims={"text": 5, "audio": 6})
    lines = [retag(other.features[m], cache_key=run.encoder_keys[m]) for m in ("text", "audio")]
    with pytest.raises(ErError) as e:
        predict(other.stream(tmp_path / "s.ndjson", *lines), world.folder("none"), tmp_path / "o")
    assert "text features" in e.value.what and "5 wide" in e.value.what and "12" in e.value.what


def test_features_of_another_dataset_are_refused(world, fresh, tmp_path):
    # the toy's own features (the run's keys) after the fresh dataset's manifest
    stream = fresh.stream(tmp_path / "s.ndjson", *world.toy.features.values())
    with pytest.raises(ErError, match="made for another dataset table"):
        predict(stream, world.folder("none"), tmp_path / "o")


def test_nan_features_are_refused(world, tmp_path):
    fm = decode_line(world.toy.features["audio"], "<test>").message
    tensors, meta = read_tensors(fm.shards[0].path)
    tensors["features"][3, 1] = np.nan
    from safetensors.numpy import save_file

    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    ref = FileRef(path=str(bad), sha256=sha256_file(bad), bytes=bad.stat().st_size)
    line = encode(msgspec.structs.replace(fm, shards=[ref]))
    stream = world.toy.stream(tmp_path / "s.ndjson", world.toy.features["text"], line)
    with pytest.raises(ErError, match=r"audio features .* hold NaN or inf in 1 rows"):
        predict(stream, world.folder("none"), tmp_path / "o")


def test_an_edited_table_is_refused_and_not_blamed_on_features(world, tmp_path):
    from er_core import DatasetManifest

    envs = read_stream([str(world.toy_stream)])
    ds = next(e.message for e in envs if isinstance(e.message, DatasetManifest))
    edited = tmp_path / "utterances.parquet"
    frame = pl.read_parquet(ds.table.path)
    frame.with_columns(pl.col("text").str.to_uppercase()).write_parquet(edited)
    moved = msgspec.structs.replace(ds, table=msgspec.structs.replace(ds.table, path=str(edited)))
    lines = [encode(moved) if e.message is ds else e.raw for e in envs]
    stream = tmp_path / "s.ndjson"
    stream.write_bytes(b"".join(x + b"\n" for x in lines))
    with pytest.raises(ErError) as e:
        predict(stream, world.folder("none"), tmp_path / "o")
    assert "utterance table's sha256 differs" in e.value.what and e.value.at == str(edited)
    assert "cache" not in (e.value.hint or "")


# --- the run itself -------------------------------------------------------------------------


def copy_run(world: World, name: str, dest: Path) -> Path:
    """The run folder copied elsewhere, its weights link replaced by the file itself."""
    shutil.copytree(world.folder(name), dest, symlinks=False)
    return dest


def test_moved_run_works_and_tampered_weights_are_refused(world, tmp_path):
    folder = copy_run(world, "gru", tmp_path / "moved")
    a = predict(world.toy_stream, folder / "run.json", tmp_path / "a")
    b = predict(world.toy_stream, world.folder("gru"), tmp_path / "b")
    assert pl.read_parquet(a.table.path).equals(pl.read_parquet(b.table.path))
    weights = folder / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ErError, match="does not match the run's sha256") as e:
        predict(world.toy_stream, folder, tmp_path / "c")
    assert e.value.at == str(weights)


def test_network_of_another_version_is_refused(world, tmp_path):
    folder = copy_run(world, "none", tmp_path / "run")
    run = msgspec.json.decode((folder / "run.json").read_bytes(), type=RunManifest)
    config = {**run.config, "model": {**run.config["model"], "width": 32}}
    changed = msgspec.structs.replace(run, config=config)
    (folder / "run.json").write_bytes(msgspec.json.encode(changed))
    with pytest.raises(ErError, match="another er-models version"):
        predict(world.toy_stream, folder, tmp_path / "o")


def test_run_json_without_classes_reads_them_from_its_prediction_files(world, tmp_path):
    """A run.json written before RunManifest.classes existed still predicts, same columns."""
    folder = copy_run(world, "gru", tmp_path / "run")
    run = msgspec.json.decode((folder / "run.json").read_bytes(), type=RunManifest)
    (folder / "run.json").write_bytes(msgspec.json.encode(msgspec.structs.replace(run, classes={})))
    a = predict(world.toy_stream, folder, tmp_path / "a")
    b = predict(world.toy_stream, world.folder("gru"), tmp_path / "b")
    assert pl.read_parquet(a.table.path).equals(pl.read_parquet(b.table.path))
    for split in ("dev", "test"):
        (folder / f"{split}.safetensors").unlink()
    with pytest.raises(ErError, match="does not name the classes of task emotion"):
        predict(world.toy_stream, folder, tmp_path / "c")


def test_not_a_run(world, tmp_path):
    with pytest.raises(ErError, match=r"no run\.json"):
        predict(world.toy_stream, tmp_path, tmp_path / "o")


# --- the command line -----------------------------------------------------------------------


def python(*args: str, stdin: bytes = b"", code: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ER_DEBUG"} | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "er_eval", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=300, check=False)


def two_lines(stderr: bytes) -> tuple[str, str]:
    lines = [x for x in stderr.decode().splitlines() if x.startswith(("error:", "hint:"))]
    assert len(lines) == 2 and "Traceback" not in stderr.decode(), stderr.decode()
    return lines[0], lines[1]


def test_cli_passes_the_stream_and_appends_the_manifest(world, tmp_path):
    stdin = world.toy_stream.read_bytes()
    r = python("predict", "--run", str(world.folder("gru")), "--out", str(tmp_path), stdin=stdin)
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.splitlines()
    assert [x + b"\n" for x in lines[:-1]] == stdin.splitlines(keepends=True)  # unchanged
    m = decode_line(lines[-1], "<stdout>").message
    assert isinstance(m, PredictionManifest) and m.run == world.runs["gru"].id
    assert Path(m.table.path).is_file() and str(tmp_path) in m.table.path
    # a file argument instead of stdin, same output root: the same file, reused
    again = python(
        "predict", str(world.toy_stream), "--run", str(world.folder("gru")), "--out", str(tmp_path)
    )
    assert again.returncode == 0 and again.stdout == r.stdout
    assert b"reusing" in again.stderr


def test_cli_error_is_two_lines(world, fresh, tmp_path):
    stream = fresh.stream(tmp_path / "s.ndjson")
    r = python("predict", str(stream), "--run", str(world.folder("none")), "--out", str(tmp_path))
    assert r.returncode == 1 and r.stdout == b""
    err, _ = two_lines(r.stderr)
    assert "no text features from the run's encoder" in err and ", at <input>" in err
    usage = python("predict", str(stream))  # --run missing
    assert usage.returncode == 2


BLOCK = "import sys\nfor m in ('torch', 'er_models'):\n    sys.modules[m] = None\n"


def test_without_torch_help_works_and_predict_says_what_to_install(world, tmp_path):
    main = "from er_eval.cli import main\nsys.argv = ['er-eval', *sys.argv[1:]]\nmain()\n"
    helped = python("predict", "--help", code=BLOCK + main)
    assert helped.returncode == 0 and b"--run" in helped.stdout
    r = python(
        "predict",
        str(world.toy_stream),
        "--run",
        str(world.folder("none")),
        "--out",
        str(tmp_path),
        code=BLOCK + main,
    )
    assert r.returncode == 1, r.stderr.decode()
    err, hint = two_lines(r.stderr)
    assert "needs er-models and torch" in err and "er-eval[predict]" in hint


def test_cli_progress_on_stderr_and_quiet(world, tmp_path):
    """Off a terminal the progress line is printed when the work ends; -q silences it."""
    stdin = world.toy_stream.read_bytes()
    run = str(world.folder("gru"))
    r = python("predict", "--run", run, "-o", str(tmp_path / "a"), stdin=stdin)
    assert r.returncode == 0, r.stderr.decode()
    n = len(pl.read_parquet(next((tmp_path / "a").rglob("predictions.parquet"))))
    assert f"er-eval predict: {n}/{n} utt (100%)".encode() in r.stderr and b"ETA" in r.stderr
    q = python("predict", "--run", run, "-o", str(tmp_path / "b"), "-q", stdin=stdin)
    assert q.returncode == 0 and len(q.stdout.splitlines()) == len(r.stdout.splitlines())
    assert b"er-eval predict" not in q.stderr, q.stderr.decode()


# --- CSV, new clips without labels, the run's encoders ------------------------------------


def test_csv_holds_what_parquet_holds(world, tmp_path):
    a = predict(world.toy_stream, world.folder("gru"), tmp_path / "out")
    b = predict(world.toy_stream, world.folder("gru"), tmp_path / "out", format="csv")
    assert b.id == a.id and Path(b.table.path).name == "predictions.csv"
    assert Path(b.table.path).parent == Path(a.table.path).parent
    assert b.table.sha256 == sha256_file(b.table.path)
    parquet = pl.read_parquet(a.table.path)
    text = pl.read_csv(b.table.path, infer_schema=False)  # every cell as written
    assert text.columns == parquet.columns and text["id"].to_list() == parquet["id"].to_list()
    # float32 written in its shortest form reads back as the same float32
    for col in [c for c in parquet.columns if ".p." in c or c == "pred_arousal"]:
        back = text[col].cast(pl.Float64).cast(pl.Float32)
        assert back.to_list() == parquet[col].to_list(), col
    assert text["pred_emotion"].to_list() == parquet["pred_emotion"].to_list()
    before = os.stat(b.table.path).st_mtime_ns
    again = predict(world.toy_stream, world.folder("gru"), tmp_path / "out", format="csv")
    assert again == b and os.stat(b.table.path).st_mtime_ns == before  # reused
    with pytest.raises(ErError, match="unknown --format 'xlsx'"):
        predict(world.toy_stream, world.folder("gru"), tmp_path / "out", format="xlsx")


def test_unlabelled_clips_take_the_runs_classes(world, tmp_path):
    """A table from `er-data prepare files` (no labels, one task without classes) is predicted
    with the run's classes, and has no gold column."""
    from er_data.preparation import prepare

    truth = [1, 3, 0, 2, 1, 2]
    texts = [f"clip {i}" for i in range(len(truth))]
    sets = ["text=[" + ", ".join(f'"{t}"' for t in texts) + "]"]
    ds = prepare("files", tmp_path, overrides=sets, out=tmp_path / "out", quiet=True)
    line = encode(ds)
    ids = pl.read_parquet(ds.table.path)["id"].to_list()
    run = world.runs["none"]
    feats = [
        retag(
            import_npz(
                line, m, ids, planted(np.array(truth), DIMS[m], 3.0, k, 99), tmp_path / f"{m}.npz"
            ),
            cache_key=run.encoder_keys[m],
        )
        for k, m in enumerate(["text", "audio"])
    ]
    stream = tmp_path / "s.ndjson"
    stream.write_bytes(b"".join(x + b"\n" for x in [line, *feats]))
    m = predict(stream, world.folder("none"), tmp_path / "o", format="csv")
    frame = pl.read_csv(m.table.path)
    probs = [f"emotion.p.{c}" for c in CLASSES]
    assert frame.columns == ["id", "split", "pred_emotion", *probs]  # no gold_emotion
    assert frame["id"].to_list() == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert set(frame["split"]) == {"test"}
    np.testing.assert_allclose(frame.select(probs).to_numpy().sum(axis=1), 1.0, atol=1e-5)
    hits = np.mean(frame["pred_emotion"].to_numpy() == np.array(CLASSES)[truth])
    assert hits > 0.6, frame  # the run's classes, in the run's order


def test_print_encoders(world, tmp_path):
    folder = copy_run(world, "none", tmp_path / "run")
    run = msgspec.json.decode((folder / "run.json").read_bytes(), type=RunManifest)
    named = {"text": "minilm", "audio": "whisper-tiny.en"}
    (folder / "run.json").write_bytes(
        msgspec.json.encode(msgspec.structs.replace(run, encoders=named))
    )
    r = python("predict", "--run", str(folder), "--print-encoders")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().splitlines() == ["text\tminilm", "audio\twhisper-tiny.en"]
    # the toy run's features were imported: nothing to extract new clips with
    bad = python("predict", "--run", str(world.folder("none")), "--print-encoders")
    err, hint = two_lines(bad.stderr)
    assert bad.returncode == 1 and "text features were imported" in err and "import" in hint


def test_cli_format(world, tmp_path):
    stdin = world.toy_stream.read_bytes()
    run = str(world.folder("none"))
    r = python("predict", "--run", run, "-o", str(tmp_path), "--format", "csv", "-q", stdin=stdin)
    assert r.returncode == 0, r.stderr.decode()
    m = decode_line(r.stdout.splitlines()[-1], "<stdout>").message
    assert isinstance(m, PredictionManifest) and m.table.path.endswith("predictions.csv")
    rows = list(csv.DictReader(io.StringIO(Path(m.table.path).read_text())))
    assert len(rows) == m.count and rows[0]["gold_emotion"] in CLASSES
    bad = python("predict", "--run", run, "--format", "xlsx", stdin=stdin)
    assert bad.returncode == 2 and "unknown --format 'xlsx'" in two_lines(bad.stderr)[0]
