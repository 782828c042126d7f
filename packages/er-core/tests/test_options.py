"""The options every tool shares: --version, the thread default, missing optional extras, and
the recipe keys (what tables may pool and run folders are named by)."""

from __future__ import annotations

import sys
from typing import Annotated

import pytest
import typer
from er_core import ErError, UsageError, differing, flatten, recipe, require, versions
from er_core import threads as threads_mod
from er_core.extras import missing
from er_core.options import app_settings, version_option
from er_core.recipe import strip_labels
from typer.testing import CliRunner


def test_version_option_prints_and_exits_zero():
    app = typer.Typer(**app_settings("er-core", "test app"))

    @app.callback()
    def root(version: Annotated[bool, version_option("er-core")] = False) -> None:
        pass

    @app.command()
    def hello() -> None:
        print("hello")

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("er-core ") and "Python 3." in result.stdout
    assert "hello" not in result.stdout
    assert "--install-completion" in CliRunner().invoke(app, ["--help"]).stdout


def test_versions_name_er_dependencies_not_extras():
    text = versions("er-core")
    assert text.startswith("er-core ") and "torch" not in text


def test_thread_default(monkeypatch):
    monkeypatch.delenv("ER_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_mod, "usable_cores", lambda: 16)
    assert threads_mod.default_threads() == 8  # half, at most 8
    monkeypatch.setattr(threads_mod, "usable_cores", lambda: 2)
    assert threads_mod.default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads_mod.default_threads() == 3
    monkeypatch.setenv("ER_THREADS", "2")  # er's own variable first
    assert threads_mod.default_threads() == 2
    monkeypatch.setenv("ER_THREADS", "two")
    with pytest.raises(UsageError, match="ER_THREADS"):
        threads_mod.default_threads()
    monkeypatch.setenv("ER_THREADS", "0")  # not silently the default: said
    with pytest.raises(UsageError, match="at least 1"):
        threads_mod.default_threads()


def test_set_threads_sets_torch():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        assert threads_mod.set_threads(1) == 1 and torch.get_num_threads() == 1
        with pytest.raises(UsageError, match="--threads"):
            threads_mod.set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_require_names_feature_and_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # an import of cv2 now fails
    with pytest.raises(ErError) as e:
        require("cv2", "synth", "er-data")
    assert e.value.lines() == [
        "error: synth needs opencv-python-headless, which is not installed",
        "hint: pip install 'er-data[media]'",
    ]


def test_missing_maps_known_modules_only():
    known = ModuleNotFoundError("No module named 'tensorboard'", name="tensorboard")
    err = missing(known, "er-train")
    assert err is not None and err.hint == "pip install 'er-train[tensorboard]'"
    assert "TensorBoard logging needs tensorboard" in err.what
    assert missing(ModuleNotFoundError("x", name="not_a_known_module"), "er-train") is None
    assert missing(ValueError("no"), "er-train") is None


def test_recipe_drops_labels_only():
    cfg = {
        "seed": 3,
        "train": {"lr": 1e-3, "epochs": 3},
        "run": {"root": "runs", "category": "a", "method": "F", "log": [], "threads": 2},
    }
    assert recipe(cfg) == {"train.lr": 1e-3, "train.epochs": 3, "run.method": "F"}
    assert flatten(cfg)["run.root"] == "runs"
    assert strip_labels(cfg) == {"train": {"lr": 1e-3, "epochs": 3}, "run": {"method": "F"}}


def test_differing_names_keys_and_values():
    a = {"train.lr": 1e-3, "train.epochs": 3, "fusion.kind": "concat"}
    b = {"train.lr": 1e-3, "train.epochs": 30, "fusion.kind": "concat"}
    c = {"train.lr": 1e-3, "train.epochs": 3}
    assert differing([a, b]) == {"train.epochs": [3, 30]}
    assert differing([a, c]) == {"fusion.kind": ["concat", None]}
    assert differing([a, dict(a)]) == {}
