"""A feature run's own files: the index (utterance -> shard, row, flags) and the manifest copy.

    <out>/er-features/<id[:12]>/index.safetensors   shard (n,) int32, row (n,) int32, flags (n,) uint8
    <out>/er-features/<id[:12]>/features.json       the FeatureManifest, a valid input to any tool

Rows with shard = -1 have no cached features (no media): they read as zeros, flagged.
Both files are written under the run folder's lock, each by an atomic rename: two identical
runs write the same bytes, one after the other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from er_core import (
    FeatureManifest,
    FileRef,
    folder_lock,
    output_dir,
    write_bytes_atomic,
    write_tensors,
)
from er_core.features import INDEX_IDS
from er_core.stream import encode


def run_dir(out: Path, run_id: str) -> Path:
    return Path(output_dir(str(out), "er-features", run_id))


def write_index(
    out: Path,
    run_id: str,
    ids: Sequence[str],
    shard: np.ndarray,
    row: np.ndarray,
    flags: np.ndarray,
) -> FileRef:
    arrays = {
        "shard": shard.astype(np.int32),
        "row": row.astype(np.int32),
        "flags": flags.astype(np.uint8),
    }
    meta = {INDEX_IDS: json.dumps(list(ids))}
    folder = run_dir(out, run_id)
    with folder_lock(folder, what="feature run folder"):  # one writer at a time
        return write_tensors(folder / "index.safetensors", arrays, metadata=meta)


def write_manifest_copy(out: Path, manifest: FeatureManifest) -> Path:
    folder = run_dir(out, manifest.id)
    with folder_lock(folder, what="feature run folder"):
        return write_bytes_atomic(folder / "features.json", encode(manifest) + b"\n")
