"""The whole network: projection -> fusion -> dialogue context -> head(s).

    feats {m: (N, d_m)}, present (N, M)
      -> Projection      tokens (N, M, W)       missing modality -> its learned vector
      -> fusion          h (N, F), aux losses    per utterance, never across the batch
      -> context         (N, D)                 over each dialogue, padding ignored
      -> head            {task: (N, C) | (N,)}

N counts real utterances only; `layout` (B, T) places them in their dialogues for the context
model (-1 = padding), so no work is spent on padding outside the context layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from er_models.context import ContextInputs
from er_models.fusion_base import FusionInputs
from er_models.projection import Projection
from er_models.registry import create
from er_models.spec import NetworkSpec


@dataclass
class Output:
    outputs: dict[str, torch.Tensor]  # task -> (N, C) logits or (N,) values
    aux: dict[str, torch.Tensor]  # named, already weighted auxiliary losses (training only)


class ERModel(nn.Module):
    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        width = spec.model.width
        self.projection = Projection(spec.model, spec.dims)
        self.fusion = create(spec.fusion, FusionInputs(spec.modalities, width))
        self.context = create(
            spec.context, ContextInputs(self.fusion.out_dim, spec.model.max_speakers)
        )
        self.head = create(spec.head, self.context.out_dim, spec.tasks)

    @property
    def task_weights(self) -> dict[str, float]:
        return self.head.task_weights

    def forward(
        self,
        feats: dict[str, torch.Tensor],
        present: torch.Tensor,
        layout: torch.Tensor,
        speakers: torch.Tensor,
    ) -> Output:
        tokens = self.projection(feats, present)  # (N, M, W)
        h, aux = self.fusion(tokens, present)  # (N, F)
        z = self.context(h, layout, speakers)  # (N, D)
        return Output(self.head(z), aux)


def build_model(spec: NetworkSpec) -> ERModel:
    return ERModel(spec)


def count_params(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per top-level part and in total."""
    out = {
        name: sum(p.numel() for p in child.parameters() if p.requires_grad)
        for name, child in model.named_children()
    }
    out["total"] = sum(out.values())
    return out
