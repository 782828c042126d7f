"""tools/meld-context.sh on a few real MELD dialogues: runs side by side (ER_JOBS=2) land in
runs.tsv in the script's order whatever order they finish in, a second call finds them finished,
and a run that fails stops the script with its log's end and no runs.tsv.

Slow and realdata (MiniLM's real weights; about a minute here):
    ER_SHARED_DATA=../shared/data uv run pytest -m slow tests/test_meld_context_script.py
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.realdata]
ROOT = Path(__file__).resolve().parents[1]
DIALOGUES = {"train": 4, "dev": 2, "test": 2}  # the first dialogues of each split


@pytest.fixture
def meld(shared_data, tmp_path) -> Path:
    root = tmp_path / "meld"
    root.mkdir()
    for split, n in DIALOGUES.items():
        name = f"{split}_sent_emo.csv"
        with (shared_data / "meld" / name).open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        keep = [r for r in rows[1:] if int(r[5]) < n]
        with (root / name).open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([rows[0], *keep])
    return root


def _script(meld: Path, work: Path, **env: str) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    full = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "ER_CACHE": str(work / "cache"),
        "ER_MELD_DIR": str(work),
        "ER_SEEDS": "0",
        **env,
    }
    cmd = ["bash", str(ROOT / "tools" / "meld-context.sh"), str(meld)]
    return subprocess.run(cmd, capture_output=True, env=full, check=False, text=True)


def test_runs_side_by_side_keep_the_scripts_order(meld, tmp_path):
    work = tmp_path / "work"
    env = {
        "ER_ONLY": "ctx-lora nocontext-lora",
        "ER_JOBS": "2",
        "ER_SET": "train.epochs=1 train.batch_size=8",
    }
    done = _script(meld, work, **env)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("\t", 2) for line in (work / "runs.tsv").read_text().splitlines()]
    assert [(name, seed) for name, seed, _ in rows] == [("ctx-lora", "0"), ("nocontext-lora", "0")]
    runs = [json.loads(m) for _, _, m in rows]
    assert all(Path(r["run_dir"], "run.json").is_file() for r in runs)
    pooling = [r["config"]["finetune"]["text"]["pooling"] for r in runs]
    assert pooling == ["target", "mean"]  # the recipes each row names
    assert (work / "logs" / "ctx-lora-0.log").read_text()  # each run's progress, apart

    again = _script(meld, work, **env)  # every run already finished: found, not trained
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing to do" in (work / "logs" / "nocontext-lora-0.log").read_text()
    assert (work / "runs.tsv").read_text().splitlines() == ["\t".join(r) for r in rows]


def test_a_failed_run_stops_the_script_with_its_log(meld, tmp_path):
    work = tmp_path / "work"
    env = {"ER_ONLY": "ctx-lora", "ER_JOBS": "2", "ER_SET": "train.epochs=0"}
    done = _script(meld, work, **env)
    assert done.returncode != 0
    assert "ctx-lora, seed 0: failed" in done.stderr
    assert "train.epochs" in done.stderr  # er-train's own one-line error, from the run's log
    assert not (work / "runs.tsv").exists()
