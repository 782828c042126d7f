"""SafeTensors that carry their message: round trip, and atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import safetensors.numpy
from er_core import DatasetManifest, FileRef, find, read_stream, read_tensors, write_tensors
from er_core.files import sha256_file


def manifest() -> DatasetManifest:
    return DatasetManifest(
        id="d" * 64,
        dataset="meld",
        task="emotion",
        table=FileRef(path="/t.parquet", sha256="0" * 64),
    )


def tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal((4, 3)).astype(np.float32),
        "ids": np.arange(5, dtype=np.int64),
        "t": np.asfortranarray(rng.standard_normal((2, 3))),  # not C-contiguous
    }


def test_round_trip_with_message(tmp_path):
    p = tmp_path / "shard.safetensors"
    ref = write_tensors(p, tensors(), manifest(), metadata={"note": "hi"})
    assert ref.path == str(p.resolve())
    assert ref.sha256 == sha256_file(p)
    assert ref.bytes == p.stat().st_size
    back, meta = read_tensors(p)
    assert set(back) == {"x", "ids", "t"}
    for k, v in tensors().items():
        np.testing.assert_array_equal(back[k], v)
        assert back[k].dtype == v.dtype
    assert meta["note"] == "hi"
    # the bare .safetensors path is a valid input: its message comes out of the metadata
    envs = read_stream([str(p)])
    assert len(envs) == 1 and envs[0].kind == "dataset"
    assert find(envs, DatasetManifest) == manifest()


def test_file_without_message_is_an_error_on_the_stream(tmp_path):
    p = tmp_path / "plain.safetensors"
    write_tensors(p, {"x": np.zeros(2)})
    from er_core import ErError

    with pytest.raises(ErError) as info:
        read_stream([str(p)])
    assert info.value.at == str(p) and "er.message" in info.value.what
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ErError) as info:
        read_stream([str(junk)])
    assert info.value.at == str(junk) and info.value.hint


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    p = tmp_path / "shard.safetensors"
    write_tensors(p, {"x": np.ones(3)}, manifest())
    before = p.read_bytes()

    def half_then_die(arrays, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x00" * 16)  # a torn header
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", half_then_die)
    with pytest.raises(OSError, match="disk full"):
        write_tensors(p, tensors(), manifest())
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["shard.safetensors"]


def test_unsaveable_tensor_leaves_nothing(tmp_path):
    with pytest.raises(Exception):  # noqa: B017 - safetensors raises its own types
        write_tensors(tmp_path / "bad.safetensors", {"x": np.array(["a", "b"], dtype=object)})
    assert os.listdir(tmp_path) == []
