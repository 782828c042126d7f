"""Checkpoints in SafeTensors: weights, optimizer state, grad-scaler state and the RNG.

No pickle: tensors go in the file, the few scalars (optimizer param groups, scaler) go in its
JSON metadata. Files are written to a temporary name and renamed, so a kill never leaves half a
checkpoint. Loading checks every tensor's name and shape first, so a checkpoint of another
network is a clear error rather than a torch traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from er_core import ErError, atomic_path
from torch import nn

if TYPE_CHECKING:
    from er_models import NetworkSpec


TOWER = "tower."  # prefix of a fine-tuned text encoder's saved tensors (see tower.py)


def _model_tensors(model: nn.Module, tower: nn.Module | None = None) -> dict[str, torch.Tensor]:
    out = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if tower is not None:  # method L: the LoRA weights only; T: the whole encoder
        for k, v in tower.saved_state().items():
            out[TOWER + k] = v.detach().cpu().contiguous().clone()
    return out


def _split_tower(
    tensors: dict[str, torch.Tensor], tower: nn.Module | None, path: Path
) -> dict[str, torch.Tensor]:
    """Load the tower's tensors (if it has any here) and return the network's."""
    own = {k[len(TOWER) :]: v for k, v in tensors.items() if k.startswith(TOWER)}
    if tower is None and own:
        raise ErError(
            "these weights hold a fine-tuned text encoder, the run has none",
            at=str(path),
            hint="load them with the run's method (run.method L or T) and [finetune] config",
        )
    if tower is not None:
        tower.load_saved_state(own)
    return {k: v for k, v in tensors.items() if not k.startswith(TOWER)}


def save_weights(
    path: Path,
    model: nn.Module,
    metadata: dict[str, str] | None = None,
    tower: nn.Module | None = None,
) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(_model_tensors(model, tower), str(tmp), metadata=dict(metadata or {}))


def save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    metadata: dict[str, str],
    tower: nn.Module | None = None,
) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in _model_tensors(model, tower).items()}
    state = optimizer.state_dict()
    for idx, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.cpu"] = torch.get_rng_state()
    meta = dict(metadata)
    meta["er.param_groups"] = json.dumps(state["param_groups"])
    if scaler is not None and scaler.is_enabled():
        meta["er.scaler"] = json.dumps(scaler.state_dict())
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda{i}"] = s
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _check_shapes(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    from er_models.weights import check_state

    check_state(
        model,
        tensors,
        str(path),
        "checkpoint does not fit this network",
        "the features' widths or the network config differ from the run that saved it",
    )


def load_weights(path: Path, model: nn.Module, tower: nn.Module | None = None) -> dict[str, str]:
    """Load a weights file into `model` (and a fine-tuned encoder's part into `tower`);
    returns its metadata."""
    from safetensors import safe_open

    tensors, meta = {}, {}
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        for k in f.keys():  # noqa: SIM118
            tensors[k] = f.get_tensor(k)
    tensors = _split_tower(tensors, tower, path)
    _check_shapes(model, tensors, path)
    model.load_state_dict(tensors)
    return meta


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    tower: nn.Module | None = None,
) -> dict[str, str]:
    """Restore everything `save_checkpoint` wrote (RNG included); returns the metadata."""
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        for k in f.keys():  # noqa: SIM118
            tensors[k] = f.get_tensor(k)
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    weights = _split_tower(weights, tower, path)
    _check_shapes(model, weights, path)
    model.load_state_dict(weights)
    slots: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, key = k.split(".", 2)
            slots.setdefault(int(idx), {})[key] = v
    optimizer.load_state_dict({"state": slots, "param_groups": json.loads(meta["er.param_groups"])})
    if scaler is not None and "er.scaler" in meta:
        scaler.load_state_dict(json.loads(meta["er.scaler"]))
    torch.set_rng_state(tensors["rng.cpu"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    return meta


NETWORK_KEY = "er.network"  # checkpoint metadata: the resolved network, as JSON


def check_resumable(path: Path, spec: NetworkSpec) -> None:
    """A checkpoint to resume must be of this network: same input widths, same parts."""
    from safetensors import safe_open

    if not path.is_file():
        raise ErError(
            "no checkpoint to resume", at=str(path), hint="name a run folder er-train wrote"
        )
    with safe_open(str(path), framework="pt") as f:
        saved = json.loads((f.metadata() or {}).get(NETWORK_KEY, "{}"))
    want = spec.to_dict()
    for m in sorted(set(saved.get("dims", {})) | set(want["dims"])):
        a, b = saved.get("dims", {}).get(m), want["dims"].get(m)
        if a != b:
            raise ErError(
                f"the checkpoint was trained on {m} features of width {a or 'none'}, "
                f"the input's are {b or 'none'}",
                at=str(path),
                hint="resume with the features the run was trained on (same encoders)",
            )
    for key in ("tasks", "model", "fusion", "context", "head", "aux"):
        if saved.get(key) != want.get(key):
            raise ErError(
                f"the checkpoint's {key} differs from the config's: {saved.get(key)} vs {want[key]}",
                at=str(path),
                hint="resume with the config the run was trained with",
            )
