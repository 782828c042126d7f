"""The shell tools in tools/ run as documented: `ablate.sh` run twice does the work once.

The dataset is small and made with the real CLIs: a CSV through `er-data prepare table`, and
text and audio features with a planted class signal through `er-features import`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["neutral", "joy", "anger", "sadness"]
MAPPING = """
dataset = "tiny"
task = "emotion"
file = "utterances.csv"

[columns]
id = "{conv}_{line}"
dialogue = "conv"
text = "utterance"
turn = "line"
speaker = "who"
split = "fold"

[tasks.emotion]
column = "label"
classes = ["neutral", "joy", "anger", "sadness"]
"""


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # the environment's console scripts
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(args: list[str], stdin: bytes | None = None, env: dict | None = None):
    r = subprocess.run(args, input=stdin, capture_output=True, env=env or _env(), check=False)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return r


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    lines, labels = ["conv,line,who,utterance,label,fold"], []
    for d in range(30):
        fold = {3: "dev", 4: "test"}.get(d % 5, "train")
        for t in range(4):
            y = int(rng.integers(len(CLASSES)))
            labels.append(y)
            lines.append(f"c{d},{t},{'ab'[t % 2]},line {t},{CLASSES[y]},{fold}")
    (work / "utterances.csv").write_text("\n".join(lines) + "\n")
    (work / "mapping.toml").write_text(MAPPING)
    py = [sys.executable, "-m"]
    stream = _run(
        [
            *py,
            "er_data",
            "prepare",
            "table",
            "--root",
            str(work),
            "--config",
            str(work / "mapping.toml"),
            "--out",
            str(work / "out"),
        ]
    ).stdout
    assert json.loads(stream)["kind"] == "dataset"
    table_ids = [f"c{d}_{t}" for d in range(30) for t in range(4)]
    y = np.array(labels)
    for modality, dim, strength in (("text", 8, 1.5), ("audio", 4, 0.8)):
        means = rng.normal(size=(len(CLASSES), dim)) * strength
        x = (means[y] + rng.normal(size=(y.size, dim))).astype(np.float32)
        np.savez(work / f"{modality}.npz", ids=np.array(table_ids), features=x)
        stream = _run(
            [
                *py,
                "er_features",
                "import",
                "-m",
                modality,
                "--from",
                str(work / f"{modality}.npz"),
                "--cache",
                str(work / "cache"),
                "--out",
                str(work / "out"),
            ],
            stdin=stream,
        ).stdout
    path = work / "features.ndjson"
    path.write_bytes(stream)
    return path


def test_ablate_twice_does_the_work_once(features, tmp_path):
    env = _env() | {
        "ER_MODALITIES": "T T+A",
        "ER_FUSIONS": "concat attention",
        "ER_SEEDS": "0 1",
        "ER_SET": "train.epochs=2 model.width=8 train.batch_size=8",
    }
    runs = tmp_path / "runs"
    cmd = ["bash", str(ROOT / "tools" / "ablate.sh"), str(features), str(runs)]
    first = _run(cmd, env=env)
    manifests = [json.loads(line) for line in (runs / "runs.ndjson").read_text().splitlines()]
    assert len(manifests) == 8 and {m["kind"] for m in manifests} == {"run"}
    assert len({m["run_dir"] for m in manifests}) == 8  # every grid point its own run
    weights = sorted(runs.rglob("weights.safetensors"))
    stamps = {p: p.lstat().st_mtime_ns for p in runs.rglob("*.safetensors")}
    assert len(weights) == 8

    second = _run(cmd, env=env)
    assert second.stderr.decode().count("finished run found, nothing to do") == 8
    assert first.stderr.decode().count("finished run found") == 0
    assert {p: p.lstat().st_mtime_ns for p in runs.rglob("*.safetensors")} == stamps
    again = [json.loads(line) for line in (runs / "runs.ndjson").read_text().splitlines()]
    assert again == manifests
    # the table: one row per modalities x fusion, over both seeds
    table = second.stdout.decode()
    assert first.stdout == second.stdout
    for m in ("| T | concat |", "| T+A | attention |"):
        assert m in table
    assert table.count("| 2 | 0,1 |") == 4


def test_ablate_without_features_is_a_usage_error(tmp_path):
    r = subprocess.run(
        ["bash", str(ROOT / "tools" / "ablate.sh")], capture_output=True, env=_env(), check=False
    )
    assert r.returncode == 2 and b"usage:" in r.stderr


def test_a_sweep_keeps_every_point_and_tables_by_its_key(features, tmp_path):
    """3 learning rates x 2 seeds: 6 run folders (nothing named by hand), a second pass trains
    nothing, and the table has one row per learning rate with n = 2."""
    env = _env() | {"ER_SEEDS": "0 1", "ER_MODALITIES": "T+A", "ER_SET": "train.epochs=2"}
    runs = tmp_path / "runs"
    cmd = ["bash", str(ROOT / "tools" / "sweep.sh"), str(features), "train.lr", "1e-3 3e-3 1e-2"]
    first = _run([*cmd, str(runs)], env=env)
    manifests = [json.loads(line) for line in (runs / "runs.ndjson").read_text().splitlines()]
    assert len({m["run_dir"] for m in manifests}) == 6
    assert len(list(runs.rglob("run.json"))) == 6
    assert len({m["recipe_hash"] for m in manifests}) == 3
    second = _run([*cmd, str(runs)], env=env)
    assert second.stderr.decode().count("finished run found, nothing to do") == 6
    assert first.stdout == second.stdout
    rows = [ln for ln in second.stdout.decode().splitlines() if ln.startswith("| 0.0")]
    assert len(rows) == 3, second.stdout.decode()
    assert all("| 2 |" in row for row in rows)


@pytest.mark.realdata
def test_meld_like_clips_are_720p_h264_with_aac_and_prepare(shared_data, tmp_path):
    """tools/meld_like.py: clips as documented (1280x720 H.264 at 24 fps, AAC 48 kHz stereo,
    lengths in [1, 10] s), a table er-data prepares with audio and video columns."""
    import av

    out = tmp_path / "set"
    cmd = [sys.executable, str(ROOT / "tools" / "meld_like.py"), str(out), "--clips", "3"]
    done = subprocess.run([*cmd, "--shared", str(shared_data)], capture_output=True, env=_env())
    assert done.returncode == 0, done.stderr.decode()
    clips = sorted((out / "clips").glob("*.mp4"))
    assert len(clips) == 3
    for clip in clips:
        with av.open(str(clip)) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            assert (v.codec_context.name, v.width, v.height) == ("h264", 1280, 720)
            assert float(v.average_rate) == 24 and 1 <= float(v.duration * v.time_base) <= 10
            assert (a.codec_context.name, a.rate, a.channels) == ("aac", 48000, 2)
    cfg = out / "mapping.toml"
    prep = [sys.executable, "-m", "er_data", "prepare", "table", "--root", str(out), "-q"]
    made = subprocess.run([*prep, "--config", str(cfg), "--out", str(tmp_path / "o")], env=_env())
    assert made.returncode == 0
