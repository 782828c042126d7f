"""Configs: TOML files merged left to right, then --set; errors name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from er_core import Config, ErError, UsageError, load_config, merge_sources, parse_override, to_dict


class Fusion(Config, frozen=True):
    name: str = "concat"
    dim: int = 128


class Data(Config, frozen=True):
    root: str  # required inside its section
    batch: int = 8


class Train(Config, frozen=True):
    lr: float
    epochs: int = 10
    tags: list[str] = []
    weights: dict[str, float] = {}
    fusion: Fusion = Fusion()
    data: Data | None = None


def toml(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def error(fn, *args, **kwargs) -> ErError:
    with pytest.raises(ErError) as info:
        fn(*args, **kwargs)
    return info.value


def test_files_merge_left_to_right_keeping_siblings(tmp_path):
    a = toml(tmp_path, "a.toml", "lr = 0.1\nepochs = 3\n[fusion]\nname = 'concat'\ndim = 64\n")
    b = toml(tmp_path, "b.toml", "epochs = 5\n[fusion]\nname = 'attention'\n")
    cfg = load_config(Train, [a, b])
    # b wins where both set a key; a's other keys (lr, fusion.dim) survive the nested merge
    assert (cfg.lr, cfg.epochs, cfg.fusion.name, cfg.fusion.dim) == (0.1, 5, "attention", 64)
    cfg = load_config(Train, [b, a])
    assert (cfg.epochs, cfg.fusion.name) == (3, "concat")


def test_base_defaults_come_first(tmp_path):
    a = toml(tmp_path, "a.toml", "epochs = 7\n")
    cfg = load_config(Train, [a], base={"lr": 0.5, "epochs": 1})
    assert (cfg.lr, cfg.epochs) == (0.5, 7)


def test_set_overrides_files_with_toml_typed_values(tmp_path):
    a = toml(tmp_path, "a.toml", "lr = 0.1\n[fusion]\nname = 'concat'\ndim = 64\n")
    cfg = load_config(
        Train,
        [a],
        [
            "lr=1e-3",
            "epochs=20",
            "fusion.name=attention",  # not TOML: taken as a plain string
            'tags=["a", "b"]',
            "weights.joy=2.5",
            "data.root=/x y/z",
        ],
    )
    assert cfg.lr == pytest.approx(1e-3)
    assert cfg.epochs == 20 and isinstance(cfg.epochs, int)
    assert cfg.fusion == Fusion(name="attention", dim=64)
    assert cfg.tags == ["a", "b"]
    assert cfg.weights == {"joy": 2.5}
    assert cfg.data == Data(root="/x y/z")
    # later --set wins over an earlier one
    assert load_config(Train, [a], ["epochs=2", "epochs=4"]).epochs == 4
    # an int is a valid float
    assert load_config(Train, [], ["lr=1"]).lr == 1.0


def test_parse_override():
    assert parse_override("a.b.c=3") == (["a", "b", "c"], 3)
    assert parse_override("x=true") == (["x"], True)
    assert parse_override('x="3"') == (["x"], "3")
    assert parse_override("x=hello world") == (["x"], "hello world")
    assert parse_override("x=") == (["x"], "")
    assert parse_override("x=[1, 2]") == (["x"], [1, 2])
    assert parse_override(" k = 1.5") == (["k"], 1.5)


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1", "a b=1", ".a=1"])
def test_bad_set_syntax_is_a_usage_error(bad):
    e = error(parse_override, bad)
    assert isinstance(e, UsageError) and e.exit_code == 2
    assert bad in e.what and "--set" in e.hint


def test_merge_sources_records_origins(tmp_path):
    a = toml(tmp_path, "a.toml", "lr = 0.1\n[fusion]\ndim = 64\n")
    data, origins = merge_sources([a], ["fusion.name=x"])
    assert data == {"lr": 0.1, "fusion": {"dim": 64, "name": "x"}}
    assert origins["lr"] == str(a)
    assert origins["fusion.dim"] == str(a)
    assert origins["fusion.name"] == "--set fusion.name=x"


def test_merge_does_not_mutate_base():
    base = {"fusion": {"dim": 1}}
    merge_sources([], ["fusion.dim=2"], base=base)
    assert base == {"fusion": {"dim": 1}}


def test_unknown_key_names_file_and_key_path(tmp_path):
    a = toml(tmp_path, "a.toml", "lr = 0.1\n")
    b = toml(tmp_path, "b.toml", "[fusion]\nknd = 'attention'\n")
    e = error(load_config, Train, [a, b])
    assert e.exit_code == 1
    assert "unknown key 'fusion.knd'" in e.what
    assert e.at == f"{b}:$.fusion.knd"
    assert "name" in e.hint and "dim" in e.hint  # the keys that do exist there


def test_unknown_top_level_key_from_set_names_the_set(tmp_path):
    a = toml(tmp_path, "a.toml", "lr = 0.1\n")
    e = error(load_config, Train, [a], ["bogus=1"])
    assert "unknown key 'bogus'" in e.what
    assert e.at == "--set bogus=1:$.bogus"


def test_bad_type_in_file_names_the_file(tmp_path):
    a = toml(tmp_path, "a.toml", "lr = 0.1\n[fusion]\ndim = 'big'\n")
    b = toml(tmp_path, "b.toml", "[fusion]\nname = 'attention'\n")
    e = error(load_config, Train, [a, b])
    # fusion.dim came from a.toml even though b.toml touched [fusion] later
    assert e.at == f"{a}:$.fusion.dim"
    assert "fusion.dim" in e.what and "int" in e.what


def test_bad_type_from_set_names_the_set(tmp_path):
    a = toml(tmp_path, "a.toml", "lr = 0.1\n[fusion]\ndim = 64\n")
    e = error(load_config, Train, [a], ["fusion.dim=big"])
    assert e.at == "--set fusion.dim=big:$.fusion.dim"
    # TOML typing: `true` is a bool, not the string "true"
    e = error(load_config, Train, [a], ["fusion.name=true"])
    assert e.at == "--set fusion.name=true:$.fusion.name"


def test_bad_list_item_and_dict_value_name_their_origin(tmp_path):
    # one file in play, so a lookup that failed would wrongly fall back to naming a.toml
    a = toml(tmp_path, "a.toml", "lr = 0.1\n")
    e = error(load_config, Train, [a], ["tags=[1]"])
    assert e.at == "--set tags=[1]:$.tags[0]"
    e = error(load_config, Train, [a], ['weights.joy="x"'])
    assert e.at == '--set weights.joy="x":$.weights[...]'
    assert "weights" in e.what
    b = toml(tmp_path, "b.toml", "tags = ['ok', 2]\n")
    e = error(load_config, Train, [a, b])
    assert e.at == f"{b}:$.tags[1]"


def test_missing_required_key(tmp_path):
    a = toml(tmp_path, "a.toml", "epochs = 3\n")
    e = error(load_config, Train, [a])
    assert "missing required key 'lr'" in e.what
    assert e.at == f"{a}:$.lr"
    assert e.hint
    # nested: [data] given without its required root; the section's file is named
    b = toml(tmp_path, "b.toml", "lr = 1.0\n[data]\nbatch = 4\n")
    e = error(load_config, Train, [a, b])
    assert "missing required key 'data.root'" in e.what
    assert e.at == f"{b}:$.data.root"
    # no file at all: the key path alone
    e = error(load_config, Train, [])
    assert e.at == "$.lr"


def test_malformed_toml_names_the_file(tmp_path):
    a = toml(tmp_path, "broken.toml", "lr = = 0.1\n")
    e = error(load_config, Train, [a])
    assert e.at == str(a)
    assert e.what.startswith("malformed TOML")
    assert e.hint


def test_missing_config_file(tmp_path):
    e = error(load_config, Train, [tmp_path / "nope.toml"])
    assert e.at == str(tmp_path / "nope.toml") and "not found" in e.what


def test_non_utf8_config_names_the_file(tmp_path):
    p = tmp_path / "latin.toml"
    p.write_bytes(b"name = '\xe9'\n")
    e = error(load_config, Train, [p])
    assert e.at == str(p) and "UTF-8" in e.what and e.hint


def test_to_dict_round_trips(tmp_path):
    cfg = load_config(Train, [], ["lr=0.5", "fusion.dim=3"])
    d = to_dict(cfg)
    assert d["fusion"] == {"name": "concat", "dim": 3}
    assert load_config(Train, base=d) == cfg


def test_to_dict_is_plain_json_data():
    class WithTuple(Config, frozen=True):
        encodings: tuple[str, ...] = ("utf-8", "cp1252")
        inner: Fusion = Fusion()

    d = to_dict(WithTuple())
    # a tuple comes back as the list a reader of the JSON message would see
    assert d == {"encodings": ["utf-8", "cp1252"], "inner": {"name": "concat", "dim": 128}}
    assert type(d["encodings"]) is list


def test_a_table_naming_another_kind_replaces_the_old_one(tmp_path):
    f = tmp_path / "a.toml"
    f.write_text('[fusion]\nkind = "deep"\nhidden = 512\n[train]\nlr = 0.1\n')
    data, origins = merge_sources([f], ["fusion.kind=attention", "train.epochs=3"])
    assert data["fusion"] == {"kind": "attention"}  # deep's hidden is gone
    assert "fusion.hidden" not in origins
    assert data["train"] == {"lr": 0.1, "epochs": 3}  # other tables still merge key by key
    same, _ = merge_sources([f], ["fusion.kind=deep", "fusion.layers=1"])
    assert same["fusion"] == {"kind": "deep", "hidden": 512, "layers": 1}
