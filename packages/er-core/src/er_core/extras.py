"""A missing optional dependency is a message, not a bug: `error: <feature> needs <package>`
and `hint: pip install '<tool>[<extra>]'`.

Two ways in, one table: code that knows what it is about to use calls `require(module,
feature)`; anything else that fails to import a known optional module is mapped the same way
by `er_core.run` (`missing(error, tool)`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from er_core.errors import ErError

# top-level module -> (what it gives, the PyPI package)
OPTIONAL: dict[str, tuple[str, str]] = {
    "cv2": ("video and face work", "opencv-python-headless<5"),
    "av": ("audio and video decoding", "av"),
    "tensorboard": ("TensorBoard logging", "tensorboard"),
    "torch": ("model code", "torch"),
    "transformers": ("pretrained encoders", "transformers"),
    "peft": ("LoRA fine-tuning", "peft"),
    "er_models": ("running a trained network", "er-models"),
    "er_features": ("a text encoder trained in the run", "er-features"),
    "matplotlib": ("plots", "matplotlib"),
    "h5py": ("HDF5 feature import", "h5py"),
}

# (tool, module) -> the tool's extra that brings the module
EXTRAS: dict[tuple[str, str], str] = {
    ("er-data", "cv2"): "er-data[media]",
    ("er-data", "av"): "er-data[media]",
    ("er-train", "tensorboard"): "er-train[tensorboard]",
    ("er-train", "peft"): "er-train[finetune]",
    ("er-train", "transformers"): "er-train[finetune]",
    ("er-train", "er_features"): "er-train[finetune]",
    ("er-eval", "er_models"): "er-eval[predict]",
    ("er-eval", "torch"): "er-eval[predict]",
}


def install_hint(module: str, tool: str | None) -> str:
    extra = EXTRAS.get((tool or "", module))
    package = OPTIONAL.get(module, ("", module.replace("_", "-")))[1]
    return f"pip install '{extra or package}'"


def missing_error(module: str, feature: str | None = None, tool: str | None = None) -> ErError:
    top = module.split(".")[0]
    what, package = OPTIONAL.get(top, ("this", top.replace("_", "-")))
    return ErError(
        f"{feature or what} needs {package.split('<')[0]}, which is not installed",
        hint=install_hint(top, tool),
    )


def require(module: str, feature: str, tool: str | None = None) -> ModuleType:
    """Import `module`, or raise the one-line error naming `feature` and the install hint."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] != module.split(".")[0]:
            raise  # the module is there but one of its own imports failed: a real bug
        raise missing_error(module, feature, tool) from None


def missing(error: BaseException, tool: str | None) -> ErError | None:
    """The ErError for an import of a known optional module that failed, else None."""
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return None
    top = error.name.split(".")[0]
    if top not in OPTIONAL:
        return None
    return missing_error(top, None, tool)
