"""The text tower: er-features' text encoder, trained end to end (run methods L and T).

Method F trains on cached, frozen features. Methods L (LoRA adapters on a frozen encoder) and T
(every encoder weight trains) run the encoder inside the training step instead. The tower is
built on er-features' public fine-tuning API (er_features.tuning): each utterance's prompt
token ids are built once per run with extract's own templates, context and length cutting,
and the hidden states are pooled with extract's own `pool`. So a tower whose weights are
untouched gives the very features `er-features extract` caches for the same `[finetune] text`.

With `frozen_layers = n` the encoder is cut after its n-th layer: the lower part runs once per
utterance (no gradients, eval mode) and its output stays in memory; each training step runs
only the upper layers on it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from er_core import DatasetManifest, ErError, content_id, to_dict
from torch import nn

from er_train.finetune import (  # noqa: F401 (the config names, re-exported)
    METHODS,
    FinetuneSection,
    LoraSection,
    MethodError,
    check_method,
)

if TYPE_CHECKING:
    from er_features.tuning import Prompt, TextModel


class TextTower(nn.Module):
    """Utterance rows -> (N, dim) pooled text features, with gradients into the encoder.

    `prompts[i]` holds row i's token ids ([] for an empty text: `present[i]` is False and its
    output row is zeros), `spans[i]` its target utterance's token range. `key` names what the
    outputs depend on besides the trained weights: the base weights, the text options, the
    method, the LoRA options and the frozen layers.
    """

    def __init__(
        self,
        model: TextModel,
        method: str,
        lora: LoraSection,
        prompts: Sequence[Prompt],
        *,
        frozen_layers: int = 0,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        check_method(method)
        from er_features.tuning import VERSION, split_layers

        net = model.model.float()  # fp32 master weights (a no-op for fp32 checkpoints)
        if getattr(net, "pooler", None) is not None:
            # no pooling reads the pooler head: it would get no gradient (DDP's unused-parameter
            # error) and only bloat the saved state
            net.pooler = None
        self.lower: nn.Module | None = None
        if frozen_layers:
            if model.cfg.layers > 1:
                raise ErError(
                    f"frozen_layers = {frozen_layers} with text.layers = {model.cfg.layers}",
                    at="$.finetune.frozen_layers",
                    hint="frozen layers pool the last hidden state only: text.layers = 1",
                )
            self.lower, net = split_layers(net, frozen_layers, at="$.finetune.frozen_layers")
        net.train()
        if gradient_checkpointing:
            # non-reentrant: gradients reach LoRA weights even though the embeddings are frozen
            enable = getattr(net, "activation_checkpointing_enable", None)
            if enable is not None:
                enable({"use_reentrant": False})
            else:  # transformers < 5
                net.gradient_checkpointing_enable({"use_reentrant": False})
        if method == "L":
            net = _with_lora(net, lora)
        self.encoder = net
        self.method, self.cfg, self.frozen_layers = method, model.cfg, frozen_layers
        self.dim, self.pad_id, self.mask_id = model.dim, model.pad_id, model.mask_id
        self.prompts = [list(p.ids) for p in prompts]
        self.spans = [tuple(p.span) for p in prompts]
        present = torch.tensor([len(p) > 0 for p in self.prompts], dtype=torch.bool)
        self.register_buffer("present", present, persistent=False)
        self._states: dict[int, torch.Tensor] = {}  # row -> (len, dim) lower-part output
        key = {
            "weights": model.weights_sha256,
            "family": "hf-text",
            "version": VERSION,
            "text": to_dict(model.cfg),
            "method": method,
            "lora": to_dict(lora) if method == "L" else {},
        }
        self.key = content_id(key | ({"frozen_layers": frozen_layers} if frozen_layers else {}))

    def train(self, mode: bool = True) -> TextTower:
        super().train(mode)
        if self.lower is not None:  # frozen: no dropout, outputs computed once
            self.lower.eval()
        return self

    def _lower_states(self, rows: list[int], width: int, device: torch.device) -> torch.Tensor:
        """(B, width, dim) the lower part's output for `rows`, zeros past each prompt; each row
        computed the first time it is asked for, in length-sorted chunks, then kept."""
        todo = sorted(
            {r for r in rows if r not in self._states}, key=lambda r: len(self.prompts[r])
        )
        from er_features.tuning import pad_batch

        for b in range(0, len(todo), 64):
            part = todo[b : b + 64]
            input_ids, attention = pad_batch([self.prompts[r] for r in part], self.pad_id)
            with torch.no_grad():
                out = self.lower(
                    input_ids=input_ids.to(device), attention_mask=attention.to(device)
                ).last_hidden_state.float()
            for k, r in enumerate(part):
                self._states[r] = out[k, : len(self.prompts[r])].clone()
        embeds = torch.zeros(len(rows), width, self.dim, device=device)
        for k, r in enumerate(rows):
            state = self._states[r]
            embeds[k, : state.shape[0]] = state.to(device)
        return embeds

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """(N,) long row indices -> (N, dim) float32 on the encoder's device."""
        from er_features.tuning import layer_mean, pad_batch, pool

        idx = [int(r) for r in rows.reshape(-1).tolist()]
        device = next(self.encoder.parameters()).device
        keep = [k for k, r in enumerate(idx) if self.prompts[r]]
        if not keep:
            return torch.zeros(len(idx), self.dim, device=device)
        picked = [idx[k] for k in keep]
        input_ids, attention = pad_batch([self.prompts[r] for r in picked], self.pad_id)
        input_ids, attention = input_ids.to(device), attention.to(device)
        spans = torch.tensor([self.spans[r] for r in picked], device=device)
        cfg = self.cfg
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            if self.lower is None:
                res = self.encoder(
                    input_ids=input_ids,
                    attention_mask=attention,
                    output_hidden_states=cfg.layers > 1,
                )
                hidden = layer_mean(res, cfg.layers)  # (B, T, C) float32
            else:
                embeds = self._lower_states(picked, input_ids.shape[1], device)
                res = self.encoder(inputs_embeds=embeds, attention_mask=attention)
                hidden = res.last_hidden_state.float()
        pooled = pool(hidden, attention, input_ids, cfg, self.mask_id, spans)  # (B, C)
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

    def lengths(self) -> list[int]:
        """Each row's prompt length in tokens (0 for an empty text): the cost batching reads."""
        return [len(p) for p in self.prompts]

    def _owned(self) -> dict[str, torch.Tensor]:
        state = self.encoder.state_dict()
        if self.method == "L":
            return {k: v for k, v in state.items() if "lora_" in k}
        return state

    def saved_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps, as CPU copies: the LoRA tensors (L) or the trained layers
        (T: all of them, or those above `frozen_layers`)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self._owned().items()}

    def load_saved_state(self, state: Mapping[str, torch.Tensor], source: str = "") -> None:
        """Load `saved_state()` of a tower built the same way; every name and shape must match."""
        want = self._owned()
        at = (lambda k: f"{source}:{k}") if source else (lambda k: k)
        hint = "the checkpoint was saved by another encoder, method or [finetune] config"
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
    from er_features import text_model, text_prompts

    model = text_model(cfg.encoder, cfg.text, cache, at="$.finetune")
    return TextTower(
        model,
        method,
        cfg.lora,
        text_prompts(model, dataset, ids),
        frozen_layers=cfg.frozen_layers,
        gradient_checkpointing=cfg.gradient_checkpointing,
    )
