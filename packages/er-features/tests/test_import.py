"""er-features import: NPZ, Parquet and SafeTensors by utterance id; every mismatch is named."""

from __future__ import annotations

import io
import json

import numpy as np
import polars as pl
import pytest
from er_core import DatasetManifest, ErError, aligned_features, find, read_stream
from er_features.importer import import_features


@pytest.fixture
def envs(synth_dataset):
    return read_stream(["-"], stdin=io.BytesIO(synth_dataset))


@pytest.fixture
def ids(envs):
    return pl.read_parquet(find(envs, DatasetManifest).table.path)["id"].to_list()


def vectors(n: int, d: int = 5) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


def write(kind: str, path, ids, feats):
    if kind == "npz":
        np.savez(path, ids=np.array(ids), features=feats)
    elif kind == "npz-per-id":
        np.savez(path, **{u: v for u, v in zip(ids, feats, strict=True)})
    elif kind == "parquet":
        pl.DataFrame({"id": ids, "features": feats.tolist()}).write_parquet(path)
    elif kind == "parquet-columns":
        cols = {f"f{j}": feats[:, j] for j in range(feats.shape[1])}
        pl.DataFrame({"id": ids, **cols}).write_parquet(path)
    else:
        from safetensors.numpy import save_file

        save_file({"features": feats}, str(path), metadata={"ids": json.dumps(ids)})
    return path


SUFFIX = {"npz": ".npz", "npz-per-id": ".npz", "parquet": ".parquet", "parquet-columns": ".parquet"}


@pytest.mark.parametrize("kind", ["npz", "npz-per-id", "parquet", "parquet-columns", "safetensors"])
def test_import_round_trips_in_table_order(kind, envs, ids, tmp_path):
    feats = vectors(len(ids))
    shuffled = list(reversed(range(len(ids))))  # the file's order is not the table's
    src = write(
        kind,
        tmp_path / f"f{SUFFIX.get(kind, '.safetensors')}",
        [ids[i] for i in shuffled],
        feats[shuffled],
    )
    m = import_features(envs, "audio", src, cache=tmp_path / "c", out=tmp_path / "o")
    assert m.modality == "audio" and m.dim == 5 and m.encoder == f"import:{src.name}"
    fs = aligned_features(m, find(envs, DatasetManifest), ids)
    np.testing.assert_allclose(fs.features, feats, rtol=1e-6)


def test_missing_ids_are_named(envs, ids, tmp_path):
    src = write("npz", tmp_path / "f.npz", ids[1:], vectors(len(ids) - 1))
    with pytest.raises(
        ErError, match=f"1 of the dataset's utterances have no features .first: {ids[0]}"
    ):
        import_features(envs, "audio", src, cache=tmp_path, out=tmp_path)


def test_extra_ids_are_named(envs, ids, tmp_path):
    src = write("npz", tmp_path / "f.npz", [*ids, "nowhere/dia9_utt9"], vectors(len(ids) + 1))
    with pytest.raises(ErError, match=r"1 ids are not in the dataset .first: nowhere/dia9_utt9"):
        import_features(envs, "audio", src, cache=tmp_path, out=tmp_path)


def test_wrong_dims_are_named(envs, ids, tmp_path):
    arrays = {u: np.zeros(4 if i == 3 else 5, np.float32) for i, u in enumerate(ids)}
    np.savez(tmp_path / "f.npz", **arrays)
    with pytest.raises(ErError, match=f"utterance {ids[3]} has 4 dims, the first has 5"):
        import_features(envs, "audio", tmp_path / "f.npz", cache=tmp_path, out=tmp_path)


def test_nan_and_unknown_types_are_errors(envs, ids, tmp_path):
    feats = vectors(len(ids))
    feats[2, 1] = np.nan
    src = write("npz", tmp_path / "f.npz", ids, feats)
    with pytest.raises(ErError, match="NaN"):
        import_features(envs, "audio", src, cache=tmp_path, out=tmp_path)
    (tmp_path / "f.csv").write_text("id,x\n")
    with pytest.raises(ErError, match="unknown feature file type"):
        import_features(envs, "audio", tmp_path / "f.csv", cache=tmp_path, out=tmp_path)
