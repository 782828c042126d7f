"""Reading a FeatureManifest's shards: gathered in table order, hash-checked, ids checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from er_core import (
    DatasetManifest,
    ErError,
    FeatureManifest,
    FileRef,
    aligned_features,
    load_features,
    to_envelopes,
    write_tensors,
)
from er_core.features import INDEX_IDS

IDS = ["train/dia0_utt0", "train/dia0_utt1", "dev/dia1_utt0", "test/dia2_utt0"]


def build(tmp_path):
    """Two shards holding rows in a scrambled order, and an index that puts them in table order;
    the last utterance has no features (shard -1, flagged)."""
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    b = -np.arange(6, dtype=np.float32).reshape(2, 3)
    s0 = write_tensors(tmp_path / "s0.safetensors", {"features": a, "flags": np.zeros(4, np.uint8)})
    s1 = write_tensors(tmp_path / "s1.safetensors", {"features": b, "flags": np.zeros(2, np.uint8)})
    index = write_tensors(
        tmp_path / "index.safetensors",
        {
            "shard": np.array([1, 0, 0, -1], np.int32),
            "row": np.array([1, 3, 0, -1], np.int32),
            "flags": np.array([0, 0, 0, 1], np.uint8),
        },
        metadata={INDEX_IDS: json.dumps(IDS)},
    )
    table = FileRef(path="/t.parquet", sha256="t" * 64)
    ds = DatasetManifest(id="d" * 64, dataset="x", task="emotion", table=table)
    m = FeatureManifest(
        modality="text",
        encoder="tiny",
        dim=3,
        dataset=ds.id,
        table_sha256=table.sha256,
        count=4,
        index=index,
        shards=[s0, s1],
    )
    return ds, m, a, b


def test_load_gathers_rows_in_index_order(tmp_path):
    _, m, a, b = build(tmp_path)
    fs = load_features(m)
    assert fs.ids == IDS
    np.testing.assert_array_equal(fs.features, np.stack([b[1], a[3], a[0], np.zeros(3)]))
    assert fs.flags.tolist() == [0, 0, 0, 1]


def test_a_changed_shard_is_refused(tmp_path):
    _, m, _, _ = build(tmp_path)
    (tmp_path / "s1.safetensors").write_bytes(b"x")
    with pytest.raises(ErError, match="does not match its sha256") as e:
        load_features(m)
    assert e.value.at.endswith("s1.safetensors")
    (tmp_path / "s1.safetensors").unlink()
    with pytest.raises(ErError, match="feature shard is missing"):
        load_features(m)


def test_aligned_checks_dataset_and_ids(tmp_path):
    ds, m, _, _ = build(tmp_path)
    assert aligned_features(m, ds, IDS).ids == IDS
    with pytest.raises(
        ErError, match=r"1 missing \(first: test/dia3_utt0\), 1 extra \(first: test/dia2_utt0\)"
    ):
        aligned_features(m, ds, [*IDS[:3], "test/dia3_utt0"])
    with pytest.raises(ErError, match="same ids in another order"):
        aligned_features(m, ds, list(reversed(IDS)))
    other = DatasetManifest(id="e" * 64, dataset="x", task="emotion", table=ds.table)
    with pytest.raises(ErError, match="another dataset table"):
        aligned_features(m, other, IDS)


def test_aligned_takes_envelopes_and_names_a_wrong_argument(tmp_path):
    """What read_stream returns is accepted as it is; a whole stream, a message of another kind
    or non-string ids is one ErError saying what to pass, never an AttributeError."""
    ds, m, _, _ = build(tmp_path)
    envs = to_envelopes([ds, m])
    assert aligned_features(envs[1], envs[0], IDS).ids == IDS
    assert load_features(envs[1]).ids == IDS
    with pytest.raises(ErError, match="`manifest` must be a FeatureManifest, not a list of 2") as e:
        aligned_features(envs, ds, IDS)
    assert "er_core.find(er_core.read_messages(PATH), FeatureManifest)" in e.value.hint
    with pytest.raises(ErError, match="`dataset` must be a DatasetManifest, not an Envelope"):
        aligned_features(m, envs[1], IDS)
    with pytest.raises(
        ErError, match="`manifest` must be a FeatureManifest, not a DatasetManifest"
    ):
        load_features(ds)
    for bad in ("train/dia0_utt0", [1, 2], 7):
        with pytest.raises(ErError, match="`ids` must be the table's utterance ids"):
            aligned_features(m, ds, bad)
