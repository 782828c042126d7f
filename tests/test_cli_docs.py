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


def test_a_short_flag_with_two_meanings_is_caught():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import cli_docs
    finally:
        sys.path.pop(0)
    pages = [
        ("er-x a", "Options:\n  -m, --modality <str>  text.\n  -q, --quiet  No progress.\n"),
        ("er-y b", "Options:\n  -m, --model <str>  a model.\n  -z, --zip  Zip it.\n"),
    ]
    found = cli_docs.short_flags(pages)
    assert found["-m"] == {"--modality": ["er-x a"], "--model": ["er-y b"]}
    problems = cli_docs.flag_problems(found)
    assert len(problems) == 2
    assert problems[0].startswith("-m means --model in er-y b")
    assert problems[1].startswith("-z means --zip in er-y b")


def test_every_tool_has_version_and_completion():
    doc = (ROOT / "docs" / "cli.md").read_text()
    for tool in ("er-data", "er-features", "er-models", "er-train", "er-eval"):
        page = doc.split(f"## `{tool}`\n", 1)[1].split("\n## ", 1)[0]
        assert "--version" in page and "--install-completion" in page, tool
        r = subprocess.run(
            [sys.executable, "-m", tool.replace("-", "_"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 0 and r.stdout.startswith(f"{tool} "), (tool, r.stderr)
