"""What every fusion gets and returns.

A fusion factory is called as `build(cfg, FusionInputs)` and returns an `nn.Module` with an
`out_dim` attribute whose forward maps

    tokens (N, M, W), present (N, M) bool  ->  (h (N, out_dim), aux: {name: scalar loss})

where N counts utterances (never padding), M modalities in T, A, V order and W the shared width.
`present[i, m]` is False where modality m of utterance i is missing: its token is the learned
missing vector (see projection.py), and attention-based fusions also mask it as a key. `aux`
holds the part's own weighted training losses (load balancing, orthogonality), summed into the
objective by the trainer; it is empty for most fusions.

Rule for every fusion: each utterance's output depends on that utterance alone (no batch
statistics, no attention across the N axis), so a prediction never changes with its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FusionInputs:
    modalities: list[str]  # in T, A, V order
    width: int  # W, the projected width of every token


Aux = dict[str, torch.Tensor]


def key_mask(present: torch.Tensor) -> torch.Tensor:
    """The `key_padding_mask` for attention over modalities: True = ignore this key.

    An utterance with no modality present keeps all its (missing-vector) keys, so attention
    never normalises over an empty set (which would give NaN).
    """
    none = ~present.any(dim=1, keepdim=True)  # (N, 1)
    return ~(present | none)
