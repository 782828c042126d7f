"""The toy dataset er-train's and er-eval's tests train on: small, learnable, built with the
real tools' functions (`er-data prepare table`, `er-features import`), so a test exercises the
same manifests, tables and feature files a user's pipeline makes.

The dataset: 30 dialogues of 3-8 turns, 2-3 speakers each, split by a column (20 train, 5 dev,
5 test dialogues), rows shuffled in the CSV; tasks `emotion` (4 classes, the default),
`sentiment` (3 classes, a function of the emotion) and `arousal` (regression, an emotion's level
plus noise). Features come from NPZ files keyed by utterance id: each class has its own mean per
modality, plus unit noise; text carries the strongest signal, audio and video a weaker one.
`er-features import` flags no row as missing, so tests that need fallback rows rewrite an index
themselves.

Needs the `toy` extra (er-data, er-features, polars); imported only when a fixture asks for it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

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


@dataclass
class Toy:
    """A prepared dataset and its features, on disk."""

    root: Path
    dataset_line: bytes  # the DatasetManifest, one NDJSON line
    feature_lines: dict[str, bytes]  # modality -> its FeatureManifest line
    stream: Path  # dataset + text, audio and video features
    table: pl.DataFrame  # the utterance table er-data wrote

    def write(self, path: Path, *modalities: str, extra: Sequence[bytes] = ()) -> Path:
        """A stream file with the dataset, the named modalities' features and `extra` lines."""
        lines = [self.dataset_line, *(self.feature_lines[m] for m in modalities), *extra]
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        return path

    def split_ids(self, split: str) -> list[str]:
        return self.table.filter(pl.col("split") == split)["id"].to_list()


def write_toy_csv(path: Path, n_dialogues: int, seed: int) -> None:
    """The utterance CSV: dialogues in folds by index (every 6th dev, the next test), labels
    drawn at random, rows shuffled so readers cannot rely on dialogue order."""
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
    rows = [rows[i] for i in rng.permutation(len(rows))]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["conv", "line", "who", "utterance", "label", "sentiment", "arousal", "fold"])
        w.writerows(rows)


def planted_features(labels: np.ndarray, dim: int, strength: float, seed: int) -> np.ndarray:
    """(n, dim) float32: a per-class mean of norm ~`strength`·sqrt(dim)/2 plus N(0, 1) noise, so
    a model can learn the labels, and a stronger modality helps more than a weaker one."""
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
    root: Path,
    name: str = "toy",
    n_dialogues: int = 30,
    seed: int = 0,
    dims: dict[str, int] | None = None,
    mapping: str = "",
) -> Toy:
    """Write the CSV and mapping (plus `mapping`, more TOML), prepare, import NPZ features;
    `root/stream.ndjson` holds the dataset and every modality's features."""
    from er_core.stream import encode
    from er_data.preparation import prepare

    dims = dims or DIMS
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_toy_csv(data / "utterances.csv", n_dialogues, seed)
    mapping_file = root / "mapping.toml"
    mapping_file.write_text(MAPPING.format(name=name) + mapping)
    manifest = prepare("table", data, configs=[str(mapping_file)], out=root / "out")
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
