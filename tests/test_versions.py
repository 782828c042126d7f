"""One version for every er package (VERSION), and every er sibling pinned to it."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


version = load("version")


def test_every_package_and_pin_agrees_with_VERSION():
    assert version.problems(version.read()) == []


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """The version-bearing files of the workspace, copied, with the tool pointed at the copy."""
    (tmp_path / "VERSION").write_text((ROOT / "VERSION").read_text())
    for name in version.PACKAGES:
        for path in (version.pyproject(name), version.init(name)):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    monkeypatch.setattr(version, "ROOT", tmp_path)
    monkeypatch.setattr(version, "VERSION_FILE", tmp_path / "VERSION")
    return tmp_path


def test_a_drifted_pin_or_version_is_named(copy):
    eval_toml = copy / "packages/er-eval/pyproject.toml"
    eval_toml.write_text(eval_toml.read_text().replace('"er-core==', '"er-core>=', 1))
    init = copy / "packages/er-data/src/er_data/__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9', 1))
    found = version.problems(version.read())
    assert len(found) == 2
    assert "er_data/__init__.py: __version__ is '90.1.0'" in found[0]
    assert "er-eval/pyproject.toml: er-core is pinned >=0.1.0, not ==0.1.0" in found[1]


def test_set_writes_one_version_everywhere(copy):
    version.write("0.2.0")
    assert version.read() == "0.2.0" and version.problems("0.2.0") == []
    text = (copy / "packages/er-train/pyproject.toml").read_text()
    assert 'name = "er-train"' in text and '"er-models==0.2.0"' in text
    assert 'finetune = ["er-features==0.2.0"' in text
    # dev groups are not shipped: they stay unpinned
    assert 'dev = ["er-testing[train]", "er-data", "er-features"' in text
