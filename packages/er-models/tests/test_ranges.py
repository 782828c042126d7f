"""Every numeric option of every part (and of `[model]`) carries its range in the schema: a
value out of range, NaN or inf is an error naming the key when the config is read, before any
data is loaded or any network built (issue 12, classes 2 and 8)."""

from __future__ import annotations

import math

import er_models as em
import msgspec
import msgspec.inspect as mi
import pytest
from er_core import ErError
from er_models.describe import list_parts

# a part's numeric fields: (family, part, field, msgspec type)
FIELDS = [
    (family, name, f.name, f.type)
    for family in em.registry.FAMILIES
    for name, part in em.parts(family).items()
    for f in mi.type_info(part.config).fields
    if isinstance(f.type, mi.IntType | mi.FloatType)
]
MODEL = [
    ("model", f.name, f.type)
    for f in mi.type_info(em.ModelSection).fields
    if isinstance(f.type, mi.IntType | mi.FloatType)
]


def _section(family: str, name: str, key: str, value) -> dict:
    return {"kind": name, key: value}


def _below(t: mi.IntType | mi.FloatType):
    """A value just under the field's lower bound."""
    if t.ge is not None:
        return t.ge - 1 if isinstance(t, mi.IntType) else math.nextafter(t.ge, -math.inf)
    return t.gt  # gt excludes the bound itself


def test_every_part_has_numeric_fields_to_check():
    assert len(FIELDS) > 30 and {f for f, *_ in FIELDS} == {
        "fusion",
        "context",
        "head",
        "loss",
        "aux",
    }


@pytest.mark.parametrize(("family", "name", "key", "t"), FIELDS, ids=lambda v: str(v)[:20])
def test_every_numeric_option_has_a_lower_bound_and_refuses_below_it(family, name, key, t):
    assert t.ge is not None or t.gt is not None, f"{family} {name}.{key} has no range"
    with pytest.raises(ErError) as e:
        em.resolve(family, _section(family, name, key, _below(t)), {f"{family}.{key}": "x.toml"})
    assert key in e.value.what and e.value.at == f"x.toml:$.{family}.{key}" and e.value.hint


@pytest.mark.parametrize(
    ("family", "name", "key"),
    [(f, n, k) for f, n, k, t in FIELDS if isinstance(t, mi.FloatType)],
    ids=lambda v: str(v)[:20],
)
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_every_float_option_refuses_nan_and_inf(family, name, key, bad):
    with pytest.raises(ErError) as e:
        em.resolve(family, _section(family, name, key, bad))
    assert f"'{key}'" in e.value.what and e.value.at == f"$.{family}.{key}"


@pytest.mark.parametrize(("section", "key", "t"), MODEL)
def test_model_section_ranges(section, key, t):
    assert t.ge is not None or t.gt is not None
    with pytest.raises(ErError) as e:
        em.check_sections({"model": {key: _below(t)}}, {"model": "net.toml"})
    assert e.value.what.startswith(f"bad value for 'model.{key}'")
    assert e.value.at == f"net.toml:$.model.{key}"


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"model": {"width": 0}}, "model.width"),
        ({"model": {"dropout": 2.0}}, "model.dropout"),
        ({"model": {"dropout": 1.0}}, "model.dropout"),  # drops everything
        ({"fusion": {"kind": "deep", "dropout": -0.1}}, "fusion.dropout"),
        ({"context": {"kind": "gru", "hidden": 0}}, "context.hidden"),
        ({"head": {"kind": "classification", "hidden": -1}}, "head.hidden"),
        ({"aux": {"supcon": {"temperature": 0.0}}}, "aux.supcon.temperature"),
        ({"aux": {"spcl": {"weight": -1.0}}}, "aux.spcl.weight"),
        ({"fusion": {"kind": "attention", "heads": 0}}, "fusion.heads"),
        ({"fusion": {"kind": "moe", "experts": 2, "top_k": 3}}, "fusion.top_k"),
        ({"context": {"kind": "transformer", "positions": "rotary"}}, "context.positions"),
    ],
)
def test_bad_sections_fail_before_any_input(sections, key):
    """check_sections needs no inputs: er-train calls it before it reads a feature."""
    with pytest.raises(ErError) as e:
        em.check_sections(sections)
    assert e.value.at.endswith(f"$.{key}") and e.value.hint
    assert "bug" not in e.value.hint


def test_an_enum_like_value_lists_the_choices():
    with pytest.raises(ErError) as e:
        em.check_sections({"loss": {}, "context": {"kind": "transformer", "positions": "rotary"}})
    assert "rotary" in e.value.what
    head, _, values = e.value.hint.partition(" is one of: ")
    assert head == "positions" and set(values.split(", ")) == {"learned", "sinusoidal", "none"}


def test_zero_width_features_are_refused():
    with pytest.raises(ErError) as e:
        em.parse_network({}, {"text": 0, "audio": 4}, {"emotion": 3})
    assert "text features have width 0" in e.value.what and e.value.hint


def test_describe_shows_ranges_without_the_float_limit():
    opts = {
        o["name"]: o["type"]
        for r in list_parts("fusion")
        if r["name"] == "moe"
        for o in r["options"]
    }
    assert opts["balance_weight"] == "float >= 0" and opts["dropout"] == "float in [0, 1)"
    assert msgspec.json.encode(opts)  # plain strings
