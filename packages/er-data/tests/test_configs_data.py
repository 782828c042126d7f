"""Every dataset mapping shipped in configs/data/ loads and validates against the table adapter,
and the commented example works on the data its comment shows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from er_core import load_config
from er_data.adapters.table import Table

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "data"
FILES = sorted(CONFIGS.glob("*.toml"))


def test_configs_data_exists():
    assert {"meld-table.toml", "example-table.toml"} <= {p.name for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_config_validates(path):
    opts = load_config(Table.Options, [path])
    assert opts.dataset and opts.tasks
    assert opts.task in opts.tasks, "the default task must be one the mapping defines"


def test_example_works_on_the_data_it_describes(tmp_path):
    from er_data.preparation import prepare

    root = tmp_path / "mine"
    root.mkdir()
    # the file the example's comment shows, plus enough dialogues for a 10% dev and test split
    lines = ["conv,line,who,utterance,label,arousal,wav"]
    for c in range(20):
        lines += [f"c{c},0,A,Hi number {c}.,Neutral,0.1,c{c}_0.wav", f"c{c},1,B,Terrible.,sad,0.7,"]
    lines += ["c20,0,A,So good!,excited,0.9,", "c20,1,B,Hm.,xxx,0.2,"]
    (root / "utterances.csv").write_text("\n".join(lines) + "\n")
    m = prepare("table", root, configs=[str(CONFIGS / "example-table.toml")], out=tmp_path / "o")
    t = pl.read_parquet(m.table.path)
    assert m.dataset == "mine" and sum(m.splits.values()) == 41  # the "xxx" row is unlabelled
    assert m.splits["dev"] == m.splits["test"] == 4  # 2 of 21 dialogues each, 2 rows apiece
    assert t.filter(pl.col("id") == "c20_0")["emotion_name"].item() == "happy"
    assert m.modalities == ["text"] and t["audio"].null_count() == t.height  # media_optional
    r = prepare(
        "table", root, task="arousal", configs=[str(CONFIGS / "example-table.toml")], out=tmp_path
    )
    assert r.task_type == "regression" and sum(r.splits.values()) == 42
