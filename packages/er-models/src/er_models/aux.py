"""Auxiliary objectives on the network's representations: the `aux` part family.

Each `[aux.NAME]` table adds one objective to the run, weighted and summed into the training
loss; its `kind` defaults to NAME, so

    [aux.spcl]
    weight = 0.1
    temperature = 0.08

adds SPCL. A factory is called as `build(cfg, AuxInputs)` and returns an `nn.Module` mapping
`Views` -> an unweighted scalar loss; the model multiplies it by the config's `weight`.

Objectives run on training batches only: the model calls them in training mode with the batch's
targets and never in a dev or test pass, so pools, queues and prototypes (buffers, saved with the
weights) change only while training. A module must also leave its state alone when called in
eval mode. Losses are computed in float32 whatever the autocast precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from er_core import Config, ErError, NonNegativeFloat


class AuxConfig(Config, frozen=True):
    """Every objective's config derives from this one."""

    weight: NonNegativeFloat = 0.1  # of this objective in the training loss


@dataclass(frozen=True)
class AuxInputs:
    modalities: list[str]  # in T, A, V order
    width: int  # W: each modality token's width
    fused: int  # F: the fusion's output width
    dim: int  # D: the width of the representation the head reads (the context output)
    classes: int  # classes of the main task; 0 when it is a regression task


@dataclass
class Views:
    """What an objective sees of one training batch of N utterances."""

    z: torch.Tensor  # (N, D) the representation the head reads
    h: torch.Tensor  # (N, F) the fused representation, before the context model
    tokens: torch.Tensor  # (N, M, W) projected modality tokens (missing ones: learned vector)
    present: torch.Tensor  # (N, M) bool
    target: torch.Tensor  # (N,) the main task's targets (class index, or value)
    progress: float  # share of training done, in [0, 1]: for curricula


def needs_classes(kind: str, inputs: AuxInputs) -> None:
    """Supervised contrastive objectives need class labels."""
    if inputs.classes < 2:
        raise ErError(
            f"aux '{kind}' needs a classification task with 2 or more classes",
            at=f"$.aux.{kind}",
            hint="use it with an emotion or sentiment task, or drop it for a regression task",
        )
