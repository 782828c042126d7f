"""Same seed, same everything: bit-identical weights and identical metrics on the CPU, whatever
the runs root; another seed gives other weights."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors import safe_open

CASES = {
    "none": [],
    "gru": ["context.kind=gru", "context.hidden=16"],
    "transformer": ["context.kind=transformer", "context.width=16", "context.heads=2"],
    "bf16": ["train.precision=bf16"],
    "bf16-gru": ["train.precision=bf16", "context.kind=gru", "context.hidden=16"],
}


def predictions(m, split: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with safe_open(m.predictions[split].path, framework="numpy") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())  # noqa: SIM118


def history(m) -> list[tuple]:
    """Each epoch's record without its wall time."""
    return [(e.epoch, e.train_loss, e.lr, e.dev) for e in m.epochs]


@pytest.mark.parametrize("case", list(CASES))
def test_same_seed_same_weights(case, tmp_path, toy, train_run):
    sets = CASES[case]
    a = train_run(toy.stream, tmp_path / "a", *sets, "seed=3")
    b = train_run(toy.stream, tmp_path / "b", *sets, "seed=3")
    assert a.run_dir != b.run_dir and a.id == b.id
    assert a.weights.sha256 == b.weights.sha256
    assert history(a) == history(b)
    assert (a.dev, a.test, a.best_epoch) == (b.dev, b.test, b.best_epoch)
    # prediction files are identical byte for byte (one metadata key, canonical JSON)
    assert {k: v.sha256 for k, v in a.predictions.items()} == {
        k: v.sha256 for k, v in b.predictions.items()
    }
    for split in ("dev", "test"):
        (ta, ma), (tb, mb) = predictions(a, split), predictions(b, split)
        assert ma == mb and ta.keys() == tb.keys()
        assert all(np.array_equal(ta[k], tb[k]) for k in ta)
    if case.startswith("bf16"):
        assert a.config["train"]["precision"] == "bf16"


@pytest.mark.parametrize("case", ["none", "gru"])
def test_another_seed_other_weights(case, tmp_path, toy, train_run):
    sets = CASES[case]
    a = train_run(toy.stream, tmp_path / "a", *sets, "seed=3")
    c = train_run(toy.stream, tmp_path / "c", *sets, "seed=4")
    assert a.network_hash == c.network_hash and a.id != c.id
    assert a.run_dir.endswith("--3") and c.run_dir.endswith("--4")
    assert a.weights.sha256 != c.weights.sha256
    assert history(a) != history(c)


def test_bf16_really_runs_in_bf16(tmp_path, toy, train_run):
    """The bf16 case above is not fp32 under another name: its weights differ from fp32's."""
    a = train_run(toy.stream, tmp_path / "a", "seed=3")
    b = train_run(toy.stream, tmp_path / "b", "seed=3", "train.precision=bf16")
    assert a.network_hash == b.network_hash and a.id != b.id
    assert a.weights.sha256 != b.weights.sha256
    assert b.test["emotion/accuracy"] > 0.6  # and it still learns


def test_checkpointing_and_eval_batches_change_nothing(tmp_path, toy, train_run):
    """Saving checkpoints mid-epoch (RNG state read, files written) and the eval batch size
    (dialogues padded differently) are no part of the maths: same weights, same predictions."""
    sets = ["context.kind=gru", "context.hidden=16", "seed=5"]
    a = train_run(toy.stream, tmp_path / "a", *sets)
    b = train_run(
        toy.stream, tmp_path / "b", *sets, "train.checkpoint_every=1", "train.eval_batch_size=2"
    )
    assert a.id != b.id  # other recipe options, so another run
    assert a.weights.sha256 == b.weights.sha256
    assert [e.train_loss for e in a.epochs] == [e.train_loss for e in b.epochs]
    for split in ("dev", "test"):
        (ta, ma), (tb, mb) = predictions(a, split), predictions(b, split)
        assert ma == mb  # same ids in the same order
        assert np.allclose(ta["emotion.probs"], tb["emotion.probs"], atol=1e-6)
