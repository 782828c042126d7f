"""Batches as index slices: a list of groups (dialogues, or single utterances) becomes the rows
to gather and the (B, T) layout a context model needs.

The training batches of an epoch come from generators seeded with (seed, epoch) alone, so a run
resumed mid-epoch replays exactly the batches it had left. Two ways to cut an epoch:
- `batch_size` groups per batch, from a random permutation of the groups;
- a token budget (`train.tokens`, runs that train a text encoder): the groups of each pool of
  `POOL` batch sizes, taken in permuted order, are sorted by prompt length and cut into batches
  of at most `batch_size` groups whose padded size (rows x longest prompt) stays within the
  budget; the batches are then shuffled. Prompts of like length share a batch, so little of
  each encoder forward is padding, and short utterances make bigger batches than long ones.
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


POOL = 50  # batch sizes of groups sorted together by length (the rest of the order is random)


def group_widths(split: Split, lengths: np.ndarray) -> np.ndarray:
    """(groups,) each group's longest prompt, `lengths` being every table row's prompt length."""
    rows = lengths[split.rows]
    return np.array(
        [rows[a : a + n].max() for a, n in zip(split.start, split.length, strict=True)],
        dtype=np.int64,
    ).reshape(-1)


def budget_batches(
    split: Split, order: np.ndarray, batch_size: int, tokens: int, lengths: np.ndarray, rng
) -> list[np.ndarray]:
    """`order` cut into length-bucketed batches within `tokens` padded tokens (module docstring);
    a group wider than the budget makes a batch alone."""
    width, count = group_widths(split, lengths), split.length
    out: list[np.ndarray] = []
    step = POOL * batch_size
    for p in range(0, order.size, step):
        pool = order[p : p + step]
        pool = pool[np.argsort(width[pool], kind="stable")]
        batch: list[int] = []
        rows = wide = 0
        for g in pool.tolist():
            w, n = max(wide, int(width[g])), rows + int(count[g])
            if batch and (len(batch) >= batch_size or w * n > tokens):
                out.append(np.array(batch, dtype=np.int64))
                batch, rows, wide = [], 0, 0
                w, n = int(width[g]), int(count[g])
            batch.append(g)
            rows, wide = n, w
        if batch:
            out.append(np.array(batch, dtype=np.int64))
    return [out[i] for i in rng.permutation(len(out))]


def epoch_batches(
    split: Split,
    seed: int,
    epoch: int,
    batch_size: int,
    tokens: int = 0,
    lengths: np.ndarray | None = None,
) -> list[np.ndarray]:
    """The epoch's training batches, each an array of group indices, in training order: fixed
    `batch_size` batches, or with `tokens` > 0 budgeted ones over the rows' prompt `lengths`."""
    order = epoch_order(split, seed, epoch)
    if not tokens:
        return [order[b : b + batch_size] for b in range(0, order.size, batch_size)]
    if lengths is None:
        raise ValueError("a token budget needs each row's prompt length")
    rng = np.random.default_rng([seed, epoch, 1])
    return budget_batches(split, order, batch_size, tokens, lengths, rng)


def count_steps(
    split: Split,
    seed: int,
    epochs: int,
    batch_size: int,
    accumulation: int,
    tokens: int = 0,
    lengths: np.ndarray | None = None,
) -> int:
    """Optimizer steps over `epochs` epochs (the schedule's length)."""
    if not tokens:
        return epochs * -(-count_batches(split, batch_size) // accumulation)
    return sum(
        -(-len(epoch_batches(split, seed, e, batch_size, tokens, lengths)) // accumulation)
        for e in range(epochs)
    )


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
