"""er-eval's own fixtures: the CLI in a subprocess, and runs built without torch.

The error check (`one_error`) and, for tests that train, the toy dataset and `train_run` come
from the er-testing plugin (devtools/er-testing), shared with er-train's and the workspace's
tests.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from er_eval.testing import make_run
from er_testing.cli import env1, run_tool


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """Run `python -m er_eval ARGS` with stdin bytes; returns the completed process (bytes).
    ER_DEBUG is dropped: the tests check the errors a user sees."""

    def run(*args: str, stdin: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = env1(drop=("ER_DEBUG",))
        return run_tool("er_eval", *args, input=stdin, env=env, cwd=cwd, timeout=120)

    return run


@pytest.fixture
def runs(tmp_path: Path) -> Callable[..., Path]:
    """Factory: `runs("name", seed=..., ...)` writes a run folder under tmp_path (make_run)."""

    def build(name: str, **kw) -> Path:
        folder = tmp_path / name
        make_run(folder, **kw)
        return folder

    return build
