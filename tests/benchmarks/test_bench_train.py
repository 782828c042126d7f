"""Training speed: one epoch over cached MELD-train features (9,989 utterances, mpnet-base,
d = 768) with a transformer dialogue context, er-train's in-memory path vs the same model fed
through a per-item torch Dataset and the default DataLoader.

Run: ER_SHARED_DATA=../shared/data uv run pytest tests/benchmarks/test_bench_train.py \
         --benchmark-only -s
The first run extracts the mpnet-base features into the feature cache ($ER_CACHE or
~/.cache/er; a few minutes on 2 cores); later runs read them from there.

Both paths train the same network (concat fusion of one modality, 2-layer transformer context,
classification head), from the same initial weights, with the same AdamW, loss and batch size
(16 dialogues). They differ only in how batches reach the model:
- er-train: features are one (n, 768) tensor; a batch is an index slice (rows + a (B, T)
  layout), gathered in one indexing op.
- baseline: the way per-item pipelines are usually written: a `torch.utils.data.Dataset` whose
  `__getitem__` builds one dialogue from per-utterance vectors (a dict keyed by utterance id),
  padded to the longest dialogue so the default collate can stack it, and a
  `DataLoader(batch_size=16, shuffle=True)` with default settings; the padded batch is turned
  into the model's rows + layout with its mask.
Printed: seconds per epoch for each and the ratio (best of 3 epochs each).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.realdata]
THREADS = 2
EPOCHS = 3


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    shared = os.environ.get("ER_SHARED_DATA")
    if not shared:
        pytest.skip("needs ER_SHARED_DATA")
    work = tmp_path_factory.mktemp("meld")
    py = [sys.executable, "-m"]
    ds = subprocess.run(
        [*py, "er_data", "prepare", "meld", "--root", f"{shared}/meld", "--out", str(work)],
        capture_output=True,
        check=True,
    ).stdout
    feats = subprocess.run(
        [*py, "er_features", "extract", "-m", "text", "-e", "mpnet-base", "--out", str(work)],
        input=ds,
        capture_output=True,
        check=True,
    ).stdout
    path = work / "features.ndjson"
    path.write_bytes(feats)
    return path


def _setup(stream: Path):
    import torch
    from er_core import read_stream
    from er_models import build_model, parse_network
    from er_models.losses import CEConfig, CrossEntropy
    from er_train.data import load_data
    from er_train.loop import Setup

    data = load_data(read_stream([str(stream)]), ["text"], "emotion", [])
    spec = parse_network({"context": {"kind": "transformer"}}, data.dims, {"emotion": 7})
    torch.manual_seed(0)
    model = build_model(spec)
    losses = {"emotion": CrossEntropy(CEConfig(), data.class_counts("emotion"))}
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    cpu = torch.device("cpu")
    s = Setup(
        model,
        data,
        losses,
        optimizer,
        scaler,
        cpu,
        "fp32",
        0,
        16,
        1,
        1.0,
        5e-4,
        10**6,
        0.0,
        "constant",
    )
    return s


class PerItemDialogues:
    """The baseline's Dataset: one padded dialogue per item, built from per-utterance vectors."""

    def __init__(self, s, split):
        self.vectors = {s.data.ids[i]: s.data.feats["text"][i].numpy() for i in split.rows}
        self.labels = {s.data.ids[i]: int(s.data.tasks["emotion"].target[i]) for i in split.rows}
        self.speakers = {s.data.ids[i]: int(s.data.speakers[i]) for i in split.rows}
        self.dialogues = [
            [s.data.ids[i] for i in split.rows[a : a + n]]
            for a, n in zip(split.start, split.length, strict=True)
        ]
        self.longest = int(split.length.max())
        self.dim = s.data.feats["text"].shape[1]

    def __len__(self):
        return len(self.dialogues)

    def __getitem__(self, i):
        import torch

        ids = self.dialogues[i]
        x = np.zeros((self.longest, self.dim), np.float32)
        x[: len(ids)] = np.stack([self.vectors[u] for u in ids])
        y = np.full(self.longest, -1, np.int64)
        y[: len(ids)] = [self.labels[u] for u in ids]
        spk = np.zeros(self.longest, np.int64)
        spk[: len(ids)] = [self.speakers[u] for u in ids]
        return {
            "x": torch.from_numpy(x),
            "y": torch.from_numpy(y),
            "speakers": torch.from_numpy(spk),
        }


class PerItemUtterances(PerItemDialogues):
    """The per-sample Dataset: one item per utterance (the unit the loss is over), carrying its
    whole dialogue as context, padded, and the position of the utterance in it."""

    def __init__(self, s, split):
        super().__init__(s, split)
        self.items = [(d, t) for d, ids in enumerate(self.dialogues) for t in range(len(ids))]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        import torch

        d, t = self.items[i]
        item = super().__getitem__(d)
        target = torch.full_like(item["y"], -1)
        target[t] = item["y"][t]
        return item | {"context": item["y"], "y": target}


def _baseline_epoch(s, loader) -> None:
    import torch
    from torch import nn

    s.model.train()
    for batch in loader:
        mask = batch.get("context", batch["y"]) >= 0  # (B, T) real turns
        layout = torch.full(mask.shape, -1, dtype=torch.long)
        layout[mask] = torch.arange(int(mask.sum()))
        present = torch.ones((int(mask.sum()), 1), dtype=torch.bool)
        out = s.model({"text": batch["x"][mask]}, present, layout, batch["speakers"].clamp(max=7))
        y = batch["y"][mask]  # the loss is over the batch's own utterances (-1: context only)
        loss = s.losses["emotion"](out.outputs["emotion"][y >= 0], y[y >= 0])
        loss.backward()
        nn.utils.clip_grad_norm_(s.model.parameters(), 1.0)
        s.optimizer.step()
        s.optimizer.zero_grad(set_to_none=True)


def _best(fn) -> float:
    times = []
    for _ in range(EPOCHS):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def test_epoch_in_memory_vs_per_item_dataloader(benchmark, stream):
    import torch
    from er_train.loop import train_epoch
    from er_train.runs import RunState
    from torch.utils.data import DataLoader

    torch.set_num_threads(THREADS)
    s = _setup(stream)
    train = s.data.dialogues["train"]
    assert train.size == 9989 and s.data.dims == {"text": 768}

    epoch = [0]

    def ours():
        state = RunState(run_id="bench", epoch=epoch[0])
        train_epoch(s, train, state, lambda: None, 0)
        epoch[0] += 1

    fast = _best(ours)
    dialogues = DataLoader(PerItemDialogues(s, train), batch_size=16, shuffle=True)
    per_dialogue = _best(lambda: _baseline_epoch(s, dialogues))
    utterances = DataLoader(PerItemUtterances(s, train), batch_size=16, shuffle=True)
    per_utterance = _best(lambda: _baseline_epoch(s, utterances))
    benchmark.pedantic(ours, rounds=1, iterations=1)
    print(
        f"\none epoch, MELD train (9,989 utterances, d=768, transformer context), {THREADS} threads:"
        f"\n  er-train, in-memory index slices, 16 dialogues a batch: {fast:.2f} s"
        f"\n  per-item Dataset (an item = a padded dialogue) + default DataLoader: "
        f"{per_dialogue:.2f} s = {per_dialogue / fast:.1f}x"
        f"\n  per-item Dataset (an item = an utterance with its dialogue) + default DataLoader: "
        f"{per_utterance:.2f} s = {per_utterance / fast:.1f}x"
    )
    assert fast < per_dialogue and fast < per_utterance
