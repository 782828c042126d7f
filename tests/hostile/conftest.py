"""Hostile-input tests across the tools: a tiny real pipeline, and ways to run a CLI.

`run_inprocess` drives a tool's real entry point (`er_core.run` around its Typer app) inside
the test process, so property-based fuzzing can afford hundreds of examples; `sh` runs the
installed console scripts in a shell, as a user would, for kills, signals and closed streams.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent  # the environment's console scripts


def env1(**extra: str) -> dict[str, str]:
    """The environment for a tool run beside others: one thread, the venv's scripts first."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        **extra,
    }


def sh(cmd: str, cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd],
        cwd=cwd,
        env=env1(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Result:
    code: int
    stdout: bytes
    stderr: str


class _Stdin(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


def run_inprocess(app: Any, prog: str, args: list[str], stdin: bytes = b"") -> Result:
    """Run `prog args` through er_core.run in this process: exit code, stdout, stderr."""
    from er_core import run

    saved = sys.argv, sys.stdin, sys.stdout, sys.stderr
    out = io.BytesIO()
    err = io.StringIO()
    sys.argv = [prog, *args]
    sys.stdin = _Stdin(io.BytesIO(stdin))
    wrapper = io.TextIOWrapper(out, write_through=True)
    sys.stdout = wrapper
    sys.stderr = err
    code = 0
    try:
        run(app, prog_name=prog)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        wrapper.flush()
        wrapper.detach()  # keep `out` open: the wrapper would close it when collected
        sys.argv, sys.stdin, sys.stdout, sys.stderr = saved
    return Result(code, out.getvalue(), err.getvalue())


def assert_clean_outcome(r: Result, ok: Callable[[Result], None] | None = None) -> None:
    """Exit 0 with a valid result, or exit 1/2 with exactly `error:` then `hint:`, nothing else."""
    if r.code == 0:
        if ok is not None:
            ok(r)
        return
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith(("warning:", "waiting"))]
    assert r.code in (1, 2), (r.code, r.stderr)
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), r.stderr
    assert "bug in er" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


@pytest.fixture(scope="session")
def tiny_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from er_features.testing import tiny_text_folder

    return tiny_text_folder(tmp_path_factory.mktemp("enc") / "tiny-bert")


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory, tiny_text: Path) -> Path:
    """A synthetic dataset, prepared, with text features from a tiny BERT: `work/` holds
    `data/`, `out/`, `cache/`, `dataset.ndjson` and `features.ndjson`."""
    work = tmp_path_factory.mktemp("hostile")
    r = sh(
        "er-data synth --out data --utterances 90 --seed 5 "
        "&& er-data prepare meld --root data --out out > dataset.ndjson "
        f"&& er-features extract dataset.ndjson -m text -e {tiny_text} --cache cache --out out "
        "> features.ndjson",
        work,
    )
    assert r.returncode == 0, r.stderr
    return work
