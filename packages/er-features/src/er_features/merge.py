"""`er-features merge`: the FeatureManifests of `--shard i/n` slices -> one for the whole dataset.

The merged index is built exactly as a single run builds its own (table order, shards numbered
by first use), so merging the slices of a run gives the manifest that one process would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from er_core import DatasetManifest, Envelope, ErError, FeatureManifest, FileRef, find, read_index
from er_core.ids import content_id
from er_data import check_table

from er_features.base import FLAG_NAMES
from er_features.index import write_index


def slices(envelopes: Sequence[Envelope]) -> list[FeatureManifest]:
    parts = [e.message for e in envelopes if isinstance(e.message, FeatureManifest)]
    parts = [p for p in parts if p.part]
    if not parts:
        raise ErError(
            "no --shard slice manifests in the input",
            at="<input>",
            hint="merge the outputs of er-features extract --shard i/n, one per slice",
        )
    first = parts[0]
    for p in parts[1:]:
        if (p.dataset, p.cache_key) != (first.dataset, first.cache_key):
            raise ErError(
                f"slices of different runs: {p.encoder} on {p.dataset[:12]} vs "
                f"{first.encoder} on {first.dataset[:12]}",
                at=p.index.path,
                hint="merge only the slices of one extract command",
            )
    n = int(first.part.split("/")[1])
    seen = sorted({int(p.part.split("/")[0]) for p in parts})
    if seen != list(range(n)):
        lost = sorted(set(range(n)) - set(seen))
        raise ErError(
            f"slices {', '.join(f'{i}/{n}' for i in lost)} are missing",
            at="<input>",
            hint="run er-features extract --shard i/n for each missing slice and merge them all",
        )
    return parts


def merge(envelopes: Sequence[Envelope], out: Path) -> tuple[list[Envelope], FeatureManifest]:
    """(upstream messages without the slices, each once; the merged manifest)."""
    parts = slices(envelopes)
    dataset = find(envelopes, DatasetManifest)
    where: dict[str, tuple[FileRef, int, int]] = {}
    for p in parts:
        ids, index = read_index(p.index)
        for uid, s, r, f in zip(ids, index["shard"], index["row"], index["flags"], strict=True):
            ref = p.shards[s] if s >= 0 else None
            where.setdefault(uid, (ref, int(r), int(f)))
    order = check_table(dataset)["id"].to_list()
    absent = [uid for uid in order if uid not in where]
    if absent:
        raise ErError(
            f"{len(absent)} utterances are in no slice (first: {absent[0]})",
            at="<input>",
            hint="the slices come from another dataset table; re-run them on this one",
        )
    used: dict[str, int] = {}
    refs: list[FileRef] = []
    shard = np.full(len(order), -1, np.int32)
    row = np.full(len(order), -1, np.int32)
    flags = np.zeros(len(order), np.uint8)
    for n, uid in enumerate(order):
        ref, r, f = where[uid]
        flags[n] = f
        if ref is not None:
            if ref.path not in used:
                used[ref.path] = len(refs)
                refs.append(ref)
            shard[n], row[n] = used[ref.path], r
    first = parts[0]
    run_id = content_id(
        {
            "dataset": first.dataset,
            "table": first.table_sha256,
            "cache_key": first.cache_key,
            "part": "",
        }
    )
    index = write_index(out, run_id, order, shard, row, flags)
    fallbacks = {
        name: int(((flags & bit) > 0).sum())
        for bit, name in FLAG_NAMES.items()
        if ((flags & bit) > 0).any()
    }
    import msgspec

    merged = msgspec.structs.replace(
        first, id=run_id, index=index, shards=refs, count=len(order), fallbacks=fallbacks, part=""
    )
    drop = {id(p) for p in parts}
    seen: set[bytes] = set()
    upstream = []
    for e in envelopes:
        if id(e.message) in drop or e.raw in seen:
            continue
        seen.add(e.raw)
        upstream.append(e)
    return upstream, merged
