"""The one way every er tool runs: errors as `error:`/`hint:` lines, exit 1 or 2, quiet on a closed pipe."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from er_core.errors import ErError


def debug() -> bool:
    return os.environ.get("ER_DEBUG", "") not in ("", "0")


def warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def info(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(app: Callable[..., Any], prog_name: str | None = None) -> None:
    """Call a Typer app and turn every outcome into the protocol's exit codes.

    ErError -> its two lines on stderr and exit 1 (2 for usage). A reader that closed the pipe
    (`cmd | head -1`) -> exit quietly. Anything else is a bug: a traceback with ER_DEBUG=1.
    """
    try:
        app(prog_name=prog_name)
    except SystemExit:
        raise
    except ErError as e:
        if debug():
            raise
        print("\n".join(e.lines()), file=sys.stderr)
        sys.exit(e.exit_code)
    except BrokenPipeError:
        _quiet_pipe()
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        if debug():
            raise
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        print(f"error: {type(e).__name__}" + (f": {first}" if first else ""), file=sys.stderr)
        print(
            "hint: this is a bug in er; rerun with ER_DEBUG=1 for the traceback and report it",
            file=sys.stderr,
        )
        sys.exit(1)
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_pipe()


def _quiet_pipe() -> None:
    # Point stdout at /dev/null so the interpreter's final flush cannot raise again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
