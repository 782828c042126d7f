"""`er-eval runs`: any set of runs flattened into one table; and the app's --version."""

from __future__ import annotations

import csv
import io
import json

import msgspec
import pytest
from er_core import ErError, RunManifest
from er_eval.runs_table import flatten_runs, render_runs


def _run(seed: int, **config) -> RunManifest:
    cfg = {"seed": seed, "modalities": "T", "train": {"lr": 1e-3, "betas": [0.9, 0.999]}}
    return RunManifest(
        id=f"{seed}{sorted(config)}".ljust(64, "0"),
        dataset="d" * 64,
        dataset_name="toy",
        task="emotion",
        encoders={"text": "minilm"},
        config=cfg | config,
        seed=seed,
        best_epoch=3 + seed,
        dev={"emotion/weighted_f1": 0.5 + seed / 10},
        test={"emotion/weighted_f1": 0.4, "emotion/accuracy": 0.45},
    )


def test_flatten_runs_columns_are_the_union_in_a_fixed_order() -> None:
    a, b = _run(0), _run(1, fusion={"kind": "attention"})
    df = flatten_runs([a, b])
    assert df.columns == [
        "run",
        "dataset",
        "seed",
        "modalities",
        "train.lr",
        "train.betas",
        "fusion.kind",
        "encoders.text",
        "best_epoch",
        "dev/emotion/weighted_f1",
        "test/emotion/accuracy",
        "test/emotion/weighted_f1",
    ]
    assert df["run"].to_list() == [a.id[:12], b.id[:12]] and df["seed"].to_list() == [0, 1]
    assert df["fusion.kind"].to_list() == [None, "attention"]  # a key one run lacks: empty
    assert df["train.betas"].to_list() == ["[0.9,0.999]"] * 2  # lists as JSON text
    assert df["dev/emotion/weighted_f1"].to_list() == pytest.approx([0.5, 0.6])  # fractions
    assert df["best_epoch"].to_list() == [3, 4]
    with pytest.raises(ErError, match="unknown format"):
        render_runs(df, "latex")


def test_cli_runs_in_three_formats(runs, cli, tmp_path) -> None:
    folders = [runs("a", seed=0), runs("b", seed=1, config={"train": {"lr": 3e-4}})]
    scored = cli("score", *folders)  # EvalManifests add every `score` metric
    assert scored.returncode == 0, scored.stderr.decode()
    r = cli("runs", "--format", "csv", stdin=scored.stdout)
    assert r.returncode == 0, r.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(r.stdout.decode())))
    assert [x["seed"] for x in rows] == ["0", "1"] and [x["train.lr"] for x in rows] == [
        "",
        "0.0003",
    ]
    assert {"encoders.text", "best_epoch", "test/emotion/macro_f1", "dev/emotion/accuracy"} <= set(
        rows[0]
    )
    records = json.loads(cli("runs", "--format", "json", stdin=scored.stdout).stdout)
    assert [x["train.lr"] for x in records] == [None, 0.0003]
    assert 0 <= records[0]["test/emotion/macro_f1"] <= 1
    md = cli("runs", *folders).stdout.decode().splitlines()  # default: Markdown, from folders
    assert md[0].startswith("| run | dataset | seed | ") and len(md) == 4
    assert "| — |" in md[2] and "| 0.0003 |" in md[3]
    out = tmp_path / "runs.md"
    r = cli("runs", *folders, "--format", "md", "-o", out)
    assert r.returncode == 0 and r.stdout == b""
    assert out.read_text().splitlines() == md
    bad = cli("runs", *folders, "--format", "xml")
    assert bad.returncode == 2


def test_version_names_er_eval(cli) -> None:
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.decode().startswith("er-eval ")
    assert "er-core" in r.stdout.decode()
    assert b"--install-completion" in cli("--help").stdout


def test_runs_reads_run_json_files(runs, cli) -> None:
    folder = runs("a", seed=4)
    r = cli("runs", folder / "run.json", "--format", "json")
    (row,) = json.loads(r.stdout)
    manifest = msgspec.json.decode((folder / "run.json").read_bytes())
    assert row["run"] == manifest["id"][:12] and row["seed"] == 4 and row["dataset"] == "toy"


def test_a_runs_root_stands_for_every_finished_run_under_it(runs, cli, tmp_path) -> None:
    """`er-eval runs runs/` (and table, report, ...): every run.json under the folder, in path
    order; a folder with none is one error line."""
    runs("root/x/a", seed=0)
    runs("root/y/b", seed=1)
    r = cli("runs", str(tmp_path / "root"), "--format", "csv")
    assert r.returncode == 0, r.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(r.stdout.decode())))
    assert [row["seed"] for row in rows] == ["0", "1"]
    (tmp_path / "empty").mkdir()
    r = cli("runs", str(tmp_path / "empty"))
    assert r.returncode == 1 and b"no run folder under it" in r.stderr
