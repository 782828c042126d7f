"""Token-budget batches (er_train.batches, `train.tokens`): every group once per epoch, each
batch within the budget and the group cap, fixed by (seed, epoch) alone, far less padding than
fixed batches; the schedule counts them; a run on cached features refuses a budget."""

from __future__ import annotations

import numpy as np
import pytest
from er_core import ErError
from er_models.layout import Groups, groups_by_split, single_groups
from er_train.batches import POOL, count_steps, epoch_batches, epoch_order, group_widths

RNG = np.random.default_rng(0)
LENGTHS = RNG.integers(4, 130, size=2000)  # prompt tokens of each table row
SINGLES = single_groups(RNG.permutation(2000))


def padded(split: Groups, batch: np.ndarray) -> int:
    """Tokens an encoder forward over the batch pads to: rows x longest prompt."""
    return int(split.length[batch].sum()) * int(group_widths(split, LENGTHS)[batch].max())


@pytest.mark.parametrize("tokens", [512, 2048])
def test_every_group_once_within_budget_and_cap(tokens):
    batches = epoch_batches(SINGLES, 3, 0, 32, tokens, LENGTHS)
    seen = np.concatenate(batches)
    assert np.array_equal(np.sort(seen), np.arange(SINGLES.groups))
    for b in batches:
        assert b.size <= 32 and (padded(SINGLES, b) <= tokens or b.size == 1)


def test_fixed_by_seed_and_epoch_alone():
    a = epoch_batches(SINGLES, 3, 1, 32, 2048, LENGTHS)
    b = epoch_batches(SINGLES, 3, 1, 32, 2048, LENGTHS)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    other = epoch_batches(SINGLES, 3, 2, 32, 2048, LENGTHS)
    assert [x.tolist() for x in other] != [x.tolist() for x in a]


def test_far_less_padding_than_fixed_batches():
    real = int(LENGTHS.sum())
    fixed = sum(padded(SINGLES, b) for b in epoch_batches(SINGLES, 0, 0, 32))
    budget = sum(padded(SINGLES, b) for b in epoch_batches(SINGLES, 0, 0, 32, 4096, LENGTHS))
    assert fixed > 1.6 * real  # uniform lengths: half of a fixed batch is padding
    assert budget < 1.1 * real


def test_dialogue_groups_count_their_rows():
    dialogue = np.repeat(np.arange(200), 10)
    split = groups_by_split(
        dialogue, np.tile(np.arange(10), 200), np.full(2000, "train"), ["train"]
    )
    split = split["train"]
    batches = epoch_batches(split, 0, 0, 16, 4000, LENGTHS)
    assert all(padded(split, b) <= 4000 or b.size == 1 for b in batches)
    assert sorted(np.concatenate(batches).tolist()) == list(range(200))


def test_a_group_wider_than_the_budget_trains_alone():
    lengths = np.full(2000, 10)
    lengths[SINGLES.rows[7]] = 900
    batches = epoch_batches(SINGLES, 0, 0, 32, 512, lengths)
    alone = [b for b in batches if 7 in b.tolist()]
    assert len(alone) == 1 and alone[0].tolist() == [7]


def test_sorting_stays_within_a_pool_of_the_epoch_order():
    """Each batch's groups come from one pool (POOL batch sizes) of the epoch's random order:
    a global sort by length would mix pools, and the order would hardly depend on the seed."""
    for seed in range(3):
        order = epoch_order(SINGLES, seed, 0)
        pool_of = np.empty(SINGLES.groups, np.int64)
        pool_of[order] = np.arange(order.size) // (POOL * 8)
        batches = epoch_batches(SINGLES, seed, 0, 8, 512, LENGTHS)
        assert all(np.unique(pool_of[b]).size == 1 for b in batches)
        assert np.unique(pool_of).size > 1  # several pools, so the check has teeth


def test_schedule_counts_the_budgeted_batches():
    steps = count_steps(SINGLES, 1, 3, 32, 2, 2048, LENGTHS)
    want = sum(-(-len(epoch_batches(SINGLES, 1, e, 32, 2048, LENGTHS)) // 2) for e in range(3))
    assert steps == want and steps != count_steps(SINGLES, 1, 3, 32, 2)
    assert count_steps(SINGLES, 1, 3, 32, 2) == 3 * 32  # 63 batches of 32, in steps of 2


def test_a_budget_on_cached_features_is_refused(toy, fast_config):
    from er_core import read_stream
    from er_core.config import load_config
    from er_train.config import TrainConfig
    from er_train.plan import plan

    cfg = load_config(TrainConfig, [str(fast_config)], ["train.tokens=2048"])
    with pytest.raises(ErError, match=r"train\.tokens = 2048") as e:
        plan(read_stream([str(toy.stream)]), cfg, {"train.tokens": "--set"}, "cpu", None)
    assert e.value.at.endswith("$.train.tokens") and "run.method L or T" in e.value.hint
