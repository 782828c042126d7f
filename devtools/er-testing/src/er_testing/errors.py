"""What a failure must look like to a user, checked the same way in every package: exactly one
`error: WHAT, at WHERE` line and one `hint:` line, no traceback, and nothing left behind.

Every tool reports user errors through `er_core.run`, so one set of checks serves them all; a
change to the error format is fixed here once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# lines a tool may print beside an error without it being a second message
_NOTES = ("warning:", "waiting")


def _text(stderr: str | bytes) -> str:
    return stderr.decode() if isinstance(stderr, bytes) else stderr


def error_lines(stderr: str | bytes) -> list[str]:
    """The `error:` and `hint:` lines of a failure (other stderr lines dropped)."""
    return [ln for ln in _text(stderr).splitlines() if ln.startswith(("error:", "hint:"))]


def stderr_lines(stderr: str | bytes) -> list[str]:
    """Every non-blank stderr line: for checks that nothing but the error was printed."""
    return [ln for ln in _text(stderr).splitlines() if ln.strip()]


def check_error(stderr: str | bytes, *fragments: str, at: bool = True) -> tuple[str, str]:
    """Exactly one `error: ..., at ...` line (`at` False: the place may be absent) then one
    `hint:` line, and every fragment somewhere in them; returns the two lines."""
    text = _text(stderr)
    lines = error_lines(text)
    assert len(lines) == 2, text
    err, hint = lines
    assert err.startswith("error: ") and (", at " in err or not at), text
    assert hint.startswith("hint: ") and len(hint) > len("hint: "), text
    assert "Traceback" not in text, text
    for f in fragments:
        assert f in err + "\n" + hint, f"{f!r} not in:\n{text}"
    return err, hint


def one_error(stderr: str | bytes) -> tuple[str, str]:
    """Stderr is exactly `error: ...` then `hint: ...`, nothing else (no traceback, no
    progress); returns both lines."""
    lines = stderr_lines(stderr)
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), lines
    return lines[0], lines[1]


def assert_clean_outcome(r: Any, ok: Callable[[Any], None] | None = None) -> None:
    """`r` (code, stdout, stderr: a cli.Result) is exit 0 with a valid result (`ok` checks it),
    or exit 1/2 with exactly `error:` then `hint:`: never a traceback or "a bug in er"."""
    if r.code == 0:
        if ok is not None:
            ok(r)
        return
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith(_NOTES)]
    assert r.code in (1, 2), (r.code, r.stderr)
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), r.stderr
    assert "bug in er" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def files_under(root: Path) -> set[str]:
    """Every path under `root`, relative (empty if it does not exist): a failed command must
    leave this unchanged."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()
