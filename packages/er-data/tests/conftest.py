"""Shared fixtures for er-data's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, named by ER_SHARED_DATA; tests that need it are marked `realdata`."""
    root = os.environ.get("ER_SHARED_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("set ER_SHARED_DATA to the shared data folder to run realdata tests")
    return Path(root).resolve()


def er_data(
    *args: str, input: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the real `er-data` CLI in a subprocess, as a user's shell would."""
    return subprocess.run(
        [sys.executable, "-m", "er_data", *args],
        input=input,
        capture_output=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture
def cli():
    return er_data
