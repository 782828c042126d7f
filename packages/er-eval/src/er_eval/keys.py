"""The keys runs are grouped by: readable shorthands and dotted paths into the resolved config.

One place answers "what is this run's value of key K" for `table`, `plot` and `report`, so a
key means the same in every command. Shorthands: `modalities` ("T+A"), `fusion` (fusion.kind),
`context` (context.kind), `loss` (the main task's loss kind), `objective` (that loss, the run's
`[aux]` objectives and "kd" for a distilled run: "ce+spcl+kd"), `method` (run.method: F frozen
features, L LoRA, T full fine-tuning), `encoder` (modality=encoder, comma-joined), `seed`,
`task` (the main task), `dataset` (its name). `features.<modality>` is the FeatureManifest id
(first 12 characters) the run read. Anything else is a dotted path into `RunManifest.config`
(`train.lr`, `loss.emotion.kind`). A run without the key has `MISSING`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from er_core import ErError, RunManifest

SHORTHANDS = (
    "modalities",
    "fusion",
    "context",
    "loss",
    "objective",
    "method",
    "encoder",
    "seed",
    "task",
    "dataset",
)
# config paths a shorthand stands for (the shorthand is what tables show)
EQUIVALENT = {"fusion.kind": "fusion", "context.kind": "context", "run.method": "method"}
RESERVED = ("n", "seeds", "mixed")  # columns of a summary table, never a key
AUTO = "auto"  # `--by auto`: every key that varies across the runs (grouping.auto_keys)


class _Missing:
    """The value of a key a run does not have (an empty cell)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def path_value(config: Mapping[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def key_value(run: RunManifest, key: str) -> Any:
    """The run's value of a key (see the module docstring); `MISSING` if it has none."""
    cfg = run.config
    if key == "modalities":
        tag = cfg.get("modalities")
        return tag if tag else "+".join(m[:1].upper() for m in run.modalities) or MISSING
    if key in ("fusion", "context"):
        return path_value(cfg, f"{key}.kind")
    if key == "loss":
        v = path_value(cfg, f"loss.{run.task}.kind")
        return v if v is not MISSING else path_value(cfg, "loss.kind")
    if key == "objective":
        loss = key_value(run, "loss")
        if loss is MISSING:
            return MISSING
        aux = [v.get("kind", k) for k, v in sorted(cfg.get("aux", {}).items())]
        return "+".join([loss, *aux, *(["kd"] if "distill" in cfg else [])])
    if key == "method":
        return path_value(cfg, "run.method")
    if key == "encoder":
        order = [m for m in run.modalities if m in run.encoders] or list(run.encoders)
        order += [m for m in run.encoders if m not in order]
        return ",".join(f"{m}={run.encoders[m]}" for m in order) or MISSING
    if key == "seed":
        return run.seed
    if key == "task":
        return run.task
    if key == "dataset":
        return run.dataset_name or run.dataset[:12]
    if key.startswith("features.") and "features" not in cfg:
        fid = run.features.get(key.split(".", 1)[1])
        return fid[:12] if fid else MISSING
    return path_value(cfg, key)


def available_keys(runs: Sequence[RunManifest]) -> list[str]:
    """The shorthands, then every dotted config path some run has, sorted."""
    paths: set[str] = set()

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for k, v in node.items():
            paths.add(prefix + k)
            if isinstance(v, Mapping):
                walk(v, f"{prefix}{k}.")

    for r in runs:
        walk(r.config, "")
        paths.update(f"features.{m}" for m in r.features)
    return [AUTO, *SHORTHANDS, *sorted(paths - set(SHORTHANDS))]


def split_keys(by: Sequence[str] | None) -> list[str]:
    """`--by` as given (comma-separated and/or repeated) -> the keys, stripped, no repeats."""
    items = (k.strip() for item in by or [] for k in item.split(","))
    return list(dict.fromkeys(k for k in items if k))


def check_keys(runs: Sequence[RunManifest], by: Sequence[str]) -> list[str]:
    """`by` stripped and without repeats; an ErError for a key no run has (listing the keys).
    `auto` is kept as it is (grouping.resolve_by expands it)."""
    keys = split_keys(by)
    if AUTO in keys and len(keys) > 1:
        raise ErError(
            "--by auto stands alone",
            at="--by",
            hint="use --by auto, or name the keys yourself",
        )
    for key in keys:
        if key == AUTO:
            continue
        if key in RESERVED:
            raise ErError(f"'{key}' cannot be a key", at="--by", hint="it names a table column")
        if all(key_value(r, key) is MISSING for r in runs):
            known = ", ".join(available_keys(runs))
            raise ErError(f"unknown key '{key}'", at="--by", hint=f"keys of these runs: {known}")
    return keys


__all__ = [
    "AUTO",
    "EQUIVALENT",
    "MISSING",
    "RESERVED",
    "SHORTHANDS",
    "available_keys",
    "check_keys",
    "key_value",
    "path_value",
    "split_keys",
]
