"""Loading tensors into a network checks every name and shape first."""

from __future__ import annotations

import pytest
import torch
from er_core import ErError
from er_models.weights import load_state
from torch import nn


def test_matching_tensors_load():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    load_state(b, a.state_dict(), "w.safetensors", "x", "y")
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


@pytest.mark.parametrize(
    ("tensors", "key", "got"),
    [
        ({"weight": torch.zeros(2, 4), "bias": torch.zeros(2)}, "weight", "(2, 4)"),
        ({"weight": torch.zeros(2, 3)}, "bias", "absent"),
        (
            {"weight": torch.zeros(2, 3), "bias": torch.zeros(2), "extra": torch.zeros(1)},
            "extra",
            "(1,)",
        ),
    ],
)
def test_a_mismatch_names_the_tensor_and_leaves_the_model_alone(tensors, key, got):
    model = nn.Linear(3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ErError) as e:
        load_state(model, tensors, "w.safetensors", "weights do not fit", "retrain")
    assert f"'{key}' is {got} there" in e.value.what and e.value.at == "w.safetensors"
    assert e.value.hint == "retrain"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
