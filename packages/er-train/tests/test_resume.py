"""Kill and resume: a run SIGKILLed mid-training (ER_TRAIN_KILL_AFTER_STEP) leaves a checkpoint
and no run.json; the same command again finishes it, bit for bit as an uninterrupted run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import pytest
from er_core import RunManifest, is_locked, sha256_file
from safetensors import safe_open

# The toy's train split: 128 utterances, batch_size 8 (fast.toml), no context: 16 batches an
# epoch; 3 epochs. Checkpoints every 3 optimizer steps (mid-epoch) and at each epoch's end.
TRAIN_UTTERANCES, BATCHES = 128, 16

# name: (--set options, kill after global step N, (global_step, epoch, step_in_epoch) expected
# in the checkpoint the kill leaves)
SCENARIOS = {
    # epoch 2 (steps 17-32), killed at its 4th step; last checkpoint at step 18
    "mid-epoch": ([], 20, (18, 1, 2)),
    # 2 batches a step: 8 steps an epoch; killed at step 11 (epoch 2's 3rd); checkpoint at 9
    "accumulation": (["train.accumulation=2"], 11, (9, 1, 1)),
    # killed after epoch 1's last step, before its dev pass and end-of-epoch checkpoint
    "epoch-boundary": ([], 16, (15, 0, 15)),
}


def history(m: RunManifest) -> list[tuple]:
    """Each epoch's record without its wall time."""
    return [(e.epoch, e.train_loss, e.lr, e.dev) for e in m.epochs]


def checkpoint_state(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["er.state"])


def run_folders(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("checkpoint.safetensors"))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_killed_run_resumes_to_the_same_result(name, tmp_path, toy, fast_config, cli, train_run):
    assert toy.table.filter(toy.table["split"] == "train").height == TRAIN_UTTERANCES
    sets, kill_at, (step, epoch, in_epoch) = SCENARIOS[name]
    runs = tmp_path / "runs"
    args = [toy.stream, "-c", fast_config, "--runs", runs, "--set", "train.checkpoint_every=3"]
    for s in sets:
        args += ["--set", s]

    code, out, err = cli(*args, env={"ER_TRAIN_KILL_AFTER_STEP": str(kill_at)})
    assert code == -9, err  # SIGKILL: no cleanup, no exit handler
    assert out == ""  # the stream is written only at the end
    (folder,) = run_folders(runs)
    assert not (folder / "run.json").exists() and not (folder / "weights.safetensors").exists()
    # no half files; the lock file stays (an flock: the kill released it, see er_core.locks)
    assert not list(folder.glob("*.tmp")) and [p.name for p in folder.glob(".*")] == [".lock"]
    assert not is_locked(folder)
    state = checkpoint_state(folder / "checkpoint.safetensors")
    assert (state["global_step"], state["epoch"], state["step_in_epoch"]) == (step, epoch, in_epoch)
    assert len(state["history"]) == epoch

    code, out, err = cli(*args)
    assert code == 0, err
    assert f"resuming {folder}" in err and f"epoch {epoch + 1}, step {in_epoch}" in err
    resumed = msgspec.json.decode(out.splitlines()[-1], type=RunManifest)

    whole = train_run(toy.stream, tmp_path / "whole", "train.checkpoint_every=3", *sets)
    assert resumed.id == whole.id
    assert resumed.weights.sha256 == whole.weights.sha256
    assert history(resumed) == history(whole)
    assert (resumed.dev, resumed.test, resumed.best_epoch) == (
        whole.dev,
        whole.test,
        whole.best_epoch,
    )
    assert sha256_file(folder / "weights.safetensors") == whole.weights.sha256


def test_resume_a_moved_run_with_resume_option(
    tmp_path, toy, fast_config, cli, cli_here, train_run, monkeypatch
):
    """Kill a run, move its whole runs root, continue it with --resume FOLDER (no --runs): it
    finishes as an uninterrupted run, and its weights go into the moved root's store."""
    old, new = tmp_path / "old", tmp_path / "new"
    args = [toy.stream, "-c", fast_config, "--set", "train.checkpoint_every=3"]
    code, _, err = cli(*args, "--runs", old, env={"ER_TRAIN_KILL_AFTER_STEP": "7"})
    assert code == -9, err
    (folder,) = run_folders(old)
    shutil.move(old, new)
    moved = new / folder.relative_to(old)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    code, out, err = cli_here(*args, "--resume", moved)
    assert code == 0, err
    resumed = msgspec.json.decode(out.splitlines()[-1], type=RunManifest)
    assert Path(resumed.run_dir) == moved.resolve()
    link = moved / "weights.safetensors"
    assert link.resolve().is_relative_to((new / ".store").resolve())
    assert list(cwd.iterdir()) == []  # nothing written where the command ran

    whole = train_run(toy.stream, tmp_path / "whole", "train.checkpoint_every=3")
    assert resumed.weights.sha256 == whole.weights.sha256 == sha256_file(link)
    assert history(resumed) == history(whole)
