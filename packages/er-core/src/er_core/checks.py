"""Guards against non-finite numbers: nothing NaN or infinite is cached or trained on silently."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from er_core.errors import ErError


def nonfinite_rows(values: np.ndarray) -> np.ndarray:
    """Indices of the rows (first axis) holding any NaN or ±inf; empty if all are finite."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr)
    return np.flatnonzero(bad.any(axis=1) if bad.ndim > 1 else bad)


def require_finite(
    values: np.ndarray,
    *,
    what: str,
    names: Sequence[str] | None = None,
    at: str | None = None,
    hint: str = "the input holds NaN or inf values; fix or drop those items",
) -> None:
    """Raise an ErError naming the first non-finite row of `values` (by `names`, if given)."""
    bad = nonfinite_rows(values)
    if bad.size == 0:
        return
    first = int(bad[0])
    name = f"'{names[first]}'" if names is not None and first < len(names) else f"row {first}"
    more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
    raise ErError(f"{what} is not finite (NaN or inf) for {name}{more}", at=at, hint=hint)


def require_float32_range(values: np.ndarray, **kw) -> np.ndarray:
    """`values` as float32, refusing anything that is non-finite before or after the cast
    (float64 `1e300` becomes inf in float32: checking only the input lets it through)."""
    require_finite(values, **kw)
    with np.errstate(over="ignore"):  # the overflow is what the check below reports
        out = np.asarray(values, dtype=np.float32)
    require_finite(
        out, **{**kw, "hint": "values beyond float32's range (about 3.4e38); rescale them"}
    )
    return out
