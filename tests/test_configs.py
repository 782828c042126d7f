"""Every TOML file in configs/ loads and validates against the tool that reads it.

A new folder or file in configs/ that no validator covers fails `test_every_file_is_covered`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from er_core import load_config, merge_sources, validate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FILES = sorted(CONFIGS.rglob("*.toml"))
FOLDERS = ("data", "distill", "encoders", "fusion", "heads", "losses", "train")
DIMS = {"text": 384, "audio": 384, "video": 128}
# the tasks each training recipe's dataset offers: name -> classes (0 = regression)
DATASET_TASKS = {
    "meld": {"emotion": 7, "sentiment": 3},
    "iemocap": {"emotion6": 6, "emotion4": 4},
    "sims": {"regression": 0},
    "synth": {"emotion": 7, "sentiment": 3},
    "utterance": {"emotion": 7, "sentiment": 3},  # any dataset: its own task
}


def _ids(path: Path) -> str:
    return str(path.relative_to(CONFIGS))


def test_every_file_is_covered():
    assert FILES, "configs/ holds no TOML file"
    stray = [p for p in FILES if p.relative_to(CONFIGS).parts[0] not in FOLDERS]
    assert not stray, f"no validator for {stray}"
    for folder in FOLDERS:
        assert list((CONFIGS / folder).glob("*.toml")), f"configs/{folder}/ is empty"


def _network(files, tasks: dict[str, int]):
    """Validate as er-train does: the whole config, the network for these tasks, the loss."""
    from er_models import SECTIONS, parse_network, resolve
    from er_train.config import TrainConfig

    data, origins = merge_sources(files)
    cfg = validate(data, TrainConfig, origins)
    wanted = cfg.tasks or [cfg.task or next(iter(tasks))]
    assert set(wanted) <= set(tasks), f"{files[-1]} names tasks its dataset lacks: {wanted}"
    spec = parse_network(
        {k: getattr(cfg, k) for k in SECTIONS},
        DIMS,
        {t: tasks[t] for t in wanted},
        origins,
    )
    resolve("loss", {"kind": "ce", **cfg.loss}, origins)
    return cfg, spec


@pytest.mark.parametrize("path", [p for p in FILES if p.parent.name == "encoders"], ids=_ids)
def test_encoder_config(path):
    from er_features.extraction import ExtractConfig

    cfg = load_config(ExtractConfig, [path])
    assert cfg.modality in ("text", "audio", "video") and cfg.encoder


@pytest.mark.parametrize("path", [p for p in FILES if p.parent.name == "data"], ids=_ids)
def test_data_config(path):
    from er_data.adapters.table import Table

    opts = load_config(Table.Options, [path])
    assert opts.task in opts.tasks


@pytest.mark.parametrize("path", [p for p in FILES if p.parent.name == "train"], ids=_ids)
def test_train_recipe(path):
    dataset = path.stem.split("-")[0]
    assert dataset in DATASET_TASKS, f"which dataset is {path.name} for?"
    base = [CONFIGS / "train" / f"{dataset}.toml"] if path.stem != dataset else []
    _, spec = _network([*base, path], DATASET_TASKS[dataset])
    assert spec.hash


@pytest.mark.parametrize(
    "path",
    [p for p in FILES if p.parent.name in ("distill", "fusion", "heads", "losses")],
    ids=_ids,
)
def test_part_config_on_a_recipe(path):
    """A fusion, head, loss or distillation file combines with a recipe: MELD for
    classification, CH-SIMS for the regression losses."""
    from er_core.config import load_toml
    from er_models.losses import REGRESSION

    regression = load_toml(path).get("loss", {}).get("kind") in REGRESSION
    dataset = "sims" if regression else "meld"
    _, spec = _network([CONFIGS / "train" / f"{dataset}.toml", path], DATASET_TASKS[dataset])
    if path.parent.name == "fusion":
        assert spec.fusion.kind == load_toml(path)["fusion"]["kind"]
    if path.parent.name == "heads":
        assert spec.head.kind == load_toml(path)["head"]["kind"]
    for name in load_toml(path).get("aux", {}):  # every [aux.NAME] table became an objective
        assert name in dict(spec.aux)
