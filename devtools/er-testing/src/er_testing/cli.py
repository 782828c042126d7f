"""Ways to run er's tools from a test: as a subprocess (`python -m er_x`, what a console script
does), through a shell as a user types a pipe, or in the test process through the same entry
point (`er_core.run`), cheap enough for property-based fuzzing.

Every subprocess runs one OpenMP thread: the machine running the tests is shared, several tools
may run at once, and a test comparing a subprocess's numbers with in-process ones needs both on
one thread to agree bit for bit.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent  # the environment's console scripts (er-data, ...)


def env1(pycache: Path | None = None, drop: Sequence[str] = (), **extra: str) -> dict[str, str]:
    """The environment for a tool run beside others: one thread, the venv's scripts first on
    PATH, `drop` names removed. `pycache`: keep bytecode in that folder (so torch's modules
    compile once per session, not once per subprocess)."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env | extra


def run_tool(
    module: str,
    *args: Any,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    stdin: Any = None,
) -> subprocess.CompletedProcess[bytes]:
    """`python -m MODULE ARGS` (args made str) in a subprocess with `input` bytes or a `stdin`
    file; `env` replaces the environment (default: env1())."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        timeout=timeout,
        env=env1() if env is None else env,
        cwd=cwd,
        check=False,
        **({"input": input} if stdin is None else {"stdin": stdin}),
    )


def sh(cmd: str, cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    """`cmd` in bash with pipefail (a failing step fails the pipe), the venv's console scripts
    on PATH, one thread; `env` adds variables."""
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd],
        cwd=cwd,
        env=env1(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Result:
    code: int
    stdout: bytes
    stderr: str


class _Stdin(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


def run_inprocess(app: Any, prog: str, args: list[str], stdin: bytes = b"") -> Result:
    """Run `prog args` through er_core.run in this process: exit code, stdout, stderr. stdin is
    never a TTY, as in a pipe."""
    from er_core import run

    saved = sys.argv, sys.stdin, sys.stdout, sys.stderr
    out = io.BytesIO()
    err = io.StringIO()
    sys.argv = [prog, *args]
    sys.stdin = _Stdin(io.BytesIO(stdin))
    wrapper = io.TextIOWrapper(out, write_through=True)
    sys.stdout = wrapper
    sys.stderr = err
    code = 0
    try:
        run(app, prog_name=prog)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        wrapper.flush()
        wrapper.detach()  # keep `out` open: the wrapper would close it when collected
        sys.argv, sys.stdin, sys.stdout, sys.stderr = saved
    return Result(code, out.getvalue(), err.getvalue())
