"""The `[finetune]` config section: the text encoder trained in a run of method L or T.

Importable without er-features, peft and transformers (er-train's `finetune` extra): tower.py
builds the encoder from it when a run needs one.
"""

from __future__ import annotations

from typing import Annotated, Any

from er_core import Config, Dropout, ErError, NonNegativeInt, PositiveFloat
from msgspec import Meta, field

METHODS = {"L": "LoRA adapters on the frozen encoder", "T": "every encoder weight trains"}


class LoraSection(Config, frozen=True):
    """`[finetune.lora]`: the adapters of method L (Hu et al. 2021, "LoRA: Low-Rank Adaptation
    of Large Language Models"): W x + (alpha / r) B A x, A (r, in), B (out, r), B starts at 0."""

    r: Annotated[int, Meta(ge=1)] = 8
    alpha: Annotated[int, Meta(ge=1)] = 16
    dropout: Dropout = 0.1
    # names of the Linear layers that get adapters (BERT's attention: query, value; MPNet: q, v)
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])


class FinetuneSection(Config, frozen=True):
    """`[finetune]`: the text encoder trained in the run (methods L and T)."""

    encoder: str = "minilm"  # an er-features text encoder: alias, folder or hub id
    text: dict[str, Any] = {}  # er-features TextConfig options (same keys, same defaults)
    lr: PositiveFloat = 1e-4  # learning rate of the encoder's trainable weights
    lora: LoraSection = LoraSection()
    chunk: Annotated[int, Meta(ge=1)] = 64  # utterances per encoder forward in eval passes
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory
    # the embeddings and the first N layers stay frozen: their output is computed once per
    # utterance and kept in memory, and only layers N+1.. run in each step (LoRA adapters go
    # there only). 0 = every layer trains (method T) or gets adapters (method L).
    frozen_layers: NonNegativeInt = 0


class MethodError(ErError, ValueError):
    """An unknown run method (a ValueError too, for callers that do not know ErError)."""


def check_method(method: str) -> None:
    if method not in METHODS:
        raise MethodError(
            f"run method '{method}' does not train an encoder",
            at="$.run.method",
            hint="L (LoRA on the text encoder) or T (full fine-tuning); F trains on features",
        )
