"""er_core.run: the protocol's exit codes and stderr lines, for a real Typer app in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

APP = textwrap.dedent(
    """
    import sys
    import typer
    from er_core import ErError, UsageError, run, warn

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    def ok() -> None:
        warn("careful")
        print("done")

    @app.command()
    def fail() -> None:
        raise ErError("bad label 'x'", at="train.csv:row 3", hint="use a known label")

    @app.command()
    def usage() -> None:
        raise UsageError("no input", hint="pipe something in")

    @app.command()
    def crash() -> None:
        raise RuntimeError("boom\\nsecond line of a long message")

    @app.command()
    def many(binary: bool = False) -> None:
        for i in range(200_000):
            if binary:
                sys.stdout.buffer.write(b'{"kind":"x","i":%d}\\n' % i)
            else:
                print(f"line {i}")

    @app.command()
    def nospace(path: str) -> None:
        with open(path, "wb") as f:
            f.write(b"x" * 4096)
            f.flush()
            f.write(b"x" * (1 << 24))
            f.flush()

    @app.command()
    def readonly(folder: str) -> None:
        with open(folder + "/out.json", "w") as f:
            f.write("{}")

    @app.command()
    def emit(n: int = typer.Option(1, min=1)) -> None:
        from er_core import write_stream
        from er_core.messages import DatasetManifest, FileRef

        msg = DatasetManifest(dataset="x", task="t", table=FileRef(path="t", sha256="0"))
        write_stream([], [msg] * n)

    @app.command()
    def wait() -> None:
        import time

        print("ready", file=sys.stderr, flush=True)
        time.sleep(60)

    @app.command()
    def optional() -> None:
        sys.modules["cv2"] = None  # as if opencv were not installed
        import cv2  # noqa: F401

    run(app, prog_name="er-data")
    """
)


@pytest.fixture(scope="module")
def app_script(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("app") / "tiny.py"
    p.write_text(APP)
    return p


def run_app(script: Path, *args: str, debug: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ER_DEBUG"}
    if debug:
        env["ER_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_success(app_script):
    r = run_app(app_script, "ok")
    assert r.returncode == 0
    assert r.stdout == "done\n"
    assert r.stderr == "warning: careful\n"


def test_er_error_is_two_lines_and_exit_1(app_script):
    r = run_app(app_script, "fail")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == "error: bad label 'x', at train.csv:row 3\nhint: use a known label\n"


def test_usage_error_exits_2(app_script):
    r = run_app(app_script, "usage")
    assert r.returncode == 2
    assert r.stderr == "error: no input\nhint: pipe something in\n"


def test_missing_optional_module_names_the_extra(app_script):
    r = run_app(app_script, "optional")
    assert r.returncode == 1
    assert r.stderr == (
        "error: video and face work needs opencv-python-headless, which is not installed\n"
        "hint: pip install 'er-data[media]'\n"
    )


def test_typer_usage_errors_exit_2(app_script):
    r = run_app(app_script, "no-such-command")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr


def test_unexpected_exception_is_one_line_without_traceback(app_script):
    r = run_app(app_script, "crash")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines == [
        "error: RuntimeError: boom",
        lines[1],
    ], r.stderr
    assert lines[1].startswith("hint: ") and "ER_DEBUG=1" in lines[1]
    assert "Traceback" not in r.stderr


def test_tracebacks_only_with_er_debug(app_script):
    r = run_app(app_script, "crash", debug=True)
    assert r.returncode == 1
    assert "Traceback" in r.stderr and "RuntimeError: boom" in r.stderr
    r = run_app(app_script, "fail", debug=True)
    assert r.returncode == 1
    assert "Traceback" in r.stderr and "ErError" in r.stderr


def first_line_of(cmd: list[str], env: dict[str, str] | None = None) -> tuple[bytes, str, int]:
    """`cmd | head -1`: the reader takes one line and closes its end of the pipe."""
    writer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.readline())"],
        stdin=writer.stdout,
        stdout=subprocess.PIPE,
    )
    assert writer.stdout is not None
    writer.stdout.close()  # only the reader holds the pipe now
    head, _ = reader.communicate(timeout=60)
    _, err = writer.communicate(timeout=60)
    return head, err.decode(), writer.returncode


@pytest.mark.parametrize("binary", [False, True])
def test_closed_pipe_is_quiet(app_script, binary):
    args = ["many", "--binary"] if binary else ["many"]
    head, err, _ = first_line_of([sys.executable, str(app_script), *args])
    assert head == (b'{"kind":"x","i":0}\n' if binary else b"line 0\n")
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert "Exception ignored" not in err
    assert err == ""


def test_typer_usage_error_is_one_error_line_and_a_hint(app_script):
    r = run_app(app_script, "emit", "--n", "0")
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("error: ") and "--n" in lines[0]
    assert lines[1] == "hint: see `er-data emit --help`"


def test_full_disk_is_one_line(app_script, tmp_path):
    full = Path("/dev/full")
    if not full.exists():
        pytest.skip("no /dev/full")
    r = run_app(app_script, "nospace", str(full))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "error: no space left on the device",
        "hint: free some space, or write to another disk",
    ]


def test_stdout_on_a_full_device(app_script):
    with open("/dev/full", "wb") as full:
        r = subprocess.run(
            [sys.executable, str(app_script), "emit", "--n", "3"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == "error: no space left on the device, at <stdout>"
    assert "Traceback" not in r.stderr and "bug in er" not in r.stderr


def test_closed_stdout_is_an_error_not_a_traceback(app_script):
    r = subprocess.run(
        [sys.executable, str(app_script), "emit"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == "error: stdout is closed, at <stdout>"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_read_only_folder_names_the_path(app_script, tmp_path):
    tmp_path.chmod(0o555)
    try:
        r = run_app(app_script, "readonly", str(tmp_path))
    finally:
        tmp_path.chmod(0o755)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == f"error: permission denied, at {tmp_path}/out.json"


def test_sigint_says_interrupted_and_exits_130(app_script):
    import signal

    p = subprocess.Popen(
        [sys.executable, str(app_script), "wait"], stderr=subprocess.PIPE, text=True
    )
    assert p.stderr is not None
    assert p.stderr.readline() == "ready\n"
    p.send_signal(signal.SIGINT)
    err = p.stderr.read()
    assert p.wait(timeout=60) == 130
    assert err.splitlines()[0] == "error: interrupted"
    assert err.splitlines()[1].startswith("hint: rerun the same command")
