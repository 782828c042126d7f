"""The cache's own commands: ls, verify (--fix), gc; shards are named by their hash."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from er_core import read_stream
from er_features import cache as fcache
from er_features.extraction import ExtractConfig, extract
from er_features.verify import verify


@pytest.fixture
def filled(synth_dataset, tiny_bert, tmp_path):
    envs = read_stream(["-"], stdin=io.BytesIO(synth_dataset))
    cfg = ExtractConfig(modality="text", encoder=str(tiny_bert), shard_size=5)
    m = extract(envs, cfg, cache=tmp_path / "c", out=tmp_path / "o")
    return tmp_path / "c", m


def test_shards_are_named_by_their_hash(filled):
    cache, m = filled
    assert len(m.shards) == 5  # 24 utterances, 5 per shard
    for ref in m.shards:
        assert Path(ref.path).stem == ref.sha256
    rows = fcache.ls(cache)
    assert len(rows) == 1 and rows[0]["shards"] == 5 and rows[0]["modality"] == "text"
    assert rows[0]["encoder"].endswith("tiny-bert0")


def test_verify_finds_and_fixes_a_damaged_shard(filled):
    cache, m = filled
    assert verify(cache, manifests=[m]) == []
    victim = Path(m.shards[1].path)
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert [p.path for p in verify(cache)] == [victim]
    assert [p.path for p in verify(cache, fix=True)] == [victim] and not victim.exists()
    assert verify(cache) == []
    assert [p.path for p in verify(cache, manifests=[m])] == [victim]  # the manifest needs it


def test_gc_removes_leftovers_and_unkept_shards(filled):
    cache, m = filled
    folder = Path(m.shards[0].path).parent
    leftover = folder / ".shard.abc.tmp"
    leftover.write_bytes(b"half")
    assert fcache.gc(cache, None, dry_run=True) == [leftover] and leftover.exists()
    assert fcache.gc(cache, None) == [leftover] and not leftover.exists()
    keep = [r.path for r in m.shards[:2]]
    gone = fcache.gc(cache, keep)
    assert sorted(gone) == sorted(Path(r.path) for r in m.shards[2:])
    assert all(Path(p).exists() for p in keep)


def test_unreadable_shard_is_skipped_and_recomputed(synth_dataset, tiny_bert, filled, tmp_path):
    cache, m = filled
    victim = Path(m.shards[0].path)
    victim.write_bytes(b"not a safetensors file")
    envs = read_stream(["-"], stdin=io.BytesIO(synth_dataset))
    cfg = ExtractConfig(modality="text", encoder=str(tiny_bert), shard_size=5)
    again = extract(envs, cfg, cache=cache, out=tmp_path / "o")
    # the recomputed shard has the same bytes, hence the same name: the damage is healed
    assert again == m and verify(cache) == []
