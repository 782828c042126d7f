"""score, table, compare, runs and --version run where importing torch (or er-models,
er-train) is impossible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCK = "import sys\nfor m in ('torch', 'er_models', 'er_train', 'transformers'):\n    sys.modules[m] = None\n"


def _run(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    code = BLOCK + (f"from er_eval.cli import main\nsys.argv = ['er-eval', *{args!r}]\nmain()\n")
    return subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, timeout=120, check=False
    )


def test_the_block_works() -> None:
    r = subprocess.run(
        [sys.executable, "-c", BLOCK + "import torch"], capture_output=True, check=False
    )
    assert r.returncode != 0 and b"ModuleNotFoundError" in r.stderr


def test_modules_import_without_torch() -> None:
    code = BLOCK + (
        "import er_eval.runs, er_eval.regression, er_eval.score, er_eval.table, er_eval.compare\n"
        "import er_eval.cli, er_eval.testing, er_eval.runs_table, er_eval.grouping\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert r.returncode == 0, r.stderr.decode()


def test_score_table_compare_without_torch(runs, tmp_path: Path) -> None:
    a, b = runs("a", seed=0, accuracy=0.9), runs("b", seed=1, accuracy=0.5)
    scored = _run(["score", str(a), str(b)])
    assert scored.returncode == 0, scored.stderr.decode()
    assert scored.stdout.count(b'"kind":"eval"') == 2
    table = _run(["table", "--by", "fusion", "--metric", "test/emotion/accuracy"], scored.stdout)
    assert table.returncode == 0, table.stderr.decode()
    assert table.stdout.decode().splitlines()[2].startswith("| concat | ")
    compare = _run(["compare", str(a), str(b), "--resamples", "200", "--json"])
    assert compare.returncode == 0, compare.stderr.decode()
    assert b'"p_value"' in compare.stdout
    flat = _run(["runs", "--format", "csv"], scored.stdout)
    assert flat.returncode == 0 and flat.stdout.count(b"\n") == 3, flat.stderr.decode()
    version = _run(["--version"])
    assert version.returncode == 0 and b"torch not installed" in version.stdout
