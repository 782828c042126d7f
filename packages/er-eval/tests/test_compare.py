"""`compare`: the paired bootstrap's edge cases, its vectorised counts, and the command."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from er_core import ErError, accuracy, macro_f1, weighted_f1
from er_eval.compare import CHUNK, compare_runs, p_value, paired_bootstrap
from er_eval.runs import read_runs


def _one(folder):
    inp = read_runs([str(folder)])
    return inp.runs[0]


def test_identical_runs(runs) -> None:
    a, b = runs("a", seed=4), runs("b", seed=4)  # same seed: the same predictions
    res = compare_runs(_one(a), _one(b), resamples=2000)
    assert res.difference == 0.0 and res.low == 0.0 and res.high == 0.0
    assert res.p_value == 1.0 and res.a_wins == 0.0


def test_clearly_better_run(runs) -> None:
    n = {"dev": 10, "test": 400}
    good, bad = runs("good", seed=1, accuracy=0.9, n=n), runs("bad", seed=2, accuracy=0.4, n=n)
    res = compare_runs(_one(good), _one(bad), resamples=3000)
    assert res.difference > 0.3 and 0 < res.low <= res.difference <= res.high
    assert res.p_value < 0.05 and res.a_wins > 0.99
    back = compare_runs(_one(bad), _one(good), resamples=3000)
    assert back.difference == pytest.approx(-res.difference) and back.high < 0
    assert back.p_value < 0.05


def test_close_runs_are_not_significant(runs) -> None:
    a, b = runs("a", seed=1, accuracy=0.6), runs("b", seed=2, accuracy=0.6)
    res = compare_runs(_one(a), _one(b), metric="accuracy", resamples=3000)
    assert res.low < 0 < res.high and res.p_value > 0.05


def test_mismatched_ids(runs) -> None:
    a = runs("a", n={"dev": 10, "test": 60})
    b = runs("b", n={"dev": 10, "test": 50})
    with pytest.raises(ErError, match="different test utterances") as e:
        compare_runs(_one(a), _one(b))
    assert "60 in A, 50 in B, 50 shared" in str(e.value)
    assert "same dataset" in e.value.hint


def test_other_order_is_aligned(runs, tmp_path) -> None:
    """B's rows in another order (same ids) give exactly the same comparison."""
    from er_core import canonical_json, read_tensors, write_tensors

    a, b = runs("a", seed=1), runs("b", seed=2)
    res = compare_runs(_one(a), _one(b), resamples=500)
    c = tmp_path / "c"
    shutil.copytree(b, c)
    tensors, meta = read_tensors(c / "test.safetensors")
    info = json.loads(meta["er.predictions"])
    perm = np.random.default_rng(0).permutation(len(info["ids"]))
    info["ids"] = [info["ids"][i] for i in perm]
    ref = write_tensors(
        c / "test.safetensors",
        {k: v[perm] for k, v in tensors.items()},
        metadata={"er.predictions": canonical_json(info).decode()},
    )
    import msgspec

    run_c = msgspec.structs.replace(_one(b), predictions={"test": ref})
    shuffled = compare_runs(_one(a), run_c, resamples=500)
    assert shuffled.difference == res.difference and shuffled.p_value == res.p_value
    assert (shuffled.low, shuffled.high) == (res.low, res.high)


def test_reproducible_with_a_seed(runs) -> None:
    a, b = runs("a", seed=1), runs("b", seed=2)
    r1 = compare_runs(_one(a), _one(b), resamples=1500, seed=7)
    r2 = compare_runs(_one(a), _one(b), resamples=1500, seed=7)
    r3 = compare_runs(_one(a), _one(b), resamples=1500, seed=8)
    assert r1 == r2
    assert (r1.low, r1.high) != (r3.low, r3.high)


@pytest.mark.parametrize("metric", ["weighted_f1", "accuracy", "macro_f1", "mae"])
def test_vectorised_counts_equal_a_plain_loop(metric: str) -> None:
    """Each bootstrap difference equals the metric recomputed on the drawn utterances."""
    rng = np.random.default_rng(3)
    n, c, resamples = 97, 5, CHUNK + 7  # two chunks, the second one short
    if metric == "mae":
        y = rng.normal(size=n)
        pa, pb, c = y + rng.normal(0, 0.5, n), y + rng.normal(0, 0.7, n), 0
    else:
        y, pa, pb = rng.integers(0, c, n), rng.integers(0, c, n), rng.integers(0, c, n)
    a, b, diffs = paired_bootstrap(
        y, pa, pb, n_classes=c, metric=metric, resamples=resamples, seed=11
    )

    def m(t, p):
        if metric == "mae":
            return float(np.mean(np.abs(p - t)))
        return {
            "accuracy": lambda: accuracy(t, p),
            "weighted_f1": lambda: weighted_f1(t, p, c),
            "macro_f1": lambda: macro_f1(t, p, c),
        }[metric]()

    assert a == pytest.approx(m(y, pa), abs=1e-12) and b == pytest.approx(m(y, pb), abs=1e-12)
    draw = np.random.default_rng(11)  # the same draws, chunk by chunk
    want = []
    for start in range(0, resamples, CHUNK):
        for idx in draw.integers(0, n, size=(min(CHUNK, resamples - start), n)):
            want.append(m(y[idx], pa[idx]) - m(y[idx], pb[idx]))
    np.testing.assert_allclose(diffs, want, atol=1e-12)


def test_p_value_estimator() -> None:
    assert p_value(np.zeros(100)) == 1.0
    assert p_value(np.ones(99)) == pytest.approx(2 / 100)  # none on the far side: 2·1/(B+1)
    d = np.array([-1.0] * 10 + [1.0] * 89)
    assert p_value(d) == pytest.approx(2 * 11 / 100)
    assert p_value(-d) == p_value(d)


def test_regression_compare(runs) -> None:
    a = runs("a", regression=True, seed=1, accuracy=0.9, n={"dev": 5, "test": 300})
    b = runs("b", regression=True, seed=2, accuracy=0.2, n={"dev": 5, "test": 300})
    res = compare_runs(_one(a), _one(b), resamples=1000)
    assert res.metric == "mae" and res.lower_is_better
    assert res.difference < 0 and res.high < 0 and res.a_wins > 0.99
    with pytest.raises(ErError, match="not available for a regression task"):
        compare_runs(_one(a), _one(b), metric="weighted_f1")


def test_bad_metric(runs) -> None:
    a, b = runs("a"), runs("b", seed=1)
    with pytest.raises(ErError, match="no task 'sentiment'"):
        compare_runs(_one(a), _one(b), metric="sentiment/accuracy")
    with pytest.raises(ErError, match="not available"):
        compare_runs(_one(a), _one(b), metric="mae")


def test_cli_compare(runs, cli, one_error) -> None:
    a, b = runs("a", seed=1, accuracy=0.9), runs("b", seed=2, accuracy=0.3)
    r = cli("compare", a, b / "run.json", "--resamples", "2000", "--seed", "3")
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert "A - B = +" in text and "95% interval" in text and "2000 paired bootstrap" in text
    r = cli("compare", a, b, "--json", "--metric", "emotion/macro_f1", "--resamples", "500")
    data = json.loads(r.stdout)
    assert data["metric"] == "macro_f1" and data["resamples"] == 500 and data["p_value"] < 0.05
    c = runs("c", n={"dev": 10, "test": 20})
    r = cli("compare", a, c)
    assert r.returncode == 1
    error, _ = one_error(r.stderr)
    assert "different test utterances" in error
