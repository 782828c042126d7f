"""`er_data.load_table`: the checked table from whatever holds its manifest."""

from __future__ import annotations

import pytest
from er_core import DatasetManifest, ErError, write_stream
from er_core.stream import encode


def manifest(make_table, tmp_path) -> DatasetManifest:
    counts = {"train": {"joy": 2, "anger": 1}, "dev": {"joy": 1}, "test": {"anger": 1}}
    ref = make_table(tmp_path / "t.parquet", counts, ["joy", "anger"])
    return DatasetManifest(
        id="d" * 64, dataset="toy", task="emotion", classes=["joy", "anger"], table=ref
    )


def test_any_holder_of_the_manifest_gives_the_table(make_table, tmp_path):
    from er_data import load_table

    m = manifest(make_table, tmp_path)
    (tmp_path / "manifest.json").write_bytes(encode(m) + b"\n")  # as prepare writes it
    with open(tmp_path / "stream.ndjson", "wb") as f:
        write_stream([], [m], out=f)
    for source in (m, [m], tmp_path / "manifest.json", str(tmp_path / "stream.ndjson")):
        table = load_table(source)
        assert table["id"].to_list() == ["train/u0", "train/u1", "train/u2", "dev/u3", "test/u4"]
        assert table["emotion_name"].to_list() == ["joy", "joy", "anger", "joy", "anger"]


def test_a_changed_table_or_no_manifest_is_refused(make_table, tmp_path):
    from er_data import load_table

    m = manifest(make_table, tmp_path)
    with pytest.raises(ErError, match="no 'dataset' message"):
        load_table([])
    (tmp_path / "t.parquet").write_bytes((tmp_path / "t.parquet").read_bytes() + b"x")
    with pytest.raises(ErError, match="sha256 differs"):
        load_table(m)
