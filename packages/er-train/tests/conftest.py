"""er-train's own fixtures: ways to run the `er-train` CLI (a subprocess, a background process,
the entry point in this process) and a check that a failed run leaves nothing behind.

The toy dataset (`toy`, `make_toy`, `import_npz_features`), fast in-process training
(`fast_config`, `train_run`) and the error checks (`check_error`, `files_under`) come from the
er-testing plugin (devtools/er-testing), shared with er-eval's and the workspace's tests.
"""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from er_testing.cli import env1, run_tool


@pytest.fixture(scope="session")
def cli(tmp_path_factory):
    """cli(*args, input=bytes, env={...}, stdin=fd) -> (returncode, stdout, stderr), running
    `python -m er_train ARGS` in a subprocess (returncode -9: killed by SIGKILL).

    The subprocesses run one OpenMP thread (as the tests in this process do, so results match
    bit for bit) and keep their bytecode in a session folder: torch's modules then compile once
    per session, not once per subprocess."""
    pyc = tmp_path_factory.mktemp("pycache")

    def run(*args: str, input: bytes | None = None, env: dict | None = None, stdin=None):
        env = env1(pycache=pyc, **(env or {}))
        p = run_tool("er_train", *args, input=input, env=env, stdin=stdin)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    return run


@pytest.fixture
def spawn(tmp_path, tmp_path_factory):
    """spawn(*args, env={...}, name="p") -> (Popen, stdout path, stderr path): `python -m
    er_train ARGS` started in the background (one OpenMP thread, like `cli`), its output going
    to files under tmp_path; every process still alive at the test's end is killed."""
    pyc = tmp_path_factory.getbasetemp() / "pycache-spawn"
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict | None = None, name: str = "p"):
        out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with out.open("wb") as o, err.open("wb") as e:
            p = subprocess.Popen(
                [sys.executable, "-m", "er_train", *map(str, args)],
                stdin=subprocess.DEVNULL,
                stdout=o,
                stderr=e,
                env=env1(pycache=pyc, **(env or {})),
            )
        started.append(p)
        return p, out, err

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture
def cli_here(monkeypatch, capfdbinary):
    """cli_here(*args, stdin=None) -> (exit code, stdout, stderr): `er-train ARGS` through the
    same entry point (er_core.run: error lines, exit codes) but in this process, so no torch
    import per call. stdin: a text file object (default: empty, not a TTY)."""
    from er_train.cli import main

    def run(*args: str, stdin=None):
        monkeypatch.setattr(sys, "argv", ["er-train", *map(str, args)])
        monkeypatch.setattr(sys, "stdin", stdin or io.TextIOWrapper(io.BytesIO(b"")))
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capfdbinary.readouterr()
        return code, out.decode(), err.decode()

    return run


@pytest.fixture
def fail(tmp_path, fast_config, cli_here, check_error):
    """fail(stream, *args, code=1, fragments=(...)) runs er-train on `stream` with fast.toml and
    a fresh runs root, checks the exit code, the two error lines and that the runs root was not
    created; returns (error line, hint line)."""

    def run(stream, *args, code: int = 1, fragments=(), at: bool = True):
        runs = tmp_path / "runs"
        got, out, err = cli_here(stream, "-c", fast_config, "--runs", runs, *args)
        assert got == code, err
        assert out == ""  # nothing passed on: the stream is not valid downstream of a failure
        assert not runs.exists(), "a run folder was created"
        return check_error(err, *fragments, at=at)

    return run


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models on a shared machine: one intra-op thread is much faster than several (no
    oversubscription), and subprocesses get OMP_NUM_THREADS=1 to match."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
