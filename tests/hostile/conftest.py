"""Hostile-input tests across the tools: a tiny real pipeline, built with the installed console
scripts in a shell as a user would. The runners (`sh`, `env1`, `run_inprocess`) and the
clean-outcome check come from er_testing (devtools/er-testing), shared with the other suites.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from er_testing.cli import sh


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
