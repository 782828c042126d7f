"""Loading saved tensors into a network: every name and shape is checked first, so weights of
another network are one clear error rather than a torch traceback."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from er_core import ErError
from torch import nn


def check_state(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], path: str, what: str, hint: str
) -> None:
    """Raise an ErError naming the first tensor whose name or shape differs from `model`'s."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    for key in sorted(want.keys() | got.keys()):
        if want.get(key) != got.get(key):
            raise ErError(
                f"{what}: '{key}' is {got.get(key, 'absent')} there and "
                f"{want.get(key, 'absent')} here",
                at=path,
                hint=hint,
            )


def load_state(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], path: str, what: str, hint: str
) -> None:
    """`check_state`, then load the tensors into `model`."""
    check_state(model, tensors, path, what, hint)
    model.load_state_dict(dict(tensors))
