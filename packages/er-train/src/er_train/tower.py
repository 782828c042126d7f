"""The text tower: er-features' text encoder, trained end to end (run methods L and T).

Method F trains on cached, frozen features. Methods L (LoRA adapters on a frozen encoder) and T
(every encoder weight trains) run the encoder inside the training step instead: the tower holds
each utterance's prompt token ids, built once with er-features' own templates, context and
length cutting (`text_items`, `render`, `TextEncoder.prompt`), and pools the hidden states with
er-features' own `pool`. So a tower whose weights are untouched gives the very features
`er-features extract` caches for the same `[finetune] text` options.

Only the `[finetune]` config sections are importable without er-features, peft and transformers
(er-train's `finetune` extra): everything else imports them when a tower is built.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import torch
from er_core import Config, DatasetManifest, Dropout, ErError, PositiveFloat, content_id, to_dict
from msgspec import Meta, field
from torch import nn

if TYPE_CHECKING:
    from er_features.text import TextConfig, TextEncoder

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


class MethodError(ErError, ValueError):
    """An unknown run method (a ValueError too, for callers that do not know ErError)."""


def check_method(method: str) -> None:
    if method not in METHODS:
        raise MethodError(
            f"run method '{method}' does not train an encoder",
            at="$.run.method",
            hint="L (LoRA on the text encoder) or T (full fine-tuning); F trains on features",
        )


class TextTower(nn.Module):
    """Utterance rows -> (N, dim) pooled text features, with gradients into the encoder.

    `prompts[i]` holds row i's token ids ([] for an empty text: `present[i]` is False and its
    output row is zeros). `key` names what the outputs depend on besides the trained weights:
    the base weights, the text options, the method and the LoRA options.
    """

    def __init__(
        self,
        folder: Path,
        text_cfg: TextConfig,
        method: str,
        lora: LoraSection,
        prompts: Sequence[Sequence[int]],
        *,
        weights_sha256: str = "",
        gradient_checkpointing: bool = False,
        text_encoder: TextEncoder | None = None,  # already loaded on `folder` (build_tower's)
    ):
        super().__init__()
        check_method(method)
        from er_features.text import VERSION, TextEncoder

        enc = text_encoder or TextEncoder(Path(folder), text_cfg)
        model = enc.model.float().train()  # fp32 master weights (a no-op for fp32 checkpoints)
        if getattr(model, "pooler", None) is not None:
            # no pooling reads the pooler head: it would get no gradient (DDP's unused-parameter
            # error) and only bloat the saved state
            model.pooler = None
        if gradient_checkpointing:
            # non-reentrant: gradients reach LoRA weights even though the embeddings are frozen
            enable = getattr(model, "activation_checkpointing_enable", None)
            if enable is not None:
                enable({"use_reentrant": False})
            else:  # transformers < 5
                model.gradient_checkpointing_enable({"use_reentrant": False})
        if method == "L":
            model = _with_lora(model, lora)
        self.encoder = model
        self.method, self.cfg = method, text_cfg
        self.dim = int(enc.dim)
        self.pad_id = enc.tokenizer.pad_token_id or 0  # as TextEncoder pads
        self.mask_id = enc.tokenizer.mask_token_id
        self.prompts = [list(p) for p in prompts]
        present = torch.tensor([len(p) > 0 for p in self.prompts], dtype=torch.bool)
        self.register_buffer("present", present, persistent=False)
        weights = weights_sha256 or _weights_hash(Path(folder))
        self.key = content_id(
            {
                "weights": weights,
                "family": "hf-text",
                "version": VERSION,
                "text": to_dict(text_cfg),
                "method": method,
                "lora": to_dict(lora) if method == "L" else {},
            }
        )

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """(N,) long row indices -> (N, dim) float32 on the encoder's device."""
        from er_features.text import layer_mean, pad_batch, pool

        idx = [int(r) for r in rows.reshape(-1).tolist()]
        device = next(self.encoder.parameters()).device
        keep = [k for k, r in enumerate(idx) if self.prompts[r]]
        if not keep:
            return torch.zeros(len(idx), self.dim, device=device)
        input_ids, attention = pad_batch([self.prompts[idx[k]] for k in keep], self.pad_id)
        input_ids, attention = input_ids.to(device), attention.to(device)
        cfg = self.cfg
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            res = self.encoder(
                input_ids=input_ids, attention_mask=attention, output_hidden_states=cfg.layers > 1
            )
            hidden = layer_mean(res, cfg.layers)  # (B, T, C) float32
        pooled = pool(hidden, attention, input_ids, cfg, self.mask_id)  # (B, C)
        if len(keep) == len(idx):
            return pooled
        out = torch.zeros(len(idx), self.dim, device=device, dtype=pooled.dtype)
        return out.index_copy(0, torch.tensor(keep, device=device), pooled)

    def features(self, rows: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """forward without gradients, `chunk` rows at a time, sorted by prompt length (little
        padding): an eval pass. The caller picks the mode (eval() for dev and test)."""
        rows = rows.reshape(-1).cpu()
        idx = rows.tolist()
        by_len = sorted(range(len(idx)), key=lambda k: len(self.prompts[idx[k]]))
        order = torch.tensor(by_len, dtype=torch.long)
        device = next(self.encoder.parameters()).device
        out = torch.zeros(len(idx), self.dim, device=device)
        with torch.no_grad():
            for b in range(0, len(idx), chunk):
                part = order[b : b + chunk]
                out[part.to(device)] = self(rows[part])
        return out

    def _owned(self) -> dict[str, torch.Tensor]:
        state = self.encoder.state_dict()
        if self.method == "L":
            return {k: v for k, v in state.items() if "lora_" in k}
        return state

    def saved_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps, as CPU copies: the LoRA tensors (L) or the encoder (T)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self._owned().items()}

    def load_saved_state(self, state: Mapping[str, torch.Tensor], source: str = "") -> None:
        """Load `saved_state()` of a tower built the same way; every name and shape must match."""
        want = self._owned()
        at = (lambda k: f"{source}:{k}") if source else (lambda k: k)
        hint = "the checkpoint was saved by another encoder, method or [finetune.lora] config"
        lacking = [k for k in want if k not in state]
        if lacking:
            raise ErError(
                f"saved encoder state lacks '{lacking[0]}' ({len(lacking)} missing)",
                at=at(lacking[0]),
                hint=hint,
            )
        extra = [k for k in state if k not in want]
        if extra:
            raise ErError(
                f"saved encoder state has an unknown tensor '{extra[0]}' ({len(extra)} unknown)",
                at=at(extra[0]),
                hint=hint,
            )
        for k, v in want.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise ErError(
                    f"saved encoder tensor '{k}' has shape {list(state[k].shape)}, "
                    f"the tower expects {list(v.shape)}",
                    at=at(k),
                    hint=hint,
                )
        with torch.no_grad():
            for k, v in want.items():  # state_dict tensors share the parameters' storage
                v.copy_(state[k])


def _with_lora(model: nn.Module, lora: LoraSection) -> nn.Module:
    """The model wrapped by peft with LoRA adapters; only the adapters require grad."""
    from peft import LoraConfig, get_peft_model

    names = {n.rpartition(".")[2] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    unknown = [t for t in lora.target_modules if t not in names]
    if unknown or not lora.target_modules:
        what = f"'{unknown[0]}' is not" if unknown else "none given: name at least one"
        raise ErError(
            f"LoRA target modules: {what} a Linear layer of the encoder",
            at="$.finetune.lora.target_modules",
            hint=f"this encoder's Linear layers: {', '.join(sorted(names))}",
        )
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
    )
    with warnings.catch_warnings():  # peft asks transformers 5 by a deprecated name
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        return get_peft_model(model, config)  # LoRA A draws from torch's global RNG; B = 0


def _weights_hash(folder: Path) -> str:
    from er_features.once import RECORD, folder_sha256, verify_folder

    return verify_folder(folder) if (folder / RECORD).is_file() else folder_sha256(folder, None)


def text_config(options: Mapping[str, Any]) -> TextConfig:
    """`[finetune] text` options -> er-features' TextConfig; errors name `finetune.text.KEY`."""
    from er_core import validate
    from er_features.text import TextConfig

    try:
        return validate(dict(options), TextConfig)
    except ErError as e:
        at = e.at or "$"
        raise ErError(e.what, at="$.finetune.text" + at.removeprefix("$"), hint=e.hint) from None


def prompts_for(enc: TextEncoder, items: Sequence[Any]) -> list[list[int]]:
    """Each item's prompt token ids as `TextEncoder.encode` builds them: one batched tokenizer
    call, `prompt` (context cutting) for the over-long ones; [] for an empty text."""
    from er_features.text import render

    mask = enc.tokenizer.mask_token or ""
    real = [k for k, it in enumerate(items) if it.parts["target"][1].strip()]
    texts = [render(enc.cfg, items[k].parts, mask) for k in real]
    ids_all = enc.tokenizer(texts, truncation=False)["input_ids"] if texts else []
    prompts: list[list[int]] = [[] for _ in items]
    for k, ids in zip(real, ids_all, strict=True):
        prompts[k] = list(ids) if len(ids) <= enc.cfg.max_length else enc.prompt(items[k].parts)
    return prompts


def build_tower(
    cfg: FinetuneSection,
    method: str,
    dataset: DatasetManifest,
    ids: Sequence[str],
    cache: Path | None = None,
) -> TextTower:
    """The tower of `cfg.encoder` over the rows `ids` of the dataset's table (row i = ids[i]).

    The encoder resolves as in er-features (offline aliases, the same cache); `cache` None is
    er-features' default ($ER_CACHE, else ~/.cache/er)."""
    check_method(method)
    text_cfg = text_config(cfg.text)
    from er_data import check_table
    from er_features.items import text_items
    from er_features.once import cache_root
    from er_features.registry import ALIASES, family_of, resolve
    from er_features.text import TextEncoder
    from transformers.utils import logging

    alias = ALIASES.get(cfg.encoder)
    folder = Path(cfg.encoder).expanduser()
    family = alias.family if alias else family_of(folder) if folder.is_dir() else "hf-text"
    if family != "hf-text":
        raise ErError(
            f"encoder '{cfg.encoder}' is a {family} encoder; fine-tuning trains a text encoder",
            at="$.finetune.encoder",
            hint="name an hf-text encoder (minilm, mpnet-base) or a transformers text-model folder",
        )
    try:
        res = resolve(cfg.encoder, "text", cache_root(cache))
    except ErError as e:
        raise ErError(e.what, at="$.finetune.encoder", hint=e.hint) from None
    logging.disable_progress_bar()  # stderr is for er's own progress and errors
    logging.set_verbosity_error()
    try:
        enc = TextEncoder(res.folder, text_cfg)  # checks layers and mask pooling
    except ErError as e:
        raise ErError(e.what, at=f"$.finetune.{e.at}", hint=e.hint) from None

    items = {it.uid: it for it in text_items(check_table(dataset), text_cfg)}
    lacking = [u for u in ids if u not in items]
    if lacking:
        raise ErError(
            f"utterance '{lacking[0]}' is not in the dataset's table ({len(lacking)} missing)",
            at=dataset.table.path,
            hint="train on the table the stream's DatasetManifest names",
        )
    return TextTower(
        res.folder,
        text_cfg,
        method,
        cfg.lora,
        prompts_for(enc, [items[u] for u in ids]),
        weights_sha256=res.weights_sha256,
        gradient_checkpointing=cfg.gradient_checkpointing,
        text_encoder=enc,
    )
