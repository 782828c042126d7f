"""kill -9 at random points (a fixed seed picks them) during prepare, extract, train and report;
the same command run again afterwards ends with the outputs of a run never killed, byte for byte.

Each step's kill points are drawn between 0.3 s and the length of an unbroken run of that step,
so they land in imports, reading, compute, checkpoints and the final writes alike.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from er_testing.cli import env1

KILLS = {"prepare": 4, "extract": 5, "train": 7, "report": 4}  # 20 in all
ROOT = Path(__file__).resolve().parents[2]


def published(root: Path, work: Path) -> dict[str, str]:
    """sha256 of every published file under `root` (hidden names are temporaries and locks),
    with the work folder's own path (which manifests record) written as `<w>`."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            data = p.read_bytes().replace(str(work).encode(), b"<w>")
            out[str(rel)] = hashlib.sha256(data).hexdigest()
    return out


def run_json(root: Path) -> dict:
    """What a finished run recorded, less the wall times (a resumed run took longer)."""
    (path,) = [p for p in root.rglob("run.json") if ".store" not in p.parts]
    m = json.loads(path.read_text())
    for e in m["epochs"]:
        e.pop("seconds")
    return {
        k: m[k] for k in ("id", "best_epoch", "epochs", "dev", "test", "weights", "predictions")
    } | {
        "weights": m["weights"]["sha256"],
        "predictions": {k: v["sha256"] for k, v in m["predictions"].items()},
    }


def untimed(stream: bytes, work: Path) -> bytes:
    """A stream with the work folder's path as `<w>` and wall times (`seconds`) dropped."""

    def drop(x):
        if isinstance(x, dict):
            return {k: drop(v) for k, v in x.items() if k != "seconds"}
        return [drop(v) for v in x] if isinstance(x, list) else x

    lines = stream.replace(str(work).encode(), b"<w>").splitlines()
    return b"\n".join(json.dumps(drop(json.loads(ln)), sort_keys=True).encode() for ln in lines)


def start(cmd: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", "-c", f"exec {cmd}"],
        cwd=cwd,
        env=env1(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(cmd: str, cwd: Path) -> tuple[bytes, float]:
    began = time.monotonic()
    p = start(cmd, cwd)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()[-3000:]
    return out, time.monotonic() - began


def kill_then_finish(
    cmd: str, cwd: Path, kills: int, length: float, rng: random.Random
) -> tuple[bytes, int]:
    killed = 0
    for _ in range(kills):
        p = start(cmd, cwd)
        time.sleep(rng.uniform(0.3, length))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.communicate(timeout=600)
    out, _ = finish(cmd, cwd)
    return out, killed


STEPS = {
    "prepare": "er-data prepare meld --root {data} --out out",
    "extract": "er-features extract {dataset} -m text -e {enc} --batch-size 4 --cache cache --out out",
    "train": "er-train {features} -c {cfg} --set train.epochs=8 --set train.batch_size=8 --runs runs",
    "report": "er-eval report {scored} --out report.html",
}


@pytest.fixture(scope="module")
def inputs(pipeline: Path, tiny_text: Path, tmp_path_factory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("kill-inputs")
    shutil.copytree(pipeline / "runs", work / "runs") if (pipeline / "runs").exists() else None
    names = {
        "data": str(pipeline / "data"),
        "dataset": str(pipeline / "dataset.ndjson"),
        "features": str(pipeline / "features.ndjson"),
        "enc": str(tiny_text),
        "cfg": str(ROOT / "configs" / "train" / "synth.toml"),
    }
    out, _ = finish(STEPS["train"].format(**names) + " | er-eval score", work)
    (work / "scored.ndjson").write_bytes(out)
    return names | {"scored": str(work / "scored.ndjson")}


@pytest.mark.parametrize("step", list(KILLS))
def test_killed_steps_resume_to_identical_outputs(step, inputs, tmp_path):
    rng = random.Random(f"kills-{step}")  # fixed kill points for each step
    cmd = STEPS[step].format(**inputs)
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    ref.mkdir()
    killed.mkdir()
    ref_out, length = finish(cmd, ref)
    out, landed = kill_then_finish(cmd, killed, KILLS[step], length, rng)
    print(f"{step}: {landed} of {KILLS[step]} kills landed before the step finished")
    assert landed >= 1
    got, want = untimed(out, killed), untimed(ref_out, ref)
    if got != want:
        i = next(i for i, (x, y) in enumerate(zip(got, want, strict=False)) if x != y)
        raise AssertionError(
            f"outputs differ at {i}: {got[i - 150 : i + 40]!r} vs {want[i - 150 : i + 40]!r}"
        )
    if step == "train":
        assert run_json(killed) == run_json(ref)
        ref_files, got_files = published(ref / "runs", ref), published(killed / "runs", killed)
        timed = ("run.json", "checkpoint.safetensors", "metrics.csv")  # hold wall times
        for files in (ref_files, got_files):
            for name in [n for n in files if n.endswith(timed)]:
                files.pop(name)
        assert got_files == ref_files
        # metrics.csv: the same epochs, the same numbers, but for the seconds each took
        (a,) = (killed / "runs").rglob("metrics.csv")
        (b,) = (ref / "runs").rglob("metrics.csv")
        assert pl.read_csv(a).drop("seconds").equals(pl.read_csv(b).drop("seconds"))
    else:
        assert published(killed, killed) == published(ref, ref)
