"""Batches as index slices: a list of groups (dialogues, or single utterances) becomes the rows
to gather and the (B, T) layout a context model needs.

The order of training batches comes from a generator seeded with (seed, epoch) alone, so a run
resumed mid-epoch replays exactly the batches it had left.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from er_models.layout import make_layout

from er_train.data import Split


@dataclass
class Batch:
    rows: torch.Tensor  # (N,) long: table rows of the batch's utterances, group by group
    layout: torch.Tensor  # (B, T) long: position in `rows` of turn t of group b, -1 = padding
    speakers: torch.Tensor  # (B, T) long: dialogue-local speaker slot (0 at padding)


def make_batch(
    split: Split, groups: np.ndarray, speakers: torch.Tensor, max_speakers: int
) -> Batch:
    return Batch(*make_layout(split, groups, speakers, max_speakers))


def epoch_order(split: Split, seed: int, epoch: int) -> np.ndarray:
    """A permutation of the split's groups that depends on (seed, epoch) only."""
    rng = np.random.default_rng([seed, epoch])
    return rng.permutation(split.groups)


def iter_batches(
    split: Split,
    order: np.ndarray,
    batch_size: int,
    speakers: torch.Tensor,
    max_speakers: int,
    skip: int = 0,
) -> Iterator[Batch]:
    """Batches of `batch_size` groups taken from `order`, skipping the first `skip` batches."""
    for b in range(skip * batch_size, order.size, batch_size):
        yield make_batch(split, order[b : b + batch_size], speakers, max_speakers)


def count_batches(split: Split, batch_size: int) -> int:
    return -(-split.groups // batch_size)
