"""docs/cli.md is the tools' own `--help`, verbatim: this fails when the two drift apart
(regenerate with `uv run python tools/cli_docs.py`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_matches_the_help():
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "cli_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr


def test_every_tool_and_command_is_in_the_reference():
    doc = (ROOT / "docs" / "cli.md").read_text()
    for name in (
        "er-data prepare",
        "er-features extract",
        "er-features cache gc",
        "er-models describe",
        "er-train",
        "er-eval score",
        "er-eval table",
        "er-eval compare",
        "er-eval plot",
        "er-eval report",
        "er-eval predict",
    ):
        assert f"`{name}`" in doc, name
