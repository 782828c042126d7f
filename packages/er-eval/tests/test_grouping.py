"""Honest groups: a table, plot or report row pools one recipe, `--allow-mixed` marks a pooled
row, `--by auto` groups by what varies, a seed of one recipe counts once, teachers by recipe."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import msgspec
import pytest
from er_core import ErError, RunManifest
from er_eval.grouping import auto_keys, group_runs, run_recipe
from er_eval.table import render, resolve_metric, summarise

MEAN = "test/emotion/weighted_f1 mean"


def run(seed: int, wf1: float = 0.5, **config: Any) -> RunManifest:
    """A run without files: `config` sections are merged over a base recipe."""
    cfg: dict[str, Any] = {
        "seed": seed,
        "modalities": "T",
        "task": "emotion",
        "fusion": {"kind": "concat"},
        "loss": {"emotion": {"kind": "ce"}},
        "train": {"lr": 1e-3, "epochs": 30},
        "run": {"method": "F", "category": "default", "threads": 1},
    }
    for section, value in config.items():
        cfg[section] = {**cfg.get(section, {}), **value} if isinstance(value, dict) else value
    body = msgspec.json.encode([cfg, wf1]).decode()
    return RunManifest(
        id=str(abs(hash(body))).ljust(64, "0")[:64],
        dataset="d" * 64,
        dataset_name="toy",
        task="emotion",
        modalities=["text"],
        features={"text": "f" * 64},
        encoders={"text": "minilm"},
        config=cfg,
        seed=seed,
        select="emotion/weighted_f1",
        test={"emotion/weighted_f1": wf1},
    )


# --- the check -------------------------------------------------------------------------------


def test_two_recipes_in_one_group_are_refused_with_the_keys_named() -> None:
    runs = [run(s, 0.6) for s in range(3)] + [run(0, 0.4, train={"epochs": 3})]
    with pytest.raises(ErError) as e:
        summarise(runs, ["modalities"])
    assert e.value.what == "group modalities=T pools 2 recipes: train.epochs = 30 | 3"
    assert e.value.at == "--by"
    assert "--by modalities,train.epochs" in e.value.hint and "--allow-mixed" in e.value.hint
    # grouping by the key that differs splits them: each row one recipe
    df = summarise(runs, ["modalities", "train.epochs"])
    assert df["train.epochs"].to_list() == [3, 30] and df["n"].to_list() == [1, 3]


def test_labels_and_by_keys_may_differ() -> None:
    """seed, run.category, run.threads label a run; a --by key differs across groups only."""
    runs = [
        run(0, run={"method": "F", "category": "a", "threads": 1}),
        run(1, run={"method": "F", "category": "b", "threads": 4}),
        run(0, fusion={"kind": "attention", "heads": 4}),
    ]
    df = summarise(runs, ["fusion"])
    assert df["fusion"].to_list() == ["attention", "concat"] and df["n"].to_list() == [1, 2]


def test_features_and_encoders_are_part_of_the_recipe() -> None:
    a, b = run(0), run(1)
    other = msgspec.structs.replace(b, features={"text": "e" * 64})
    assert run_recipe(a)["features.text"] == "f" * 12 and run_recipe(a)["encoders.text"] == "minilm"
    with pytest.raises(ErError, match=r"features\.text = ffffffffffff \| eeeeeeeeeeee") as e:
        summarise([a, other], [])
    assert "--by features.text" in e.value.hint
    mpnet = msgspec.structs.replace(b, encoders={"text": "mpnet-base"})
    with pytest.raises(ErError, match=r"encoders\.text = minilm \| mpnet-base") as e:
        summarise([a, mpnet], [])
    assert "--by encoder" in e.value.hint
    assert summarise([a, other], ["features.text"])["n"].to_list() == [1, 1]


def test_allow_mixed_pools_and_marks_the_row(capsys) -> None:
    runs = [run(0, 0.6), run(1, 0.8), run(0, 0.4, train={"epochs": 3, "lr": 3e-4})]
    df = summarise(runs, ["modalities"], allow_mixed=True)
    assert df.columns == ["modalities", MEAN, MEAN.replace("mean", "std"), "n", "seeds", "mixed"]
    assert df.row(0, named=True) | {MEAN: 0} == {
        "modalities": "T",
        MEAN: 0,
        "test/emotion/weighted_f1 std": pytest.approx(20.0),
        "n": 3,
        "seeds": "0,0,1",
        "mixed": "train.lr,train.epochs",
    }
    assert "pools 2 recipes: train.lr = 0.001 | 0.0003; train.epochs = 30 | 3" in (
        capsys.readouterr().err
    )
    md = render(df, "markdown", resolve_metric(runs))
    assert "| T | 60.00 ± 20.00 † | 3 | 0,0,1 |" in md
    assert md.endswith(
        "\n\n† modalities=T pools several recipes (--allow-mixed), differing in: "
        "train.lr,train.epochs\n"
    )
    rows = list(csv.DictReader(io.StringIO(render(df, "csv"))))
    assert rows[0]["mixed"] == "train.lr,train.epochs"
    # a group of one recipe, even with --allow-mixed: an empty mark
    clean = summarise(runs[:2], ["modalities"], allow_mixed=True)
    assert clean["mixed"].to_list() == [""] and "†" not in render(clean, "markdown")


def test_ablation_figure_marks_a_pooled_bar() -> None:
    from er_eval import plots

    runs = [run(0, 0.6), run(1, 0.8), run(0, 0.4, train={"epochs": 3})]
    runs.append(run(0, 0.7, fusion={"kind": "attention"}))
    fig = plots.ablation_figure(summarise(runs, ["fusion"], allow_mixed=True))
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["attention\nn=1", "concat †\nn=3"]
    assert fig.get_supxlabel() == (
        "† concat pools several recipes (--allow-mixed), differing in: train.epochs"
    )
    plain = plots.ablation_figure(summarise(runs[:2], ["fusion"]))
    assert plain.get_supxlabel() == "" and "test/emotion/weighted_f1" in plain.axes[0].get_ylabel()


def test_a_repeated_seed_of_one_recipe_counts_once(capsys) -> None:
    first, copy = run(0, 0.6), run(0, 0.9)  # two runs, one recipe, one seed
    df = summarise([first, copy, run(1, 0.8)], ["modalities"])
    assert df["n"].to_list() == [2] and df[MEAN].to_list() == [pytest.approx(70.0)]
    assert "the same run twice" in capsys.readouterr().err


def test_distilled_students_pool_when_their_teachers_share_a_recipe() -> None:
    teachers = [run(s, 0.5) for s in (0, 1)]
    students = [run(t.seed, 0.7, distill={"teacher": t.id, "dist": 1.0}) for t in teachers]
    df = summarise([*teachers, *students], ["objective"])
    assert df["objective"].to_list() == ["ce", "ce+kd"] and df["n"].to_list() == [2, 2]
    # teachers not among the inputs: their ids differ, so the students are refused
    with pytest.raises(ErError, match=r"distill\.teacher = "):
        summarise(students, ["objective"])
    # teachers of two recipes: the students differ in their teacher's recipe
    other = run(1, 0.5, train={"lr": 3e-4})
    mixed = [students[0], run(1, 0.7, distill={"teacher": other.id, "dist": 1.0})]
    with pytest.raises(ErError, match=r"distill\.teacher = recipe \w{12} \| recipe \w{12}"):
        summarise([*teachers, other, *mixed], ["objective", "train.lr"])


# --- --by auto --------------------------------------------------------------------------------


def test_by_auto_one_row_per_recipe() -> None:
    runs = [run(s, 0.5 + lr * 10, train={"lr": lr}) for lr in (1e-3, 3e-4, 1e-2) for s in (0, 1)]
    assert auto_keys(runs) == ["train.lr"]
    df = summarise(runs, ["auto"])
    assert df.columns[0] == "train.lr" and df["train.lr"].to_list() == [3e-4, 1e-3, 1e-2]
    assert df["n"].to_list() == [2, 2, 2] and df["seeds"].to_list() == ["0,1"] * 3
    one = summarise(runs[:2], ["auto"])  # one recipe: one row, no key column
    assert one.height == 1 and one.columns[0] == MEAN and one["n"][0] == 2


def test_by_auto_prefers_shorthands_and_skips_what_adds_no_split() -> None:
    att = {"kind": "attention", "heads": 4}
    runs = [run(0), run(0, fusion=att), run(0, fusion=att, train={"epochs": 3})]
    assert auto_keys(runs) == ["fusion", "fusion.heads", "train.epochs"]
    both = msgspec.structs.replace(
        run(0, modalities="T+A"),
        modalities=["text", "audio"],
        features={"text": "f" * 64, "audio": "a" * 64},
        encoders={"text": "minilm", "audio": "whisper-tiny.en"},
    )
    # the audio encoder and features differ only because the modalities do
    assert auto_keys([run(0), both]) == ["modalities"]
    mpnet = msgspec.structs.replace(
        run(0), encoders={"text": "mpnet-base"}, features={"text": "9" * 64}
    )
    assert auto_keys([run(0), mpnet]) == ["encoder"]
    assert [g.cells for g in group_runs([run(0), mpnet], ["encoder"])] == [
        ("text=minilm",),
        ("text=mpnet-base",),
    ]
    with pytest.raises(ErError, match="--by auto stands alone"):
        summarise(runs, ["auto", "fusion"])


# --- the commands -----------------------------------------------------------------------------


@pytest.fixture
def pooled(runs) -> list:
    """The issue's case: three 30-epoch runs and one 3-epoch run of the same network."""
    folders = [runs(f"e30-{s}", seed=s, config={"train": {"epochs": 30}}) for s in range(3)]
    return [*folders, runs("e3-0", seed=0, accuracy=0.3, config={"train": {"epochs": 3}})]


def test_table_plot_and_report_refuse_two_recipes(pooled, tmp_path, cli, one_error) -> None:
    want = "error: group modalities=T pools 2 recipes: train.epochs = 30 | 3, at --by"
    commands = {
        "table": [],
        "ablation": ["plot", "--kind", "ablation", "-o", tmp_path / "ab"],
        "curves": ["plot", "--kind", "curves", "-o", tmp_path / "cu"],
        "report": ["report", "-o", tmp_path / "r.html"],
    }
    for name, args in commands.items():
        r = cli(*(args or ["table"]), *pooled, "--by", "modalities")
        assert r.returncode == 1 and r.stdout == b"", name
        error, hint = one_error(r.stderr)
        assert error == want, name
        assert "--by modalities,train.epochs" in hint and "--allow-mixed" in hint, name
    assert not (tmp_path / "r.html").exists() and not list(tmp_path.glob("ab/*.png"))
    # the report's default grouping (modalities, fusion) is checked as well
    r = cli("report", *pooled, "-o", tmp_path / "r.html")
    assert r.returncode == 1 and "modalities=T, fusion=concat pools 2 recipes" in r.stderr.decode()


def test_allow_mixed_in_table_plot_and_report(pooled, tmp_path, cli) -> None:
    r = cli("table", *pooled, "--by", "modalities", "--allow-mixed", "--format", "csv")
    assert r.returncode == 0, r.stderr.decode()
    (row,) = csv.DictReader(io.StringIO(r.stdout.decode()))
    assert row["mixed"] == "train.epochs" and row["n"] == "4" and row["seeds"] == "0,0,1,2"
    assert "pools 2 recipes: train.epochs = 30 | 3 (pooled: --allow-mixed)" in r.stderr.decode()
    data = json.loads(cli("table", *pooled, "--allow-mixed", "--format", "json").stdout)
    assert data[0]["mixed"] == "train.epochs" and MEAN in data[0]
    md = cli("table", *pooled, "--by", "modalities", "--allow-mixed").stdout.decode()
    assert " † | 4 | 0,0,1,2 |" in md and "differing in: train.epochs" in md
    r = cli("plot", *pooled, "--kind", "ablation", "--by", "modalities", "--allow-mixed",
            "-o", tmp_path / "ab")  # fmt: skip
    assert r.returncode == 0 and len(list((tmp_path / "ab").glob("*.png"))) == 1
    r = cli("report", *pooled, "--by", "modalities", "--allow-mixed", "-o", tmp_path / "r.html")
    assert r.returncode == 0, r.stderr.decode()
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert " †</td>" in page and "modalities=T pools several recipes" in page


def test_cli_by_auto(runs, cli) -> None:
    folders = [
        runs(f"lr{lr}-{s}", seed=s, config={"train": {"lr": lr}})
        for lr in (1e-3, 3e-4, 1e-2)
        for s in (0, 1)
    ]
    r = cli("table", *folders, "--by", "auto", "--format", "csv")
    assert r.returncode == 0, r.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(r.stdout.decode())))
    assert [x["train.lr"] for x in rows] == ["0.0003", "0.001", "0.01"]
    assert [x["n"] for x in rows] == ["2", "2", "2"]
    assert list(rows[0]) == [
        "train.lr",
        "test/emotion/weighted_f1 mean",
        "test/emotion/weighted_f1 std",
        "n",
        "seeds",
    ]
