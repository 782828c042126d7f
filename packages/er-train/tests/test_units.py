"""Pure pieces of er_train, checked by hand: the LR schedule, batch layout, epoch order, dialogue
grouping and the dev-selection metric."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
import torch
from er_core import ErError
from er_train.batches import count_batches, epoch_order, iter_batches, make_batch
from er_train.data import Split, _groups
from er_train.schedule import lr_factor
from er_train.scoring import better, selection, task_metrics

# --- schedule --------------------------------------------------------------------------------


def test_warmup_is_linear_up_to_the_base_rate():
    # 100 steps, 10 % warmup: steps 0..9 climb 0.1, 0.2, ..., 1.0
    assert [lr_factor(s, 100, 0.1, "cosine") for s in range(10)] == pytest.approx(
        [0.1 * (s + 1) for s in range(10)]
    )
    assert lr_factor(10, 100, 0.1, "cosine") == pytest.approx(1.0)  # decay starts at the top


def test_cosine_is_half_at_the_midpoint_of_the_decay_and_reaches_zero():
    # warm = 10, span = 90: the midpoint of the decay is step 55
    assert lr_factor(55, 100, 0.1, "cosine") == pytest.approx(0.5)
    assert lr_factor(10 + 30, 100, 0.1, "cosine") == pytest.approx(0.75)  # cos(pi/3) = 0.5
    assert lr_factor(100, 100, 0.1, "cosine") == pytest.approx(0.0)
    assert lr_factor(500, 100, 0.1, "cosine") == pytest.approx(0.0)  # clamped past the end


def test_linear_decay_and_no_warmup():
    assert lr_factor(0, 40, 0.0, "linear") == pytest.approx(1.0)  # no warmup: full rate at once
    assert lr_factor(10, 40, 0.0, "linear") == pytest.approx(0.75)
    assert lr_factor(20, 40, 0.0, "linear") == pytest.approx(0.5)
    assert lr_factor(39, 40, 0.0, "linear") == pytest.approx(1 / 40)


def test_constant_after_warmup():
    assert lr_factor(1, 20, 0.25, "constant") == pytest.approx(2 / 5)  # warm = 5
    assert all(lr_factor(s, 20, 0.25, "constant") == 1.0 for s in range(5, 40))


def test_schedule_is_monotone_within_each_phase():
    f = [lr_factor(s, 50, 0.2, "cosine") for s in range(50)]
    assert all(a < b for a, b in itertools.pairwise(f[:10]))  # warmup: up
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))  # decay: down
    assert max(f) == pytest.approx(1.0) and min(f) > 0


# --- batches ---------------------------------------------------------------------------------

# Three groups over a 10-row table: rows [5, 6, 7], [2, 3] and [9], in turn order.
SPLIT = Split(
    rows=np.array([5, 6, 7, 2, 3, 9], np.int64),
    start=np.array([0, 3, 5], np.int64),
    length=np.array([3, 2, 1], np.int64),
)
SPEAKERS = torch.tensor([0, 0, 1, 0, 0, 0, 1, 2, 0, 1])  # dialogue-local slot of each table row


def test_make_batch_rows_layout_and_speakers():
    b = make_batch(SPLIT, np.array([2, 0]), SPEAKERS, max_speakers=8)
    assert b.rows.tolist() == [9, 5, 6, 7]  # group 2 then group 0, each in turn order
    assert b.layout.tolist() == [[0, -1, -1], [1, 2, 3]]  # (B=2, T=3): position in rows
    assert b.speakers.tolist() == [[1, 0, 0], [0, 1, 2]]  # 0 at padding
    # every real cell of the layout points at the row of that turn
    for g, group in enumerate([2, 0]):
        lo = SPLIT.start[group]
        for t in range(SPLIT.length[group]):
            assert b.rows[b.layout[g, t]] == SPLIT.rows[lo + t]


def test_make_batch_caps_speaker_slots():
    b = make_batch(SPLIT, np.array([0]), SPEAKERS, max_speakers=2)
    assert b.speakers.tolist() == [[0, 1, 1]]  # slot 2 shares the last slot, 1


def test_iter_batches_covers_the_order_and_skips_whole_batches():
    order = np.array([1, 2, 0])
    batches = list(iter_batches(SPLIT, order, 2, SPEAKERS, 8))
    assert [b.rows.tolist() for b in batches] == [[2, 3, 9], [5, 6, 7]]
    assert len(batches) == count_batches(SPLIT, 2) == 2
    skipped = list(iter_batches(SPLIT, order, 2, SPEAKERS, 8, skip=1))
    assert [b.rows.tolist() for b in skipped] == [[5, 6, 7]]


def test_epoch_order_depends_only_on_seed_and_epoch():
    big = Split(np.arange(50), np.arange(50), np.ones(50, np.int64))
    other = Split(np.arange(100, 150), np.arange(50), np.ones(50, np.int64))  # other rows
    a = epoch_order(big, seed=3, epoch=1)
    assert sorted(a.tolist()) == list(range(50))  # a permutation of the groups
    assert np.array_equal(a, epoch_order(big, 3, 1))  # the same call, the same order
    assert np.array_equal(a, epoch_order(other, 3, 1))  # nothing but (seed, epoch, groups) counts
    assert not np.array_equal(a, epoch_order(big, 3, 2))  # another epoch
    assert not np.array_equal(a, epoch_order(big, 4, 1))  # another seed
    # and no global RNG state leaks in
    np.random.seed(0)
    torch.manual_seed(0)
    assert np.array_equal(a, epoch_order(big, 3, 1))


# --- data: grouping --------------------------------------------------------------------------


def test_groups_order_dialogues_turns_and_speaker_slots():
    # The table's rows are out of order on purpose: dialogue "b" appears first (at its turn 1),
    # and within "b" speaker "x" has the first row but "y" speaks first (turn 0).
    table = pl.DataFrame(
        {
            "split": ["train", "train", "train", "dev", "train", "train", "dev", "train"],
            "dialogue": ["b", "a", "b", "c", "a", "b", "c", "a"],
            "turn": [1, 2, 0, 1, 0, 2, 0, 1],
            "speaker": ["x", "p", "y", "u", "q", "x", "v", "p"],
        }
    )
    dialogues, singles, speakers = _groups(table)
    tr = dialogues["train"]
    # dialogues in order of first appearance (b, a); rows sorted by turn within each
    assert tr.start.tolist() == [0, 3] and tr.length.tolist() == [3, 3]
    assert tr.rows.tolist() == [2, 0, 5, 4, 7, 1]
    dv = dialogues["dev"]
    assert dv.rows.tolist() == [6, 3] and dv.length.tolist() == [2]
    assert dialogues["test"].size == 0 and dialogues["test"].groups == 0
    # speaker slots: order of first appearance (in turn order) within each dialogue
    # b: y (turn 0) = 0, x = 1;  a: q (turn 0) = 0, p = 1;  c: v (turn 0) = 0, u = 1
    assert speakers.tolist() == [1, 1, 0, 1, 0, 1, 0, 1]
    # singles: one group per utterance, same row order
    s = singles["train"]
    assert s.rows.tolist() == tr.rows.tolist()
    assert s.start.tolist() == list(range(6)) and s.length.tolist() == [1] * 6


def test_groups_three_speakers_rows_in_reverse():
    table = pl.DataFrame(
        {
            "split": ["test"] * 5,
            "dialogue": ["d"] * 5,
            "turn": [4, 3, 2, 1, 0],
            "speaker": ["a", "c", "a", "b", "c"],
        }
    )
    dialogues, _, speakers = _groups(table)
    assert dialogues["test"].rows.tolist() == [4, 3, 2, 1, 0]
    # in turn order: c (0), b (1), a (2)
    assert speakers.tolist() == [2, 0, 2, 1, 0]


def test_load_data_groups_the_real_table(toy):
    from er_core import read_stream
    from er_train.data import load_data

    data = load_data(read_stream([str(toy.stream)]), [], "", [])
    t = toy.table
    assert data.ids == t["id"].to_list()
    assert data.modalities == ["text", "audio", "video"] and data.main == "emotion"
    for split in ("train", "dev", "test"):
        d, seen = data.dialogues[split], []
        assert sorted(d.rows.tolist()) == sorted(
            t.with_row_index().filter(pl.col("split") == split)["index"].to_list()
        )
        for g in range(d.groups):
            rows = d.rows[d.start[g] : d.start[g] + d.length[g]].tolist()
            assert len({t["dialogue"][r] for r in rows}) == 1  # one dialogue per group
            assert [t["turn"][r] for r in rows] == sorted(t["turn"][r] for r in rows)
            seen.append(t["dialogue"][rows[0]])
        in_split = t.filter(pl.col("split") == split)["dialogue"].to_list()
        assert seen == list(dict.fromkeys(in_split))  # order of first appearance
    assert data.present.all()  # imported features flag nothing as missing
    # the emotion target is the table's class index
    assert data.tasks["emotion"].target.tolist() == t["emotion"].to_list()


# --- scoring ---------------------------------------------------------------------------------

KNOWN = ["emotion/accuracy", "emotion/weighted_f1", "emotion/loss", "arousal/mae"]


def test_selection_defaults_and_directions():
    assert selection("", "emotion", False, KNOWN) == ("emotion/weighted_f1", True)
    assert selection("accuracy", "emotion", False, KNOWN) == ("emotion/accuracy", True)
    assert selection("loss", "emotion", False, KNOWN) == ("emotion/loss", False)
    assert selection("", "arousal", True, KNOWN) == ("arousal/mae", False)
    assert selection("arousal/mae", "emotion", False, KNOWN) == ("arousal/mae", False)


def test_selection_unknown_metric_is_a_clear_error():
    with pytest.raises(ErError) as e:
        selection("f1", "emotion", False, KNOWN)
    assert "unknown selection metric 'f1'" in e.value.what
    assert e.value.at == "$.train.select"
    assert all(k in e.value.hint for k in KNOWN)
    with pytest.raises(ErError):
        selection("", "sentiment", False, KNOWN)  # the default of a task the run lacks


def test_better_respects_the_direction_and_ties():
    assert better(0.1, None, True) and better(0.1, None, False)
    assert better(0.6, 0.5, True) and not better(0.4, 0.5, True)
    assert better(0.4, 0.5, False) and not better(0.6, 0.5, False)
    assert not better(0.5, 0.5, True) and not better(0.5, 0.5, False)  # the earlier epoch stays


def test_task_metrics_by_hand():
    logits = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 2.0, 0], [0, 0, 2.0]])
    m = task_metrics("e", 3, logits, torch.tensor([0, 1, 2, 2]))
    assert m["e/accuracy"] == pytest.approx(0.75)
    # class F1: 1, 2/3, 2/3; weighted by support 1, 1, 2
    assert m["e/macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["e/weighted_f1"] == pytest.approx((1 + 2 / 3 + 2 * 2 / 3) / 4)
    r = task_metrics("s", 0, torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, 4.0]))
    assert r["s/mae"] == pytest.approx(2 / 3) and r["s/mse"] == pytest.approx(4 / 3)
    assert r["s/corr"] == pytest.approx(np.corrcoef([0, 1, 2], [0, 1, 4])[0, 1])
    assert math.isfinite(task_metrics("s", 0, torch.zeros(3), torch.arange(3.0))["s/corr"])
