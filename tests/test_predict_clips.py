"""Classifying a new clip (issue 14): `tools/predict.sh RUN CLIP` with a run trained on synthetic
data (modality V) prints one CSV row for the clip, and the same clip prepared as an ordinary
dataset (a table mapping, features extracted into another cache, predicted without the script)
gets exactly the same probabilities.

Twice: with the demo's face-expression encoder (real mini-Xception weights) on a real face video,
../shared/data/face-videos/single_face.mp4 (slow and realdata: about 2 minutes on one busy core,
mostly process start-up and torch imports),
    ER_SHARED_DATA=../shared/data uv run pytest -m slow tests/test_predict_clips.py
and, in the default suite, with a tiny random face CNN (er_features.testing) on a synthetic clip.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
EMOTIONS = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
MAPPING = f"""
dataset = "clips"
file = "clips.csv"

[columns]
id = "clip"
dialogue = "clip"
split = "fold"
video = "file"

[tasks.emotion]
column = "label"
classes = {json.dumps(EMOTIONS)}
"""


def sh(script: str, cwd: Path, env: dict[str, str]) -> str:
    """A bash pipe, as a user types it; its stdout."""
    r = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        check=False,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    return r.stdout.decode()


@pytest.mark.parametrize(
    "real", [pytest.param(True, marks=[pytest.mark.slow, pytest.mark.realdata], id="real"), False]
)
def test_predict_sh_matches_the_dataset_path(real, tmp_path, request):
    if real:
        encoder, clip = "fer-xception", request.getfixturevalue("shared_data")
        clip = clip / "face-videos" / "single_face.mp4"
    else:
        from er_features.testing import tiny_face_cnn_folder

        encoder = str(tiny_face_cnn_folder(tmp_path / "tiny-cnn"))
        clip = tmp_path / "data" / "output_repeated_splits_test" / "dia0_utt0.mp4"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
        "ER_CACHE": str(tmp_path / "cache"),
    }
    start = time.perf_counter()
    # a small V run on synthetic data, with the demo's video encoder and few epochs
    sh(
        "er-data synth --out data -n 24 --seed 0 -q\n"
        "er-data prepare meld --root data --out out -q"
        f" | er-features extract -m video -e {encoder} --out out -q > feats.ndjson\n"
        f"er-train feats.ndjson -c {ROOT}/configs/train/synth.toml -m V --set train.epochs=2"
        " --runs runs -q | tail -n 1 > run.ndjson",
        tmp_path,
        env,
    )
    run = json.loads((tmp_path / "run.ndjson").read_text())
    assert run["kind"] == "run" and run["modalities"] == ["video"]

    # the script: one CSV row for the clip, its probabilities over the run's classes
    out = sh(
        f"ER_PREDICT_OUT=clips-out bash {ROOT}/tools/predict.sh {run['run_dir']} {clip}",
        tmp_path,
        env,
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1, out
    (row,) = rows
    probs = np.array([float(row[f"emotion.p.{c}"]) for c in EMOTIONS], dtype=np.float32)
    assert row["id"] == clip.stem and row["split"] == "test"
    assert abs(float(probs.astype(np.float64).sum()) - 1.0) < 1e-5 and (probs > 0).all()
    assert row["pred_emotion"] == EMOTIONS[int(probs.argmax())]
    assert "gold_emotion" not in row  # a new clip has no label

    # the dataset path: the clip as a labelled one-row dataset, features made afresh
    data = tmp_path / "clips"
    data.mkdir()
    shutil.copy(clip, data / "smile.mp4")
    (data / "clips.csv").write_text("clip,fold,file,label\nsmile,test,smile.mp4,joy\n")
    (tmp_path / "clips.toml").write_text(MAPPING)
    stream = sh(
        "er-data prepare table --root clips -c clips.toml --out table-out -q"
        f" | ER_CACHE=cache2 er-features extract -m video -e {encoder} --out table-out -q"
        f" | er-eval predict --run {run['run_dir']} --out table-out -q",
        tmp_path,
        env,
    )
    manifest = json.loads(stream.splitlines()[-1])
    frame = pl.read_parquet(manifest["table"]["path"])
    assert frame["gold_emotion"].to_list() == ["joy"]
    again = frame.select(f"emotion.p.{c}" for c in EMOTIONS).to_numpy()[0]
    np.testing.assert_array_equal(again, probs)  # float32, bit for bit
    assert frame["pred_emotion"].to_list() == [row["pred_emotion"]]
    assert (tmp_path / "cache2" / "features").is_dir()  # really extracted again, not reused
    print(f"\npredict.sh and the dataset path agree; {time.perf_counter() - start:.0f} s in all")
