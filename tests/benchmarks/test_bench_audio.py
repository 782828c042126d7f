"""Audio encoder, Whisper tiny.en on the 16 RAVDESS speech WAVs (48 kHz, 3.3-3.9 s): trim vs full.

Run: ER_SHARED_DATA=../shared/data uv run pytest tests/benchmarks/test_bench_audio.py \
         --benchmark-only -s
(--benchmark-only: --benchmark-enable does not override the --benchmark-skip in addopts)

Both windows run the whole path (decode + resample, log-mel, encoder, pooling) on the same clips
in the same session. `full` is the baseline: Whisper's standard padded 30 s pass, so every 3.5 s
clip pays for 30 s. `trim` runs the encoder on the real frames only. Asserted: trim is at least
5x faster. Printed as well: how far trim's features are from full's, per clip (cosine), next to
how alike different clips are under full (the raw cosine of Whisper features is dominated by a
component all clips share, so the figures also come centred and as a matching rate).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.realdata]
THREADS = 2
ROUNDS = 3


@pytest.fixture(scope="module")
def clips() -> list[Path]:
    shared = os.environ.get("ER_SHARED_DATA")
    if not shared or not Path(shared).is_dir():
        pytest.skip("needs ER_SHARED_DATA pointing at the shared data folder")
    paths = sorted((Path(shared) / "ravdess-speech").glob("*.wav"))
    if len(paths) != 16:
        pytest.skip(f"expected the 16 RAVDESS WAVs in {shared}/ravdess-speech, found {len(paths)}")
    return paths


@pytest.fixture(scope="module")
def whisper_folder(tmp_path_factory) -> Path:
    """The real whisper-tiny.en weights, converted once into a temporary cache."""
    try:
        from er_features.packaged import whisper_tiny_en
    except ImportError:
        pytest.skip("er_features.packaged (the offline Whisper weights) does not exist yet")
    from er_core import ErError

    try:
        return whisper_tiny_en(tmp_path_factory.mktemp("cache"))
    except ErError as e:
        pytest.skip(f"whisper-tiny.en weights unavailable: {e.what}")


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of (n, d) and (n, d) -> (n,)."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def best_of(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_trim_vs_full_window(benchmark, clips, whisper_folder):
    import torch
    from er_features.audio import AudioConfig, AudioEncoder
    from er_features.base import Item

    torch.set_num_threads(THREADS)
    items = [Item(uid=p.stem, path=str(p)) for p in clips]
    trim = AudioEncoder(whisper_folder, AudioConfig(window="trim"))
    full = AudioEncoder(whisper_folder, AudioConfig(window="full"))
    for enc in (trim, full):  # warm-up: first-call allocations, lazy imports
        enc.encode(items[:1])

    full_s = best_of(lambda: full.encode(items), ROUNDS)  # the baseline, same session
    trim_out = benchmark.pedantic(lambda: trim.encode(items), rounds=ROUNDS, iterations=1)
    trim_s = benchmark.stats.stats.min
    full_out = full.encode(items)
    assert not trim_out.flags.any() and not full_out.flags.any()

    t, f = trim_out.features, full_out.features  # (16, 384) each
    raw = cosine(t, f)
    n = len(items)
    cross = np.array(
        [cosine(f[i : i + 1], f[j : j + 1])[0] for i in range(n) for j in range(n) if i != j]
    )
    centred = cosine(t - t.mean(0), f - f.mean(0))  # each window centred on its own clip mean
    sims = (t / np.linalg.norm(t, axis=1, keepdims=True)) @ (
        f / np.linalg.norm(f, axis=1, keepdims=True)
    ).T
    matched = float((sims.argmax(1) == np.arange(n)).mean())
    ratio = full_s / trim_s
    print(
        f"\naudio whisper-tiny.en, {n} RAVDESS clips ({THREADS} threads, best of {ROUNDS}): "
        f"trim {trim_s:.3f} s ({1000 * trim_s / n:.0f} ms/clip), "
        f"full {full_s:.3f} s ({1000 * full_s / n:.0f} ms/clip), ratio {ratio:.1f}x"
        f"\n  cosine(trim, full) per clip: min {raw.min():.3f}, mean {raw.mean():.3f}, "
        f"max {raw.max():.3f}; different clips under full: mean {cross.mean():.3f}"
        f"\n  centred on each window's mean: min {centred.min():.3f}, mean {centred.mean():.3f}, "
        f"max {centred.max():.3f}; trim vector nearest its own full vector: {matched:.0%}"
    )
    assert ratio >= 5
