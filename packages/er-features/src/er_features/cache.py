"""The feature cache: content-addressed SafeTensors shards, one folder per (encoder, config).

    <cache>/features/<cache_key[:16]>/key.json          what the folder holds (encoder, config)
    <cache>/features/<cache_key[:16]>/<sha256>.safetensors
    <cache>/features/<cache_key[:16]>/.lock             the writers' lock (er_core.folder_lock)

A shard holds `features` (n, dim), `flags` (n,) and any extras (n, k) for n items; the items'
keys (sha256 of the input as given) sit in its metadata. A shard is named by the sha256 of its
own bytes, so damage shows without another record (`cache verify`, verify.py).

Every shard passes one door, `write_shard` -> `check_encoded`: n rows, the expected widths,
everything finite. Shards are written to a temporary name and renamed: a killed run leaves only
whole shards. Writers publish under the folder's lock after a fresh look at what is cached
(`publish`), so an item is never in two shards; readers need no lock, and refuse a folder where
two shards claim one item (`refresh`) rather than pick one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from er_core import (
    ErError,
    atomic_path,
    canonical_json,
    require_finite,
    sha256_bytes,
    sha256_file,
)

from er_features.base import Encoded

KEYS = "er.keys"
SHARD_SUFFIX = ".safetensors"


def cache_key(modality: str, weights_sha256: str, config: dict) -> str:
    """What names a cache folder: everything that changes an item's features, except the item."""
    return sha256_bytes(
        canonical_json({"modality": modality, "weights": weights_sha256, "config": config})
    )


def folder_for(cache: Path, key: str) -> Path:
    return cache / "features" / key[:16]


def describe(folder: Path, about: dict) -> None:
    """Write key.json once: `cache ls` reads it to say what a folder holds."""
    target = folder / "key.json"
    if not target.is_file():
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(about, indent=1, sort_keys=True))


def check_encoded(
    enc: Encoded,
    n: int,
    *,
    dim: int | None = None,
    extras: dict[str, int] | None = None,
    names: Sequence[str] | None = None,
    at: str | None = None,
) -> None:
    """The cache's door: `enc` holds n rows of the expected shapes, every number finite.

    A shape that does not fit is a bug in the encoder that made it; a non-finite number is
    not (a model that overflows, a file of NaN samples): its error names the item.
    """
    got = {"features": enc.features, "flags": enc.flags, **enc.extras}
    width = {k: v.shape[-1] for k, v in got.items() if v.ndim == 2}  # as given, unless told
    width |= {"features": dim} if dim is not None else {}
    width |= extras or {}
    names_all = {*got, *(extras or {})}
    want = {k: (n,) if k == "flags" else (n, width.get(k, -1)) for k in names_all}
    if width.get("features", 0) < 1:  # zero-width features carry nothing to learn from
        want["features"] = (n, max(1, width.get("features", 0)))
    for k in set(enc.extras) - set(extras if extras is not None else enc.extras):
        want[k] = None  # an extra the encoder does not declare
    for name, shape in sorted(want.items(), key=lambda kv: kv[0]):
        have = tuple(got[name].shape) if name in got else None
        if have != shape:
            raise ErError(
                f"encoder output '{name}' has shape {have}, not {shape}",
                at=at,
                hint="this is a bug in er; rerun with ER_DEBUG=1 for the traceback and report it",
            )
    for name in ["features", *sorted(enc.extras)]:
        require_finite(
            got[name],
            what=f"encoder output '{name}'",
            names=names,
            at=at,
            hint="check the input named and the encoder's weights (e.g. bf16 overflow); "
            "--on-bad-media flag stores such rows as flagged zeros",
        )


def write_shard(
    folder: Path,
    keys: Sequence[str],
    enc: Encoded,
    *,
    dim: int | None = None,
    extras: dict[str, int] | None = None,
    names: Sequence[str] | None = None,
) -> Path:
    """Check `enc` (check_encoded), write it to a temporary name, then rename it to the sha256
    of its bytes. `names` name the rows in errors (utterance ids)."""
    from safetensors.numpy import save_file

    check_encoded(enc, len(keys), dim=dim, extras=extras, names=names, at=str(folder))
    arrays = {"features": enc.features.astype(np.float32), "flags": enc.flags.astype(np.uint8)}
    arrays |= {k: v.astype(np.float32) for k, v in enc.extras.items()}
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".shard.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        save_file(arrays, str(tmp), metadata={KEYS: json.dumps(list(keys))})
        final = folder / f"{sha256_file(tmp)}{SHARD_SUFFIX}"
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def shards(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == SHARD_SUFFIX and len(p.stem) == 64)


def shard_keys(path: Path) -> list[str] | None:
    """The item keys a shard holds (header only), or None if the header does not read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return json.loads((f.metadata() or {})[KEYS])
    except Exception:  # a damaged header: the shard is skipped and its items recomputed
        return None


@dataclass
class Lookup:
    """Where each cached item key lives: key -> (shard path, row); the shards read so far."""

    rows: dict[str, tuple[Path, int]]
    unreadable: list[Path]
    seen: set[Path] = field(default_factory=set)


def scan(folder: Path) -> Lookup:
    lookup = Lookup({}, [])
    refresh(lookup, folder)
    return lookup


def refresh(lookup: Lookup, folder: Path) -> None:
    """Read the headers of the shards `lookup` has not seen yet (another process may have
    published some). Two shards that claim one item are refused, never resolved by a rule a
    planted shard could game (its own sha256 name is the planter's to choose)."""
    for path in shards(folder):
        if path in lookup.seen:
            continue
        lookup.seen.add(path)
        keys = shard_keys(path)
        if keys is None:
            lookup.unreadable.append(path)
            continue
        for r, k in enumerate(keys):
            if k in lookup.rows:
                other = lookup.rows[k][0]
                raise ErError(
                    f"cache shards {other.name} and {path.name} both claim item {k[:12]}",
                    at=str(folder),
                    hint="run `er-features cache verify --fix` (it removes both; "
                    "the next extract recomputes their items)",
                )
            lookup.rows[k] = (path, r)


def publish(folder: Path, keys: Sequence[str], enc: Encoded, lookup: Lookup, **kw) -> Path | None:
    """Write the rows of `enc` whose keys no shard holds yet as one shard, under the cache
    folder's lock, after a fresh look at what is cached; record them in `lookup`. Returns the
    shard, or None when another process published every key meanwhile. kw: write_shard's."""
    from er_core import folder_lock

    with folder_lock(folder, what="feature cache"):
        refresh(lookup, folder)
        keep = [r for r, k in enumerate(keys) if k not in lookup.rows]
        if not keep:
            return None
        if len(keep) < len(keys):
            enc = Encoded(
                features=enc.features[keep],
                flags=enc.flags[keep],
                extras={k: v[keep] for k, v in enc.extras.items()},
            )
            keys = [keys[r] for r in keep]
            if kw.get("names") is not None:
                kw["names"] = [kw["names"][r] for r in keep]
        path = write_shard(folder, keys, enc, **kw)
        lookup.seen.add(path)
        for r, k in enumerate(keys):
            lookup.rows[k] = (path, r)
    return path


def check_shard(path: Path) -> None:
    """A shard is sound when its bytes hash to its name."""
    if sha256_file(path) != path.stem:
        raise ErError(
            "cache shard does not verify (its sha256 is not its name)",
            at=str(path),
            hint="run `er-features cache verify --fix` to remove damaged shards, then extract again",
        )


def read_flags(path: Path) -> np.ndarray:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return f.get_tensor("flags")


# --- cache ls / verify / gc -------------------------------------------------------------------


def folders(cache: Path) -> list[Path]:
    root = cache / "features"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def ls(cache: Path) -> list[dict]:
    rows = []
    for folder in folders(cache):
        try:
            about = json.loads((folder / "key.json").read_text())
        except (OSError, ValueError):
            about = {}
        files = shards(folder)
        items = sum(len(shard_keys(p) or []) for p in files)
        rows.append(
            {
                "folder": folder.name,
                "modality": about.get("modality", "?"),
                "encoder": about.get("encoder", "?"),
                "shards": len(files),
                "items": items,
                "mib": round(sum(p.stat().st_size for p in files) / 2**20, 2),
            }
        )
    return rows


def gc(cache: Path, keep: Iterable[str] | None, dry_run: bool = False) -> list[Path]:
    """Remove leftovers of killed runs (temporary files) and, when `keep` (shard paths that
    manifests still use) is given, every shard not in it. Returns what was (or would be) removed."""
    keep_set = {str(Path(p).resolve()) for p in keep} if keep is not None else None
    doomed: list[Path] = []
    for folder in folders(cache):
        held = set(shards(folder))
        for path in folder.iterdir():
            leftover = path.name.startswith(".") and path.name.endswith(".tmp")
            unused = keep_set is not None and path in held and str(path.resolve()) not in keep_set
            if leftover or unused:
                doomed.append(path)
    if not dry_run:
        for path in doomed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return doomed
