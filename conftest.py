"""Workspace-wide test settings: which marked tests can run on this machine.

- `realdata` tests run when ER_SHARED_DATA names the shared data folder, and skip otherwise;
- `gpu` tests run only where torch sees a CUDA device;
- `slow` tests are deselected by the default `-m` in pyproject.toml (run them with `-m slow`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest


def _cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shared = os.environ.get("ER_SHARED_DATA")
    no_data = pytest.mark.skip(reason="needs ER_SHARED_DATA pointing at the shared data folder")
    no_gpu = pytest.mark.skip(reason="needs a CUDA device")
    gpu_checked: bool | None = None
    for item in items:
        if "realdata" in item.keywords and not (shared and Path(shared).is_dir()):
            item.add_marker(no_data)
        if "gpu" in item.keywords:
            gpu_checked = _cuda() if gpu_checked is None else gpu_checked
            if not gpu_checked:
                item.add_marker(no_gpu)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, named by ER_SHARED_DATA; tests that need it are marked `realdata`."""
    root = os.environ.get("ER_SHARED_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("set ER_SHARED_DATA to the shared data folder to run realdata tests")
    return Path(root).resolve()
