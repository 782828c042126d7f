"""`er-features cache verify`: every shard sound on its own, every item in one shard, and the
indexes of the given manifests in agreement with the shards they name.

A shard is sound when its bytes hash to its name, its header lists its item keys (each once),
and its tensors fit them: `features` (n, d >= 1), `flags` (n,) uint8, extras (n, k), all finite.
That alone cannot catch a planted shard: anyone can name a file by its own sha256. So across a
cache folder every item key must belong to exactly one shard; two shards that claim one item
both fail (which is genuine cannot be told from the files; `--fix` removes both and the next
extract recomputes the items). Extract refuses such a folder too (cache.refresh), so a planted
shard never replaces real features.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from er_core import FeatureManifest, Progress, sha256_file

from er_features.cache import KEYS, folders, shards


@dataclass(frozen=True)
class Problem:
    path: Path
    text: str
    in_cache: bool = False  # a cache shard's own problem: `--fix` removes the shard


def shard_problem(path: Path) -> tuple[str | None, list[str]]:
    """(what is wrong with the shard on its own or None, its item keys)."""
    from safetensors import safe_open

    if sha256_file(path) != path.stem:
        return "its sha256 is not its name (damaged)", []
    try:
        with safe_open(str(path), framework="numpy") as f:
            keys = json.loads((f.metadata() or {})[KEYS])
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except Exception as e:  # any header or tensor that does not read is damage
        return f"does not read ({type(e).__name__})", []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return "its item keys are not a list of strings", []
    n = len(keys)
    if len(set(keys)) != n:
        return "lists an item key twice", []
    feats, flags = arrays.get("features"), arrays.get("flags")
    if feats is None or feats.ndim != 2 or feats.shape[0] != n or feats.shape[1] < 1:
        return f"its features are not ({n}, d >= 1)", keys
    if flags is None or flags.shape != (n,) or flags.dtype != np.uint8:
        return f"its flags are not ({n},) uint8", keys
    for name, v in arrays.items():
        if name != "flags" and (v.ndim != 2 or v.shape[0] != n):
            return f"'{name}' is not ({n}, k)", keys
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            return f"'{name}' holds NaN or inf", keys
    return None, keys


def check_cache(cache: Path, quiet: bool = False) -> list[Problem]:
    """Every problem of every shard in the cache, one entry per shard (first problem). Every
    shard is read and hashed in full (gigabytes for a big cache), so it shows progress."""
    found: dict[Path, str] = {}
    listing = [(folder, shards(folder)) for folder in folders(cache)]
    total = sum(len(paths) for _, paths in listing)
    with Progress(total, "cache verify", unit="shards", quiet=quiet) as bar:
        for _, paths in listing:
            owner: dict[str, Path] = {}
            for path in paths:
                _check_shard(path, owner, found)
                bar.update(1)
    return [Problem(p, t, in_cache=True) for p, t in sorted(found.items())]


def _check_shard(path: Path, owner: dict[str, Path], found: dict[Path, str]) -> None:
    problem, keys = shard_problem(path)
    if problem is not None:
        found[path] = problem
        return
    for k in keys:
        other = owner.setdefault(k, path)
        if other != path:  # both claim k: neither can be trusted
            found.setdefault(path, f"claims item {k[:12]}, which {other.name} holds")
            found.setdefault(other, f"claims item {k[:12]}, which {path.name} holds")


def check_manifests(manifests: Sequence[FeatureManifest]) -> list[Problem]:
    """Each manifest's index against the shards it names: the index and every shard verify,
    each (shard, row) exists, and the index's flags are the shard's flags for that row."""
    from er_core import ErError, read_index
    from safetensors import safe_open

    found = []
    for m in manifests:
        index = Path(m.index.path)
        try:
            ids, arr = read_index(m.index)
        except ErError as e:
            found.append(Problem(index, e.what))
            continue
        rows: dict[int, np.ndarray] = {}
        for s, ref in enumerate(m.shards):
            path = Path(ref.path)
            if not path.is_file() or sha256_file(path) != ref.sha256:
                found.append(Problem(path, f"named by manifest {m.id[:12]} but missing or changed"))
                continue
            with safe_open(str(path), framework="numpy") as f:
                rows[s] = f.get_tensor("flags")
        for uid, s, r, flag in zip(ids, arr["shard"], arr["row"], arr["flags"], strict=True):
            if s < 0:
                continue
            if s >= len(m.shards) or (s in rows and not 0 <= r < len(rows[s])):
                found.append(Problem(index, f"utterance {uid} points at no shard row ({s}, {r})"))
                break
            if s in rows and rows[s][r] != flag:
                found.append(Problem(index, f"utterance {uid}'s flags differ from its shard's"))
                break
    return found


def verify(
    cache: Path, fix: bool = False, manifests: Sequence[FeatureManifest] = (), quiet: bool = False
) -> list[Problem]:
    """Every problem found; with `fix`, the failing shards are removed (under each folder's
    lock, so no extract is publishing there meanwhile). Manifests' own files are left alone."""
    from er_core import folder_lock

    problems = check_cache(cache, quiet)
    if fix:
        for p in problems:
            with folder_lock(p.path.parent, what="feature cache"):
                p.path.unlink(missing_ok=True)
    return problems + check_manifests(manifests)
