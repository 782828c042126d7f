"""Honest groups: the runs a table row, a bar or a curve figure pools must share one recipe.

`table`, `plot` and `report` all group runs by `--by` keys through `group_runs`, which compares
the runs of each group by `run_recipe`: the resolved config without its labels
(`er_core.recipe`: everything but seed, run.root, run.category, run.log, run.threads), plus the
features each modality read (`features.<m>`, the FeatureManifest id) and its encoder
(`encoders.<m>`). A distillation teacher (`distill.teacher`, a run id) counts by ITS recipe when
the teacher run is among the inputs, so students of per-seed teachers of one recipe pool.

A group whose runs differ in any of those keys is refused with one line naming the keys and
their values, unless `allow_mixed` (then it is pooled, marked, and a warning names the values).
A seed that appears twice with an identical recipe is the same run trained twice (a copy, or a
run made again by another er version): the later one is dropped with a warning, so a group's
n counts independent seeds only.

`auto_keys` is `--by auto`: every key that varies across the runs, shown by its shorthand where
one stands for it (`fusion` for fusion.kind, `encoder` for encoders.*).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from er_core import ErError, RunManifest, canonical_json, content_id, differing, recipe, warn

from er_eval.keys import AUTO, EQUIVALENT, MISSING, SHORTHANDS, check_keys, key_value

SHOW_KEYS = 5  # differing keys named in one error line; the rest are counted


@dataclass(frozen=True)
class Group:
    """Runs with equal `by` values. `cells`: those values as table cells (None: the runs lack
    the key); `mixed`: differing recipe key -> its values ({} for one recipe)."""

    by: tuple[str, ...]
    cells: tuple[Any, ...]
    runs: list[RunManifest]
    mixed: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        pairs = (f"{k}={'—' if v is None else v}" for k, v in zip(self.by, self.cells, strict=True))
        return ", ".join(pairs) or "(all runs)"


def cell(value: Any) -> Any:
    """A key's value as a table cell: None for a missing key, JSON text for a list or table."""
    if value is MISSING or value is None:
        return None
    if isinstance(value, list | dict):
        return canonical_json(value).decode()
    return value


def run_recipe(run: RunManifest, runs: Mapping[str, RunManifest] | None = None) -> dict[str, Any]:
    """The flat recipe of a run: what must be equal for two runs to be two seeds of one thing.
    `runs` maps run ids to runs (to read a distillation teacher's own recipe)."""
    out = recipe(run.config)
    teacher = (runs or {}).get(out.get("distill.teacher", ""))
    if teacher is not None and teacher.id != run.id:
        out["distill.teacher"] = "recipe " + content_id(run_recipe(teacher, runs))[:12]
    out |= {f"encoders.{m}": e for m, e in sorted(run.encoders.items())}
    out |= {f"features.{m}": f[:12] for m, f in sorted(run.features.items())}
    return out


def show(value: Any) -> str:
    """A recipe value in a message: '—' for absent, JSON text for lists and tables."""
    value = cell(value)
    return "—" if value is None else str(value)


def describe(mixed: Mapping[str, Sequence[Any]]) -> str:
    """`train.epochs = 3 | 30; train.lr = 0.001 | 0.0003` (the first SHOW_KEYS keys)."""
    parts = [f"{k} = {' | '.join(show(v) for v in vals)}" for k, vals in mixed.items()]
    more = len(parts) - SHOW_KEYS
    return "; ".join(parts[:SHOW_KEYS]) + (f"; and {more} more key(s)" if more > 0 else "")


def readable(key: str, runs: Sequence[RunManifest]) -> str:
    """The name a table shows for a recipe key: its shorthand where one stands for it."""
    if key in EQUIVALENT:
        return EQUIVALENT[key]
    if key.startswith("encoders."):
        return "encoder"
    tasks = {r.task for r in runs}
    if len(tasks) == 1 and key == f"loss.{next(iter(tasks))}.kind":
        return "loss"
    return key


def _drop_repeats(label: str, members: list[RunManifest], recipes: list[bytes]) -> list[int]:
    """Indices of the runs to keep: a seed seen before with the same recipe is dropped."""
    seen: dict[tuple[int, bytes], RunManifest] = {}
    keep = []
    for i, (run, rec) in enumerate(zip(members, recipes, strict=True)):
        first = seen.setdefault((run.seed, rec), run)
        if first is run:
            keep.append(i)
            continue
        warn(
            f"group {label}: runs {first.id[:12]} and {run.id[:12]} are seed {run.seed} of one "
            f"recipe (the same run twice); counting it once ({run.run_dir or run.id[:12]} left out)"
        )
    return keep


def group_runs(
    runs: Sequence[RunManifest], by: Sequence[str], *, allow_mixed: bool = False
) -> list[Group]:
    """The runs grouped by equal `by` values (first-seen order), each group checked to hold one
    recipe (see the module docstring). `by` must be checked keys (keys.check_keys), no `auto`."""
    index = {r.id: r for r in runs}
    found: dict[tuple, tuple[tuple[Any, ...], list[RunManifest]]] = {}
    for r in runs:
        cells = tuple(cell(key_value(r, k)) for k in by)
        tag = tuple((type(v).__name__, v) for v in cells)
        found.setdefault(tag, (cells, []))[1].append(r)
    groups = []
    for cells, members in found.values():
        label = Group(tuple(by), cells, members).label
        recipes = [run_recipe(r, index) for r in members]
        keep = _drop_repeats(label, members, [canonical_json(x) for x in recipes])
        members, recipes = [members[i] for i in keep], [recipes[i] for i in keep]
        mixed = _config_first(differing(recipes))
        if mixed:
            count = len({canonical_json(x) for x in recipes})
            what = f"group {label} pools {count} recipes: {describe(mixed)}"
            if not allow_mixed:
                raise ErError(what, at="--by", hint=_hint(by, members))
            warn(what + " (pooled: --allow-mixed)")
        groups.append(Group(tuple(by), cells, members, mixed))
    return groups


LINEAGE = ("encoders.", "features.")  # recipe keys from the run's inputs, not its config


def _config_first(mixed: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The differing keys, config keys before lineage keys (what a user sets comes first)."""
    return dict(sorted(mixed.items(), key=lambda kv: kv[0].startswith(LINEAGE)))


def _hint(by: Sequence[str], members: Sequence[RunManifest]) -> str:
    """`--by` with the keys that split the group (auto_keys of its runs, at most 4 more)."""
    keys = ",".join(dict.fromkeys([*by, *auto_keys(members)[:4]]))
    return f"group by what differs too (--by {keys}), or pool them on purpose with --allow-mixed"


def _partition(runs: Sequence[RunManifest], keys: Sequence[str]) -> int:
    """How many groups `keys` make of `runs`."""
    return len({canonical_json([cell(key_value(r, k)) for k in keys]) for r in runs})


def auto_keys(runs: Sequence[RunManifest]) -> list[str]:
    """`--by auto`: every recipe key that varies across `runs` (shorthands first, in their own
    order, then config paths, sorted). The lineage keys (encoder, features.<m>)
    join only where they split the runs further: a `features.audio` that differs only because
    the modalities do is said by `modalities` already. One recipe: no key (one row)."""
    index = {r.id: r for r in runs}
    mixed = differing([run_recipe(r, index) for r in runs])
    config = [readable(k, runs) for k in mixed if not k.startswith(LINEAGE)]
    config = list(dict.fromkeys(config))
    keys = [k for k in SHORTHANDS if k in config] + sorted(k for k in config if k not in SHORTHANDS)
    lineage = ["encoder"] if any(k.startswith("encoders.") for k in mixed) else []
    lineage += [k for k in mixed if k.startswith("features.")]
    for key in lineage:
        if _partition(runs, [*keys, key]) > _partition(runs, keys):
            keys.append(key)
    return keys


def resolve_by(runs: Sequence[RunManifest], by: Sequence[str] | None) -> list[str]:
    """`--by` checked (keys.check_keys), with `auto` expanded to `auto_keys(runs)`."""
    keys = check_keys(runs, by or [])
    return auto_keys(runs) if keys == [AUTO] else keys


__all__ = [
    "Group",
    "auto_keys",
    "cell",
    "describe",
    "group_runs",
    "readable",
    "resolve_by",
    "run_recipe",
]
