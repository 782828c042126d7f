"""What training a text encoder needs from er-features: its public fine-tuning API.

er-train's text tower (run methods L and T) uses only these names, so er-features' internals
(registry, cache, templates) can change freely:

- `text_model(encoder, options, cache)`: the encoder resolved as `er-features extract`
  resolves it (aliases offline, folders, hub ids, the same cache) and loaded once: tokenizer,
  transformers model, `TextConfig`, width and the weights' sha256.
- `text_prompts(model, dataset, ids)`: each utterance's prompt token ids (and its target span),
  built from the dataset's table with extract's own templates, context and cutting.
- `pad_batch`, `layer_mean`, `pool`: extract's own maths from prompts to pooled vectors, so a
  tower whose weights are untouched gives the very features extract caches.
- `split_layers(model, n)`: the encoder as a frozen lower part (embeddings and layers 1..n),
  whose outputs a caller computes once per prompt, and a trainable upper part run on them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from er_core import DatasetManifest, ErError, validate
from torch import nn

from er_features.prompts import Prompt
from er_features.text import VERSION, TextConfig, layer_mean, pad_batch, pool

__all__ = [
    "VERSION",
    "Prompt",
    "TextConfig",
    "TextModel",
    "layer_mean",
    "pad_batch",
    "pool",
    "split_layers",
    "text_config",
    "text_model",
    "text_prompts",
]


@dataclass
class TextModel:
    """A loaded text encoder: `model` (transformers, eval mode, on the CPU) and how to prompt it."""

    folder: Path
    cfg: TextConfig
    tokenizer: Any
    model: Any
    dim: int
    weights_sha256: str
    pad_id: int  # as extract pads
    mask_id: int | None


def text_config(options: Mapping[str, Any], at: str = "$.text") -> TextConfig:
    """`TextConfig` from a mapping of its options; an error names `<at>.KEY`."""
    try:
        return validate(dict(options), TextConfig)
    except ErError as e:
        where = e.at or "$"
        raise ErError(e.what, at=at + where.removeprefix("$"), hint=e.hint) from None


def text_model(
    encoder: str, options: Mapping[str, Any], cache: Path | None = None, at: str = "$"
) -> TextModel:
    """Resolve and load the hf-text encoder `encoder` (alias, folder or hub id) with the text
    `options` (TextConfig keys). Errors name `<at>.encoder` or `<at>.text.KEY`."""
    from transformers.utils import logging

    from er_features.once import RECORD, cache_root, folder_sha256, verify_folder
    from er_features.registry import ALIASES, family_of, resolve
    from er_features.text import TextEncoder

    cfg = text_config(options, f"{at}.text")
    alias = ALIASES.get(encoder)
    folder = Path(encoder).expanduser()
    family = alias.family if alias else family_of(folder) if folder.is_dir() else "hf-text"
    if family != "hf-text":
        raise ErError(
            f"encoder '{encoder}' is a {family} encoder; fine-tuning trains a text encoder",
            at=f"{at}.encoder",
            hint="name an hf-text encoder (minilm, mpnet-base) or a transformers text-model folder",
        )
    try:
        res = resolve(encoder, "text", cache_root(cache))
    except ErError as e:
        raise ErError(e.what, at=f"{at}.encoder", hint=e.hint) from None
    logging.disable_progress_bar()  # stderr is for er's own progress and errors
    logging.set_verbosity_error()
    try:
        enc = TextEncoder(res.folder, cfg)  # checks layers and mask pooling
    except ErError as e:
        raise ErError(e.what, at=f"{at}.{e.at}", hint=e.hint) from None
    weights = res.weights_sha256
    if not weights:
        exists = (res.folder / RECORD).is_file()
        weights = verify_folder(res.folder) if exists else folder_sha256(res.folder, None)
    return TextModel(
        folder=res.folder,
        cfg=cfg,
        tokenizer=enc.tokenizer,
        model=enc.model,
        dim=int(enc.dim),
        weights_sha256=weights,
        pad_id=enc.tokenizer.pad_token_id or 0,
        mask_id=enc.tokenizer.mask_token_id,
    )


def text_prompts(model: TextModel, dataset: DatasetManifest, ids: Sequence[str]) -> list[Prompt]:
    """The prompt of each utterance `ids[i]` of the dataset's table, as extract builds it."""
    from er_data import check_table

    from er_features.items import text_items
    from er_features.prompts import tokenize

    items = {it.uid: it for it in text_items(check_table(dataset), model.cfg)}
    lacking = [u for u in ids if u not in items]
    if lacking:
        raise ErError(
            f"utterance '{lacking[0]}' is not in the dataset's table ({len(lacking)} missing)",
            at=dataset.table.path,
            hint="train on the table the stream's DatasetManifest names",
        )
    return tokenize(model.tokenizer, model.cfg, [items[u].parts for u in ids])


class _Given(nn.Module):
    """Stands in for the embeddings of an upper part: its input already is hidden states."""

    def forward(self, *args: Any, inputs_embeds=None, **kwargs: Any):
        return inputs_embeds


def split_layers(model, n: int, at: str = "$.frozen_layers"):
    """(lower, upper) of a BERT-like transformers encoder (`embeddings` + `encoder.layer`).

    `lower(input_ids=, attention_mask=).last_hidden_state` is the hidden states after layer n:
    the model itself, cut after its n-th layer, frozen and in eval mode. `upper(inputs_embeds=
    those states, attention_mask=).last_hidden_state` equals the whole model's last hidden state:
    a copy of layers n+1.. (it holds the only trainable weights). Checked on a small input."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or getattr(model, "embeddings", None) is None:
        raise ErError(
            f"{type(model).__name__} does not split into embeddings and a list of layers",
            at=at,
            hint="frozen_layers = 0 for this encoder (BERT- and MPNet-like encoders split)",
        )
    if not 1 <= n < len(layers):
        raise ErError(
            f"frozen_layers = {n}, but the encoder has {len(layers)} layers",
            at=at,
            hint=f"choose 1..{len(layers) - 1}, or 0 to train every layer",
        )
    ids = torch.tensor([[1, 5, 9, 13, 2], [1, 7, 2, 0, 0]])
    attention = (ids > 0).long()
    with torch.no_grad():
        full = model.eval()(input_ids=ids, attention_mask=attention).last_hidden_state
    upper = copy.deepcopy(model)
    upper.encoder.layer = nn.ModuleList(list(upper.encoder.layer)[n:])
    upper.embeddings = _Given()  # no weights: the upper part starts from hidden states
    model.encoder.layer = nn.ModuleList(list(layers)[:n])
    lower = model.requires_grad_(False)
    with torch.no_grad():
        hidden = lower(input_ids=ids, attention_mask=attention).last_hidden_state
        got = upper(inputs_embeds=hidden, attention_mask=attention).last_hidden_state
    if not torch.allclose(got[attention.bool()], full[attention.bool()], atol=1e-4):
        raise ErError(
            f"{type(model).__name__} cut after layer {n} does not give the whole model's output",
            at=at,
            hint="frozen_layers = 0 for this encoder",
        )
    return lower, upper
