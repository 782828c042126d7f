"""Fine-tuning speed on a CPU: MiniLM with LoRA on MELD prompts that hold the dialogue history
(configs/train/meld-context-lora.toml's text options: up to 8 previous turns, speakers named,
at most 128 tokens), in training tokens per second (real tokens, padding not counted).

Run: ER_SHARED_DATA=../shared/data uv run pytest tests/benchmarks/test_bench_finetune.py \
         --benchmark-only -s

Every path trains the same kind of step (encoder with LoRA r 8 on query and value, pooled,
a linear head, cross-entropy, backward, AdamW) on the same 1,024 MELD training utterances:
- naive: the usual loop: fixed batches of 32 in random order, each batch's prompt strings
  tokenized in the step and padded to the batch's longest, the whole encoder run every step;
- er: er-train's text tower and batches: token ids built once per run, length-bucketed
  batches within 4,096 padded tokens (at most 32 utterances);
- er + frozen layers 1-2 (the recipe): the same, with the embeddings and layers 1-2 frozen:
  their output is computed the first time an utterance is seen ("cold", the first epoch) and
  reused after ("warm", every later epoch);
- the recipe, warm, under bf16 autocast (text option bf16): kept only if faster here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.realdata]
THREADS = 2
ROWS = 1024
TEXT = {
    "context_before": 8,
    "template": "{before} [SEP] {target}",
    "max_length": 128,
    "pooling": "target",
}


@pytest.fixture(scope="module")
def meld(tmp_path_factory):
    shared = os.environ.get("ER_SHARED_DATA")
    if not shared:
        pytest.skip("needs ER_SHARED_DATA")
    from er_core import read_stream

    work = tmp_path_factory.mktemp("meld")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "er_data",
            "prepare",
            "meld",
            "--root",
            f"{shared}/meld",
            "--out",
            str(work),
        ],
        capture_output=True,
        check=True,
    ).stdout
    (work / "dataset.ndjson").write_bytes(out)
    return read_stream([str(work / "dataset.ndjson")])[0].message


def _tower(meld, ids, frozen: int, bf16: bool = False):
    import torch
    from er_train.tower import FinetuneSection, build_tower

    torch.manual_seed(0)
    cfg = FinetuneSection(encoder="minilm", text=TEXT | {"bf16": bf16}, frozen_layers=frozen)
    return build_tower(cfg, "L", meld, ids)


def _step(params, head, feats, y):
    import torch

    loss = torch.nn.functional.cross_entropy(head(feats), y)
    loss.backward()
    params.step()
    params.zero_grad(set_to_none=True)


def _er_epoch(tower, head, opt, rows, labels, epoch: int) -> tuple[int, float]:
    import torch
    from er_models.layout import single_groups
    from er_train.batches import epoch_batches

    split = single_groups(rows)
    lengths = np.array(tower.lengths())
    tower.train()
    tokens, start = 0, time.perf_counter()
    for groups in epoch_batches(split, 0, epoch, 32, 4096, lengths):
        picked = torch.from_numpy(split.rows[groups])
        _step(opt, head, tower(picked), labels[picked])
        tokens += int(lengths[picked.numpy()].sum())
    return tokens, time.perf_counter() - start


def _naive_epoch(meld, ids, rows, labels) -> tuple[int, float]:
    """Prompt strings tokenized in every step, fixed batches padded to their longest."""
    import torch
    from er_features.prompts import render
    from er_features.tuning import text_model
    from er_train.tower import LoraSection, _with_lora

    torch.manual_seed(0)
    model = text_model("minilm", TEXT | {"pooling": "mean"})
    model.model.pooler = None
    net = _with_lora(model.model.train(), LoraSection())
    from er_data import check_table
    from er_features.items import text_items

    items = {it.uid: it for it in text_items(check_table(meld), model.cfg)}
    mask = model.tokenizer.mask_token
    texts = [render(model.cfg, items[ids[r]].parts, mask) for r in rows]
    head = torch.nn.Linear(model.dim, 7)
    trainable = [p for p in net.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(trainable, lr=5e-4)
    order = np.random.default_rng(0).permutation(len(rows))
    tokens, start = 0, time.perf_counter()
    for b in range(0, len(order), 32):
        part = order[b : b + 32]
        enc = model.tokenizer(
            [texts[k] for k in part],
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )
        hidden = net(**enc).last_hidden_state
        real = enc["attention_mask"].unsqueeze(-1).float()
        feats = (hidden * real).sum(1) / real.sum(1)
        _step(opt, head, feats, labels[torch.from_numpy(rows[part])])
        tokens += int(enc["attention_mask"].sum())
    return tokens, time.perf_counter() - start


def _trainer(tower):
    import torch

    head = torch.nn.Linear(tower.dim, 7)
    trainable = [p for p in tower.parameters() if p.requires_grad] + list(head.parameters())
    return head, torch.optim.AdamW(trainable, lr=5e-4)


def test_finetune_tokens_per_second_vs_naive_loop(benchmark, meld):
    import polars as pl
    import torch

    torch.set_num_threads(THREADS)
    table = pl.read_parquet(meld.table.path)
    ids = table["id"].to_list()
    labels = torch.tensor(table["emotion"].to_list())  # class indices
    assert int(labels.max()) == len(meld.classes) - 1
    train = np.flatnonzero(table["split"].to_numpy() == "train")
    rows = np.sort(np.random.default_rng(0).choice(train, ROWS, replace=False))

    results = {"naive": _naive_epoch(meld, ids, rows, labels)}
    plain = _tower(meld, ids, 0)
    results["er"] = _er_epoch(plain, *_trainer(plain), rows, labels, 0)
    frozen = _tower(meld, ids, 2)
    head, opt = _trainer(frozen)
    results["er + frozen 1-2, cold"] = _er_epoch(frozen, head, opt, rows, labels, 0)
    results["er + frozen 1-2, warm"] = _er_epoch(frozen, head, opt, rows, labels, 1)
    fast_bf16 = _tower(meld, ids, 2, bf16=True)
    head16, opt16 = _trainer(fast_bf16)
    _er_epoch(fast_bf16, head16, opt16, rows, labels, 0)
    results["er + frozen 1-2, warm, bf16 autocast"] = _er_epoch(
        fast_bf16, head16, opt16, rows, labels, 1
    )
    benchmark.pedantic(
        lambda: _er_epoch(frozen, head, opt, rows[:64], labels, 2), rounds=1, iterations=1
    )
    naive = results["naive"][0] / results["naive"][1]
    print(f"\nLoRA fine-tuning, {ROWS} MELD training utterances with history, {THREADS} threads:")
    for name, (tokens, seconds) in results.items():
        rate = tokens / seconds
        print(
            f"  {name}: {tokens} tokens in {seconds:.1f} s = {rate:.0f} tokens/s, "
            f"{rate / naive:.2f}x naive"
        )
    cold = results["er + frozen 1-2, cold"]
    assert cold[0] / cold[1] > naive
