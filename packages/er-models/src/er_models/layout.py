"""Utterances in their dialogues: the grouping and the (B, T) batch layout a context model reads.

er-train batches with it, and er-eval's `predict` rebuilds exactly the same batches from a table,
so a run's outputs can be reproduced outside training. Plain numpy and torch, no table library:
callers pass the table's columns as arrays.

    rows of a table  --dialogue_order-->   rows sorted: dialogue by dialogue, turns in order
                     --group_dialogues-->  Groups: group g = rows[start[g] : start[g] + length[g]]
                     --speaker_slots-->    (n,) dialogue-local speaker slot of each row
    Groups + picked groups --make_layout--> rows (N,), layout (B, T), speakers (B, T)

Dialogues come in order of first appearance in the table; within a dialogue rows are sorted by
turn (ties: table order). A speaker's slot is its order of first appearance, in turn order,
within its dialogue (0 = the first to speak).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch


@dataclass
class Groups:
    """Utterances grouped for batching: group g holds rows `rows[start[g] : start[g] +
    length[g]]` (table row indices), in turn order."""

    rows: np.ndarray  # (n,) int64 row indices into the table, grouped
    start: np.ndarray  # (G,) int64
    length: np.ndarray  # (G,) int64

    @property
    def groups(self) -> int:
        return int(self.start.size)

    @property
    def size(self) -> int:
        return int(self.rows.size)


class Layout(NamedTuple):
    """A batch of groups: the rows to gather and where each sits in its dialogue."""

    rows: torch.Tensor  # (N,) long: table rows of the batch's utterances, group by group
    layout: torch.Tensor  # (B, T) long: position in `rows` of turn t of group b, -1 = padding
    speakers: torch.Tensor  # (B, T) long: speaker slot, capped at max_speakers - 1; 0 at padding


def appearance_codes(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """(n,) int64: each value's rank of first appearance (any hashable values, None included)."""
    seen: dict[Any, int] = {}
    return np.fromiter(
        (seen.setdefault(v, len(seen)) for v in _items(values)), np.int64, count=len(values)
    )


def _items(values: Sequence[Any] | np.ndarray) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def dialogue_order(
    dialogue: Sequence[Any] | np.ndarray, turn: Sequence[Any] | np.ndarray
) -> np.ndarray:
    """(n,) int64: every row, dialogues in order of first appearance, each sorted by turn (ties
    keep table order)."""
    n = len(dialogue)
    turns = np.asarray(turn)
    if turns.shape != (n,):
        raise ValueError(f"turn has shape {turns.shape}, dialogue has {n} rows")
    # lexsort: the last key sorts first
    return np.lexsort((np.arange(n), turns, appearance_codes(dialogue))).astype(np.int64)


def group_runs(rows: np.ndarray, dialogue_codes: np.ndarray) -> Groups:
    """Groups of `rows` (already in dialogue order): one per run of equal dialogue codes."""
    rows = np.asarray(rows, np.int64)
    keys = np.asarray(dialogue_codes)[rows]
    if rows.size == 0:
        empty = np.zeros(0, np.int64)
        return Groups(rows, empty, empty.copy())
    start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]).astype(np.int64)  # (G,)
    length = np.diff(np.r_[start, rows.size]).astype(np.int64)
    return Groups(rows, start, length)


def group_dialogues(
    dialogue: Sequence[Any] | np.ndarray,
    turn: Sequence[Any] | np.ndarray,
    keep: np.ndarray | None = None,
) -> Groups:
    """The rows where `keep` (bool (n,), default all) grouped by dialogue, in dialogue order.

    Dialogues are ordered by their first row in the WHOLE table, so a split's groups come in the
    same order whether or not the other splits are there."""
    order = dialogue_order(dialogue, turn)
    if keep is not None:
        keep = np.asarray(keep, bool)
        order = order[keep[order]]
    return group_runs(order, appearance_codes(dialogue))


def groups_by_split(
    dialogue: Sequence[Any] | np.ndarray,
    turn: Sequence[Any] | np.ndarray,
    split: Sequence[Any] | np.ndarray,
    names: Sequence[str],
) -> dict[str, Groups]:
    """`group_dialogues` for each split in `names` (a split with no rows: an empty Groups). A
    dialogue whose rows fall in several splits is a group in each: a split never sees another's
    utterances as context."""
    order, dia = dialogue_order(dialogue, turn), appearance_codes(dialogue)
    where = np.asarray(_items(split), dtype=object)[order]
    return {name: group_runs(order[where == name], dia) for name in names}


def single_groups(rows: np.ndarray) -> Groups:
    """One group per row, in the given order (no dialogue context)."""
    rows = np.asarray(rows, np.int64)
    return Groups(rows, np.arange(rows.size, dtype=np.int64), np.ones(rows.size, np.int64))


def speaker_slots(
    dialogue: Sequence[Any] | np.ndarray,
    turn: Sequence[Any] | np.ndarray,
    speaker: Sequence[Any] | np.ndarray,
) -> np.ndarray:
    """(n,) int64: each row's speaker slot, its order of first appearance (in turn order) among
    the speakers of its dialogue. Not capped: `make_layout` caps."""
    dia = appearance_codes(dialogue)
    spk = _items(speaker)
    slots = np.zeros(len(spk), np.int64)
    seen: dict[tuple[int, Any], int] = {}
    count: dict[int, int] = {}
    for r in dialogue_order(dialogue, turn).tolist():
        d = int(dia[r])
        key = (d, spk[r])
        if key not in seen:
            seen[key] = count.get(d, 0)
            count[d] = seen[key] + 1
        slots[r] = seen[key]
    return slots


def make_layout(
    groups: Groups,
    picked: np.ndarray,
    speakers: torch.Tensor | np.ndarray,
    max_speakers: int,
) -> Layout:
    """The batch of groups `picked` (indices into `groups`, in batch order).

    `speakers` (n,) holds every table row's slot (see `speaker_slots`); slots from
    `max_speakers - 1` on share the last one."""
    picked = np.asarray(picked, np.int64)
    starts, lengths = groups.start[picked], groups.length[picked]
    n = int(lengths.sum())
    # rows of each group, concatenated: offsets within each group added to its start
    group_of = np.repeat(np.arange(picked.size), lengths)  # (N,)
    offset = np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # (N,) turn index
    rows = torch.from_numpy(groups.rows[starts[group_of] + offset])
    t = int(lengths.max()) if lengths.size else 0
    layout = torch.full((picked.size, t), -1, dtype=torch.long)
    where = (torch.from_numpy(group_of), torch.from_numpy(offset))
    layout[where] = torch.arange(n)
    spk = torch.zeros((picked.size, t), dtype=torch.long)
    spk[where] = torch.as_tensor(speakers)[rows].clamp(max=max_speakers - 1)
    return Layout(rows, layout, spk)
