"""Classification metrics in plain numpy, defined as scikit-learn defines them.

Labels are class indices `0 .. n_classes-1`. Every per-class and averaged metric takes
`n_classes` explicitly, so a class that is absent from a split still counts (as in scikit-learn
with `labels=range(n_classes)`); nothing is inferred from the labels that happen to occur.

Undefined ratios are 0, as with scikit-learn's `zero_division=0`: precision of a class never
predicted, recall of a class absent from `y_true`, F1 where both are 0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _labels(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None) -> tuple[NDArray, NDArray]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred must be 1-D and the same length, got {t.shape} and {p.shape}"
        )
    if t.size == 0:
        raise ValueError("no labels to score")
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")
        if n_classes is not None and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name} holds a class index outside 0..{n_classes - 1}")
    return t.astype(np.int64), p.astype(np.int64)


def _ratio(num: NDArray, den: NDArray) -> NDArray:
    """num / den, 0 where den is 0 (zero_division=0)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of predictions equal to the truth."""
    t, p = _labels(y_true, y_pred, None)
    return float(np.mean(t == p))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """(n_classes, n_classes) counts: row = TRUE class, column = PREDICTED class."""
    t, p = _labels(y_true, y_pred, n_classes)
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def per_class_precision(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> NDArray:
    """(n_classes,) TP / predicted as the class (column sum); 0 for a class never predicted."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    return _ratio(np.diag(cm), cm.sum(axis=0))


def per_class_recall(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> NDArray:
    """(n_classes,) TP / truly the class (row sum); 0 for a class absent from y_true."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    return _ratio(np.diag(cm), cm.sum(axis=1))


def per_class_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> NDArray:
    """(n_classes,) 2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall; 0 if
    the class is neither present nor predicted."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    return _ratio(2 * tp, 2 * tp + fp + fn)


def support(y_true: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """(n_classes,) how many samples truly belong to each class."""
    t, _ = _labels(y_true, y_true, n_classes)
    return np.bincount(t, minlength=n_classes)


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """Unweighted mean of the per-class F1 over all `n_classes` classes."""
    return float(np.mean(per_class_f1(y_true, y_pred, n_classes)))


def weighted_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """Per-class F1 averaged with the true support as weights (a class absent from y_true
    weighs 0): scikit-learn's `f1_score(average="weighted", labels=range(n_classes))`."""
    f1 = per_class_f1(y_true, y_pred, n_classes)
    w = support(y_true, n_classes)
    return float(np.sum(f1 * w) / np.sum(w))


__all__ = [
    "accuracy",
    "confusion_matrix",
    "macro_f1",
    "per_class_f1",
    "per_class_precision",
    "per_class_recall",
    "support",
    "weighted_f1",
]
