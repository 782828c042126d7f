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
# One meaning per short flag across the five tools: the long names it may stand for and what
# it means. A short flag not listed here, or standing for another long name, fails the check.
SHORT_FLAGS = {
    "-c": (("--config",), "a TOML config file (repeatable, merged left to right)"),
    "-m": (("--modality", "--modalities"), "which modality: text/audio/video or T/A/V (T+A+V)"),
    "-e": (("--encoder",), "the encoder: an alias, a model folder or a hub id"),
    "-n": (("--utterances",), "how many utterances to make"),
    "-f": (("--family",), "a family of network parts"),
    "-o": (("--out",), "the output file or folder"),
    "-q": (("--quiet",), "no progress lines on stderr"),
    "-j": (("--threads",), "CPU threads for torch"),
}


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


def short_flags(pages: list[tuple[str, str]]) -> dict[str, dict[str, list[str]]]:
    """short flag -> long name -> the commands whose help lists that pair."""
    found: dict[str, dict[str, list[str]]] = {}
    for name, text in pages:
        for short, long in re.findall(r"^\s+(-[a-zA-Z]), (--[\w-]+)", text, flags=re.M):
            found.setdefault(short, {}).setdefault(long, []).append(name)
    return found


def flag_problems(found: dict[str, dict[str, list[str]]]) -> list[str]:
    problems = []
    for short, longs in sorted(found.items()):
        allowed = SHORT_FLAGS.get(short, ((), ""))[0]
        for long, where in longs.items():
            if long not in allowed:
                problems.append(f"{short} means {long} in {', '.join(where)}; allowed: {allowed}")
    return problems


def flag_table(found: dict[str, dict[str, list[str]]]) -> list[str]:
    rows = [
        "## Short flags",
        "",
        "Each short flag means one thing in every tool (`tools/cli_docs.py` checks it).",
        "",
        "| flag | long form | means | used by |",
        "|---|---|---|---|",
    ]
    for short, (longs, meaning) in SHORT_FLAGS.items():
        where = sorted({w for ws in found.get(short, {}).values() for w in ws})
        if where:
            rows.append(
                f"| `{short}` | {', '.join(f'`{x}`' for x in longs)} | {meaning} | "
                + ", ".join(f"`{w}`" for w in where)
                + " |"
            )
    return [*rows, ""]


def render() -> str:
    pages = [page for tool in TOOLS for page in walk([tool])]
    found = short_flags(pages)
    if problems := flag_problems(found):
        raise SystemExit("short flags with two meanings:\n" + "\n".join(problems))
    parts = [
        "# Command-line reference",
        "",
        "Generated from each tool's `--help` by `tools/cli_docs.py`; a test fails when this page",
        "and the help drift apart. Regenerate with `uv run python tools/cli_docs.py`.",
        "",
        *flag_table(found),
    ]
    for name, text in pages:
        parts += [
            f"{'##' if name in TOOLS else '###'} `{name}`",
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
