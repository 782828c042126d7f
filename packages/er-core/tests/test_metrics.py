"""Metrics against small examples worked out by hand (see the comments for the arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest
from er_core import (
    accuracy,
    confusion_matrix,
    macro_f1,
    per_class_f1,
    per_class_precision,
    per_class_recall,
    support,
    weighted_f1,
)

# Five classes. Class 2 is in y_true but never predicted; class 3 is predicted once but absent
# from y_true; class 4 is neither.
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 1, 1, 3, 0, 1, 1]
N = 5


def test_confusion_matrix_rows_are_true_class():
    # true 0 -> predicted 0, 0, 1 ; true 1 -> 1, 3 ; true 2 -> 0, 1, 1
    expected = [
        [2, 1, 0, 0, 0],
        [0, 1, 0, 1, 0],
        [1, 2, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    cm = confusion_matrix(Y_TRUE, Y_PRED, N)
    assert cm.shape == (5, 5)
    assert cm.tolist() == expected
    # one sample, truly 0, predicted 1: it sits in row 0, column 1 (not row 1, column 0)
    one = confusion_matrix([0], [1], 2)
    assert one.tolist() == [[0, 1], [0, 0]]


def test_accuracy():
    # correct at positions 0, 1, 3 -> 3 / 8
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(0.375)
    assert accuracy([1, 2, 3], [1, 2, 3]) == 1.0


def test_per_class_precision():
    # TP = diag = [2, 1, 0, 0, 0]; predicted counts (column sums) = [3, 4, 0, 1, 0]
    # class 0: 2/3; class 1: 1/4; class 2 never predicted -> 0; class 3: 0/1; class 4: 0/0 -> 0
    p = per_class_precision(Y_TRUE, Y_PRED, N)
    np.testing.assert_allclose(p, [2 / 3, 1 / 4, 0.0, 0.0, 0.0])


def test_per_class_recall():
    # true counts (row sums) = [3, 2, 3, 0, 0]
    # class 0: 2/3; class 1: 1/2; class 2: 0/3; class 3 absent -> 0; class 4 absent -> 0
    r = per_class_recall(Y_TRUE, Y_PRED, N)
    np.testing.assert_allclose(r, [2 / 3, 1 / 2, 0.0, 0.0, 0.0])


def test_per_class_f1():
    # F1 = 2TP / (2TP + FP + FN)
    # class 0: TP 2, FP 1, FN 1 -> 4/6 = 2/3
    # class 1: TP 1, FP 3, FN 1 -> 2/6 = 1/3  (= 2 * 1/4 * 1/2 / (1/4 + 1/2))
    # class 2: TP 0, FP 0, FN 3 -> 0/3 = 0
    # class 3: TP 0, FP 1, FN 0 -> 0/1 = 0
    # class 4: 0/0 -> 0 (zero_division=0)
    f1 = per_class_f1(Y_TRUE, Y_PRED, N)
    np.testing.assert_allclose(f1, [2 / 3, 1 / 3, 0.0, 0.0, 0.0])


def test_macro_f1_counts_every_class():
    # mean over all 5 classes: (2/3 + 1/3 + 0 + 0 + 0) / 5 = 0.2
    # (averaging only over the classes that occur, {0,1,2,3}, would give 0.25)
    assert macro_f1(Y_TRUE, Y_PRED, N) == pytest.approx(0.2)


def test_weighted_f1_weights_by_true_support():
    # support = [3, 2, 3, 0, 0], total 8: (3 * 2/3 + 2 * 1/3 + 3 * 0) / 8 = (8/3) / 8 = 1/3
    # classes 3 and 4 are absent from y_true: weight 0
    assert support(Y_TRUE, N).tolist() == [3, 2, 3, 0, 0]
    assert weighted_f1(Y_TRUE, Y_PRED, N) == pytest.approx(1 / 3)


def test_weighted_f1_differs_from_macro_on_imbalance():
    # 9 of class 0 right, 1 of class 1 predicted as 0:
    # class 0: TP 9, FP 1, FN 0 -> 18/19; class 1: TP 0, FP 0, FN 1 -> 0
    # macro = (18/19) / 2 = 9/19; weighted = (9 * 18/19 + 1 * 0) / 10 = 81/95
    y_true = [0] * 9 + [1]
    y_pred = [0] * 10
    assert macro_f1(y_true, y_pred, 2) == pytest.approx(9 / 19)
    assert weighted_f1(y_true, y_pred, 2) == pytest.approx(81 / 95)


def test_perfect_prediction():
    y = np.array([0, 1, 2, 2, 1])
    np.testing.assert_array_equal(confusion_matrix(y, y, 3), np.diag([1, 2, 2]))
    assert macro_f1(y, y, 3) == 1.0
    assert weighted_f1(y, y, 3) == 1.0
    np.testing.assert_array_equal(per_class_precision(y, y, 3), [1, 1, 1])


def test_numpy_integer_inputs_of_any_width():
    t = np.array(Y_TRUE, dtype=np.uint8)
    p = np.array(Y_PRED, dtype=np.int32)
    assert confusion_matrix(t, p, N).tolist() == confusion_matrix(Y_TRUE, Y_PRED, N).tolist()


@pytest.mark.parametrize(
    ("y_true", "y_pred", "n", "match"),
    [
        ([0, 1], [0], 2, "same length"),
        ([0, 1], [0, 2], 2, "outside 0..1"),
        ([-1, 0], [0, 0], 2, "outside 0..1"),
        ([0.0, 1.0], [0, 1], 2, "integer"),
        ([], [], 2, "no labels"),
        ([[0, 1]], [[0, 1]], 2, "1-D"),
    ],
)
def test_bad_inputs_are_errors(y_true, y_pred, n, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(y_true, y_pred, n)
