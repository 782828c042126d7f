"""extract, in process: manifest, warm cache, resume after a kill, partial hits, slices + merge."""

from __future__ import annotations

import io
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
from er_core import (
    DatasetManifest,
    ErError,
    FeatureManifest,
    FileRef,
    aligned_features,
    find,
    load_features,
    read_stream,
    sha256_file,
)
from er_features import extraction as extract_mod
from er_features.extraction import ExtractConfig, extract
from er_features.merge import merge


def stream(raw: bytes):
    return read_stream(["-"], stdin=io.BytesIO(raw))


def cfg_for(folder, **kw) -> ExtractConfig:
    return ExtractConfig(modality="text", encoder=str(folder), **kw)


@pytest.fixture
def counting(monkeypatch):
    """Counts the items each run really encodes (and the encoders it builds)."""
    seen = {"items": 0, "built": 0}
    real = extract_mod.build_encoder

    def build(*a, **kw):
        seen["built"] += 1
        enc = real(*a, **kw)
        inner = enc.encode

        def encode(items):
            seen["items"] += len(items)
            return inner(items)

        enc.encode = encode
        return enc

    monkeypatch.setattr(extract_mod, "build_encoder", build)
    return seen


def table_ids(envs) -> list[str]:
    ds = find(envs, DatasetManifest)
    return pl.read_parquet(ds.table.path)["id"].to_list()


def test_text_features_cover_the_table_in_order(synth_dataset, tiny_bert, tmp_path):
    envs = stream(synth_dataset)
    m = extract(envs, cfg_for(tiny_bert), cache=tmp_path / "c", out=tmp_path / "o")
    ids = table_ids(envs)
    assert m.modality == "text" and m.dim == 32 and m.count == len(ids)
    fs = aligned_features(m, find(envs, DatasetManifest), ids)
    assert fs.features.shape == (len(ids), 32) and np.abs(fs.features).sum(1).min() > 0
    assert not fs.flags.any() and m.fallbacks == {}
    assert m.config["family"] == "hf-text" and m.config["context_before"] == 0
    # the same text gives the same vector wherever it occurs
    texts = pl.read_parquet(find(envs, DatasetManifest).table.path)["text"].to_list()
    firsts = {t: i for i, t in reversed(list(enumerate(texts)))}
    for i, t in enumerate(texts):
        np.testing.assert_array_equal(fs.features[i], fs.features[firsts[t]])


def test_warm_rerun_does_no_model_work(synth_dataset, tiny_bert, tmp_path, counting):
    envs = stream(synth_dataset)
    kw = {"cache": tmp_path / "c", "out": tmp_path / "o"}
    cold = extract(envs, cfg_for(tiny_bert, shard_size=5), **kw)
    assert counting["built"] == 1 and counting["items"] > 0
    warm = extract(envs, cfg_for(tiny_bert, shard_size=5), **kw)
    assert counting["built"] == 1  # no encoder was even loaded
    assert warm == cold


def test_config_change_misses_the_cache(synth_dataset, tiny_bert, tmp_path, counting):
    envs = stream(synth_dataset)
    kw = {"cache": tmp_path / "c", "out": tmp_path / "o"}
    a = extract(envs, cfg_for(tiny_bert), **kw)
    b = extract(envs, msgspec.structs.replace(cfg_for(tiny_bert), text=a_context(1)), **kw)
    assert counting["built"] == 2 and a.cache_key != b.cache_key
    assert not np.array_equal(load_features(a).features, load_features(b).features)


def a_context(k: int):
    from er_features.text import TextConfig

    return TextConfig(context_before=k)


def test_killed_run_resumes_to_identical_features(synth_dataset, tiny_bert, tmp_path, monkeypatch):
    envs = stream(synth_dataset)
    cfg = cfg_for(tiny_bert, shard_size=4)
    whole = extract(envs, cfg, cache=tmp_path / "fresh", out=tmp_path / "o1")

    calls = {"n": 0}
    real = extract_mod.build_encoder

    def dying(*a, **kw):
        enc = real(*a, **kw)
        inner = enc.encode

        def encode(items):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt  # killed while encoding the third chunk
            return inner(items)

        enc.encode = encode
        return enc

    monkeypatch.setattr(extract_mod, "build_encoder", dying)
    cache = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt):
        extract(envs, cfg, cache=cache, out=tmp_path / "o2")
    folder = next((cache / "features").iterdir())
    assert len(list(folder.glob("*.safetensors"))) == 2  # two whole shards survived
    monkeypatch.setattr(extract_mod, "build_encoder", real)
    resumed = extract(envs, cfg, cache=cache, out=tmp_path / "o2")
    a, b = load_features(whole), load_features(resumed)
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.features, b.features)  # bit-identical, not merely close


def test_partial_hit_computes_only_what_is_missing(synth_dataset, tiny_bert, tmp_path, counting):
    envs = stream(synth_dataset)
    ds = find(envs, DatasetManifest)
    frame = pl.read_parquet(ds.table.path)
    half = frame.head(frame.height // 2)
    path = tmp_path / "half.parquet"
    half.write_parquet(path)
    small = msgspec.structs.replace(
        ds, id="h" * 64, table=FileRef(path=str(path), sha256=sha256_file(path))
    )
    kw = {"cache": tmp_path / "c", "out": tmp_path / "o"}
    extract([_env(small)], cfg_for(tiny_bert), **kw)
    first = counting["items"]
    assert first == half["text"].n_unique()
    full = extract(envs, cfg_for(tiny_bert), **kw)
    assert counting["items"] - first == frame["text"].n_unique() - half["text"].n_unique()
    assert full.count == frame.height


def _env(msg):
    from er_core.stream import decode_line, encode

    return decode_line(encode(msg), "<test>")


def test_slices_merge_to_the_single_run(synth_dataset, tiny_bert, tmp_path):
    envs = stream(synth_dataset)
    cfg = cfg_for(tiny_bert, shard_size=3)
    single = extract(envs, cfg, cache=tmp_path / "one", out=tmp_path / "o1")
    cache, out = tmp_path / "many", tmp_path / "o2"
    parts = [extract(envs, cfg, cache=cache, out=out, part=(i, 3)) for i in range(3)]
    assert sum(p.count for p in parts) == single.count
    assert {p.part for p in parts} == {"0/3", "1/3", "2/3"}
    upstream, merged = merge([*envs, *map(_env, parts)], out)
    assert [e.raw for e in upstream] == [e.raw for e in envs]
    a, b = load_features(single), load_features(merged)
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.features, b.features)
    assert merged.id == single.id and merged.count == single.count


def test_merge_names_a_missing_slice(synth_dataset, tiny_bert, tmp_path):
    envs = stream(synth_dataset)
    cfg = cfg_for(tiny_bert)
    part = extract(envs, cfg, cache=tmp_path / "c", out=tmp_path / "o", part=(1, 2))
    with pytest.raises(ErError, match="slices 0/2 are missing"):
        merge([*envs, _env(part)], tmp_path / "o")


def test_a_slice_does_not_pass_for_the_dataset(synth_dataset, tiny_bert, tmp_path):
    envs = stream(synth_dataset)
    cfg = cfg_for(tiny_bert, shard_size=3)
    part = extract(envs, cfg, cache=tmp_path / "c", out=tmp_path / "o", part=(0, 2))
    with pytest.raises(ErError, match=r"do not match the dataset: \d+ missing"):
        aligned_features(part, find(envs, DatasetManifest), table_ids(envs))


def test_features_of_another_table_are_refused(synth_dataset, tiny_bert, tmp_path):
    envs = stream(synth_dataset)
    m = extract(envs, cfg_for(tiny_bert), cache=tmp_path / "c", out=tmp_path / "o")
    other = msgspec.structs.replace(find(envs, DatasetManifest), id="x" * 64)
    with pytest.raises(ErError, match="another dataset table"):
        aligned_features(m, other, table_ids(envs))


def test_damaged_shard_is_an_error_naming_it(synth_dataset, tiny_bert, tmp_path):
    envs = stream(synth_dataset)
    kw = {"cache": tmp_path / "c", "out": tmp_path / "o"}
    m = extract(envs, cfg_for(tiny_bert), **kw)
    shard = m.shards[0].path
    data = bytearray(Path(shard).read_bytes())
    data[-3] ^= 0xFF  # flip bits in the tensor data; the header still reads
    Path(shard).write_bytes(bytes(data))
    with pytest.raises(ErError, match="does not verify") as e:
        extract(envs, cfg_for(tiny_bert), **kw)
    assert e.value.at == shard
    with pytest.raises(ErError, match="sha256"):
        load_features(m)


def test_unknown_encoder_is_an_error(synth_dataset, tmp_path):
    with pytest.raises(ErError, match="unknown encoder 'nope'"):
        extract(
            stream(synth_dataset),
            ExtractConfig(modality="text", encoder="nope"),
            cache=tmp_path,
            out=tmp_path,
        )


def test_wrong_modality_for_encoder_is_an_error(synth_dataset, tiny_bert, tmp_path):
    cfg = ExtractConfig(modality="audio", encoder=str(tiny_bert))
    with pytest.raises(ErError, match="is a text encoder, not audio"):
        extract(stream(synth_dataset), cfg, cache=tmp_path, out=tmp_path)


def test_manifest_is_a_wire_message(synth_dataset, tiny_bert, tmp_path):
    from er_core.stream import encode

    m = extract(stream(synth_dataset), cfg_for(tiny_bert), cache=tmp_path / "c", out=tmp_path / "o")
    back = msgspec.json.decode(encode(m), type=FeatureManifest)
    assert back == m
