"""Write docs/cli.md from the tools' own `--help`, or check that it is current.

    uv run python tools/cli_docs.py          # rewrite docs/cli.md
    uv run python tools/cli_docs.py --check  # exit 1 if docs/cli.md differs from the help

Every command and sub-command of every tool is listed, its help text verbatim, rendered at a
fixed width (COLUMNS=100) so the output does not depend on the terminal. A test runs the check,
so the reference cannot drift from the code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cli.md"
TOOLS = ["er-data", "er-features", "er-models", "er-train", "er-eval"]
MODULES = {t: t.replace("-", "_") for t in TOOLS}


def help_text(args: list[str]) -> str:
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
    r = subprocess.run(
        [sys.executable, "-m", MODULES[args[0]], *args[1:], "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} --help failed: {r.stderr.strip()}")
    # the program name under `python -m` is the module's: show the console script's name
    return r.stdout.replace(f"Usage: {MODULES[args[0]]}", f"Usage: {args[0]}").rstrip() + "\n"


def sub_commands(text: str) -> list[str]:
    """Names listed in the help's `Commands:` section."""
    if "\nCommands:\n" not in text:
        return []
    block = text.split("\nCommands:\n", 1)[1]
    return re.findall(r"^  ([a-z][\w-]*)", block, flags=re.M)


def walk(args: list[str]) -> list[tuple[str, str]]:
    text = help_text(args)
    out = [(" ".join(args), text)]
    for name in sub_commands(text):
        out += walk([*args, name])
    return out


def render() -> str:
    parts = [
        "# Command-line reference",
        "",
        "Generated from each tool's `--help` by `tools/cli_docs.py`; a test fails when this page",
        "and the help drift apart. Regenerate with `uv run python tools/cli_docs.py`.",
        "",
    ]
    for tool in TOOLS:
        for name, text in walk([tool]):
            parts += [
                f"{'##' if name == tool else '###'} `{name}`",
                "",
                "```text",
                text.rstrip(),
                "```",
                "",
            ]
    return "\n".join(parts)


def main() -> None:
    text = render()
    if "--check" in sys.argv:
        if not DOC.is_file() or DOC.read_text() != text:
            print(
                f"{DOC.relative_to(ROOT)} is out of date: run uv run python tools/cli_docs.py",
                file=sys.stderr,
            )
            raise SystemExit(1)
        return
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
