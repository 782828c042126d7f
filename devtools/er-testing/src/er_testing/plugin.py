"""The pytest plugin (entry point `pytest11: er_testing`): er's shared fixtures under the names
the tests already use, and which marked tests can run on this machine. Installed in a package's
dev group, it serves that package's tests with no conftest import, in the workspace and in a
package's isolated environment alike.

- `realdata` tests run when ER_SHARED_DATA names the shared data folder, and skip otherwise;
- `gpu` tests run only where torch sees a CUDA device;
- `slow` tests are deselected by the workspace's default `-m` (run them with `-m slow`).

Nothing heavy is imported here: the toy dataset's modules (polars, er-data, er-features) and
er-train load only when a test asks for those fixtures, so a package without them still tests.
A package's conftest may define a fixture of the same name (er-models' `toy`); it wins there.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from er_testing import errors

MARKERS = [
    "slow: needs real pretrained weights or takes long (run with -m slow)",
    "realdata: needs ../shared/data (set ER_SHARED_DATA)",
    "gpu: needs a CUDA device",
]


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)


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


# --- the toy dataset (er_testing.toy) ---------------------------------------------------------


@pytest.fixture(scope="session")
def toy(tmp_path_factory):
    """The toy dataset with T, A and V features (see er_testing.toy), built once a session."""
    from er_testing.toy import build_toy

    return build_toy(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="session")
def make_toy():
    """make_toy(root, name="toy", n_dialogues=30, seed=0, dims=DIMS, mapping="") -> Toy:
    another dataset (`mapping`: TOML added to the table mapping)."""
    from er_testing.toy import build_toy

    return build_toy


@pytest.fixture(scope="session")
def import_npz_features():
    """import_npz_features(dataset_line, modality, ids, feats, src) -> FeatureManifest line."""
    from er_testing.toy import import_npz

    return import_npz


# --- training in this process (er_testing.training) --------------------------------------------


@pytest.fixture(scope="session")
def fast_config(tmp_path_factory) -> Path:
    """A TOML recipe for fast runs (tiny network, 3 epochs): pass it as --config."""
    from er_testing.training import write_fast_config

    return write_fast_config(tmp_path_factory.mktemp("configs"))


@pytest.fixture(scope="session")
def train_run(fast_config):
    """train_run(stream, runs_root, *sets, config=[...], resume=None, progress=False) ->
    RunManifest, in this process: the same steps as the CLI (fast.toml, then `config` files,
    then --set)."""
    from er_testing.training import train_in_process

    def run(stream: Path, runs: Path, *sets: str, config=(), resume=None, progress=False):
        return train_in_process(
            fast_config, stream, runs, *sets, config=config, resume=resume, progress=progress
        )

    return run


# --- error checks (er_testing.errors) ----------------------------------------------------------


@pytest.fixture(scope="session")
def check_error():
    """check_error(stderr, *fragments, at=True) -> (error line, hint line): exactly one
    `error: ..., at ...` line and one `hint:` line, every fragment in them."""
    return errors.check_error


@pytest.fixture(scope="session")
def one_error():
    """one_error(stderr) -> (error line, hint line): stderr holds those two lines and nothing
    else."""
    return errors.one_error


@pytest.fixture(scope="session")
def files_under():
    """files_under(root) -> set of every path under root, relative (empty if root is absent)."""
    return errors.files_under
