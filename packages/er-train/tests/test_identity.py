"""What names a run: its folder's recipe hash (everything but the seed), the labels that are
no part of it (category, threads), summary.txt, and the warning for dialogues past the
transformer's max_turns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FAST_TRANSFORMER = ("context.kind=transformer", "context.width=8", "context.heads=2")


@pytest.fixture(scope="module")
def base(toy, train_run, tmp_path_factory):
    runs = tmp_path_factory.mktemp("identity")
    return train_run(toy.stream, runs), runs


@pytest.mark.parametrize(
    "override",
    ["train.lr=0.02", "train.epochs=2", "train.decay=linear", "loss.label_smoothing=0.1"],
)
def test_every_recipe_key_changes_the_folder(base, toy, train_run, override):
    m, runs = base
    other = train_run(toy.stream, runs, override)
    assert other.recipe_hash != m.recipe_hash and other.id != m.id
    assert other.network_hash == m.network_hash  # the network is the same
    assert other.run_dir != m.run_dir


def test_labels_do_not_change_the_run(base, toy, train_run):
    """category and threads label a run: same id and recipe hash (the category names another
    folder; the thread count is recorded, the same run found)."""
    m, runs = base
    assert m.config["run"]["threads"] == torch.get_num_threads() >= 1
    before = torch.get_num_threads()
    try:
        again = train_run(toy.stream, runs, "run.threads=2")  # the finished run, found
    finally:
        torch.set_num_threads(before)
    assert again.id == m.id and again.run_dir == m.run_dir
    elsewhere = train_run(toy.stream, runs, "run.category=sweeps")
    assert elsewhere.id == m.id and elsewhere.recipe_hash == m.recipe_hash
    assert "/sweeps/" in elsewhere.run_dir


def test_summary_names_the_encoders_and_recipe(base, toy):
    m, _ = base
    text = (Path(m.run_dir) / "summary.txt").read_text()
    assert text.startswith(f"run       {m.id[:12]}  (recipe {m.recipe_hash[:12]}, seed 0)")
    for modality, encoder in m.encoders.items():
        assert f"{modality:<9} {encoder}" in text
    assert f"train.lr = {m.config['train']['lr']}" in text
    assert "network   fusion concat, context none" in text


def test_long_dialogues_past_max_turns_warn(toy, train_run, tmp_path, capsys):
    train_run(toy.stream, tmp_path, *FAST_TRANSFORMER, "context.max_turns=2", "train.epochs=1")
    err = capsys.readouterr().err
    assert "dialogue(s) have more than context.max_turns = 2 turns" in err
    assert "context.positions=sinusoidal" in err


def test_dialogues_within_max_turns_do_not_warn(toy, train_run, tmp_path, capsys):
    train_run(toy.stream, tmp_path, *FAST_TRANSFORMER, "train.epochs=1")
    assert "max_turns" not in capsys.readouterr().err


def test_fine_tuning_a_dataset_without_text_is_refused(toy):
    """A features-only dataset (a table mapped without columns.text) has no text to encode."""
    import dataclasses

    import msgspec
    from er_core import DatasetManifest, ErError, read_stream
    from er_train.data import load_data

    envs = read_stream([str(toy.stream)])
    for i, env in enumerate(envs):
        if isinstance(env.message, DatasetManifest):
            ds = msgspec.structs.replace(env.message, modalities=["audio", "video"])
            envs[i] = dataclasses.replace(env, message=ds)
    with pytest.raises(ErError) as e:
        load_data(envs, [], "", [], tuned="text")
    assert "has no text" in e.value.what and "run.method F" in e.value.hint
