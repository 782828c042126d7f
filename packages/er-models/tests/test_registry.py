"""The registry is open (a part registered here builds like a built-in one), strict (a name is
registered once; kinds and keys are checked) and round-trips (resolve -> to_dict -> resolve)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import er_models
import pytest
import torch
from er_core import Config, ErError
from er_models import FusionInputs, build_model, count_params, parse_network, register, resolve
from er_models.registry import _PARTS, FAMILIES
from msgspec import Meta
from torch import nn


class GatedSumConfig(Config, frozen=True):
    scale: Annotated[float, Meta(gt=0)] = 1.0  # multiplies the gated sum


class GatedSum(nn.Module):
    """Per-modality scalar gates, then a sum over the present modalities: (N, M, W) -> (N, W)."""

    def __init__(self, cfg: GatedSumConfig, inputs: FusionInputs) -> None:
        super().__init__()
        self.scale = cfg.scale
        self.gate = nn.Parameter(torch.ones(len(inputs.modalities)))
        self.out_dim = inputs.width

    def forward(self, tokens: torch.Tensor, present: torch.Tensor):
        w = self.gate * present.float()  # (N, M)
        return self.scale * (w.unsqueeze(-1) * tokens).sum(1), {}  # (N, W)


@contextmanager
def registered_gated_sum() -> Iterator[str]:
    """A fusion registered under a fresh name, removed again so no other test sees it."""
    name = f"test-gated-sum-{uuid.uuid4().hex[:8]}"

    @register("fusion", name, GatedSumConfig)
    def _build(cfg: GatedSumConfig, inputs: FusionInputs) -> nn.Module:
        """A test fusion: gated sum of the modality tokens."""
        return GatedSum(cfg, inputs)

    try:
        yield name
    finally:
        del _PARTS["fusion"][name]


@pytest.fixture
def gated_sum():
    with registered_gated_sum() as name:
        yield name


DIMS = {"text": 12, "audio": 6}


def test_a_part_registered_outside_the_package_builds_through_a_config(gated_sum):
    assert gated_sum in er_models.names("fusion")
    data = {"model": {"width": 8}, "fusion": {"kind": gated_sum, "scale": 2.0}}
    spec = parse_network(data, DIMS, {"emotion": 4})
    model = build_model(spec)
    assert isinstance(model.fusion, GatedSum) and model.fusion.scale == 2.0
    assert count_params(model)["fusion"] == 2  # one gate per modality
    assert model.head.out["emotion"][-1].in_features == 8  # the head reads the fusion's out_dim

    n = 5
    feats = {"text": torch.randn(n, 12), "audio": torch.randn(n, 6)}
    present = torch.ones(n, 2, dtype=torch.bool)
    layout = torch.arange(n).view(1, n)
    out = model.eval()(feats, present, layout, torch.zeros(1, n, dtype=torch.long))
    assert out.outputs["emotion"].shape == (n, 4)

    other = parse_network(
        {**data, "fusion": {"kind": gated_sum, "scale": 3.0}}, DIMS, {"emotion": 4}
    )
    assert other.hash != spec.hash  # its options are part of the network hash


def test_the_registered_part_is_validated_like_a_builtin(gated_sum):
    with pytest.raises(ErError) as e:
        resolve("fusion", {"kind": gated_sum, "scale": 0.0})
    assert "scale" in e.value.what and e.value.at == "$.fusion.scale"
    with pytest.raises(ErError) as e:
        resolve("fusion", {"kind": gated_sum, "scael": 2.0})
    assert e.value.what == f"fusion '{gated_sum}': unknown key 'scael'"
    assert e.value.hint == "known keys here: scale"


def test_a_name_is_registered_once(gated_sum):
    with pytest.raises(ValueError, match="registered twice"):
        register("fusion", gated_sum, GatedSumConfig)(lambda cfg, inputs: None)
    assert (
        er_models.parts("fusion")[gated_sum].doc
        == "A test fusion: gated sum of the modality tokens."
    )


def test_builtin_names_cannot_be_taken():
    name = er_models.names("fusion")[0]
    with pytest.raises(ValueError, match="registered twice"):
        register("fusion", name, GatedSumConfig)(lambda cfg, inputs: None)


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown part family"):
        register("encoder", "x", GatedSumConfig)


def test_the_test_part_is_removed_afterwards():
    with registered_gated_sum() as name:
        assert name in er_models.names("fusion")
    assert name not in er_models.names("fusion")
    with pytest.raises(ErError, match="unknown fusion"):
        resolve("fusion", {"kind": name})


def test_resolve_fills_defaults():
    r = resolve("fusion", {"kind": "deep", "hidden": 64})
    assert (r.family, r.kind) == ("fusion", "deep")
    assert r.to_dict() == {"kind": "deep", "hidden": 64, "layers": 2, "dropout": 0.1}


@pytest.mark.parametrize(("family", "name"), [(f, n) for f in FAMILIES for n in er_models.names(f)])
def test_to_dict_round_trips_for_every_part(family, name):
    r = resolve(family, {"kind": name})  # every option has a default
    again = resolve(family, r.to_dict())
    assert again == r and again.to_dict() == r.to_dict()


@pytest.mark.parametrize("section", [{}, {"kind": ""}, {"kind": 3}, {"hidden": 64}])
def test_a_section_without_a_kind_is_an_error_listing_the_kinds(section):
    origins = {"fusion": "net.toml", **{f"fusion.{k}": "net.toml" for k in section}}
    with pytest.raises(ErError) as e:
        resolve("fusion", section, origins)
    assert e.value.what == "[fusion] has no kind" and e.value.at == "net.toml:$.fusion.kind"
    assert all(n in e.value.hint for n in er_models.names("fusion"))


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(ErError) as e:
        resolve("head", {"kind": "softmax"})
    assert e.value.what == "unknown head 'softmax'" and e.value.at == "$.head.kind"
    assert e.value.hint == f"known: {', '.join(er_models.names('head'))}"
