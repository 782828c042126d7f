"""Auxiliary objectives in a run: they train, they are part of the run's name and weights, and
their pools and prototypes change on training batches only (never in a dev or test pass)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

OBJECTIVES = ("aux.spcl.weight=0.2", "aux.apcl.weight=0.2", "aux.supcon.weight=0.1")


def test_objectives_train_and_name_the_run(toy, train_run, tmp_path):
    m = train_run(toy.stream, tmp_path, *OBJECTIVES)
    assert "--ce+apcl+spcl+supcon/" in m.run_dir
    assert set(m.config["aux"]) == {"apcl", "spcl", "supcon"}
    assert m.test["emotion/accuracy"] > 0.5  # 4 classes: chance is 0.25
    weights = load_file(m.weights.path)
    assert int(weights["aux.spcl.count"].sum()) > 0  # the pools filled during training
    # plain cross-entropy: another folder, another network
    plain = train_run(toy.stream, tmp_path)
    assert "--ce/" in plain.run_dir and plain.network_hash != m.network_hash


def test_dev_and_test_passes_leave_pools_and_prototypes_untouched(
    toy, train_run, tmp_path, monkeypatch
):
    import er_train.finish as finish_mod
    import er_train.loop as loop_mod
    import er_train.training as train_mod

    real = loop_mod.predict
    checked: list[bool] = []

    def spying(s, *args, **kwargs):
        before = {k: v.clone() for k, v in s.model.named_buffers() if k.startswith("aux.")}
        out = real(s, *args, **kwargs)
        after = dict(s.model.named_buffers())
        checked.append(all(torch.equal(v, after[k]) for k, v in before.items()) and bool(before))
        return out

    for mod in (loop_mod, train_mod, finish_mod):
        monkeypatch.setattr(mod, "predict", spying)
    train_run(toy.stream, tmp_path, *OBJECTIVES)
    # 3 epochs of dev passes, then dev and test once more with the selected weights
    assert len(checked) >= 5 and all(checked)


def test_a_moe_head_trains_with_its_balance_loss(toy, train_run, tmp_path, monkeypatch):
    import er_train.loop as loop_mod

    seen: list[set[str]] = []
    real = loop_mod.forward

    def spying(s, batch, train=False, progress=0.0):
        out = real(s, batch, train, progress)
        if train:
            seen.append(set(out.aux))
        return out

    monkeypatch.setattr(loop_mod, "forward", spying)
    m = train_run(toy.stream, tmp_path, "head.kind=moe", "head.experts=3", "head.dropout=0")
    assert m.config["head"]["kind"] == "moe" and m.test["emotion/accuracy"] > 0.5
    assert seen and all(aux == {"moe_head_balance"} for aux in seen)  # summed into training


def test_resume_refuses_a_checkpoint_with_other_objectives(toy, train_run, tmp_path):
    import pytest
    from er_core import ErError

    m = train_run(toy.stream, tmp_path, "aux.spcl.weight=0.2")
    with pytest.raises(ErError, match="checkpoint's aux differs"):
        train_run(toy.stream, tmp_path / "b", "aux.apcl.weight=0.2", resume=Path(m.run_dir))
