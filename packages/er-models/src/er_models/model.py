"""The whole network: projection -> fusion -> dialogue context -> head(s).

    feats {m: (N, d_m)}, present (N, M)
      -> Projection      tokens (N, M, W)       missing modality -> its learned vector
      -> fusion          h (N, F), aux losses    per utterance, never across the batch
      -> context         (N, D)                 over each dialogue, padding ignored
      -> head            {task: (N, C) | (N,)}

N counts real utterances only; `layout` (B, T) places them in their dialogues for the context
model (-1 = padding), so no work is spent on padding outside the context layer.

In training, with the batch's targets given, the model also returns the `[aux]` objectives
(weighted) and, when `[model] branches` is on, the main task's logits from each modality's
token alone (see aux.py); neither runs in a dev or test pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from er_models.aux import AuxInputs, Views
from er_models.context import ContextInputs
from er_models.fusion_base import FusionInputs
from er_models.projection import Projection
from er_models.registry import create
from er_models.spec import NetworkSpec


@dataclass
class Output:
    outputs: dict[str, torch.Tensor]  # task -> (N, C) logits or (N,) values
    aux: dict[str, torch.Tensor]  # named, already weighted auxiliary losses (training only)
    branches: dict[str, torch.Tensor] = field(default_factory=dict)  # modality -> (N, C) logits


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
        main = spec.tasks[0]
        if spec.model.branches:
            self.branches = nn.ModuleDict(
                {m: nn.Linear(width, max(main.classes, 1)) for m in spec.modalities}
            )
        inputs = AuxInputs(
            spec.modalities, width, self.fusion.out_dim, self.context.out_dim, main.classes
        )
        self.aux = nn.ModuleDict({name: create(r, inputs) for name, r in spec.aux})
        self.aux_weights = {name: float(r.config.weight) for name, r in spec.aux}

    @property
    def task_weights(self) -> dict[str, float]:
        return self.head.task_weights

    def forward(
        self,
        feats: dict[str, torch.Tensor],
        present: torch.Tensor,
        layout: torch.Tensor,
        speakers: torch.Tensor,
        target: torch.Tensor | None = None,
        progress: float = 0.0,
    ) -> Output:
        """`target` (N,): the main task's targets, given on training batches only; with it (and
        in training mode) the `[aux]` objectives run. `progress`: share of training done."""
        tokens = self.projection(feats, present)  # (N, M, W)
        h, aux = self.fusion(tokens, present)  # (N, F)
        z = self.context(h, layout, speakers)  # (N, D)
        outputs = self.head(z)
        if isinstance(outputs, tuple):  # a head with its own training losses (moe)
            outputs, head_aux = outputs
            aux = {**aux, **head_aux}
        branches = {}
        if self.training and self.spec.model.branches:
            branches = {m: b(tokens[:, i]) for i, (m, b) in enumerate(self.branches.items())}
        if self.training and target is not None and len(self.aux):
            views = Views(z, h, tokens, present, target, progress)
            for name, objective in self.aux.items():
                aux = {**aux, name: self.aux_weights[name] * objective(views)}
        return Output(outputs, aux, branches)


def build_model(spec: NetworkSpec) -> ERModel:
    return ERModel(spec)


def count_params(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per top-level part and in total (no `aux` entry without one)."""
    out = {
        name: sum(p.numel() for p in child.parameters() if p.requires_grad)
        for name, child in model.named_children()
        if not (isinstance(child, nn.ModuleDict) and len(child) == 0)
    }
    out["total"] = sum(out.values())
    return out
