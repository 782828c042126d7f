"""Hostile input (issue 12): bad options, non-finite encoder output, stale or planted cache
entries, concurrent extracts. Each test builds its own small fixtures."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from er_core import ErError, load_features, read_stream
from er_features import cache as fcache
from er_features.base import FLAG_NONFINITE, Encoded
from er_features.extraction import ExtractConfig, extract
from er_features.verify import verify


def stream(raw: bytes):
    return read_stream(["-"], stdin=io.BytesIO(raw))


def two_lines(stderr: bytes) -> list[str]:
    """The stderr of a failed command: exactly `error: ...` then `hint: ...`."""
    lines = stderr.decode().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), lines
    assert "bug in er" not in lines[1], lines
    return lines


def cached_files(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.safetensors")) if cache.exists() else []


# --- class 2: every numeric option and config field has its range -------------------------------


@pytest.mark.parametrize(
    "args, where",
    [
        (["--batch-size", "-1"], "--batch-size"),
        (["--batch-size", "0"], "--batch-size"),
        (["--set", "batch_size=-1"], "$.batch_size"),
        (["--set", "shard_size=0"], "$.shard_size"),
        (["--set", "text.context_before=-3"], "$.text.context_before"),
        (["--set", "text.max_length=0"], "$.text.max_length"),
        (["--set", "text.layers=0"], "$.text.layers"),
        (["--set", "audio.chunk_seconds=nan"], "$.audio.chunk_seconds"),
        (["--set", "audio.silence_db=inf"], "$.audio.silence_db"),
        (["--set", "video.margin=2.0"], "$.video.margin"),
        (["--set", "video.frames=0"], "$.video.frames"),
        (["--set", "video.scale_factor=1.0"], "$.video.scale_factor"),
    ],
)
def test_out_of_range_options_are_refused_before_any_work(
    cli, synth_dataset, tiny_bert, tmp_path, args, where
):
    cache = tmp_path / "cache"
    r = cli(
        "extract", "-m", "text", "-e", str(tiny_bert), "--cache", str(cache),
        "--out", str(tmp_path / "out"), *args, input=synth_dataset,
    )  # fmt: skip
    assert r.returncode in (1, 2), r.stderr.decode()
    first, _ = two_lines(r.stderr)
    assert where in first
    assert not cache.exists() and not (tmp_path / "out").exists()  # nothing was done
    assert r.stdout == b""


def test_batch_size_is_refused_by_the_encoder_too(tiny_bert):
    from er_features.text import TextConfig, TextEncoder

    with pytest.raises(ErError, match="batch_size"):
        TextEncoder(tiny_bert, TextConfig(), batch_size=-1)


# --- class 2: the cache's door checks an encoder's output ---------------------------------------


def enc(n: int, dim: int = 4, **extras) -> Encoded:
    return Encoded(
        features=np.ones((n, dim), np.float32),
        flags=np.zeros(n, np.uint8),
        extras={k: np.ones((n, w), np.float32) for k, w in extras.items()},
    )


@pytest.mark.parametrize(
    "bad, n, kw, match",
    [
        (enc(3), 4, {}, "'features' has shape"),  # fewer rows than items
        (enc(4, dim=5), 4, {"dim": 4}, "'features' has shape"),  # another width
        (enc(4, dim=0), 4, {}, "'features' has shape"),  # zero width
        (enc(4, logits=7), 4, {"dim": 4, "extras": {"logits": 6}}, "'logits' has shape"),
        (enc(4), 4, {"dim": 4, "extras": {"logits": 7}}, "'logits' has shape None"),
        (enc(4, extra=1), 4, {"dim": 4, "extras": {}}, "'extra' has shape"),
    ],
)
def test_the_cache_door_refuses_misshapen_output(tmp_path, bad, n, kw, match):
    with pytest.raises(ErError, match=match):
        fcache.write_shard(tmp_path, [f"k{i}" for i in range(n)], bad, **kw)
    assert cached_files(tmp_path) == []


def test_the_cache_door_refuses_non_finite_output_naming_the_item(tmp_path):
    bad = enc(3, logits=2)
    bad.extras["logits"][1, 0] = np.inf
    with pytest.raises(ErError, match=r"'logits' is not finite .* for 'u1'"):
        fcache.write_shard(tmp_path, ["a", "b", "c"], bad, names=["u0", "u1", "u2"])
    assert cached_files(tmp_path) == []


@pytest.fixture(scope="module")
def nan_bert(tiny_bert, tmp_path_factory) -> Path:
    """The tiny BERT with one NaN in a LayerNorm: every output is NaN (a broken checkpoint)."""
    import torch
    from transformers import AutoModel

    folder = tmp_path_factory.mktemp("nan-bert")
    shutil.copytree(tiny_bert, folder, dirs_exist_ok=True)
    model = AutoModel.from_pretrained(str(tiny_bert))
    with torch.no_grad():
        model.embeddings.LayerNorm.weight[0] = float("nan")
    model.save_pretrained(str(folder))
    return folder


def test_nan_encoder_output_is_an_error_naming_the_item(synth_dataset, nan_bert, tmp_path):
    cfg = ExtractConfig(modality="text", encoder=str(nan_bert))
    with pytest.raises(ErError, match="gave NaN or inf for utterance") as e:
        extract(stream(synth_dataset), cfg, cache=tmp_path / "c", out=tmp_path / "o")
    assert e.value.hint and "--on-bad-media flag" in e.value.hint
    assert cached_files(tmp_path / "c") == []  # nothing non-finite (nor anything) was cached


def test_nan_encoder_output_under_flag_is_a_flagged_zero_row(synth_dataset, nan_bert, tmp_path):
    cfg = ExtractConfig(modality="text", encoder=str(nan_bert), on_bad_media="flag")
    m = extract(stream(synth_dataset), cfg, cache=tmp_path / "c", out=tmp_path / "o")
    fs = load_features(m)
    assert np.isfinite(fs.features).all() and not fs.features.any()
    assert (fs.flags & FLAG_NONFINITE).all() and m.fallbacks == {"nonfinite": 24}
    # a later run that does not ask for flagged rows refuses them, naming the utterance
    strict = ExtractConfig(modality="text", encoder=str(nan_bert))
    with pytest.raises(ErError, match="found unusable by an earlier run"):
        extract(stream(synth_dataset), strict, cache=tmp_path / "c", out=tmp_path / "o")


# --- class 4: a planted shard cannot pass verify nor replace real features ----------------------


@pytest.fixture
def filled(synth_dataset, tiny_bert, tmp_path):
    cfg = ExtractConfig(modality="text", encoder=str(tiny_bert), shard_size=5)
    m = extract(stream(synth_dataset), cfg, cache=tmp_path / "c", out=tmp_path / "o")
    return cfg, m


def plant(m) -> Path:
    """A shard named by its own sha256 that claims the first shard's items with other numbers."""
    real = Path(m.shards[0].path)
    keys = fcache.shard_keys(real)
    fake = enc(len(keys), dim=m.dim)
    fake.features *= 7.0
    return fcache.write_shard(real.parent, keys, fake)


def test_a_planted_shard_fails_verify_and_is_refused_by_extract(
    cli, synth_dataset, filled, tmp_path
):
    cfg, m = filled
    real = Path(m.shards[0].path)
    planted = plant(m)
    assert planted.stem == fcache.sha256_file(planted)  # it passes the old hash-only verify
    problems = verify(tmp_path / "c")
    assert sorted(p.path for p in problems) == sorted([real, planted])
    assert all("claims item" in p.text for p in problems)
    # extract never takes the planted numbers: it refuses the folder, naming the fix
    with pytest.raises(ErError, match="both claim item") as e:
        extract(stream(synth_dataset), cfg, cache=tmp_path / "c", out=tmp_path / "o2")
    assert "cache verify --fix" in e.value.hint
    # the CLI: exit 1 with one error and a hint; --fix removes both; extract heals the cache
    r = cli("cache", "verify", "--cache", str(tmp_path / "c"))
    assert r.returncode == 1
    assert r.stderr.decode().splitlines()[-2].startswith("error: 2 cache problem(s)")
    r = cli("cache", "verify", "--cache", str(tmp_path / "c"), "--fix")
    assert r.returncode == 0 and not real.exists() and not planted.exists()
    again = extract(stream(synth_dataset), cfg, cache=tmp_path / "c", out=tmp_path / "o")
    assert again == m and verify(tmp_path / "c", manifests=[again]) == []


def test_verify_checks_a_manifest_index_against_its_shards(filled, tmp_path):
    _, m = filled
    assert verify(tmp_path / "c", manifests=[m]) == []
    Path(m.shards[2].path).unlink()
    problems = verify(tmp_path / "c", manifests=[m])
    assert [p.path for p in problems] == [Path(m.shards[2].path)]
    assert "missing or changed" in problems[0].text and not problems[0].in_cache


def test_verify_refuses_a_shard_whose_tensors_do_not_fit_its_keys(filled, tmp_path):
    _, m = filled
    real = Path(m.shards[0].path)
    keys = fcache.shard_keys(real)
    from safetensors.numpy import save_file

    odd = real.parent / "odd.tmp"
    save_file(
        {"features": np.ones((2, m.dim), np.float32), "flags": np.zeros(2, np.uint8)},
        str(odd),
        metadata={fcache.KEYS: json.dumps(["x" + k for k in keys])},
    )
    named = odd.rename(real.parent / f"{fcache.sha256_file(odd)}.safetensors")
    problems = verify(tmp_path / "c")
    assert [(p.path, p.text) for p in problems] == [
        (named, f"its features are not ({len(keys)}, d >= 1)")
    ]


# --- class 1: two extracts on one cache never produce a shard both claim -----------------------


RACER = """
import os, sys, time
from pathlib import Path
import er_features.text as t

encode, gate = t.TextEncoder.encode, Path(os.environ["ER_TEST_GATE"])

def slow(self, items):
    if not (gate / str(os.getpid())).exists():
        (gate / str(os.getpid())).touch()
        start = time.time()
        while len(list(gate.iterdir())) < 2 and time.time() - start < 300:
            time.sleep(0.02)
    time.sleep(0.3)
    return encode(self, items)

t.TextEncoder.encode = slow
from er_features.cli import main
sys.argv[0] = "er-features"
main()
"""


@pytest.mark.parametrize("sizes", [(3, 3), (3, 5)])
def test_two_concurrent_extracts_on_one_cache(synth_dataset, tiny_bert, tmp_path, sizes):
    """Same run twice: the same manifest. Another chunking (shard_size is not in the cache key)
    computes overlapping chunks: items the other process published meanwhile are not written
    again (without the lock and the fresh look, they would be in two shards)."""
    cache, out = tmp_path / "cache", tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Both processes meet before their first chunk and take 0.3 s longer per chunk, so their
    # chunks overlap in time whatever their start-up times (the real CLI runs otherwise).
    racer = tmp_path / "racer.py"
    racer.write_text(RACER)
    (tmp_path / "gate").mkdir()
    env["ER_TEST_GATE"] = str(tmp_path / "gate")
    cmd = [sys.executable, str(racer), "extract", "-m", "text", "-e", str(tiny_bert)]
    cmd += ["--cache", str(cache), "--out", str(out)]
    procs = [
        subprocess.Popen(
            [*cmd, "--set", f"shard_size={size}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for size in sizes
    ]
    for p in procs:  # both get their input before either is waited for (they meet midway)
        p.stdin.write(synth_dataset)
        p.stdin.close()
    results = [(p.stdout.read(), p.stderr.read(), p.wait(timeout=600))[:2] for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err.decode()
    owner: dict[str, Path] = {}
    for path in cached_files(cache):
        for k in fcache.shard_keys(path):
            assert owner.setdefault(k, path) == path, f"{k} in {owner[k]} and {path}"
    assert len(owner) == 24 and verify(cache) == []
    feats = [load_features(read_stream(["-"], stdin=io.BytesIO(o))[-1].message) for o, _ in results]
    assert feats[0].ids == feats[1].ids and len(feats[0].ids) == 24
    if sizes[0] == sizes[1]:
        assert results[0][0] == results[1][0]  # the same manifest, byte for byte
    else:  # each item's vector comes from the one shard that holds it
        assert np.array_equal(feats[0].features, feats[1].features)
