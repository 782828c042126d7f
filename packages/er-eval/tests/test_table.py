"""`table`: grouping, mean ± sample std by hand, seeds, the three formats, key and dataset errors."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import msgspec
import pytest
from er_core import ErError, RunManifest
from er_eval.table import render, resolve_metric, summarise

MEAN, STD = "test/emotion/weighted_f1 mean", "test/emotion/weighted_f1 std"


def _run(
    seed: int, wf1: float, *, fusion: str = "concat", lr: float = 1e-3, **kw: Any
) -> RunManifest:
    config = {
        "seed": seed,
        "modalities": kw.pop("modalities", "T"),
        "task": "emotion",
        "fusion": {"kind": fusion},
        "context": {"kind": "none"},
        "loss": {"emotion": {"kind": kw.pop("loss", "ce")}},
        "train": {"lr": lr, "epochs": 3},
    }
    config |= kw.pop("config", {})
    return RunManifest(
        id=f"{fusion}-{lr}-{seed}-{wf1}".ljust(64, "0"),
        dataset=kw.pop("dataset", "d" * 64),
        dataset_name=kw.pop("dataset_name", "toy"),
        task="emotion",
        tasks=["emotion"],
        modalities=["text"],
        encoders={"text": "minilm"},
        config=config,
        seed=seed,
        select="emotion/weighted_f1",
        test={"emotion/weighted_f1": wf1, "emotion/accuracy": wf1 + 0.01},
        run_dir=f"/runs/{fusion}/{seed}",
        **kw,
    )


RUNS = [
    _run(2, 0.64),
    _run(0, 0.60),
    _run(1, 0.62),
    _run(1, 0.71, fusion="attention"),
    _run(0, 0.70, fusion="attention"),
    _run(0, 0.55, fusion="tensor"),
]


def test_grouping_mean_std_seeds() -> None:
    df = summarise(RUNS, ["fusion"])
    assert df.columns == ["fusion", MEAN, STD, "n", "seeds"]
    rows = {r["fusion"]: r for r in df.iter_rows(named=True)}
    assert list(rows) == ["attention", "concat", "tensor"]  # sorted by the key
    # concat: 60, 62, 64 (percent) -> mean 62, sample std sqrt((4 + 0 + 4) / 2) = 2
    assert rows["concat"][MEAN] == pytest.approx(62.0)
    assert rows["concat"][STD] == pytest.approx(2.0)
    assert rows["concat"]["n"] == 3 and rows["concat"]["seeds"] == "0,1,2"
    # attention: 70, 71 -> mean 70.5, std sqrt((.25 + .25) / 1)
    assert rows["attention"][MEAN] == pytest.approx(70.5)
    assert rows["attention"][STD] == pytest.approx(0.5**0.5)
    assert rows["attention"]["seeds"] == "0,1"
    # one run: std 0
    assert rows["tensor"][STD] == 0.0 and rows["tensor"]["n"] == 1


def test_metric_choice_and_no_grouping() -> None:
    df = summarise(RUNS[:3], [], "test/emotion/accuracy")
    assert df.height == 1 and df["test/emotion/accuracy mean"][0] == pytest.approx(63.0)
    assert resolve_metric(RUNS).label == "test/emotion/weighted_f1 (%)"
    assert str(resolve_metric(RUNS, "accuracy")) == "test/emotion/accuracy"
    assert str(resolve_metric(RUNS, "dev/macro_f1")) == "dev/emotion/macro_f1"
    assert str(resolve_metric(RUNS, "sentiment/mae")) == "test/sentiment/mae"
    assert not resolve_metric(RUNS, "sentiment/mae").percent
    with pytest.raises(ErError, match="has no metric test/emotion/macro_f1") as e:
        summarise(RUNS[:3], [], "macro_f1")
    assert "test/emotion/weighted_f1" in str(e.value)  # lists what the run has


def test_config_paths_and_shorthands() -> None:
    runs = [
        _run(0, 0.5, lr=1e-3),
        _run(1, 0.6, lr=1e-3),
        _run(0, 0.7, lr=3e-4, loss="focal", modalities="T+A"),
        _run(0, 0.8, lr=1e-2),
    ]
    df = summarise(runs, ["train.lr"])
    assert df["train.lr"].to_list() == [3e-4, 1e-3, 1e-2]  # numeric order, not text order
    assert df["n"].to_list() == [1, 2, 1]
    # the (ce, T) group pools two learning rates: only on purpose, and marked
    keys = ["loss", "modalities", "encoder", "context", "task", "dataset"]
    with pytest.raises(ErError, match=r"pools 2 recipes: train\.lr = 0\.001 \| 0\.01"):
        summarise(runs, keys)
    df = summarise(runs, keys, allow_mixed=True)
    assert df.row(0, named=True) | {MEAN: 0, STD: 0} == {
        "loss": "ce",
        "modalities": "T",
        "encoder": "text=minilm",
        "context": "none",
        "task": "emotion",
        "dataset": "toy",
        MEAN: 0,
        STD: 0,
        "n": 3,
        "seeds": "0,0,1",
        "mixed": "train.lr",
    }
    df = summarise(runs, ["loss.emotion.kind"], allow_mixed=True)
    assert df["loss.emotion.kind"].to_list() == ["ce", "focal"]
    assert summarise(runs, ["seed"], allow_mixed=True)["seed"].to_list() == [0, 1]


def test_key_missing_in_some_runs_is_an_empty_cell() -> None:
    runs = [
        _run(0, 0.5),
        _run(0, 0.6, fusion="attention", config={"fusion": {"kind": "attention", "heads": 4}}),
    ]
    df = summarise(runs, ["fusion.heads"])
    assert df["fusion.heads"].to_list() == [4, None]
    assert "| — | 50.00 ± 0.00 | 1 | 0 |" in render(df, "markdown", resolve_metric(runs))


def test_markdown_csv_json() -> None:
    df = summarise(RUNS, ["fusion"])
    md = render(df, "markdown", resolve_metric(RUNS))
    assert md == (
        "| fusion | test/emotion/weighted_f1 (%) | n | seeds |\n"
        "| --- | ---: | ---: | --- |\n"
        "| attention | 70.50 ± 0.71 | 2 | 0,1 |\n"
        "| concat | 62.00 ± 2.00 | 3 | 0,1,2 |\n"
        "| tensor | 55.00 ± 0.00 | 1 | 0 |\n"
    )
    rows = list(csv.DictReader(io.StringIO(render(df, "csv"))))
    assert [r["fusion"] for r in rows] == ["attention", "concat", "tensor"]
    assert list(rows[1]) == ["fusion", MEAN, STD, "n", "seeds"]  # the metric named
    assert float(rows[1][MEAN]) == pytest.approx(62.0) and rows[1]["seeds"] == "0,1,2"
    data = json.loads(render(df, "json"))
    assert data[1] == {
        "fusion": "concat",
        MEAN: pytest.approx(62.0),
        STD: pytest.approx(2.0),
        "n": 3,
        "seeds": "0,1,2",
    }
    with pytest.raises(ErError, match="unknown format"):
        render(df, "latex")


def test_unknown_key_lists_the_keys() -> None:
    with pytest.raises(ErError, match=r"unknown key 'fusion\.kindd'") as e:
        summarise(RUNS, ["fusion.kindd"])
    assert (
        "fusion.kind" in e.value.hint and "train.lr" in e.value.hint and "encoder" in e.value.hint
    )


def test_mixing_datasets_is_an_error() -> None:
    other = _run(0, 0.5, dataset="e" * 64, dataset_name="meld")
    with pytest.raises(ErError, match=r"toy \(dddddddddddd\) and meld \(eeeeeeeeeeee\)") as e:
        summarise([*RUNS, other], ["fusion"])
    assert "one table per dataset" in e.value.hint


def test_same_seed_of_one_recipe_counts_once(capsys) -> None:
    """Two runs of one recipe and one seed are the same run twice: n counts it once."""
    twice = [_run(0, 0.5), _run(0, 0.6), _run(1, 0.7)]
    df = summarise(twice, ["fusion"])
    assert df["n"].to_list() == [2] and df["seeds"].to_list() == ["0,1"]
    assert df[MEAN][0] == pytest.approx(60.0)  # the first of the two seed-0 runs, and seed 1
    err = capsys.readouterr().err
    assert "seed 0 of one recipe (the same run twice)" in err and "counting it once" in err


def test_cli_table_from_scored_runs(runs, cli) -> None:
    folders = [runs(f"c{s}", seed=s) for s in range(3)]
    folders += [
        runs(f"a{s}", seed=s, accuracy=0.9, config={"fusion": {"kind": "attention"}})
        for s in range(2)
    ]
    scored = cli("score", *folders)
    assert scored.returncode == 0, scored.stderr
    evals = [msgspec.json.decode(x) for x in scored.stdout.splitlines() if b'"kind":"eval"' in x]
    want = {}
    for ev in evals:
        kind = "attention" if "/a" in ev["run_dir"][-3:] else "concat"
        want.setdefault(kind, []).append(
            100 * ev["scores"]["test"]["emotion"]["metrics"]["macro_f1"]
        )
    r = cli("table", "--by", "fusion", "--metric", "test/emotion/macro_f1", stdin=scored.stdout)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "| fusion | test/emotion/macro_f1 (%) | n | seeds |"
    mean = sum(want["attention"]) / 2
    assert lines[2].startswith(f"| attention | {mean:.2f} ± ")
    assert lines[3].endswith("| 3 | 0,1,2 |")
    r = cli("table", "--by", "fusion,seed", "--format", "json", stdin=scored.stdout)
    assert len(json.loads(r.stdout)) == 5
    # a regression metric that only `score` computes
    reg = cli("score", runs("reg", regression=True, task="sentiment"))
    r = cli("table", "--metric", "acc2_non0", stdin=reg.stdout)
    assert r.returncode == 0 and "test/sentiment/acc2_non0 (%)" in r.stdout.decode()


def test_cli_table_errors(runs, cli, one_error) -> None:
    a = runs("a")
    r = cli("table", a, "--by", "nope")
    assert r.returncode == 1
    error, hint = one_error(r.stderr)
    assert "unknown key 'nope'" in error and "fusion.kind" in hint
    b = runs("b", dataset="e" * 64, dataset_name="meld")
    r = cli("table", a, b, "--by", "fusion")
    assert r.returncode == 1
    error, _ = one_error(r.stderr)
    assert "two datasets" in error and "toy" in error and "meld" in error
    r = cli("table", a, "--format", "xml")
    assert r.returncode == 2
    (a / "test.safetensors").unlink()  # scoring on the fly checks the files as score does
    r = cli("table", a)
    assert r.returncode == 1
    error, _ = one_error(r.stderr)
    assert "test prediction file" in error and "not found" in error


def test_cli_table_scores_unscored_runs(runs, cli) -> None:
    """Run folders straight in: a metric neither the stream nor run.json holds is scored."""
    folders = [runs(f"r{s}", seed=s, regression=True, task="sentiment") for s in range(3)]
    r = cli("table", *folders, "--metric", "acc7", "--format", "csv")
    assert r.returncode == 0, r.stderr
    scored = cli("score", *folders)
    via_score = cli("table", "--metric", "acc7", "--format", "csv", stdin=scored.stdout)
    assert r.stdout == via_score.stdout
    assert r.stdout.decode().splitlines()[1].endswith(',3,"0,1,2"')


def test_objective_and_method_shorthands() -> None:
    runs = [
        _run(0, 0.5, config={"run": {"method": "F"}}),
        _run(1, 0.6, config={"run": {"method": "F"}}),
        _run(0, 0.7, config={"run": {"method": "L"}, "aux": {"spcl": {"kind": "spcl"}}}),
        _run(0, 0.8, config={"run": {"method": "F"}, "distill": {"teacher": "t" * 64}}),
    ]
    df = summarise(runs, ["objective"])
    assert df["objective"].to_list() == ["ce", "ce+kd", "ce+spcl"]
    assert df["n"].to_list() == [2, 1, 1]
    with pytest.raises(
        ErError, match=r"group method=F pools 2 recipes: distill\.teacher = — \| t+"
    ):
        summarise(runs, ["method"])
    df = summarise(runs, ["method"], allow_mixed=True)
    assert df["method"].to_list() == ["F", "L"] and df["n"].to_list() == [3, 1]
    assert df["mixed"].to_list() == ["distill.teacher", ""]
