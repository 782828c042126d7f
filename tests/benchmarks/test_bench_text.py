"""Text extraction on the 1,109 MELD dev utterances with minilm: batching, FLOP/s, cache, memory.

Run: ER_SHARED_DATA=../shared/data uv run pytest tests/benchmarks/test_bench_text.py \
         --benchmark-only -s
Each figure is a ratio against a baseline measured in the same run, printed as it is measured.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import polars as pl
import pytest
from er_core import DatasetManifest, FileRef, find, read_stream, sha256_file

pytestmark = [pytest.mark.realdata]
THREADS = 2


@pytest.fixture(scope="module")
def meld_dev(tmp_path_factory) -> tuple[Path, DatasetManifest]:
    """MELD prepared, then cut to its dev split: a DatasetManifest of 1,109 utterances."""
    shared = os.environ.get("ER_SHARED_DATA")
    if not shared:
        pytest.skip("needs ER_SHARED_DATA")
    root = tmp_path_factory.mktemp("meld-dev")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "er_data",
            "prepare",
            "meld",
            "--root",
            f"{shared}/meld",
            "--out",
            str(root / "out"),
        ],
        capture_output=True,
        check=True,
    )
    full = find(read_stream(["-"], stdin=io.BytesIO(r.stdout)), DatasetManifest)
    return root, subset(full, root / "dev.parquet", copies=1)


def subset(full: DatasetManifest, path: Path, copies: int) -> DatasetManifest:
    """The dev split, `copies` times over; copy k>0 gets new ids and a marked text (new work)."""
    dev = pl.read_parquet(full.table.path).filter(pl.col("split") == "dev")
    frames = [dev] + [
        dev.with_columns(
            pl.col("id") + f"#{k}",
            pl.col("dialogue") + f"#{k}",
            pl.col("text") + f" ({k})",
        )
        for k in range(1, copies)
    ]
    pl.concat(frames).write_parquet(path)
    return msgspec.structs.replace(
        full,
        id=sha256_file(path),
        table=FileRef(path=str(path), sha256=sha256_file(path), bytes=path.stat().st_size),
        splits={"dev": dev.height * copies},
    )


def envelopes(ds: DatasetManifest):
    from er_core.stream import decode_line, encode

    return [decode_line(encode(ds), "<bench>")]


def minilm_encoder(tmp: Path):
    from er_features.registry import resolve
    from er_features.text import TextConfig, TextEncoder

    res = resolve("minilm", "text", tmp)
    return TextEncoder(res.folder, TextConfig(), batch_size=64)


def dev_items(ds: DatasetManifest):
    from er_data import check_table
    from er_features.items import text_items
    from er_features.text import TextConfig

    return text_items(check_table(ds), TextConfig())


def flops(encoder, items) -> float:
    """Useful FLOPs of a BERT forward over the real tokens: per token and layer 24·d² for the
    projections and FFN (4d² + 8d² multiply-adds ×2) plus 4·T·d for attention scores and mix."""
    cfg = encoder.model.config
    d, n_layers = cfg.hidden_size, cfg.num_hidden_layers
    total = 0.0
    for it in items:
        t = len(encoder.prompt(it.parts))
        total += n_layers * (t * 24 * d * d + 4 * t * t * d)
    return total


def matmul_peak() -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 2048**3 / best


def test_batched_vs_naive_loop(benchmark, meld_dev, tmp_path):
    import torch

    torch.set_num_threads(THREADS)
    _, ds = meld_dev
    encoder = minilm_encoder(tmp_path)
    items = dev_items(ds)
    assert len(items) == 1109

    def naive():
        for it in items:
            encoder.encode([it])

    start = time.perf_counter()
    naive()
    naive_s = time.perf_counter() - start
    batched_s = benchmark.pedantic(lambda: encoder.encode(items), rounds=3, iterations=1)
    batched_s = benchmark.stats.stats.min
    ratio = naive_s / batched_s
    peak = matmul_peak()
    achieved = flops(encoder, items) / batched_s
    print(
        f"\ntext minilm, MELD dev ({len(items)} utt, {THREADS} threads): "
        f"batched {len(items) / batched_s:.0f} utt/s ({batched_s:.2f} s), "
        f"naive loop {len(items) / naive_s:.0f} utt/s ({naive_s:.2f} s), ratio {ratio:.1f}x; "
        f"{achieved / 1e9:.1f} GFLOP/s = {100 * achieved / peak:.0f}% of the measured fp32 "
        f"matmul peak {peak / 1e9:.1f} GFLOP/s"
    )
    assert ratio >= 3


def test_warm_cache_vs_cold(benchmark, meld_dev, tmp_path):
    import torch
    from er_features.extraction import ExtractConfig, extract

    torch.set_num_threads(THREADS)
    _, ds = meld_dev
    envs = envelopes(ds)
    cfg = ExtractConfig(modality="text", encoder="minilm")
    kw = {"cache": tmp_path / "cache", "out": tmp_path / "out"}
    start = time.perf_counter()
    cold = extract(envs, cfg, **kw)
    cold_s = time.perf_counter() - start
    warm = benchmark.pedantic(lambda: extract(envs, cfg, **kw), rounds=5, iterations=1)
    warm_s = benchmark.stats.stats.min
    assert warm == cold
    print(
        f"\ncache, minilm on MELD dev: cold {cold_s:.2f} s (model load included), "
        f"warm {warm_s * 1000:.0f} ms, ratio {cold_s / warm_s:.0f}x"
    )
    assert cold_s / warm_s >= 50


PEAK_RSS = """
import io, json, resource, sys, torch
from pathlib import Path
from er_core.stream import read_stream
from er_features.extraction import ExtractConfig, extract
torch.set_num_threads(2)
envs = read_stream([sys.argv[1]])
cfg = ExtractConfig(modality="text", encoder="minilm")
extract(envs, cfg, cache=Path(sys.argv[2]), out=Path(sys.argv[3]))
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def peak_rss_kib(ds: DatasetManifest, tmp: Path, name: str) -> int:
    from er_core.stream import encode

    msg = tmp / f"{name}.ndjson"
    msg.write_bytes(encode(ds) + b"\n")
    r = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(msg), str(tmp / f"cache-{name}"), str(tmp / "out")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_memory_is_bounded_by_the_shard_not_the_dataset(benchmark, meld_dev, tmp_path):
    _root, ds = meld_dev
    big = subset(find(envelopes(ds), DatasetManifest), tmp_path / "dev4.parquet", copies=4)
    big = msgspec.structs.replace(big, splits={"dev": 4 * 1109})
    once = peak_rss_kib(ds, tmp_path, "x1")
    four = benchmark.pedantic(lambda: peak_rss_kib(big, tmp_path, "x4"), rounds=1, iterations=1)
    growth = four / once - 1
    print(
        f"\nmemory, minilm: peak RSS {once / 1024:.0f} MiB for MELD dev (1,109 utt), "
        f"{four / 1024:.0f} MiB for it four times over (4,436 utt): {100 * growth:+.1f}%"
    )
    assert abs(growth) < 0.20
