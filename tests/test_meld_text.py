"""Real MELD text: frozen MiniLM sentence features with a bidirectional GRU over each dialogue
(configs/train/meld.toml), the epoch selected on dev, reach a test weighted-F1 of at least 55
(bcLSTM on text reports 56.44, Poria et al., ACL 2019).

Slow and realdata (about 2 minutes here: 13,708 utterances encoded, 20 epochs):
    ER_SHARED_DATA=../shared/data uv run pytest -m slow tests/test_meld_text.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.realdata]
ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], stdin: bytes | None = None, env: dict | None = None) -> bytes:
    r = subprocess.run(args, input=stdin, capture_output=True, env=env, check=False)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return r.stdout


def test_minilm_with_dialogue_context_reaches_55(shared_data, tmp_path):
    py = [sys.executable, "-m"]
    env = {**os.environ, "ER_CACHE": os.environ.get("ER_CACHE", str(tmp_path / "cache"))}
    ds = _run(
        [
            *py,
            "er_data",
            "prepare",
            "meld",
            "--root",
            str(shared_data / "meld"),
            "--out",
            str(tmp_path),
        ]
    )
    feats = _run(
        [*py, "er_features", "extract", "-m", "text", "-e", "minilm", "--out", str(tmp_path)],
        ds,
        env,
    )
    out = _run(
        [
            *py,
            "er_train",
            "-c",
            str(ROOT / "configs" / "train" / "meld.toml"),
            "--runs",
            str(tmp_path / "runs"),
            "--quiet",
        ],
        feats,
    )
    run = json.loads(out.splitlines()[-1])
    assert run["config"]["context"]["kind"] == "gru" and run["encoders"] == {"text": "minilm"}
    assert run["select"] == "emotion/weighted_f1"
    # the reported dev score is the selected epoch's, and that epoch is the best on dev
    scores = [e["dev"]["emotion/weighted_f1"] for e in run["epochs"]]
    assert run["best_epoch"] == scores.index(max(scores)) + 1
    assert run["dev"]["emotion/weighted_f1"] == pytest.approx(max(scores), abs=1e-6)
    f1 = 100 * run["test"]["emotion/weighted_f1"]
    print(
        f"\nMELD text, minilm + GRU context: test weighted-F1 {f1:.2f} (epoch {run['best_epoch']})"
    )
    assert f1 >= 55.0
