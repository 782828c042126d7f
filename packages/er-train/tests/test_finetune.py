"""Runs that train the text encoder (run.method L and T) with a tiny random BERT: what they save,
that a LoRA run's weights file alone reloads onto the base encoder and reproduces its test
predictions, and the refusals."""

from __future__ import annotations

import json

import pytest
import torch
from er_core import ErError
from safetensors import safe_open
from safetensors.torch import load_file


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    from er_features.testing import tiny_text_folder

    return tiny_text_folder(tmp_path_factory.mktemp("bert"))


def _sets(bert, method: str) -> tuple[str, ...]:
    return (f"run.method={method}", f"finetune.encoder={bert}", "finetune.lr=0.001")


@pytest.fixture(scope="module")
def lora_run(toy, train_run, bert, tmp_path_factory):
    runs = tmp_path_factory.mktemp("lora")
    return train_run(toy.write(runs / "s.ndjson", "audio"), runs, *_sets(bert, "L")), runs


def test_lora_run_saves_the_adapters_only(lora_run, bert):
    m, _ = lora_run
    assert "/L--b8--ce/T+A-concat/" in m.run_dir and m.modalities == ["text", "audio"]
    assert m.encoders["text"] == str(bert) and len(m.encoder_keys["text"]) == 64
    assert m.config["finetune"]["lora"]["r"] == 8 and m.dims["text"] == 32
    tower = {k for k in load_file(m.weights.path) if k.startswith("tower.")}
    assert tower and all("lora_" in k for k in tower)  # no base encoder weight is saved
    with safe_open(m.weights.path, framework="pt") as f:
        assert not any("embeddings" in k for k in f.keys())  # noqa: SIM118


def test_lora_weights_reload_onto_the_base_encoder(lora_run, toy):
    """A fresh base encoder + the saved adapters + the saved network predict the run's test
    split exactly as the run did."""
    from er_core import DatasetManifest, FeatureManifest, aligned_features, read_stream
    from er_models import build_model, parse_network
    from er_train.checkpoint import load_weights
    from er_train.tower import FinetuneSection, build_tower
    from msgspec import convert

    m, runs = lora_run
    stream = read_stream([str(runs / "s.ndjson")])
    ds = next(e.message for e in stream if isinstance(e.message, DatasetManifest))
    audio = next(e.message for e in stream if isinstance(e.message, FeatureManifest))
    ids = toy.table["id"].to_list()
    tower = build_tower(convert(m.config["finetune"], FinetuneSection), "L", ds, ids)
    sections = {k: m.config[k] for k in ("model", "fusion", "context", "head")}
    model = build_model(parse_network(sections, m.dims, {"emotion": 4}))
    load_weights(m.weights.path, model, tower)
    model.eval(), tower.eval()
    with safe_open(m.predictions["test"].path, framework="pt") as f:
        want = f.get_tensor("emotion.probs")
        test_ids = json.loads(f.metadata()["er.predictions"])["ids"]
    rows = torch.tensor([ids.index(i) for i in test_ids])
    n = len(rows)
    with torch.no_grad():
        out = model(
            {
                "text": tower.features(rows),
                "audio": torch.from_numpy(aligned_features(audio, ds, ids).features)[rows],
            },
            torch.stack([tower.present[rows], torch.ones(n, dtype=torch.bool)], 1),
            torch.arange(n).view(n, 1),
            torch.zeros(n, 1, dtype=torch.long),
        )
    assert torch.allclose(out.outputs["emotion"].softmax(-1), want, atol=1e-6)


def test_full_fine_tuning_saves_the_encoder(toy, train_run, bert, tmp_path):
    m = train_run(toy.write(tmp_path / "s.ndjson"), tmp_path, *_sets(bert, "T"), "modalities=T")
    assert "/T--b8--ce/T-concat/" in m.run_dir and m.modalities == ["text"]
    tower = {k for k in load_file(m.weights.path) if k.startswith("tower.")}
    assert any("embeddings" in k for k in tower) and not any("lora_" in k for k in tower)


def test_refusals(toy, train_run, bert, tmp_path):
    with pytest.raises(ErError, match="leaves text out"):
        train_run(toy.stream, tmp_path, *_sets(bert, "L"), "modalities=A")
    with pytest.raises(ErError, match=r"run\.method"):
        train_run(toy.stream, tmp_path, "run.method=X")


def test_long_epochs_report_progress(toy, train_run, bert, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("ER_PROGRESS_EVERY", "0")  # a line after every optimizer step
    train_run(toy.write(tmp_path / "s.ndjson"), tmp_path, *_sets(bert, "L"), progress=True)
    lines = capfd.readouterr().err.splitlines()
    inside = [ln for ln in lines if ln.startswith("  epoch 1: batch ")]
    assert len(inside) >= 2 and "train loss" in inside[0]
    assert any(ln.startswith("epoch 1/3") for ln in lines)  # the epoch's own line still comes
