"""`load_run`: a run folder back as its network with checked weights.

Run folders are written here the way er-train writes them (run.json with the resolved config,
network hash, classes and a weights file named by sha256, prediction files with the classes in
their metadata), from a network built and randomised in the test, so er-models is tested without
er-train. The loaded model must compute exactly what the saved one did.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import pytest
import torch
from er_core import ErError, FileRef, RunManifest, canonical_json, sha256_file, write_tensors
from er_models import LoadedRun, build_model, load_run, parse_network
from safetensors.torch import save_file

DIMS = {"text": 12, "audio": 6}
CLASSES = {"emotion": ["neutral", "happy", "sad"], "arousal": []}
CONFIG = {
    "model": {"width": 16, "dropout": 0.1},
    "fusion": {"kind": "attention", "heads": 2},
    "context": {"kind": "gru", "hidden": 8, "speaker_dim": 4},
    "head": {"kind": "multi-task"},
    "run": {"method": "F"},
}


def ref(path: Path) -> FileRef:
    return FileRef(path=str(path), sha256=sha256_file(path), bytes=path.stat().st_size)


def write_run(folder: Path, config: dict | None = None) -> tuple[RunManifest, torch.nn.Module]:
    """A finished run in `folder`: random weights of the config's network, run.json, and a test
    prediction file whose metadata names the classes (as er-train's do)."""
    config = config or CONFIG
    spec = parse_network(config, DIMS, {t: len(c) for t, c in CLASSES.items()})
    torch.manual_seed(0)
    model = build_model(spec).eval()
    folder.mkdir(parents=True)
    weights = folder / "weights.safetensors"
    save_file(model.state_dict(), str(weights))
    info = {"ids": ["u0"], "split": "test", "classes": CLASSES}
    test = write_tensors(
        folder / "test.safetensors",
        {"emotion.probs": torch.full((1, 3), 1 / 3).numpy()},
        metadata={"er.predictions": canonical_json(info).decode()},
    )
    run = RunManifest(
        id="r" * 64,
        tool="er-train test",
        dataset="d" * 64,
        task="emotion",
        tasks=list(CLASSES),
        classes=CLASSES,
        modalities=list(DIMS),
        dims=DIMS,
        config=config,
        network_hash=spec.hash,
        run_dir=str(folder),
        predictions={"test": test},
        weights=ref(weights),
    )
    (folder / "run.json").write_bytes(msgspec.json.encode(run))
    return run, model


def outputs(model: torch.nn.Module, seed: int = 1) -> dict[str, torch.Tensor]:
    """The model on two dialogues (3 and 2 turns), a modality missing here and there."""
    g = torch.Generator().manual_seed(seed)
    feats = {m: torch.randn(5, d, generator=g) for m, d in DIMS.items()}
    present = torch.tensor([[1, 1], [1, 0], [1, 1], [0, 1], [1, 1]], dtype=torch.bool)
    layout = torch.tensor([[0, 1, 2], [3, 4, -1]])
    speakers = torch.tensor([[0, 1, 0], [0, 0, 0]])
    with torch.no_grad():
        return model(feats, present, layout, speakers).outputs


def test_load_run_gives_the_trained_network(tmp_path):
    run, saved = write_run(tmp_path / "run")
    for path in (tmp_path / "run", tmp_path / "run" / "run.json"):
        loaded = load_run(path)
        assert isinstance(loaded, LoadedRun) and not loaded.model.training
        assert loaded.classes == CLASSES and loaded.manifest == run
        assert loaded.folder == (tmp_path / "run").resolve()
        want, got = outputs(saved), outputs(loaded.model)
        assert list(got) == ["emotion", "arousal"] and got["emotion"].shape == (5, 3)
        for task in want:
            torch.testing.assert_close(got[task], want[task], rtol=0, atol=0)


def test_er_train_and_er_models_give_the_same_function():
    er_train = pytest.importorskip("er_train.loading")
    assert er_train.load_run is load_run and er_train.LoadedRun is LoadedRun


def test_moved_folder_and_classes_from_the_prediction_files(tmp_path):
    """A folder moved after training loads (weights beside run.json); a run.json written
    before RunManifest.classes existed takes them from its prediction file."""
    run, saved = write_run(tmp_path / "run")
    shutil.move(tmp_path / "run", tmp_path / "moved")
    old = msgspec.structs.replace(run, classes={})
    (tmp_path / "moved" / "run.json").write_bytes(msgspec.json.encode(old))
    loaded = load_run(tmp_path / "moved")
    assert loaded.classes == CLASSES
    torch.testing.assert_close(outputs(loaded.model)["emotion"], outputs(saved)["emotion"])


def test_missing_and_tampered_weights_are_refused(tmp_path):
    write_run(tmp_path / "run")
    weights = tmp_path / "run" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ErError, match="does not match the run's sha256") as e:
        load_run(tmp_path / "run")
    assert e.value.at == str(weights)
    weights.unlink()
    with pytest.raises(ErError, match="weights file is missing"):
        load_run(tmp_path / "run")


def test_a_run_that_fine_tuned_its_encoder_is_refused(tmp_path):
    write_run(tmp_path / "run", {**CONFIG, "run": {"method": "L"}})
    with pytest.raises(ErError, match=r"fine-tuned its text encoder \(method L\)") as e:
        load_run(tmp_path / "run")
    assert "method F" in e.value.hint


def test_another_network_and_not_a_run_are_refused(tmp_path):
    run, _ = write_run(tmp_path / "run")
    wider = {**run.config, "model": {**run.config["model"], "width": 32}}
    (tmp_path / "run" / "run.json").write_bytes(
        msgspec.json.encode(msgspec.structs.replace(run, config=wider))
    )
    with pytest.raises(ErError, match="another er-models version"):
        load_run(tmp_path / "run")
    with pytest.raises(ErError, match=r"no run\.json"):
        load_run(tmp_path / "nothing")
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "dataset"}))
    with pytest.raises(ErError, match="not a run manifest"):
        load_run(tmp_path / "bad.json")
    unfinished = msgspec.structs.replace(run, status="running", weights=None)
    (tmp_path / "run" / "run.json").write_bytes(msgspec.json.encode(unfinished))
    with pytest.raises(ErError, match="has not finished"):
        load_run(tmp_path / "run")
