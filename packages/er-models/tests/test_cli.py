"""The er-models CLI: `list` shows the registry, `describe` builds a config's network and hashes it.

Happy paths run in-process (typer's CliRunner); the error format and exit codes run through a
real `python -m er_models` subprocess, where er_core.run turns errors into two lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import er_models
import pytest
from er_core import ErError, UsageError
from er_models.cli import app
from er_models.describe import list_parts, parse_dims, parse_tasks
from er_models.registry import FAMILIES
from typer.testing import CliRunner

runner = CliRunner()
ALL_PARTS = [(f, n) for f in FAMILIES for n in er_models.names(f)]


def invoke(*args: str) -> str:
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, (r.output, r.exception)
    return r.stdout


def subprocess_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ER_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "er_models", *args], capture_output=True, text=True, env=env
    )


def describe_json(*args: str) -> dict:
    return json.loads(invoke("describe", "--json", *args))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- list -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "name"), ALL_PARTS)
def test_list_shows_every_registered_part(family, name):
    lines = invoke("list").splitlines()
    assert any(ln.split()[0] == family and ln.split()[1].startswith(f"{name}(") for ln in lines)


def test_list_json_is_the_registry_one_object_a_line():
    rows = [json.loads(ln) for ln in invoke("list", "--json").splitlines()]
    assert {(r["family"], r["name"]) for r in rows} == set(ALL_PARTS)
    for r in rows:
        assert r["doc"], f"{r['family']} {r['name']} has no docstring"
        for o in r["options"]:
            assert o["type"] and ("default" in o or o.get("required"))


def test_list_family_filters_and_a_bad_family_is_usage():
    rows = [json.loads(ln) for ln in invoke("list", "--family", "loss", "--json").splitlines()]
    assert [r["name"] for r in rows] == er_models.names("loss")
    r = runner.invoke(app, ["list", "--family", "losses"])
    assert isinstance(r.exception, UsageError) and r.exception.exit_code == 2


def test_options_come_from_the_config_class():
    deep = next(r for r in list_parts("fusion") if r["name"] == "deep")
    opts = {o["name"]: o for o in deep["options"]}
    assert list(opts) == ["hidden", "layers", "dropout"]
    assert opts["hidden"]["default"] == 512 and opts["hidden"]["type"] == "int >= 1"
    assert opts["dropout"]["type"] == "float in [0, 1)"
    assert opts["hidden"]["help"] == "width of each hidden layer"
    ce = next(r for r in list_parts("loss") if r["name"] == "ce")
    assert ce["options"][0]["type"] == '"none"|"inverse"|"effective"'  # as declared, not sorted
    line = next(ln for ln in invoke("list", "-f", "fusion").splitlines() if "deep(" in ln)
    assert "hidden: int >= 1 = 512" in line and "# An MLP" in line


def test_list_in_a_real_subprocess():
    r = subprocess_cli("list")
    assert r.returncode == 0, r.stderr
    for family, name in ALL_PARTS:
        assert f"{name}(" in r.stdout, (family, name)
    assert r.stderr == ""


# ---- describe ---------------------------------------------------------------------------------


def test_describe_prints_parts_params_and_the_hash():
    out = invoke("describe", "--dims", "text=384,audio=512", "--tasks", "emotion=7")
    spec = er_models.parse_network({}, {"text": 384, "audio": 512}, {"emotion": 7})
    assert f"network  {spec.hash}" in out
    for part in ("projection", "fusion", "context", "head", "total"):
        assert any(ln.startswith(part) for ln in out.splitlines()), part


def test_param_count_equals_a_hand_count():
    # concat fusion + none context + classification head (the defaults), width 8, no head MLP
    d = describe_json("--dims", "text=10,audio=6", "--tasks", "emotion=7", "--set", "model.width=8")
    w, m, classes = 8, 2, 7
    linear = lambda i, o: i * o + o  # noqa: E731 (weight + bias)
    layer_norm = 2 * w  # gain + bias
    projection = linear(10, w) + layer_norm + linear(6, w) + layer_norm + m * w  # + missing vectors
    head = linear(m * w, classes)  # concat is M·W wide, none keeps it
    assert d["params"] == {"projection": projection, "fusion": 0, "context": 0, "head": head}
    assert d["total"] == projection + head == 311
    no_ln = describe_json("--dims", "text=10,audio=6", "--set", "model.width=8",
                          "--set", "model.layer_norm=false")  # fmt: skip
    assert no_ln["total"] == d["total"] - 2 * layer_norm  # the option is wired


def test_hash_changes_with_a_fusion_option_and_with_dims():
    base = describe_json("--set", "fusion.kind=deep")["network_hash"]
    other = describe_json("--set", "fusion.kind=deep", "--set", "fusion.hidden=64")
    wider = describe_json("--set", "fusion.kind=deep", "--dims", "text=768")
    more = describe_json("--set", "fusion.kind=deep", "--dims", "text=384,audio=384")
    hashes = [base, other["network_hash"], wider["network_hash"], more["network_hash"]]
    assert len(set(hashes)) == 4
    assert other["network"]["fusion"] == {"kind": "deep", "hidden": 64, "layers": 2, "dropout": 0.1}


def test_hash_is_the_same_for_the_same_network_however_written(tmp_path):
    a = write(tmp_path / "a.toml", '[fusion]\nkind = "deep"\nhidden = 64\nlayers = 1\n')
    b = write(tmp_path / "b.toml", '[fusion]\nlayers = 1\nhidden = 64\nkind = "deep"\n')
    c = write(tmp_path / "c.toml", '[fusion]\nkind = "deep"\n')
    explicit = write(tmp_path / "d.toml", '[fusion]\nkind = "deep"\nhidden = 512\ndropout = 0.1\n')
    h = lambda *args: describe_json(*args)["network_hash"]  # noqa: E731
    same = h("-c", str(a))
    assert h("-c", str(b)) == same
    assert h("-c", str(c), "--set", "fusion.layers=1", "--set", "fusion.hidden=64") == same
    assert (
        h("--set", "fusion.kind=deep", "--set", "fusion.layers=1", "--set", "fusion.hidden=64")
        == same
    )
    assert h("-c", str(explicit)) == h("-c", str(c)) != same  # defaults are part of the hash


def test_describe_ignores_other_sections(tmp_path):
    cfg = write(
        tmp_path / "train.toml",
        '[train]\nepochs = 3\n[loss]\nkind = "focal"\n[run]\nseed = 1\n'
        '[head]\nkind = "classification"\nhidden = 16\n',
    )
    d = describe_json("-c", str(cfg))
    assert d["network"]["head"] == {"kind": "classification", "hidden": 16, "dropout": 0.1}
    assert set(d["network"]) == {"model", "fusion", "context", "head", "dims", "tasks"}


def test_regression_and_multi_task_heads(tmp_path):
    d = describe_json("--tasks", "emotion=7,sentiment=0", "--set", "head.kind=multi-task")
    assert d["network"]["tasks"] == {"emotion": 7, "sentiment": 0}
    width = d["widths"]["context"]  # 256: one text token of the default width
    assert d["params"]["head"] == (width * 7 + 7) + (width * 1 + 1)  # emotion 7, sentiment 1
    out = invoke("describe", "--tasks", "score=0", "--set", "head.kind=regression")
    assert "(0 = regression)" in out


def test_unknown_fusion_kind_exits_1_naming_file_and_known_kinds(tmp_path):
    cfg = write(tmp_path / "bad.toml", '[fusion]\nkind = "xyz"\n')
    r = subprocess_cli("describe", "--config", str(cfg))
    assert r.returncode == 1 and r.stdout == ""
    first, hint = r.stderr.splitlines()
    assert first == f"error: unknown fusion 'xyz', at {cfg}:$.fusion.kind"
    assert hint == f"hint: known: {', '.join(er_models.names('fusion'))}"


def test_unknown_option_exits_1_naming_key_and_file(tmp_path):
    cfg = write(tmp_path / "typo.toml", '[fusion]\nkind = "deep"\nhiden = 64\n')
    r = subprocess_cli("describe", "-c", str(cfg))
    assert r.returncode == 1
    first, hint = r.stderr.splitlines()
    assert "unknown key 'hiden'" in first and first.endswith(f"at {cfg}:$.fusion.hiden")
    assert hint == "hint: known keys here: hidden, layers, dropout"


def test_bad_dims_exit_2_with_the_form():
    r = subprocess_cli("describe", "--dims", "text:384")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: bad --dims 'text:384'")
    assert "--dims text=384,audio=384" in r.stderr


@pytest.mark.parametrize(
    ("fn", "text"),
    [
        (parse_dims, "text=384,speech=10"),
        (parse_dims, "text=0"),
        (parse_dims, "text=384,text=512"),
        (parse_dims, ""),
        (parse_tasks, "emotion"),
        (parse_tasks, "emotion=-1"),
        (parse_tasks, "emotion=1"),
    ],
)
def test_bad_inputs_are_usage_errors(fn, text):
    with pytest.raises(UsageError) as e:
        fn(text)
    assert e.value.exit_code == 2 and "e.g." in e.value.hint


def test_inputs_parse():
    assert parse_dims(" text=384, audio=512 ") == {"text": 384, "audio": 512}
    assert parse_tasks("emotion=7,sentiment=0") == {"emotion": 7, "sentiment": 0}


def test_bad_option_value_is_an_error_not_a_crash():
    r = runner.invoke(app, ["describe", "--set", "fusion.kind=deep", "--set", "fusion.hidden=0"])
    assert isinstance(r.exception, ErError) and "fusion.hidden" in r.exception.at


def test_help_has_examples():
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and "Example: er-models describe" in top.stdout
    for cmd in ("list", "describe"):
        r = runner.invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and f"Example: er-models {cmd}" in r.stdout
