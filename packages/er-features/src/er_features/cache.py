"""The feature cache: content-addressed SafeTensors shards, one folder per (encoder, config).

    <cache>/features/<cache_key[:16]>/key.json          what the folder holds (encoder, config)
    <cache>/features/<cache_key[:16]>/<sha256>.safetensors

A shard holds `features` (n, dim), `flags` (n,) and any extras (n, k) for n items; the items'
keys (sha256 of the input as given) sit in its metadata. A shard is named by the sha256 of its
own bytes, so `verify` needs no other record and a damaged shard cannot pass for a good one.
Shards are written to a temporary name and renamed: a killed run leaves only whole shards.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from er_core import ErError, atomic_path, canonical_json, sha256_bytes, sha256_file

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


def write_shard(folder: Path, keys: Sequence[str], enc: Encoded) -> Path:
    """Write one shard to a temporary name, then rename it to the sha256 of its bytes."""
    from safetensors.numpy import save_file

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
    """Where each cached item key lives: key -> (shard path, row)."""

    rows: dict[str, tuple[Path, int]]
    unreadable: list[Path]


def scan(folder: Path) -> Lookup:
    rows: dict[str, tuple[Path, int]] = {}
    bad = []
    for path in shards(folder):
        keys = shard_keys(path)
        if keys is None:
            bad.append(path)
            continue
        for r, k in enumerate(keys):
            rows.setdefault(k, (path, r))
    return Lookup(rows, bad)


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


def verify(cache: Path, fix: bool = False) -> list[Path]:
    """Every shard whose bytes do not hash to its name (removed when `fix`)."""
    bad = []
    for folder in folders(cache):
        for path in shards(folder):
            if sha256_file(path) != path.stem:
                bad.append(path)
                if fix:
                    path.unlink()
    return bad


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
