"""Ordinary faults read as what they are: a full disk, a read-only folder, a closed stdout,
Ctrl-C. Each is one `error:` line naming the path and a real hint, never "a bug in er", never a
traceback, and never a half-written output that a later step could read."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from er_testing.cli import env1, sh


@contextmanager
def small_mount(where: Path, size: str = "256k", read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of `size` at `where` (root only); skips the test where mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], check=False, capture_output=True
    )
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def one_error(stderr: str) -> list[str]:
    lines = [ln for ln in stderr.splitlines() if not ln.startswith(("warning:", "waiting"))]
    lines = [ln for ln in lines if ln.startswith(("error:", "hint:"))] or lines
    assert "Traceback" not in stderr and "bug in er" not in stderr, stderr
    assert [ln.split(":")[0] for ln in lines] == ["error", "hint"], stderr
    return lines


def test_prepare_onto_a_full_disk(pipeline: Path, tmp_path: Path) -> None:
    with small_mount(tmp_path / "full", "4k") as full:
        r = sh(f"er-data prepare meld --root data --out {full}/out", pipeline)
        assert r.returncode == 1
        err = one_error(r.stderr)
        assert err[0].startswith("error: no space left on the device, at " + str(full)), err
        assert not [p for p in full.rglob("*") if p.is_file() and not p.name.startswith(".")]


def test_extract_into_a_full_cache(pipeline: Path, tiny_text: Path, tmp_path: Path) -> None:
    with small_mount(tmp_path / "full", "4k") as full:
        r = sh(
            f"er-features extract dataset.ndjson -m text -e {tiny_text} --cache {full}/cache "
            f"--out {tmp_path}/out",
            pipeline,
        )
        assert r.returncode == 1
        err = one_error(r.stderr)
        assert "no space left on the device" in err[0], err
        shards = [p for p in full.rglob("*.safetensors") if not p.name.startswith(".")]
        assert shards == []


def test_read_only_output_folder(pipeline: Path, tmp_path: Path) -> None:
    with small_mount(tmp_path / "ro", "64k", read_only=True) as ro:
        r = sh(f"er-data prepare meld --root data --out {ro}/out", pipeline)
        assert r.returncode == 1
        err = one_error(r.stderr)
        assert err[0].startswith("error: read-only file system, at " + str(ro)), err


@pytest.mark.parametrize(
    "cmd",
    [
        "er-data stats dataset.ndjson",
        "er-data prepare meld --root data --out out",
        "er-features cache ls --cache cache",
    ],
)
def test_closed_stdout(pipeline: Path, cmd: str) -> None:
    r = sh(f"{cmd} >&-", pipeline)
    assert r.returncode == 1
    assert one_error(r.stderr)[0] == "error: stdout is closed, at <stdout>"


@pytest.mark.parametrize(
    "cmd", ["er-data prepare meld --root data --out out", "er-data stats dataset.ndjson"]
)
def test_stdout_on_a_full_device(pipeline: Path, cmd: str) -> None:
    r = sh(f"{cmd} > /dev/full", pipeline)
    assert r.returncode == 1
    assert one_error(r.stderr)[0] == "error: no space left on the device, at <stdout>"


def test_ctrl_c_during_extract_then_rerun(pipeline: Path, tiny_text: Path, tmp_path: Path) -> None:
    """SIGINT mid-extract: `error: interrupted`, exit 130, and a rerun ends as an unbroken run."""
    cmd = [
        "er-features", "extract", "dataset.ndjson", "-m", "text", "-e", str(tiny_text),
        "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--batch-size", "1",
    ]  # fmt: skip
    p = subprocess.Popen(
        cmd, cwd=pipeline, env=env1(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(4.0)  # past the imports, into the batches
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.skip("the extract finished before the signal; the machine is fast")
    assert p.returncode == 130, err
    assert one_error(err)[0] == "error: interrupted"
    assert out == ""
    again = subprocess.run(cmd, cwd=pipeline, env=env1(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    ref = json.loads((pipeline / "features.ndjson").read_text().splitlines()[-1])
    got = json.loads(again.stdout.splitlines()[-1])
    assert got["kind"] == "features" and got["id"] == ref["id"]  # the same content id
