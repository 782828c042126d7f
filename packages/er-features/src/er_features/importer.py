"""`er-features import`: features made elsewhere (NPZ, Parquet, SafeTensors) -> a FeatureManifest.

Accepted layouts, keyed by utterance id (the table's `id` column):
- NPZ: arrays `ids` (n,) and `features` (n, d); or one (d,) array per utterance id.
- Parquet: a column `id` and a list column `features`; or `id` plus numeric columns (one per dim).
- SafeTensors: `features` (n, d) with the ids as a JSON list in metadata key `ids`; or one (d,)
  tensor per utterance id.
Every utterance of the dataset must be there once, and nothing else; vectors share one width.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from er_core import (
    DatasetManifest,
    Envelope,
    ErError,
    FeatureManifest,
    FileRef,
    Progress,
    canonical_json,
    content_id,
    find,
    require_float32_range,
    sha256_bytes,
    sha256_file,
)
from er_data import check_table

from er_features import cache as fcache
from er_features.base import Encoded
from er_features.index import write_index

SHARD_ROWS = 4096


LAYOUTS = "see `er-features import --help` for the accepted layouts"


def read_any(path: Path) -> tuple[list[str], np.ndarray]:
    """(ids, features (n, d) float32) from any accepted layout, checked: ids are strings, one
    per row; features are real numbers of width >= 1, finite before and after the cast to
    float32. Anything else is an ErError naming the file (and the utterance, where one is)."""
    ids, feats = _read_raw(path)
    return _checked(path, ids, feats)


def _checked(path: Path, ids, feats) -> tuple[list[str], np.ndarray]:
    at = str(path)
    if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
        raise ErError("the ids are not a list of strings", at=at, hint=LAYOUTS)
    feats = np.asarray(feats)
    if feats.dtype.kind not in "fiu":
        raise ErError(
            f"features have dtype {feats.dtype}, not real numbers",
            at=at,
            hint="store float (or integer) features",
        )
    if feats.ndim != 2:
        raise ErError(
            f"features have shape {feats.shape}, not (n, d)",
            at=at,
            hint="store one vector per utterance: a 2-D (n, d) array, or one (d,) array per id",
        )
    if feats.shape[0] != len(ids):
        raise ErError(
            f"{len(ids)} ids but {feats.shape[0]} feature rows",
            at=at,
            hint="give exactly one id per row of `features`",
        )
    if feats.shape[1] < 1:
        raise ErError("features have width 0", at=at, hint="store at least one value per utterance")
    feats = require_float32_range(
        feats,
        what="imported features",
        names=ids,
        at=at,
        hint="NaN or inf cannot be trained on: fix or recompute those vectors",
    )
    return ids, feats


def _read_raw(path: Path) -> tuple[list[str], np.ndarray]:
    """(ids, features as stored) from any accepted layout."""
    if not path.is_file():
        raise ErError("feature file not found", at=str(path), hint="check the --from path")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            if "ids" in data and "features" in data:
                ids = data["ids"]
                if ids.ndim != 1 or ids.dtype.kind not in "USiu":
                    raise ErError(
                        f"'ids' has shape {ids.shape} and dtype {ids.dtype}, not (n,) strings",
                        at=f"{path}:ids",
                        hint="store the utterance ids as a 1-D string array",
                    )
                return [str(x) for x in ids], data["features"]
            return _rows(path, data)
        if suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                data = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
            if "features" in data and "ids" in meta:
                return json.loads(meta["ids"]), data["features"]
            return _rows(path, data)
        if suffix == ".parquet":
            return _parquet(path)
    except ErError:
        raise
    except Exception as e:  # numpy / safetensors / polars each raise their own
        raise ErError(
            f"cannot read features ({type(e).__name__}: {e})",
            at=str(path),
            hint=LAYOUTS,
        ) from None
    raise ErError(
        f"unknown feature file type '{suffix}'",
        at=str(path),
        hint="use .npz, .parquet or .safetensors",
    )


def _rows(path: Path, data: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    ids = list(data)
    widths = {k: v.shape for k, v in data.items()}
    bad = [k for k, s in widths.items() if len(s) != 1 or data[k].dtype.kind not in "fiu"]
    if bad:
        raise ErError(
            f"'{bad[0]}' has shape {widths[bad[0]]} and dtype {data[bad[0]].dtype}, not (d,) numbers",
            at=f"{path}:{bad[0]}",
            hint="store one vector per utterance id, or `ids` + `features` (n, d)",
        )
    _same_width(path, ids, [v.shape[0] for v in data.values()])
    return ids, np.stack([data[k] for k in ids]) if ids else np.zeros((0, 0), np.float32)


def _parquet(path: Path) -> tuple[list[str], np.ndarray]:
    import polars as pl

    frame = pl.read_parquet(path)
    if "id" not in frame.columns:
        raise ErError("no 'id' column", at=str(path), hint="name the utterance id column 'id'")
    if frame["id"].null_count():
        raise ErError("the 'id' column has empty cells", at=str(path), hint="give every row an id")
    ids = [str(x) for x in frame["id"].to_list()]
    if "features" in frame.columns:
        vectors = frame["features"].to_list()
        _same_width(path, ids, [len(v) if v is not None else 0 for v in vectors])
        return ids, np.asarray(vectors, np.float32)
    rest = frame.drop("id")
    return ids, rest.to_numpy().astype(np.float32)


def _same_width(path: Path, ids: Sequence[str], widths: Sequence[int]) -> None:
    if widths and len(set(widths)) > 1:
        first = widths[0]
        k = next(i for i, w in enumerate(widths) if w != first)
        raise ErError(
            f"utterance {ids[k]} has {widths[k]} dims, the first has {first}",
            at=f"{path}:{ids[k]}",
            hint="every vector must have the same width",
        )


def import_features(
    envelopes: Sequence[Envelope],
    modality: str,
    src: Path,
    *,
    cache: Path,
    out: Path,
    quiet: bool = False,
) -> FeatureManifest:
    """Check the file, then cache its vectors under (the file's sha256, utterance id) keys:
    items already cached (an earlier import of the same file) are reused, never claimed twice.
    `quiet`: no progress line while the shards are written."""
    dataset = find(envelopes, DatasetManifest)
    ids, feats = read_any(src)
    if len(ids) != len(set(ids)):
        from collections import Counter

        dup = next(x for x, c in Counter(ids).items() if c > 1)
        raise ErError(f"utterance {dup} appears twice", at=f"{src}:{dup}", hint="keep one row")
    order = check_table(dataset)["id"].to_list()
    have = {u: i for i, u in enumerate(ids)}
    lacking = [u for u in order if u not in have]
    extra = sorted(set(ids) - set(order))
    if lacking:
        raise ErError(
            f"{len(lacking)} of the dataset's utterances have no features (first: {lacking[0]})",
            at=str(src),
            hint="features must cover every utterance of the table; check the id spelling",
        )
    if extra:
        raise ErError(
            f"{len(extra)} ids are not in the dataset (first: {extra[0]})",
            at=f"{src}:{extra[0]}",
            hint="import against the DatasetManifest these features were made for",
        )
    file_sha = sha256_file(src)
    key = fcache.cache_key(modality, file_sha, {"family": "import"})
    folder = fcache.folder_for(cache, key)
    fcache.describe(folder, {"modality": modality, "encoder": f"import:{src.name}", "config": {}})
    matrix = feats[[have[u] for u in order]]
    keys = [sha256_bytes(canonical_json(["import", u])) for u in order]
    lookup = fcache.scan(folder)
    with Progress(len(order), f"import {modality}", quiet=quiet) as bar:
        for lo in range(0, len(order), SHARD_ROWS):
            hi = lo + SHARD_ROWS
            if not all(k in lookup.rows for k in keys[lo:hi]):
                n = len(keys[lo:hi])
                enc = Encoded(features=matrix[lo:hi], flags=np.zeros(n, np.uint8))
                names, dim = order[lo:hi], matrix.shape[1]
                fcache.publish(folder, keys[lo:hi], enc, lookup, dim=dim, extras={}, names=names)
            bar.update(len(keys[lo:hi]))
    used: dict[Path, int] = {}
    shard = np.zeros(len(order), np.int32)
    row = np.zeros(len(order), np.int32)
    for n, k in enumerate(keys):
        path, r = lookup.rows[k]
        shard[n], row[n] = used.setdefault(path, len(used)), r
    for path in used:
        fcache.check_shard(path)
    refs = [FileRef(path=str(p), sha256=p.stem, bytes=p.stat().st_size) for p in used]
    run_id = content_id({"dataset": dataset.id, "table": dataset.table.sha256, "cache_key": key})
    index = write_index(out, run_id, order, shard, row, np.zeros(len(order), np.uint8))
    return FeatureManifest(
        id=run_id,
        tool="er-features 0.1.0",
        modality=modality,
        encoder=f"import:{src.name}",
        encoder_source=str(src.resolve()),
        weights_sha256=file_sha,
        config={"family": "import"},
        cache_key=key,
        dim=int(matrix.shape[1]),
        dataset=dataset.id,
        table_sha256=dataset.table.sha256,
        count=len(order),
        index=index,
        shards=refs,
    )
