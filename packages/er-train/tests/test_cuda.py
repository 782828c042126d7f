"""Fine-tuning on a CUDA device (marked gpu: skipped where torch sees none; tools/gpu-check.sh
runs them): the tower gives the CPU's features, a method L run with frozen layers and a token
budget trains in fp32, bf16 and fp16, and data-parallel training uses nccl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest
from er_core import RunManifest, merge_sources, read_stream, validate

pytestmark = pytest.mark.gpu
TUNE = [
    "run.method=L",
    "finetune.frozen_layers=1",
    "finetune.text.pooling=target",
    "finetune.text.context_before=2",
    "train.tokens=256",
    "train.batch_size=8",
]


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    from er_features.testing import tiny_text_folder

    return tiny_text_folder(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def audio(make_toy, tmp_path_factory) -> Path:
    """A toy stream with audio features only: text comes from the tower."""
    toy = make_toy(tmp_path_factory.mktemp("toy"), n_dialogues=12)
    return toy.write(tmp_path_factory.mktemp("stream") / "audio.ndjson", "audio")


def _train(fast_config, stream, runs, device, *sets) -> RunManifest:
    from er_train.config import TrainConfig
    from er_train.training import train

    data, origins = merge_sources([fast_config], list(sets))
    data.setdefault("run", {})["root"] = str(runs)
    cfg = validate(data, TrainConfig, origins)
    return train(read_stream([str(stream)]), cfg, origins, device=device, progress=False)


def test_tower_on_cuda_gives_the_cpu_features(bert, audio):
    import polars as pl
    import torch
    from er_core import DatasetManifest, find
    from er_train.tower import FinetuneSection, build_tower

    dataset = find(read_stream([str(audio)]), DatasetManifest)
    ids = pl.read_parquet(dataset.table.path)["id"].to_list()
    cfg = FinetuneSection(
        encoder=str(bert), text={"context_before": 2, "pooling": "target"}, frozen_layers=1
    )
    torch.manual_seed(0)
    cpu = build_tower(cfg, "L", dataset, ids).eval()
    torch.manual_seed(0)
    gpu = build_tower(cfg, "L", dataset, ids).to("cuda").eval()
    rows = torch.arange(len(ids))
    torch.testing.assert_close(gpu.features(rows).cpu(), cpu.features(rows), atol=1e-4, rtol=0)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_fine_tuning_run_trains_on_cuda(fast_config, audio, bert, tmp_path, precision):
    m = _train(
        fast_config,
        audio,
        tmp_path,
        "cuda",
        *TUNE,
        f"finetune.encoder={bert}",
        f"train.precision={precision}",
    )
    assert m.device.startswith("cuda") and m.modalities == ["text", "audio"]
    assert all(np.isfinite(e.train_loss) for e in m.epochs)
    assert m.config["train"]["precision"] == precision


def test_two_processes_on_two_gpus_use_nccl(fast_config, audio, bert, tmp_path):
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("nccl data parallelism needs 2 GPUs (one rank per device)")
    env = {k: v for k, v in os.environ.items() if k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK"}}
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "er_train", str(audio), "-c", str(fast_config), "--runs", str(tmp_path)]
    cmd += ["--device", "cuda", "--quiet"]
    for s in [*TUNE, f"finetune.encoder={bert}"]:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr.decode()
    m = msgspec.json.decode(p.stdout.decode().splitlines()[-1], type=RunManifest)
    assert m.device == "cuda x2", json.dumps(msgspec.to_builtins(m))[:200]
