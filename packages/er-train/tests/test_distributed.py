"""Data-parallel training under torchrun (gloo on the CPU): 2 processes train what 1 does.

The dataset is the conftest toy with 31 dialogues: 21 train, 5 dev, 5 test. With a GRU context
model a batch is `batch_size` dialogues; batch_size 5 and accumulation 2 give 5 batches an epoch
(5, 5, 5, 5, 1 dialogues), in optimizer steps of 2, 2 and 1 batches: the ranks' shares are
uneven (3 and 2 dialogues), the last batch leaves rank 1 an empty share, and every step but the
last of an epoch runs a micro-batch under DDP's no_sync().
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest
import torch
from er_core import RunManifest

# every dropout of this network at 0 (model, GRU context, head; concat fusion has none), so the
# only difference between 1 and 2 processes is the order of floating-point sums
NETWORK = [
    "context.kind=gru",
    "context.dropout=0",
    "model.dropout=0",
    "head.dropout=0",
    "train.batch_size=5",
    "train.accumulation=2",
    "train.epochs=4",
    "train.checkpoint_every=1",  # mid-epoch checkpoints, for the resume test (same id for all)
]
METRICS = ("emotion/accuracy", "emotion/weighted_f1", "emotion/macro_f1")
TORCHRUN = Path(sys.executable).parent / "torchrun"


@pytest.fixture(scope="module")
def toy31(make_toy, tmp_path_factory):
    toy = make_toy(tmp_path_factory.mktemp("toy31"), n_dialogues=31)
    assert toy.table.filter(toy.table["split"] == "train")["dialogue"].n_unique() == 21
    return toy


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """The subprocesses' environment: one OpenMP thread, bytecode in a module folder, and no
    torchrun variables inherited from whoever runs the tests."""
    drop = {"PYTHONDONTWRITEBYTECODE", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"}
    base = {k: v for k, v in os.environ.items() if k not in drop}
    pyc = tmp_path_factory.mktemp("pycache")
    return base | {"OMP_NUM_THREADS": "1", "PYTHONPYCACHEPREFIX": str(pyc)}


def torchrun(env: dict, *args, extra_env: dict | None = None, launcher=("-m", "er_train")):
    """`torchrun --standalone --nproc-per-node 2 -m er_train ARGS` -> (code, stdout, stderr)."""
    cmd = [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", *launcher, *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, timeout=300, env=env | (extra_env or {}))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def args(toy, fast_config, runs: Path, *sets: str) -> list:
    out = [toy.stream, "-c", fast_config, "--runs", runs, "--quiet"]
    for s in [*NETWORK, *sets]:
        out += ["--set", s]
    return out


def manifest_of(stdout: str) -> RunManifest:
    return msgspec.json.decode(stdout.splitlines()[-1], type=RunManifest)


def folders(root: Path) -> list[Path]:
    return sorted(p.parent.relative_to(root) for p in root.rglob("run.json"))


def run_files(root: Path) -> set[str]:
    """Every path under `root` but the store's (its names are the weights' hashes)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if ".store" not in p.parts}


@pytest.fixture(scope="module")
def one_and_two(toy31, fast_config, cli, env, tmp_path_factory):
    """The same run on 1 process (plain er-train) and on 2 (torchrun): ((code, out, err),
    root) for each."""
    root = tmp_path_factory.mktemp("dist")
    one = cli(*args(toy31, fast_config, root / "one"))
    two = torchrun(env, *args(toy31, fast_config, root / "two"))
    return (one, root / "one"), (two, root / "two")


def test_two_processes_train_what_one_does(one_and_two, toy31):
    """Tolerances. The two runs differ only in how float32 sums are split (each rank's share
    of the batch's mean and gradient, then gloo's sum of the two), which moves a loss by float32
    rounding: measured here, train losses differ by at most 7e-7 relative, the dev loss by 6e-7,
    output probabilities by 9e-7 absolute. Train losses and dev loss: rel 1e-4, 100 times that
    (other CPUs and BLAS builds round differently), while any real slip (a batch missed or seen
    twice, a wrong scale N·n_r/n, a rank's gradient dropped) moves them by far more: weighting
    the ranks' means equally instead of by n_r/n alone moves the train loss by 60%. Dev and test
    metrics: 1e-9 absolute, i.e. the same predictions: outputs ~1e-6 apart flip an argmax only at
    a near tie, which none of these 65 dev/test utterances is (one flipped utterance would move
    accuracy by > 0.01)."""
    ((code1, out1, err1), root1), ((code2, out2, err2), root2) = one_and_two
    assert code1 == 0, err1
    assert code2 == 0, err2
    upstream = toy31.stream.read_bytes().splitlines()
    lines = out2.encode().splitlines()
    assert lines[:-1] == upstream  # the stream passed through once, by rank 0 only
    kinds = [json.loads(x)["kind"] for x in lines]
    assert kinds == ["dataset", "features", "features", "features", "run"]

    m1, m2 = manifest_of(out1), manifest_of(out2)
    assert m1.device == "cpu" and m2.device == "cpu x2"
    # one experiment whatever the number of processes: same id, same folder, same files
    assert m2.id == m1.id and m2.network_hash == m1.network_hash
    assert folders(root2) == folders(root1) and len(folders(root2)) == 1
    assert run_files(root2) == run_files(root1)
    assert len([p for p in (root2 / ".store").rglob("*") if p.is_file()]) == 1
    assert Path(m2.run_dir) == (root2 / folders(root2)[0]).resolve()
    assert msgspec.json.decode((Path(m2.run_dir) / "run.json").read_bytes(), type=RunManifest) == m2

    assert [e.epoch for e in m2.epochs] == [1, 2, 3, 4]
    loss1 = np.array([e.train_loss for e in m1.epochs])
    loss2 = np.array([e.train_loss for e in m2.epochs])
    np.testing.assert_allclose(loss2, loss1, rtol=1e-4, atol=0)
    assert loss1[-1] < loss1[0]  # it learned: the comparison is not between two constants
    assert [e.lr for e in m2.epochs] == [e.lr for e in m1.epochs]
    for e1, e2 in zip(m1.epochs, m2.epochs, strict=True):
        for k in METRICS:
            assert e2.dev[k] == pytest.approx(e1.dev[k], abs=1e-9), (e1.epoch, k)
        assert e2.dev["emotion/loss"] == pytest.approx(e1.dev["emotion/loss"], rel=1e-4)
    assert m2.best_epoch == m1.best_epoch
    for k in METRICS:
        assert m2.dev[k] == pytest.approx(m1.dev[k], abs=1e-9), k
        assert m2.test[k] == pytest.approx(m1.test[k], abs=1e-9), k
    # the predictions rank 0 wrote hold every dev/test row once, in the 1-process order
    from safetensors.torch import load_file

    for split in ("dev", "test"):
        p1 = load_file(m1.predictions[split].path)
        p2 = load_file(m2.predictions[split].path)
        assert set(p2) == set(p1)
        for k in p1:
            if p1[k].is_floating_point():
                torch.testing.assert_close(p2[k], p1[k], rtol=1e-4, atol=1e-5)
            else:
                assert torch.equal(p2[k], p1[k]), k


def test_a_killed_two_process_run_resumes(one_and_two, toy31, fast_config, env, tmp_path):
    """Both ranks SIGKILLed after global step 4 (epoch 2's 2nd step; a checkpoint at every
    step), then the same command again, as the console script this time: it resumes from rank
    0's checkpoint and ends bit for bit as the uninterrupted 2-process run (each rank's RNG is
    reseeded per step, so nothing depends on where the run stopped)."""
    (_, ((code, out, err), _)) = one_and_two
    assert code == 0, err
    whole = manifest_of(out)
    runs = tmp_path / "runs"
    a = args(toy31, fast_config, runs)
    code, out, err = torchrun(env, *a, extra_env={"ER_TRAIN_KILL_AFTER_STEP": "4"})
    assert code != 0 and out == "", err
    (folder,) = sorted(p.parent for p in runs.rglob("checkpoint.safetensors"))
    assert not (folder / "run.json").exists()

    launcher = ("--no-python", str(TORCHRUN.parent / "er-train"))
    code, out, err = torchrun(env, *a, launcher=launcher)
    assert code == 0, err
    assert f"resuming {folder}" in err
    m = manifest_of(out)
    assert m.id == whole.id and m.weights.sha256 == whole.weights.sha256
    strip = [(e.epoch, e.train_loss, e.lr, e.dev) for e in m.epochs]
    assert strip == [(e.epoch, e.train_loss, e.lr, e.dev) for e in whole.epochs]
    assert (m.dev, m.test, m.best_epoch) == (whole.dev, whole.test, whole.best_epoch)


# --- the pieces, in this process ----------------------------------------------------------------


def test_shares_cut_each_global_batch_by_groups():
    """Rank r of N gets groups r::N of every global batch, weighted by its share of the
    batch's utterances; an empty share is the batch's first group at weight 0. Checked against
    plain loops over the groups."""
    from er_models.layout import Groups
    from er_train.distributed import World, shares

    lengths = [3, 1, 4, 2, 5, 2, 1]
    starts = [sum(lengths[:g]) for g in range(len(lengths))]
    table_rows = np.random.default_rng(0).permutation(sum(lengths))  # arbitrary table rows
    split = Groups(table_rows, np.array(starts), np.array(lengths))
    speakers = torch.zeros(sum(lengths), dtype=torch.long)
    order, batch_size = np.array([6, 2, 0, 5, 1, 3, 4]), 3  # batches: [6 2 0] [5 1 3] [4]

    def rows_of(groups) -> list[int]:
        out = []
        for g in groups:
            out += [int(x) for x in table_rows[starts[g] : starts[g] + lengths[g]]]
        return out

    batched = [order[b : b + batch_size] for b in range(0, order.size, batch_size)]
    for size in (1, 2, 3):
        for rank in range(size):
            got = list(shares(split, batched, speakers, 4, w=World(rank, size)))
            assert len(got) == 3
            for b, share in enumerate(got):
                batch = [int(g) for g in order[b * batch_size : (b + 1) * batch_size]]
                n = sum(lengths[g] for g in batch)
                mine = [g for i, g in enumerate(batch) if i % size == rank]
                if mine:
                    assert share.batch.rows.tolist() == rows_of(mine)
                    assert share.weight == pytest.approx(sum(lengths[g] for g in mine) / n)
                else:  # the last batch, [4], for ranks 1 and 2
                    assert (b, rank > 0) == (2, True)
                    assert share.batch.rows.tolist() == rows_of(batch[:1]) and share.weight == 0
            # skipping batches (a resumed epoch) gives the same tail
            tail = list(shares(split, batched, speakers, 4, skip=1, w=World(rank, size)))
            assert [s.batch.rows.tolist() for s in tail] == [s.batch.rows.tolist() for s in got[1:]]
        # the shares of one batch, over the ranks, hold its rows once and weigh 1 in all
        per_rank = [
            list(shares(split, batched, speakers, 4, w=World(r, size))) for r in range(size)
        ]
        for b in range(3):
            real = [s[b] for s in per_rank if s[b].weight > 0]
            assert sorted(x for s in real for x in s.batch.rows.tolist()) == sorted(
                rows_of(order[b * batch_size : (b + 1) * batch_size])
            )
            assert sum(s.weight for s in real) == pytest.approx(1.0)


def test_eval_blocks_cover_the_groups_in_order():
    from er_train.distributed import World, block

    for groups in range(8):
        for size in (1, 2, 3, 4):
            spans = [block(groups, World(r, size)) for r in range(size)]
            covered = [g for a, b in spans for g in range(a, b)]
            assert covered == list(range(groups))  # rank order = row order
            widths = [b - a for a, b in spans]
            assert max(widths) - min(widths) <= 1


def test_one_process_is_untouched(monkeypatch):
    """Without torchrun's variables (or WORLD_SIZE=1) nothing is launched and the device is
    the one asked for."""
    from er_train import distributed

    for value in (None, "1"):
        if value is None:
            monkeypatch.delenv("WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("WORLD_SIZE", value)
        with distributed.launch("cpu") as here:
            assert here == "cpu" and not distributed.active()
            assert distributed.world() == distributed.World()
            assert distributed.device_label("cpu") == "cpu"
            x = torch.arange(3)
            assert distributed.gather_rows(x) is x and distributed.sum_float(2.5) == 2.5


@pytest.fixture(scope="module")
def bert_no_dropout(tmp_path_factory) -> Path:
    """er-features' tiny random BERT with its dropout at 0 (its config says 0.1)."""
    from er_features.testing import tiny_text_folder

    folder = Path(tiny_text_folder(tmp_path_factory.mktemp("bert")))
    config = json.loads((folder / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_fine_tuned_tower_trains_alike_on_two_processes(
    toy31, bert_no_dropout, train_run, fast_config, env, tmp_path
):
    """run.method T: the text encoder trains inside the step, outside the DDP wrapper, so its
    gradients are averaged by er-train itself (without that the ranks' encoders drift apart
    and the train losses move by ~2e-2 relative). Same tolerances as above (measured: 5e-8)."""
    stream = toy31.write(tmp_path / "audio.ndjson", "audio")  # text comes from the tower
    sets = [
        *NETWORK,
        "run.method=T",
        f"finetune.encoder={bert_no_dropout}",
        "finetune.lr=0.001",
        "train.epochs=3",
    ]
    one = train_run(stream, tmp_path / "one", *sets)
    a = [stream, "-c", fast_config, "--runs", tmp_path / "two", "--quiet"]
    for s in sets:
        a += ["--set", s]
    code, out, err = torchrun(env, *a)
    assert code == 0, err
    two = manifest_of(out)
    assert two.id == one.id and two.device == "cpu x2" and two.modalities == ["text", "audio"]
    np.testing.assert_allclose(
        [e.train_loss for e in two.epochs], [e.train_loss for e in one.epochs], rtol=1e-4, atol=0
    )
    for k in METRICS:
        assert two.dev[k] == pytest.approx(one.dev[k], abs=1e-9), k
        assert two.test[k] == pytest.approx(one.test[k], abs=1e-9), k


def test_a_diverging_run_stops_every_rank(tmp_path, toy31, fast_config, env):
    """The loss check sits on the loss summed over the ranks: both ranks stop at the same step
    (no rank left waiting in a collective), rank 0 marks the folder failed, exit 1."""
    runs = tmp_path / "runs"
    code, out, err = torchrun(
        env, *args(toy31, fast_config, runs, "train.lr=1e6", "train.grad_clip=0")
    )
    assert code != 0 and out == ""
    lines = [ln for ln in err.splitlines() if ln.startswith("error: training diverged")]
    assert len(lines) == 2, err  # one line from each rank, the same one
    assert lines[0] == lines[1] and "the loss is nan at epoch " in lines[0]
    (failed,) = runs.rglob("failed.json")
    assert lines[0].endswith(f", at {failed.parent}")
    assert not list(runs.rglob("run.json"))
