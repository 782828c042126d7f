"""Shared fixtures of er-eval's tests: the CLI in a subprocess, and runs built without torch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from er_eval.testing import make_run


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """Run `python -m er_eval ARGS` with stdin bytes; returns the completed process (bytes)."""

    def run(*args: str, stdin: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "ER_DEBUG"}
        return subprocess.run(
            [sys.executable, "-m", "er_eval", *map(str, args)],
            input=stdin,
            capture_output=True,
            env=env,
            cwd=cwd,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def runs(tmp_path: Path) -> Callable[..., Path]:
    """Factory: `runs("name", seed=..., ...)` writes a run folder under tmp_path (make_run)."""

    def build(name: str, **kw) -> Path:
        folder = tmp_path / name
        make_run(folder, **kw)
        return folder

    return build


def error_lines(stderr: bytes) -> list[str]:
    return [ln for ln in stderr.decode().splitlines() if ln.strip()]


@pytest.fixture
def one_error() -> Callable[[bytes], tuple[str, str]]:
    """Check stderr is exactly `error: ...` + `hint: ...` (no traceback); return both lines."""

    def check(stderr: bytes) -> tuple[str, str]:
        lines = error_lines(stderr)
        assert len(lines) == 2, lines
        assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), lines
        return lines[0], lines[1]

    return check
