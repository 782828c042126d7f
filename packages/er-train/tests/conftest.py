"""Shared fixtures for er-train's tests: a small dialogue dataset with learnable features, built
with the real tools' functions (`er-data prepare table`, `er-features import`), and ways to
train on it: in this process, through the CLI entry point, or in a subprocess.

The dataset ("toy"): 30 dialogues of 3-8 turns, 2-3 speakers each, split by a column (20 train,
5 dev, 5 test dialogues), rows shuffled in the CSV; tasks `emotion` (4 classes, the default)
`sentiment` (3 classes, a function of the emotion) and `arousal` (regression, an emotion's
level plus noise). Features come from NPZ files keyed by
utterance id: each class has its own mean per modality, plus unit noise; text carries the
strongest signal, audio and video a weaker one. `er-features import` flags no row as missing, so
tests that need fallback rows rewrite an index themselves. Everything here is built once per
session; training runs write to their own tmp folders.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

CLASSES = ["neutral", "happy", "sad", "angry"]
SENTIMENT = {"neutral": "neutral", "happy": "positive", "sad": "negative", "angry": "negative"}
AROUSAL = {"neutral": 0.0, "happy": 0.6, "sad": 0.2, "angry": 0.9}  # + noise: a regression task
DIMS = {"text": 12, "audio": 6, "video": 6}
STRENGTH = {"text": 1.5, "audio": 0.7, "video": 0.7}  # class-mean spread, in noise std units

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

[tasks.sentiment]
column = "sentiment"
classes = ["negative", "neutral", "positive"]

[tasks.arousal]
column = "arousal"
type = "regression"
"""

# What every test run trains with unless it says otherwise: a tiny network, a few epochs.
FAST = """
[model]
width = 16
dropout = 0.1

[head]
kind = "classification"
dropout = 0.0

[train]
epochs = 3
batch_size = 8
eval_batch_size = 64
lr = 0.01
warmup = 0.1
"""


@dataclass
class Toy:
    """A prepared dataset and its features, on disk."""

    root: Path
    dataset_line: bytes  # the DatasetManifest, one NDJSON line
    feature_lines: dict[str, bytes]  # modality -> its FeatureManifest line
    stream: Path  # dataset + text, audio and video features
    table: pl.DataFrame  # the utterance table er-data wrote

    def write(self, path: Path, *modalities: str, extra: list[bytes] = ()) -> Path:
        """A stream file with the dataset, the named modalities' features and `extra` lines."""
        lines = [self.dataset_line, *(self.feature_lines[m] for m in modalities), *extra]
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        return path

    def split_ids(self, split: str) -> list[str]:
        return self.table.filter(pl.col("split") == split)["id"].to_list()


def _write_csv(path: Path, n_dialogues: int, seed: int) -> None:
    rng, noise = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    rows = []
    for d in range(n_dialogues):
        fold = {4: "dev", 5: "test"}.get(d % 6, "train")
        turns = int(rng.integers(3, 9))
        people = ["ann", "bob", "cy"][: int(rng.integers(2, 4))]
        for t in range(turns):
            label = CLASSES[int(rng.integers(len(CLASSES)))]
            who = people[int(rng.integers(len(people)))] if t else people[0]
            arousal = round(AROUSAL[label] + 0.05 * float(noise.normal()), 3)
            row = [f"d{d:02d}", t, who, f"line {t} of {d}", label, SENTIMENT[label], arousal]
            rows.append([*row, fold])
    rows = [rows[i] for i in rng.permutation(len(rows))]  # the file is not in dialogue order
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["conv", "line", "who", "utterance", "label", "sentiment", "arousal", "fold"])
        w.writerows(rows)


def planted_features(labels: np.ndarray, dim: int, strength: float, seed: int) -> np.ndarray:
    """(n, dim) float32: a per-class mean of norm ~`strength`·sqrt(dim)/2 plus N(0, 1) noise."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(len(CLASSES), dim)) * strength
    return (means[labels] + rng.normal(size=(labels.size, dim))).astype(np.float32)


def import_npz(
    dataset_line: bytes, modality: str, ids: list[str], feats: np.ndarray, src: Path
) -> bytes:
    """`er-features import` of `feats` saved as NPZ (ids + features) at `src`: the
    FeatureManifest line. The cache and output folders sit beside `src`."""
    from er_core import read_stream
    from er_core.stream import encode
    from er_features.importer import import_features

    root = src.parent
    np.savez(src, ids=np.array(ids), features=feats)
    envs = read_stream(["-"], stdin=io.BytesIO(dataset_line + b"\n"))
    m = import_features(envs, modality, src, cache=root / "cache", out=root / "out")
    return encode(m)


def build_toy(
    root: Path, name: str = "toy", n_dialogues: int = 30, seed: int = 0, dims=None, mapping=""
) -> Toy:
    """Write the CSV and mapping (plus `mapping`, more TOML), prepare, import NPZ features."""
    from er_core.stream import encode
    from er_data.preparation import prepare

    dims = dims or DIMS
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    _write_csv(data / "utterances.csv", n_dialogues, seed)
    mapping_extra, mapping = mapping, root / "mapping.toml"
    mapping.write_text(MAPPING.format(name=name) + mapping_extra)
    manifest = prepare("table", data, configs=[str(mapping)], out=root / "out")
    line = encode(manifest)
    table = pl.read_parquet(manifest.table.path)
    ids, labels = table["id"].to_list(), table["emotion"].to_numpy().astype(np.int64)
    lines = {
        m: import_npz(
            line, m, ids, planted_features(labels, d, STRENGTH[m], seed * 10 + k), root / f"{m}.npz"
        )
        for k, (m, d) in enumerate(dims.items())
    }
    toy = Toy(root, line, lines, root / "stream.ndjson", table)
    toy.write(toy.stream, *dims)
    return toy


@pytest.fixture(scope="session")
def toy(tmp_path_factory) -> Toy:
    """The toy dataset with T, A and V features (see the module docstring)."""
    return build_toy(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="session")
def make_toy():
    """make_toy(root, name="toy", n_dialogues=30, seed=0, dims=DIMS, mapping="") -> Toy:
    another dataset (`mapping`: TOML added to the table mapping)."""
    return build_toy


@pytest.fixture(scope="session")
def import_npz_features():
    """import_npz_features(dataset_line, modality, ids, feats, src) -> FeatureManifest line."""
    return import_npz


@pytest.fixture(scope="session")
def fast_config(tmp_path_factory) -> Path:
    """A TOML recipe for fast runs (tiny network, 3 epochs): pass it as --config."""
    path = tmp_path_factory.mktemp("configs") / "fast.toml"
    path.write_text(FAST)
    return path


@pytest.fixture(scope="session")
def train_run(fast_config):
    """train_run(stream, runs_root, *sets, config=[...]) -> RunManifest, in this process: the
    same steps as the CLI (fast.toml, then `config` files, then --set), progress off."""
    from er_core import merge_sources, read_stream, validate
    from er_train.config import TrainConfig
    from er_train.train import train

    def run(stream: Path, runs: Path, *sets: str, config=(), resume=None, progress=False):
        data, origins = merge_sources([fast_config, *config], list(sets))
        data.setdefault("run", {})["root"] = str(runs)
        cfg = validate(data, TrainConfig, origins)
        return train(read_stream([str(stream)]), cfg, origins, progress=progress, resume=resume)

    return run


@pytest.fixture(scope="session")
def cli(tmp_path_factory):
    """cli(*args, input=bytes, env={...}, stdin=fd) -> (returncode, stdout, stderr), running
    `python -m er_train ARGS` in a subprocess (returncode -9: killed by SIGKILL).

    The subprocesses run one OpenMP thread (as the tests in this process do, so results match
    bit for bit) and keep their bytecode in a session folder: torch's modules then compile once
    per session, not once per subprocess."""
    pyc = tmp_path_factory.mktemp("pycache")
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base |= {"OMP_NUM_THREADS": "1", "PYTHONPYCACHEPREFIX": str(pyc)}

    def run(*args: str, input: bytes | None = None, env: dict | None = None, stdin=None):
        p = subprocess.run(
            [sys.executable, "-m", "er_train", *map(str, args)],
            capture_output=True,
            timeout=300,
            env={**base, **(env or {})},
            **({"input": input} if stdin is None else {"stdin": stdin}),
        )
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    return run


@pytest.fixture
def spawn(tmp_path, tmp_path_factory):
    """spawn(*args, env={...}, name="p") -> (Popen, stdout path, stderr path): `python -m
    er_train ARGS` started in the background (one OpenMP thread, like `cli`), its output going
    to files under tmp_path; every process still alive at the test's end is killed."""
    pyc = tmp_path_factory.getbasetemp() / "pycache-spawn"
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base |= {"OMP_NUM_THREADS": "1", "PYTHONPYCACHEPREFIX": str(pyc)}
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict | None = None, name: str = "p"):
        out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with out.open("wb") as o, err.open("wb") as e:
            p = subprocess.Popen(
                [sys.executable, "-m", "er_train", *map(str, args)],
                stdin=subprocess.DEVNULL,
                stdout=o,
                stderr=e,
                env={**base, **(env or {})},
            )
        started.append(p)
        return p, out, err

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture
def cli_here(monkeypatch, capfdbinary):
    """cli_here(*args, stdin=None) -> (exit code, stdout, stderr): `er-train ARGS` through the
    same entry point (er_core.run: error lines, exit codes) but in this process, so no torch
    import per call. stdin: a text file object (default: empty, not a TTY)."""
    from er_train.cli import main

    def run(*args: str, stdin=None):
        monkeypatch.setattr(sys, "argv", ["er-train", *map(str, args)])
        monkeypatch.setattr(sys, "stdin", stdin or io.TextIOWrapper(io.BytesIO(b"")))
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capfdbinary.readouterr()
        return code, out.decode(), err.decode()

    return run


@pytest.fixture
def fail(tmp_path, fast_config, cli_here, check_error):
    """fail(stream, *args, code=1, fragments=(...)) runs er-train on `stream` with fast.toml and
    a fresh runs root, checks the exit code, the two error lines and that the runs root was not
    created; returns (error line, hint line)."""

    def run(stream, *args, code: int = 1, fragments=(), at: bool = True):
        runs = tmp_path / "runs"
        got, out, err = cli_here(stream, "-c", fast_config, "--runs", runs, *args)
        assert got == code, err
        assert out == ""  # nothing passed on: the stream is not valid downstream of a failure
        assert not runs.exists(), "a run folder was created"
        return check_error(err, *fragments, at=at)

    return run


def error_lines(stderr: str) -> list[str]:
    """The `error:` and `hint:` lines of a failure (other stderr lines dropped)."""
    return [ln for ln in stderr.splitlines() if ln.startswith(("error:", "hint:"))]


@pytest.fixture(scope="session")
def check_error():
    """check_error(stderr, *fragments, at=True): exactly one `error: ..., at ...` line (`at`
    False: the place may be absent) then one `hint:` line, and every fragment somewhere in
    them; returns the two lines."""

    def check(stderr: str, *fragments: str, at: bool = True) -> tuple[str, str]:
        lines = error_lines(stderr)
        assert len(lines) == 2, stderr
        err, hint = lines
        assert err.startswith("error: ") and (", at " in err or not at), stderr
        assert hint.startswith("hint: ") and len(hint) > len("hint: "), stderr
        assert "Traceback" not in stderr, stderr
        for f in fragments:
            assert f in err + "\n" + hint, f"{f!r} not in:\n{stderr}"
        return err, hint

    return check


def tree(root: Path) -> set[str]:
    """Every path under `root`, relative (empty if it does not exist)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


@pytest.fixture(scope="session")
def files_under():
    """files_under(root) -> set of every path under root, relative (empty if root is absent)."""
    return tree


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models on a shared machine: one intra-op thread is much faster than several (no
    oversubscription), and subprocesses get OMP_NUM_THREADS=1 to match."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
