"""er_models.layout: dialogue grouping, speaker slots and the (B, T) batch layout."""

from __future__ import annotations

import er_models
import numpy as np
import pytest
import torch
from er_models.context import from_padded, to_padded
from er_models.layout import (
    Groups,
    appearance_codes,
    dialogue_order,
    group_dialogues,
    group_runs,
    groups_by_split,
    make_layout,
    single_groups,
    speaker_slots,
)

# Rows out of order on purpose: dialogue "b" appears first (at its turn 1); in "b" speaker "x"
# has the first row but "y" speaks first (turn 0); "c" spans dev and test.
SPLIT = ["train", "train", "train", "dev", "train", "train", "test", "train", "dev"]
DIALOGUE = ["b", "a", "b", "c", "a", "b", "c", "a", "c"]
TURN = [1, 2, 0, 1, 0, 2, 0, 1, 2]
SPEAKER = ["x", "p", "y", "u", "q", "x", "v", "p", "v"]


def test_appearance_codes_rank_first_appearance_none_included():
    assert appearance_codes(["b", "a", "b", None, "a", None]).tolist() == [0, 1, 0, 2, 1, 2]
    assert appearance_codes(np.array([7, 3, 7])).tolist() == [0, 1, 0]
    assert appearance_codes([]).tolist() == []


def test_dialogue_order_first_appearance_then_turn_then_row():
    order = dialogue_order(DIALOGUE, TURN)
    # b (rows 2, 0, 5 by turn), a (4, 7, 1), c (6, 3, 8)
    assert order.tolist() == [2, 0, 5, 4, 7, 1, 6, 3, 8]
    assert order.dtype == np.int64
    # equal turns keep table order
    assert dialogue_order(["d", "d", "d"], [1, 0, 1]).tolist() == [1, 0, 2]
    with pytest.raises(ValueError):
        dialogue_order(["d", "d"], [0])


def test_group_dialogues_all_rows_and_a_mask():
    g = group_dialogues(DIALOGUE, TURN)
    assert g.rows.tolist() == [2, 0, 5, 4, 7, 1, 6, 3, 8]
    assert g.start.tolist() == [0, 3, 6] and g.length.tolist() == [3, 3, 3]
    assert (g.groups, g.size) == (3, 9)
    dev = group_dialogues(DIALOGUE, TURN, np.array(SPLIT) == "dev")
    assert dev.rows.tolist() == [3, 8] and dev.length.tolist() == [2]


def test_groups_by_split_orders_by_first_row_of_the_whole_table():
    # "c" first appears at row 3 (dev) but its test row is row 6; "a" has no test row
    split = ["train", "test", "train", "dev", "train", "train", "test", "train", "dev"]
    out = groups_by_split(DIALOGUE, TURN, split, ["train", "dev", "test", "other"])
    assert list(out) == ["train", "dev", "test", "other"]
    assert out["train"].rows.tolist() == [2, 0, 5, 4, 7]
    assert out["train"].length.tolist() == [3, 2]
    assert out["dev"].rows.tolist() == [3, 8]  # c's dev rows, without its test row
    assert out["test"].rows.tolist() == [1, 6] and out["test"].length.tolist() == [1, 1]
    assert out["other"].groups == 0 and out["other"].size == 0
    assert out["other"].rows.dtype == out["other"].start.dtype == np.int64


def test_group_runs_splits_on_code_changes_only():
    g = group_runs(np.array([4, 5, 0, 1, 2]), np.array([1, 1, 1, 0, 0, 0]))
    assert g.start.tolist() == [0, 2] and g.length.tolist() == [2, 3]


def test_single_groups_one_per_row():
    s = single_groups(np.array([5, 2, 9]))
    assert s.rows.tolist() == [5, 2, 9]
    assert s.start.tolist() == [0, 1, 2] and s.length.tolist() == [1, 1, 1]


def test_speaker_slots_order_of_first_turn_within_each_dialogue():
    # b: y (turn 0) = 0, x = 1;  a: q (turn 0) = 0, p = 1;  c: v (turn 0) = 0, u = 1
    assert speaker_slots(DIALOGUE, TURN, SPEAKER).tolist() == [1, 1, 0, 1, 0, 1, 0, 1, 0]
    # the same name in two dialogues gets each dialogue's own slot; None is a speaker too
    slots = speaker_slots(["d", "d", "e", "e", "d"], [0, 1, 0, 1, 2], ["a", None, "b", "a", "c"])
    assert slots.tolist() == [0, 1, 0, 1, 2]


# Three groups over a 10-row table: rows [5, 6, 7], [2, 3] and [9], in turn order.
GROUPS = Groups(
    rows=np.array([5, 6, 7, 2, 3, 9], np.int64),
    start=np.array([0, 3, 5], np.int64),
    length=np.array([3, 2, 1], np.int64),
)
SLOTS = torch.tensor([0, 0, 1, 0, 0, 0, 1, 2, 0, 1])  # slot of each table row


def test_make_layout_rows_layout_and_speakers():
    rows, layout, spk = make_layout(GROUPS, np.array([2, 0, 1]), SLOTS, max_speakers=8)
    assert rows.tolist() == [9, 5, 6, 7, 2, 3]  # group 2, 0, 1, each in turn order
    assert layout.tolist() == [[0, -1, -1], [1, 2, 3], [4, 5, -1]]  # (B=3, T=3)
    assert spk.tolist() == [[1, 0, 0], [0, 1, 2], [1, 0, 0]]  # 0 at padding
    assert rows.dtype == layout.dtype == spk.dtype == torch.long


def test_make_layout_caps_speakers_and_takes_numpy_slots():
    out = make_layout(GROUPS, np.array([0]), SLOTS.numpy(), max_speakers=2)
    assert out.speakers.tolist() == [[0, 1, 1]]  # slot 2 shares the last slot, 1
    empty = make_layout(GROUPS, np.zeros(0, np.int64), SLOTS, max_speakers=2)
    assert empty.rows.numel() == 0 and tuple(empty.layout.shape) == (0, 0)


def test_make_layout_places_every_turn_where_a_context_model_reads_it():
    """Random tables: gathering rows then padding with the layout puts turn t of dialogue b at
    [b, t], and from_padded undoes it (the contract er_models.context relies on)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 60))
        dialogue = [f"d{x}" for x in rng.integers(0, 8, n)]
        turn = rng.integers(0, 6, n)
        split = rng.choice(["train", "dev"], n).tolist()
        slots = speaker_slots(dialogue, turn, rng.integers(0, 4, n).tolist())
        for name, g in groups_by_split(dialogue, turn, split, ["train", "dev"]).items():
            # each split's rows, every one once
            assert sorted(g.rows.tolist()) == np.flatnonzero(np.array(split) == name).tolist()
            if not g.groups:
                continue
            picked = rng.permutation(g.groups)
            rows, layout, spk = make_layout(g, picked, slots, max_speakers=3)
            h = torch.from_numpy(rows.numpy().astype(np.float32)).view(-1, 1)  # (N, 1) = row id
            padded = to_padded(h, layout)  # (B, T, 1)
            for b, grp in enumerate(picked):
                want = g.rows[g.start[grp] : g.start[grp] + g.length[grp]]
                assert padded[b, : want.size, 0].long().tolist() == want.tolist()
                assert len({dialogue[r] for r in want}) == 1
                assert list(turn[want]) == sorted(turn[want])
                assert spk[b, : want.size].tolist() == np.minimum(slots[want], 2).tolist()
            assert torch.equal(from_padded(padded, layout), h)


def test_exported_lazily():
    for name in ("Groups", "Layout", "make_layout", "groups_by_split", "speaker_slots"):
        assert name in er_models.__all__
        assert getattr(er_models, name) is getattr(er_models.layout, name)
