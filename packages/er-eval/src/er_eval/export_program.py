"""The TorchScript program of `er-eval export`: a trained network that needs torch alone.

er-models' parts are plain torch modules written for training (dictionaries of modules indexed
by name, config objects as attributes, batches of padded dialogues), which TorchScript cannot
compile as they are, and whose padded dialogue layout (`from_padded`) counts rows in Python, so a
trace would fix the utterance count. The program is therefore built for ONE dialogue at a time:

    Program (scripted)       checks the inputs, turns speaker ids into dialogue-local slots,
                             softmax per classification task
      Core (traced)          the run's own projection, fusion and head modules, traced, and
        OneDialogue          the context model's own layers applied to a single dialogue
                             (no padding, so the whole sequence is the dialogue)

Tracing records the tensor operations of the run's modules, so the program computes what
`ERModel.forward` computes; `self_check` proves it on every export by comparing the program,
dialogue by dialogue, with the eager model on a padded batch of dialogues of many lengths with
missing modalities, and the export refuses a network whose program differs (a part with
data-dependent Python control flow would show up there).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import torch
from er_core import ErError
from er_models.context import NoContext
from er_models.context_gru import GRUContext
from er_models.context_transformer import TransformerContext, sinusoidal
from er_models.model import ERModel
from torch import nn

EXACT = 1e-6  # the largest |difference| of a probability (or value) an export accepts


class OneDialogue(nn.Module):
    """A context model applied to one whole dialogue: h (n, D), slots (n,) -> (n, out_dim).

    With a single dialogue there is no padding: `to_padded` is `h[None]`, `from_padded` is
    `y[0]`, and a packed GRU runs the full sequence. Everything else is the context's own
    layers, in the order its forward uses them."""

    def __init__(self, ctx: nn.Module) -> None:
        super().__init__()
        self.ctx = ctx

    def forward(self, h: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        c = self.ctx
        if isinstance(c, NoContext):
            return h
        if isinstance(c, GRUContext):
            x = h.unsqueeze(0)  # (1, n, D)
            if c.speaker is not None:
                s = c.speaker(slots.clamp(0, c.max_speakers - 1)).unsqueeze(0).to(x.dtype)
                x = torch.cat([x, s], dim=-1)
            y = c.drop(c.gru(x)[0][0])  # (n, H·dirs)
            return _residual(c.residual, y, h, y + c.skip(h) if c.skip is not None else y)
        assert isinstance(c, TransformerContext)
        cfg, n = c.cfg, h.shape[0]
        x0 = c.inp(h)  # (n, W)
        x = x0.unsqueeze(0)  # (1, n, W)
        if c.pos is not None:
            x = x + c.pos(torch.arange(n, device=h.device).clamp(max=cfg.max_turns - 1))
        elif cfg.positions == "sinusoidal":
            x = x + sinusoidal(n, cfg.width).to(x)
        if c.speaker is not None:
            x = x + c.speaker(slots.clamp(0, c.max_speakers - 1)).unsqueeze(0).to(x.dtype)
        pad = torch.zeros((1, n), dtype=torch.bool, device=h.device)  # no padding
        mask = None
        if cfg.causal:
            mask = torch.ones(n, n, dtype=torch.bool, device=h.device).triu(1)
        y = c.encoder(x, mask=mask, src_key_padding_mask=pad)[0]  # (n, W)
        return _residual(cfg.residual, y, h, y + x0)


def _residual(kind: str, y: torch.Tensor, h: torch.Tensor, added: torch.Tensor) -> torch.Tensor:
    if kind == "add":
        return added
    if kind == "concat":
        return torch.cat([y, h], dim=-1)
    return y


CONTEXTS = (NoContext, GRUContext, TransformerContext)  # what OneDialogue knows


class Core(nn.Module):
    """The run's network for one dialogue: feats [(n, d_m)] in modality order, present (n, M),
    slots (n,) -> the head's outputs, one per task in task order (logits or values)."""

    def __init__(self, model: ERModel) -> None:
        super().__init__()
        self.modalities = list(model.spec.modalities)
        self.tasks = [t.name for t in model.spec.tasks]
        self.projection, self.fusion, self.head = model.projection, model.fusion, model.head
        self.context = OneDialogue(model.context)

    def forward(
        self, feats: list[torch.Tensor], present: torch.Tensor, slots: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        tokens = self.projection(dict(zip(self.modalities, feats, strict=True)), present)
        h, _ = self.fusion(tokens, present)
        outputs = self.head(self.context(h, slots))
        if isinstance(outputs, tuple):  # a head with its own training losses (moe)
            outputs = outputs[0]
        return tuple(outputs[t] for t in self.tasks)


class Program(nn.Module):
    """forward(feats, present, speakers=None) -> {task: (n, C) probabilities | (n,) values},
    for the n utterances of ONE dialogue in turn order (the bundle's README says more)."""

    def __init__(
        self,
        core: Any,
        modalities: list[str],
        dims: list[int],
        tasks: list[str],
        regression: list[bool],
        speakers: bool,
        max_speakers: int,
    ) -> None:
        super().__init__()
        self.core = core
        self.modalities, self.dims = modalities, dims
        self.tasks, self.regression = tasks, regression
        self.uses_speakers, self.max_speakers = speakers, max_speakers

    def forward(
        self,
        feats: dict[str, torch.Tensor],
        present: torch.Tensor,
        speakers: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        if present.dim() != 2 or present.size(1) != len(self.modalities):
            raise ValueError(f"present must be (n, {len(self.modalities)}) bool")
        if present.dtype != torch.bool:
            raise ValueError("present must be a bool tensor")
        n = present.size(0)
        xs: list[torch.Tensor] = []
        for i, m in enumerate(self.modalities):
            if m not in feats:
                raise ValueError("feats lacks modality " + m)
            x = feats[m]
            if x.dim() != 2 or x.size(0) != n or x.size(1) != self.dims[i]:
                raise ValueError(f"feats[{m}] must be (n, {self.dims[i]}) with n = {n}")
            xs.append(x.to(torch.float32))
        slots = torch.zeros(n, dtype=torch.long, device=present.device)
        if self.uses_speakers:
            if speakers is None:
                raise ValueError("this model reads speakers: pass speakers (n,) int64")
            slots = first_appearance(speakers, n).clamp(max=self.max_speakers - 1)
        out = self.core(xs, present, slots)
        result: dict[str, torch.Tensor] = {}
        for i, task in enumerate(self.tasks):
            result[task] = out[i] if self.regression[i] else torch.softmax(out[i], dim=-1)
        return result


def first_appearance(speakers: torch.Tensor, n: int) -> torch.Tensor:
    """(n,) long: each speaker's order of first appearance (0 = the first to speak), the
    dialogue-local slots er-train gives speakers (er_models.layout.speaker_slots)."""
    if speakers.dim() != 1 or speakers.size(0) != n:
        raise ValueError(f"speakers must be (n,) with n = {n}")
    seen: dict[int, int] = {}
    codes: list[int] = []
    ids: list[int] = speakers.tolist()
    for s in ids:
        if s not in seen:
            seen[s] = len(seen)
        codes.append(seen[s])
    return torch.tensor(codes, dtype=torch.long, device=speakers.device)


def uses_speakers(model: ERModel) -> bool:
    """Whether the context model reads the speaker slots (a speaker embedding)."""
    return getattr(model.context, "speaker", None) is not None


def build_program(model: ERModel, at: str) -> torch.jit.ScriptModule:
    """The scripted Program of `model` (eval mode, CPU); an ErError for a context model that
    OneDialogue does not know."""
    if not isinstance(model.context, CONTEXTS):
        kind = model.spec.context.kind
        raise ErError(
            f"context '{kind}' cannot be exported yet: the export knows none, gru and transformer",
            at=at,
            hint="use er-eval predict with this run, or export a run with one of those contexts",
        )
    spec = model.spec
    core = Core(copy.deepcopy(model)).eval().requires_grad_(False)  # outputs need no autograd
    with torch.no_grad(), warnings.catch_warnings():
        # torch >= 2.9 calls TorchScript deprecated; it is what loads with torch alone (README).
        # Trace warnings (a Python bool of a tensor: shape checks, routing) are not trusted or
        # shown: self_check measures whether the trace holds for other inputs.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(core, _example(spec.dims, 5, 0), check_trace=False)
        return torch.jit.script(_program(traced, model).eval())


def _program(traced: Any, model: ERModel) -> Program:
    spec = model.spec
    return Program(
        traced,
        list(spec.modalities),
        list(spec.dims.values()),
        [t.name for t in spec.tasks],
        [t.regression for t in spec.tasks],
        uses_speakers(model),
        spec.model.max_speakers,
    )


def _example(dims: dict[str, int], n: int, seed: int) -> tuple[Any, ...]:
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(n, d, generator=g) for d in dims.values()]
    present = torch.rand(n, len(dims), generator=g) > 0.25
    return feats, present, torch.randint(0, 3, (n,), generator=g)


@torch.no_grad()
def self_check(program: torch.jit.ScriptModule, model: ERModel) -> float:
    """Max |program - eager model| over 12 random dialogues of 1 to 23 turns (some modalities
    missing, 3 speakers), the eager model run on all of them as one padded batch, the way
    er-train evaluates."""
    from er_models.layout import Groups, make_layout

    spec = model.spec
    lengths = np.array([1, 2, 3, 5, 8, 13, 23, 4, 1, 7, 2, 11], np.int64)
    feats, present, speakers = _example(spec.dims, int(lengths.sum()), 1)
    start = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    groups = Groups(np.arange(lengths.sum(), dtype=np.int64), start, lengths)
    # the eager model reads dialogue-local slots; the program computes them from speaker ids
    slots = torch.cat([first_appearance(s, s.numel()) for s in speakers.split(lengths.tolist())])
    picked = np.arange(lengths.size)
    rows, layout, spk = make_layout(groups, picked, slots, spec.model.max_speakers)
    x = {m: f[rows] for m, f in zip(spec.modalities, feats, strict=True)}
    eager = model(x, present[rows], layout, spk)
    worst = 0.0
    for s, n in zip(start.tolist(), lengths.tolist(), strict=True):
        got = program(
            {m: f[s : s + n] for m, f in x.items()}, present[s : s + n], speakers[s : s + n]
        )
        for t in spec.tasks:
            want = eager.outputs[t.name][s : s + n].float()
            want = want if t.regression else torch.softmax(want, dim=-1)
            worst = max(worst, float((got[t.name] - want).abs().max()))
    return worst
