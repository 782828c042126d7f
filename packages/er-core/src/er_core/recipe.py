"""What makes two runs "the same recipe": every key of the resolved config except the labels.

A run's resolved config (RunManifest.config) holds everything that changes its result; a few
keys change only where it is written or how it is labelled: the seed (the one key a table
pools over), `run.root`, `run.category`, `run.log` and `run.threads`. Both er-train (the run
folder's hash) and er-eval (a table's groups must not pool two recipes) use this one list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from er_core.ids import canonical_json

# keys that label a run without changing its result (the seed is pooled over by tables)
LABELS = ("seed", "run.root", "run.category", "run.log", "run.threads")


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"train": {"lr": 1e-3}}` -> `{"train.lr": 1e-3}`; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, Mapping) and v:
            out |= flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def is_label(key: str) -> bool:
    return any(key == lab or key.startswith(lab + ".") for lab in LABELS)


def recipe(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened config without the labels: what must match for runs to be pooled."""
    return {k: v for k, v in flatten(config).items() if not is_label(k)}


def strip_labels(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The nested config without the labels: what er-train's recipe hash is the id of."""
    return {
        k: strip_labels(v, f"{prefix}{k}.") if isinstance(v, Mapping) else v
        for k, v in config.items()
        if not is_label(prefix + k)
    }


_ABSENT = object()


def differing(recipes: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The keys whose values are not all equal across `recipes` (a key one recipe lacks counts
    as differing), each with its distinct values in first-seen order (None for absent)."""
    items = list(recipes)
    keys = list(dict.fromkeys(k for r in items for k in r))
    out: dict[str, list[Any]] = {}
    for key in keys:
        seen: dict[bytes, Any] = {}
        for r in items:
            v = r.get(key, _ABSENT)
            tag = b"\x00absent" if v is _ABSENT else canonical_json(v)
            seen.setdefault(tag, None if v is _ABSENT else v)
        if len(seen) > 1:
            out[key] = list(seen.values())
    return out
