"""Text encoder: a transformers encoder (BERT, MPNet, ...) pooled to one vector per utterance.

An utterance is encoded alone or inside its conversation: `context_before` previous and
`context_after` following turns, each rendered with `turn` ("{speaker}: {text}"), joined by
`joiner`, and placed by `template` around the target. A template may hold `{mask}` (the
tokenizer's mask token), e.g. "{before} {target} Now {speaker} feels {mask}", and `pooling =
"mask"` then pools that position. The target is never truncated: when the prompt is too long,
the following context is cut from its end first, then the previous context from its start.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from er_core import Config, ErError, NonNegativeInt, PositiveInt, to_dict

from er_features.base import FLAG_EMPTY, Encoded, Item, empty_encoded

VERSION = 1  # bump when a change here changes the vectors: it is part of the cache key


class TextConfig(Config, frozen=True, kw_only=True):
    context_before: NonNegativeInt = 0  # previous turns of the same dialogue
    context_after: NonNegativeInt = 0  # following turns
    speakers: bool = True  # render the speaker's name in each turn
    turn: str = "{speaker}: {text}"  # one turn; "{text}" alone when speakers is false
    joiner: str = " "  # between context turns
    template: str = "{before} {target} {after}"  # may use {speaker} (target's) and {mask}
    pooling: Literal["mean", "cls", "mask", "last"] = "mean"
    layers: PositiveInt = 1  # mean of the last N hidden states
    max_length: PositiveInt = 512  # tokens, special tokens included
    normalize: bool = False  # L2-normalise the pooled vector
    bf16: bool = False  # bfloat16 autocast (CPU or CUDA)


def turn_text(cfg: TextConfig, speaker: str, text: str) -> str:
    if not cfg.speakers:
        return text
    return cfg.turn.format(speaker=speaker or "someone", text=text)


def render(cfg: TextConfig, parts: dict[str, Any], mask: str, cut: tuple[int, int] = (0, 0)) -> str:
    """The prompt for one item. `cut` = (characters dropped from the start of the previous
    context, characters dropped from the end of the following context)."""
    speaker, target = parts["target"]
    before = cfg.joiner.join(turn_text(cfg, s, t) for s, t in parts.get("before", []))
    after = cfg.joiner.join(turn_text(cfg, s, t) for s, t in parts.get("after", []))
    if cut[0]:  # drop whole words only: a cut word would tokenize into noise
        before = before[cut[0] :].partition(" ")[2]
    if cut[1]:
        after = after[: len(after) - cut[1]].rpartition(" ")[0]
    text = cfg.template.format(
        before=before,
        after=after,
        target=turn_text(cfg, speaker, target),
        speaker=speaker or "someone",
        mask=mask,
    )
    return " ".join(text.split())  # empty context leaves no stray spaces


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
        cfg, tok = self.cfg, self.tokenizer
        mask = tok.mask_token or ""
        cut = [0, 0]
        for _ in range(64):
            ids = tok(render(cfg, parts, mask, (cut[0], cut[1])), truncation=False)["input_ids"]
            excess = len(ids) - cfg.max_length
            if excess <= 0:
                return ids
            # drop about `excess` tokens' worth of characters from the far end of the context
            after = cfg.joiner.join(turn_text(cfg, *t) for t in parts.get("after", []))
            before = cfg.joiner.join(turn_text(cfg, *t) for t in parts.get("before", []))
            step = max(4 * excess, 1)
            if cut[1] < len(after):
                cut[1] = min(len(after), cut[1] + step)
            elif cut[0] < len(before):
                cut[0] = min(len(before), cut[0] + step)
            else:
                break
        raise ErError(
            f"the utterance alone is longer than max_length = {cfg.max_length} tokens",
            at=f"utterance {parts.get('uid', '?')}",
            hint="the target is never truncated; raise text.max_length if the model allows it",
        )

    def encode(self, items: Sequence[Item]) -> Encoded:
        out = empty_encoded(len(items), self.dim, self.extras)
        real = [i for i, item in enumerate(items) if item.parts["target"][1].strip()]
        out.flags[[i for i in range(len(items)) if i not in set(real)]] = FLAG_EMPTY
        mask = self.tokenizer.mask_token or ""
        texts = [render(self.cfg, items[i].parts, mask) for i in real]
        # one batched (fast, Rust) tokenizer call; only over-long prompts take the cutting path
        ids_all = self.tokenizer(texts, truncation=False)["input_ids"] if texts else []
        todo = [
            (i, ids if len(ids) <= self.cfg.max_length else self.prompt(items[i].parts))
            for i, ids in zip(real, ids_all, strict=True)
        ]
        todo.sort(key=lambda t: (len(t[1]), t[0]))  # length-sorted: little padding per batch
        for b in range(0, len(todo), self.batch_size):
            batch = todo[b : b + self.batch_size]
            vectors = self._forward([ids for _, ids in batch])
            out.features[[i for i, _ in batch]] = vectors
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        torch, cfg = self._torch, self.cfg
        input_ids, attention = pad_batch(batch, self.tokenizer.pad_token_id or 0)
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
        pooled = pool(hidden, attention, input_ids, cfg, self.tokenizer.mask_token_id)
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


def pool(hidden, attention, input_ids, cfg: TextConfig, mask_token_id: int | None):
    """(B, T, C) hidden states -> (B, C), over real tokens only (`attention` (B, T), 1 = real):
    their mean, the first ("cls"), the last real one, or the last real mask token."""
    import torch

    real = attention.unsqueeze(-1).float()  # (B, T, 1)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    if cfg.pooling == "mean":
        pooled = (hidden * real).sum(1) / real.sum(1)
    elif cfg.pooling == "cls":
        pooled = hidden[:, 0]
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
