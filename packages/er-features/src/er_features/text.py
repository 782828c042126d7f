"""Text encoder: a transformers encoder (BERT, MPNet, ...) pooled to one vector per utterance.

An utterance is encoded alone or inside its conversation: `context_before` previous and
`context_after` following turns, each rendered with `turn` ("{speaker}: {text}"), joined by
`joiner`, and placed by `template` around the target. A template may hold `{mask}` (the
tokenizer's mask token), e.g. "{before} {target} Now {speaker} feels {mask}", and `pooling =
"mask"` then pools that position; `pooling = "target"` averages the target utterance's own
tokens, its context only shaping them. Prompts are built in prompts.py: the target is never
truncated, the context far from it is cut first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from er_core import Config, ErError, NonNegativeInt, PositiveInt, to_dict

from er_features.base import FLAG_EMPTY, Encoded, Item, empty_encoded
from er_features.prompts import Prompt, render, tokenize, turn_text  # noqa: F401 (re-exported)

VERSION = 1  # bump when a change here changes the vectors: it is part of the cache key


class TextConfig(Config, frozen=True, kw_only=True):
    context_before: NonNegativeInt = 0  # previous turns of the same dialogue
    context_after: NonNegativeInt = 0  # following turns
    speakers: bool = True  # render the speaker's name in each turn
    turn: str = "{speaker}: {text}"  # one turn; "{text}" alone when speakers is false
    joiner: str = " "  # between context turns
    template: str = "{before} {target} {after}"  # may use {speaker} (target's) and {mask}
    # mean of all real tokens, the first, the mask token, the target utterance's tokens, the last
    pooling: Literal["mean", "cls", "mask", "target", "last"] = "mean"
    layers: PositiveInt = 1  # mean of the last N hidden states
    max_length: PositiveInt = 512  # tokens, special tokens included
    normalize: bool = False  # L2-normalise the pooled vector
    bf16: bool = False  # bfloat16 autocast (CPU or CUDA)


class TextEncoder:
    """Batches items sorted by length; pooling is over real tokens only, never padding."""

    modality = "text"

    def __init__(self, folder: Path, cfg: TextConfig, device: str = "cpu", batch_size: int = 64):
        import torch
        from transformers import AutoModel, AutoTokenizer

        if batch_size < 1:  # range(0, n, 0 or -1) would encode nothing and leave zeros
            raise ErError(
                f"batch_size = {batch_size}", at="--batch-size", hint="use a batch size >= 1"
            )
        self.cfg, self.device, self.batch_size = cfg, device, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder)).to(device).eval()
        n_layers = self.model.config.num_hidden_layers
        if not 1 <= cfg.layers <= n_layers:
            raise ErError(
                f"layers = {cfg.layers}, but the model has {n_layers}",
                at="text.layers",
                hint=f"choose 1..{n_layers}",
            )
        if cfg.pooling == "mask" and (
            "{mask}" not in cfg.template or self.tokenizer.mask_token is None
        ):
            raise ErError(
                "pooling = 'mask' needs a {mask} in the template and a tokenizer with a mask token",
                at="text.template",
                hint='e.g. template = "{before} {target} Now {speaker} feels {mask}"',
            )
        self.dim = int(self.model.config.hidden_size)
        self.extras: dict[str, int] = {}
        self._torch = torch

    @property
    def config(self) -> dict[str, Any]:
        return to_dict(self.cfg)

    def prompt(self, parts: dict[str, Any]) -> list[int]:
        """Token ids of one item's prompt, its context cut until it fits `max_length`."""
        return tokenize(self.tokenizer, self.cfg, [parts])[0].ids

    def prompts(self, items: Sequence[Item]) -> list[Prompt]:
        """Each item's prompt token ids (and target span), as `encode` builds them."""
        return tokenize(self.tokenizer, self.cfg, [item.parts for item in items])

    def encode(self, items: Sequence[Item]) -> Encoded:
        out = empty_encoded(len(items), self.dim, self.extras)
        prompts = self.prompts(items)
        out.flags[[i for i, p in enumerate(prompts) if not p.ids]] = FLAG_EMPTY
        todo = [(i, p) for i, p in enumerate(prompts) if p.ids]
        todo.sort(key=lambda t: (len(t[1].ids), t[0]))  # length-sorted: little padding per batch
        for b in range(0, len(todo), self.batch_size):
            batch = todo[b : b + self.batch_size]
            out.features[[i for i, _ in batch]] = self._forward([p for _, p in batch])
        return out

    def _forward(self, batch: list[Prompt]) -> np.ndarray:
        torch, cfg = self._torch, self.cfg
        input_ids, attention = pad_batch([p.ids for p in batch], self.tokenizer.pad_token_id or 0)
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        device_type = "cuda" if str(self.device).startswith("cuda") else "cpu"
        with (
            torch.inference_mode(),
            torch.autocast(device_type, dtype=torch.bfloat16, enabled=cfg.bf16),
        ):
            res = self.model(
                input_ids=input_ids, attention_mask=attention, output_hidden_states=cfg.layers > 1
            )
            hidden = layer_mean(res, cfg.layers)
        spans = torch.tensor([p.span for p in batch], device=input_ids.device)
        pooled = pool(hidden, attention, input_ids, cfg, self.tokenizer.mask_token_id, spans)
        return pooled.cpu().numpy().astype(np.float32)


# The maths below is shared with er-train's fine-tuned text tower, so a tower whose weights are
# untouched gives exactly these features: change it here only (and bump VERSION).


def pad_batch(batch: Sequence[Sequence[int]], pad_id: int):
    """Right-padded token ids (B, T) long, filled with `pad_id`, and the attention mask (B, T)
    long (1 = real token), T the longest prompt of the batch."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for r, ids in enumerate(batch):  # right padding: real tokens first
        input_ids[r, : len(ids)] = torch.tensor(ids)
        attention[r, : len(ids)] = 1
    return input_ids, attention


def layer_mean(res, layers: int):
    """(B, T, C) float32 from a transformers output: the last hidden state, or the mean of the
    last `layers` hidden states (the model must have run with output_hidden_states)."""
    import torch

    if layers > 1:
        return torch.stack(res.hidden_states[-layers:]).float().mean(0)
    return res.last_hidden_state.float()


def pool(hidden, attention, input_ids, cfg: TextConfig, mask_token_id: int | None, spans=None):
    """(B, T, C) hidden states -> (B, C), over real tokens only (`attention` (B, T), 1 = real):
    their mean, the first ("cls"), the last real one, the last real mask token, or ("target")
    the mean of the target utterance's tokens, `spans` (B, 2) long [start, stop) per row."""
    import torch

    real = attention.unsqueeze(-1).float()  # (B, T, 1)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    if cfg.pooling == "mean":
        pooled = (hidden * real).sum(1) / real.sum(1)
    elif cfg.pooling == "cls":
        pooled = hidden[:, 0]
    elif cfg.pooling == "target":
        pos = torch.arange(hidden.shape[1], device=hidden.device)
        inside = (pos >= spans[:, :1]) & (pos < spans[:, 1:]) & attention.bool()  # (B, T)
        weight = inside.unsqueeze(-1).float()
        pooled = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1.0)
    elif cfg.pooling == "last":
        pooled = hidden[rows, attention.sum(1) - 1]
    else:  # mask: the last mask token of each row (a turn's text could contain one too)
        is_mask = (input_ids == mask_token_id) & attention.bool()
        width = input_ids.shape[1]
        pos = torch.where(is_mask, torch.arange(width, device=hidden.device), -1).amax(1)
        pooled = hidden[rows, pos]
    if cfg.normalize:
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
    return pooled
