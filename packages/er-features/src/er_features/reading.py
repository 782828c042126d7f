"""Features back out of er, for a script or a notebook: (ids, (n, d) float32 array).

A thin layer over er_core's readers (`aligned_features` when the stream holds the dataset,
else `load_features`): the shards are hash-checked and, with the dataset, the rows are checked
to be exactly the table's utterances in table order, so an array never lines up silently wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from er_core import (
    DatasetManifest,
    ErError,
    FeatureManifest,
    aligned_features,
    find,
    read_messages,
)
from er_core import load_features as load_feature_set

LETTERS = {"T": "text", "A": "audio", "V": "video"}


def load_features(source: Any, modality: str | None = None) -> tuple[list[str], np.ndarray]:
    """The utterance ids and their (n, d) float32 features of one modality.

    `source`: a stream file (e.g. the output of `er-features extract`), read_stream's list, a
    list of messages, or a FeatureManifest alone. `modality` ("text", "audio", "video" or
    T/A/V) picks among several; None takes the stream's one modality. With the dataset in the
    stream, rows follow its table (checked); a FeatureManifest alone gives the rows it covers.
    """
    if isinstance(source, FeatureManifest):
        fs = load_feature_set(source)
        return fs.ids, fs.features
    messages = read_messages(source)
    want = LETTERS.get(modality or "", modality)
    found = [m for m in messages if isinstance(m, FeatureManifest)]
    have = list(dict.fromkeys(m.modality for m in found))
    if not found or (want is not None and want not in have):
        raise ErError(
            f"no {want} features in the input" if want else "no features in the input",
            at="source",
            hint=f"pass the output of er-features extract (modalities here: {have or 'none'})",
        )
    if want is None and len(have) > 1:
        raise ErError(
            f"the input holds features of {', '.join(have)}: which one?",
            at="modality",
            hint=f"pass modality={have[0]!r} (or one of {', '.join(have)})",
        )
    manifest = [m for m in found if m.modality == (want or have[0])][-1]
    dataset = find(messages, DatasetManifest, required=False)
    if dataset is None:
        fs = load_feature_set(manifest)
    else:
        from er_data import load_table

        fs = aligned_features(manifest, dataset, load_table(dataset)["id"].to_list())
    return fs.ids, fs.features
