"""The one way every er tool runs: errors as `error:`/`hint:` lines, exit 1 or 2, quiet on a closed pipe."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import typer

from er_core.errors import ErError, from_os_error, wrapped_os_error
from er_core.extras import missing


def debug() -> bool:
    return os.environ.get("ER_DEBUG", "") not in ("", "0")


def warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def info(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(app: Callable[..., Any], prog_name: str | None = None) -> None:
    """Call a Typer app and turn every outcome into the protocol's exit codes.

    ErError -> its two lines on stderr and exit 1 (2 for usage); so does a usage error Typer
    finds in the command line (an unknown option, a value out of range). A missing optional
    dependency -> what needs it and the `pip install` that brings it (er_core.extras). An ordinary OS fault
    (no space, no permission, a closed stdout) -> one line naming the path, and a real hint.
    Ctrl-C -> `error: interrupted` and exit 130. A reader that closed the pipe (`cmd | head -1`)
    -> exit quietly. Anything else is a bug: a traceback with ER_DEBUG=1.
    """
    code = 0
    previous = _interrupt_past_typer()
    try:
        _require_stdout()
        result = app(prog_name=prog_name, standalone_mode=False)
        # Typer returns an exit code here for typer.Exit; a command's own return value is not one
        code = result if type(result) is int else 0
    except SystemExit:
        raise
    except ErError as e:
        _fail(e.lines(), e.exit_code, e)
    except BrokenPipeError:
        _quiet_pipe()
        sys.exit(1)
    except (KeyboardInterrupt, Interrupted, typer.Abort) as e:
        _fail(
            [
                "error: interrupted",
                "hint: rerun the same command to continue; finished steps and checkpoints are kept",
            ],
            130,
            e,
        )
    except typer.TyperException as e:  # Typer's own usage errors: bad option, value, command
        ctx = getattr(e, "ctx", None)
        where = ctx.command_path if ctx is not None else prog_name or "the command"
        usage = ErError(_typer_message(e), hint=f"see `{where} --help`")
        _fail(usage.lines(), getattr(e, "exit_code", 2) or 2, e)
    except OSError as e:
        if e.filename is None:
            _quiet_pipe()  # if stdout is what failed, the final flush must not fail again
        _fail(from_os_error(e).lines(), 1, e)
    except Exception as e:
        if (absent := missing(e, prog_name)) is not None:  # an optional extra not installed
            _fail(absent.lines(), 1, e)
        if (os_error := wrapped_os_error(e)) is not None:  # a library's wrapper of an OS fault
            _fail(from_os_error(os_error).lines(), 1, e)
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        _fail(
            [
                f"error: {type(e).__name__}" + (f": {first}" if first else ""),
                "hint: this is a bug in er; rerun with ER_DEBUG=1 for the traceback and report it",
            ],
            1,
            e,
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        try:
            if sys.stdout is not None:
                sys.stdout.flush()
        except BrokenPipeError:
            _quiet_pipe()
        except OSError as e:  # /dev/full: the last flush is where a full stdout shows
            _quiet_pipe()
            _fail(from_os_error(e, at="<stdout>").lines(), 1, e)
    if code:
        sys.exit(code)


class Interrupted(BaseException):
    """Ctrl-C, raised past Typer (which would turn KeyboardInterrupt into a silent exit 130).

    A BaseException, so `except Exception` does not swallow it and every `finally` and
    `except BaseException` cleanup (temporary files, locks) still runs on the way out.
    """


def _interrupt_past_typer() -> Any:
    """Install the Ctrl-C handler; returns the one it replaced (to put back), or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return None  # started in the background with Ctrl-C ignored: keep it so

    def on_sigint(signum: int, frame: Any) -> None:
        raise Interrupted

    return signal.signal(signal.SIGINT, on_sigint)


def _fail(lines: list[str], code: int, exc: BaseException) -> None:
    if debug() and not isinstance(exc, KeyboardInterrupt | Interrupted):
        raise exc
    # if stderr itself is closed, the exit code is all that is left
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print("\n".join(lines), file=sys.stderr, flush=True)
    sys.exit(code)


def _typer_message(e: Exception) -> str:
    fmt = getattr(e, "format_message", None)
    return fmt() if callable(fmt) else str(e)


def _require_stdout() -> None:
    """A closed stdout (`cmd >&-`) is a usage fault, said before any work."""
    if sys.stdout is None:
        raise ErError(
            "stdout is closed",
            at="<stdout>",
            hint="give the command an open stdout: a file (> out.ndjson) or a pipe",
        )


def _quiet_pipe() -> None:
    # Point stdout at /dev/null so the interpreter's final flush cannot raise again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
