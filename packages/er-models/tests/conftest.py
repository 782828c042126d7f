"""Shared builders for the er-models tests: tiny specs, models and batches (W = 16).

Tests run with --import-mode=importlib, so test files cannot import each other: everything
shared is reached through the `toy` fixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import er_models
import pytest
import torch
from er_models import ERModel, NetworkSpec

DIMS = {"text": 12, "audio": 10, "video": 8}  # input feature widths
WIDTH = 16  # projected width W
CLASSES = 3

# small options per built-in fusion (dropout off, so train mode is deterministic); a fusion
# registered later runs with its defaults
TINY: dict[str, dict[str, Any]] = {
    "deep": {"hidden": 16, "layers": 1, "dropout": 0.0},
    "attention": {"heads": 2, "dropout": 0.0},
    "cross-attention": {"heads": 2, "dropout": 0.0},
    "moe": {"hidden": 16, "out": 16, "dropout": 0.0},
    "tfn": {"rank_dim": 4, "hidden": 16, "dropout": 0.0},
    "lmf": {"rank": 2, "out": 16},
    "shared-private": {"hidden": 8, "out": 16, "dropout": 0.0},
}


@dataclass
class Batch:
    feats: dict[str, torch.Tensor]  # modality -> (N, d_m)
    present: torch.Tensor  # (N, M) bool
    layout: torch.Tensor  # (N, 1): every utterance its own dialogue
    speakers: torch.Tensor  # (N, 1)

    def __len__(self) -> int:
        return self.present.shape[0]

    def take(self, rows: Sequence[int] | torch.Tensor) -> Batch:
        """The utterances `rows`, in that order, as a batch of their own."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        n = len(idx)
        return Batch(
            {m: x[idx] for m, x in self.feats.items()},
            self.present[idx],
            torch.arange(n).view(n, 1),
            torch.zeros(n, 1, dtype=torch.long),
        )


class Toy:
    dims = DIMS
    width = WIDTH
    classes = CLASSES
    modalities = tuple(DIMS)

    def options(self, kind: str, **override: Any) -> dict[str, Any]:
        return {**TINY.get(kind, {}), **override}

    def spec(
        self, kind: str, mods: Sequence[str] = tuple(DIMS), width: int = WIDTH, **options: Any
    ) -> NetworkSpec:
        data = {
            "model": {"width": width, "dropout": 0.0},
            "fusion": {"kind": kind, **self.options(kind, **options)},
        }
        return er_models.parse_network(data, {m: DIMS[m] for m in mods}, {"emotion": CLASSES})

    def model(
        self,
        kind: str,
        mods: Sequence[str] = tuple(DIMS),
        seed: int = 0,
        width: int = WIDTH,
        **options: Any,
    ) -> ERModel:
        torch.manual_seed(seed)
        return er_models.build_model(self.spec(kind, mods, width, **options))

    def batch(
        self, mods: Sequence[str] = tuple(DIMS), n: int = 6, seed: int = 0, missing: float = 0.0
    ) -> Batch:
        """Random features; each modality flagged missing with probability `missing`."""
        g = torch.Generator().manual_seed(seed)
        feats = {m: torch.randn(n, DIMS[m], generator=g) for m in mods}
        present = torch.rand(n, len(mods), generator=g) >= missing
        return Batch(
            feats, present, torch.arange(n).view(n, 1), torch.zeros(n, 1, dtype=torch.long)
        )

    @staticmethod
    def allows(kind: str, mods: Sequence[str]) -> bool:
        """Whether fusion `kind` builds for these modalities (cross-attention: text + another)."""
        if kind == "cross-attention":
            return "text" in mods and len(mods) >= 2
        return True

    def out_dim(self, kind: str, mods: Sequence[str]) -> int | None:
        """The fused width the built-in fusions promise with the tiny options (None: unknown)."""
        o, m, w = self.options(kind), len(mods), WIDTH
        return {
            "concat": m * w,
            "deep": o.get("hidden"),
            "attention": w,
            "cross-attention": 2 * w,
            "moe": o.get("out"),
            "tfn": o.get("hidden"),
            "lmf": o.get("out"),
            "shared-private": o.get("out"),
        }.get(kind)

    @staticmethod
    def fuse(model: ERModel, b: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The fusion's (h, aux) inside `model` for batch `b`."""
        tokens = model.projection(b.feats, b.present)  # (N, M, W)
        return model.fusion(tokens, b.present)

    @staticmethod
    def logits(model: ERModel, b: Batch) -> torch.Tensor:
        return model(b.feats, b.present, b.layout, b.speakers).outputs["emotion"]  # (N, C)


@pytest.fixture
def toy() -> Toy:
    return Toy()


@pytest.fixture
def one_thread():
    """Run a test on one intra-op thread: with tensors this small, a second thread only adds
    synchronisation, and on a shared, busy CPU its spin-waits made steps up to 100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
