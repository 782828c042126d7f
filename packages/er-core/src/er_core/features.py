"""Reading the features a FeatureManifest names: verified shards gathered into one matrix."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from er_core.errors import ErError
from er_core.files import sha256_file
from er_core.messages import DatasetManifest, FeatureManifest, FileRef, Message
from er_core.stream import Envelope, to_envelopes

M = TypeVar("M", bound=Message)

INDEX_IDS = "er.ids"


@dataclass
class FeatureSet:
    """Features of n utterances in table order: ids (n,), features (n, dim) float32,
    flags (n,) uint8 (non-zero = a fallback row, see er-features' FLAG_*), extras name -> (n, k)."""

    ids: list[str]
    features: np.ndarray
    flags: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def check_file(ref: FileRef, what: str) -> Path:
    """The path of `ref` if the file is there and its sha256 matches; a clear error otherwise."""
    p = Path(ref.path)
    if not p.is_file():
        raise ErError(
            f"{what} is missing",
            at=ref.path,
            hint="the feature cache was moved or cleaned; re-run er-features extract",
        )
    if sha256_file(p) != ref.sha256:
        raise ErError(
            f"{what} does not match its sha256 in the manifest",
            at=ref.path,
            hint="the file changed after it was written; run er-features cache verify, then extract again",
        )
    return p


def read_index(ref: FileRef, verify: bool = True) -> tuple[list[str], dict[str, np.ndarray]]:
    """The index of a FeatureManifest: utterance ids and their shard, row and flags arrays."""
    from safetensors import safe_open

    path = check_file(ref, "feature index") if verify else Path(ref.path)
    with safe_open(str(path), framework="numpy") as f:
        ids = json.loads((f.metadata() or {})[INDEX_IDS])
        arrays = {k: f.get_tensor(k) for k in ("shard", "row", "flags")}
    return ids, arrays


def _describe(obj: Any) -> str:
    if isinstance(obj, Envelope):
        return f"an Envelope holding a '{obj.kind}' message"
    if isinstance(obj, Message):
        return f"a {type(obj).__name__}"
    if isinstance(obj, (list, tuple)):
        return f"a {type(obj).__name__} of {len(obj)} (a whole stream?)"
    return f"a {type(obj).__name__}"


def as_message(obj: Any, cls: type[M], name: str) -> M:
    """`obj` as a `cls` message: the message itself, or the Envelope or dict holding one.

    Anything else (a whole stream, a message of another kind) is one ErError saying what to
    pass: these readers are called from scripts, where an AttributeError on `.dataset` or
    `.table` says nothing about the fix.
    """
    if isinstance(obj, cls):
        return obj
    if isinstance(obj, (Envelope, dict)):
        (env,) = to_envelopes(obj, name)
        if isinstance(env.message, cls):
            return env.message
    raise ErError(
        f"`{name}` must be a {cls.__name__}, not {_describe(obj)}",
        at=name,
        hint=f"pick it from the stream: er_core.find(er_core.read_messages(PATH), {cls.__name__})",
    )


def load_features(manifest: FeatureManifest, verify: bool = True) -> FeatureSet:
    """Gather every covered utterance's features from the manifest's shards (hash-checked).

    `manifest` may also be the Envelope (or dict) holding the FeatureManifest."""
    from safetensors import safe_open

    manifest = as_message(manifest, FeatureManifest, "manifest")
    ids, index = read_index(manifest.index, verify)
    n = len(ids)
    features = np.zeros((n, manifest.dim), np.float32)
    extras = {k: np.zeros((n, w), np.float32) for k, w in manifest.extras.items()}
    for s, ref in enumerate(manifest.shards):
        rows = np.nonzero(index["shard"] == s)[0]
        if rows.size == 0:
            continue
        path = check_file(ref, "feature shard") if verify else Path(ref.path)
        with safe_open(str(path), framework="numpy") as f:
            src = index["row"][rows]
            features[rows] = f.get_tensor("features")[src]
            for k in extras:
                extras[k][rows] = f.get_tensor(k)[src]
    return FeatureSet(ids=ids, features=features, flags=index["flags"].copy(), extras=extras)


def _id_list(ids: Any) -> list[str]:
    try:
        listed = None if isinstance(ids, (str, bytes)) else list(ids)
    except TypeError:  # not iterable
        listed = None
    if listed is None or not all(isinstance(u, str) for u in listed):
        raise ErError(
            "`ids` must be the table's utterance ids, a sequence of str",
            at="ids",
            hint="pass the table's id column, e.g. er_data.load_table(dataset)['id']",
        )
    return listed


def aligned_features(
    manifest: FeatureManifest, dataset: DatasetManifest, ids: Sequence[str]
) -> FeatureSet:
    """The features of exactly `ids` (the dataset table's ids, in table order).

    Features made for another table, or whose utterance ids differ from the table's, are a
    clear error: silently misaligned features are the worst kind of wrong result.
    `manifest` and `dataset` may be the messages or the Envelopes `read_stream` returns; the
    ids are the table's `id` column (er_data.load_table(dataset)["id"]).
    """
    manifest = as_message(manifest, FeatureManifest, "manifest")
    dataset = as_message(dataset, DatasetManifest, "dataset")
    ids = _id_list(ids)
    if manifest.dataset != dataset.id or manifest.table_sha256 != dataset.table.sha256:
        raise ErError(
            f"{manifest.modality} features ({manifest.encoder}) were made for another dataset table",
            at=manifest.index.path,
            hint="re-run er-features extract on this dataset's stream",
        )
    fs = load_features(manifest)
    if fs.ids != list(ids):
        want, got = set(ids), set(fs.ids)
        lacking = [u for u in ids if u not in got]
        extra = [u for u in fs.ids if u not in want]
        what = f"{len(lacking)} missing" + (f" (first: {lacking[0]})" if lacking else "")
        what += f", {len(extra)} extra" + (f" (first: {extra[0]})" if extra else "")
        if not lacking and not extra:
            what = "same ids in another order"
        raise ErError(
            f"{manifest.modality} feature ids do not match the dataset: {what}",
            at=manifest.index.path,
            hint="a --shard slice covers part of the data: er-features merge the slices first",
        )
    return fs
