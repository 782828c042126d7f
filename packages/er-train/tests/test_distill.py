"""One-run distillation: a text teacher run guides a T+A+V student and its per-modality branches
in a single run; the teacher predicts the training split only."""

from __future__ import annotations

import pytest
import torch
from er_core import ErError

DISTILL = ("model.branches=true", "distill.dist=1.0", "distill.kl=0.5")


@pytest.fixture(scope="module")
def teacher(toy, train_run, tmp_path_factory):
    """A finished text-only run: (manifest, runs root)."""
    runs = tmp_path_factory.mktemp("teacher")
    return train_run(toy.write(runs / "t.ndjson", "text"), runs), runs


def test_student_trains_with_branches_and_a_teacher(toy, train_run, teacher, tmp_path):
    t, _ = teacher
    m = train_run(toy.stream, tmp_path, *DISTILL, f"distill.teacher={t.run_dir}")
    assert m.status == "complete" and m.modalities == ["text", "audio", "video"]
    # named by its teacher's run id (not its path), in a folder of its own
    assert m.config["distill"]["teacher"] == t.id
    assert "--ce+kd/" in m.run_dir and m.config["model"]["branches"] is True
    assert m.test["emotion/accuracy"] > 0.5  # the toy is learnable: 4 classes, chance 0.25
    # the branches are part of the saved network; they do not change what it predicts
    assert m.params > t.params


def test_the_teacher_sees_training_rows_only(toy, train_run, teacher, tmp_path, monkeypatch):
    """The teacher's network runs once, on the training split, and never on dev or test."""
    import er_train.teacher as teacher_mod

    t, _ = teacher
    seen: list[torch.Tensor] = []
    real = teacher_mod.load_teacher

    def spying(where, data):
        run, model = real(where, data)
        text = data.feats["text"]

        def hook(module, args):
            feats = args[0]["text"]  # (N, d) rows of the text features
            hits = (feats[:, None, :] == text[None, :, :]).all(-1).nonzero()[:, 1]
            seen.append(hits)

        model.register_forward_pre_hook(hook)
        return run, model

    monkeypatch.setattr(teacher_mod, "load_teacher", spying)
    import er_train.plan as train_mod

    monkeypatch.setattr(train_mod, "load_teacher", spying)
    train_run(toy.stream, tmp_path, *DISTILL, f"distill.teacher={t.run_dir}")
    rows = set(torch.cat(seen).tolist())
    ids = toy.table["id"].to_list()
    train_ids = set(toy.split_ids("train"))
    assert rows and {ids[r] for r in rows} == train_ids  # every train row, nothing else


def test_distillation_changes_training_and_no_distillation_is_plain(
    toy, train_run, teacher, tmp_path
):
    t, _ = teacher
    plain = train_run(toy.stream, tmp_path / "a", "model.branches=true")
    taught = train_run(toy.stream, tmp_path / "b", *DISTILL, f"distill.teacher={t.run_dir}")
    assert "--ce/" in plain.run_dir and "distill" not in plain.config
    assert [e.train_loss for e in plain.epochs] != [e.train_loss for e in taught.epochs]


def test_init_from_the_teacher_text_projection(toy, train_run, teacher, tmp_path, monkeypatch):
    import er_train.training as train_mod

    t, _ = teacher
    captured = {}
    real = train_mod.init_text

    def spying(student, teacher_net):
        real(student, teacher_net)
        captured["s"] = {
            k: v.clone() for k, v in student.projection.proj["text"].state_dict().items()
        }
        captured["t"] = teacher_net.projection.proj["text"].state_dict()

    monkeypatch.setattr(train_mod, "init_text", spying)
    train_run(toy.stream, tmp_path, *DISTILL, f"distill.teacher={t.run_dir}", "distill.init=text")
    assert captured["s"].keys() == captured["t"].keys()
    assert all(torch.equal(captured["s"][k], captured["t"][k]) for k in captured["s"])


def test_bad_teachers(toy, train_run, teacher, tmp_path, make_toy):
    t, _ = teacher
    with pytest.raises(ErError, match="no finished teacher run"):
        train_run(toy.stream, tmp_path, f"distill.teacher={tmp_path / 'nowhere'}")
    # a teacher trained on other text features
    other = make_toy(tmp_path / "other", seed=3)
    with pytest.raises(ErError, match="other text features"):
        train_run(other.stream, tmp_path, f"distill.teacher={t.run_dir}")
