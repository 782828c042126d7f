"""`er_features.load_features`: features back as (ids, (n, d) float32), in table order."""

from __future__ import annotations

import io

import numpy as np
import pytest
from er_core import DatasetManifest, ErError, find, read_stream, write_stream
from er_data import load_table
from er_features import import_features, load_features


@pytest.fixture
def stream(synth_dataset, tmp_path):
    """The synthetic dataset with imported audio (d=3) and video (d=2) features, as a file;
    and the features the table's rows should get back."""
    envs = read_stream(["-"], stdin=io.BytesIO(synth_dataset))
    ids = load_table(find(envs, DatasetManifest))["id"].to_list()
    rng = np.random.default_rng(0)
    want, made = {}, []
    for modality, d in (("audio", 3), ("video", 2)):
        want[modality] = rng.normal(size=(len(ids), d)).astype(np.float32)
        src = tmp_path / f"{modality}.npz"
        order = np.arange(len(ids))[::-1]  # the file's order is not the table's
        np.savez(src, ids=np.array(ids)[order], features=want[modality][order])
        made.append(import_features(envs, modality, src, cache=tmp_path / "c", out=tmp_path))
    path = tmp_path / "feats.ndjson"
    with open(path, "wb") as f:
        write_stream(envs, made, out=f)
    return path, ids, want, made


def test_rows_follow_the_table(stream):
    path, ids, want, made = stream
    for source in (path, str(path), read_stream([str(path)])):
        got_ids, x = load_features(source, modality="audio")
        assert got_ids == ids and x.dtype == np.float32
        np.testing.assert_allclose(x, want["audio"], rtol=1e-6)
    got_ids, x = load_features(path, modality="V")  # the letters of er-train's -m work too
    np.testing.assert_allclose(x, want["video"], rtol=1e-6)
    alone_ids, alone = load_features(made[0])  # a FeatureManifest alone: the rows it covers
    assert alone_ids == ids and alone.shape == (len(ids), 3)


def test_an_ambiguous_or_missing_modality_is_named(stream, synth_dataset):
    path = stream[0]
    with pytest.raises(ErError, match="features of audio, video: which one") as e:
        load_features(path)
    assert e.value.at == "modality"
    with pytest.raises(ErError, match="no text features in the input"):
        load_features(path, modality="text")
    with pytest.raises(ErError, match="no features in the input"):
        load_features(synth_dataset)  # the dataset alone, before any extract
