"""A finished er-train run as a ready torch module: `load_run(path)`.

The one place that turns a run folder back into its network, used by `er-eval predict`,
`er-eval export` and Python callers (`er_train.load_run`): the network is rebuilt from the run's
resolved config (its hash must be the run's `network_hash`), the weights file is checked against
the sha256 the run recorded, then every tensor's name and shape, before it is loaded. A weights
file that changed, or an er-models version that builds another network, is one clear error here
rather than wrong predictions later.

The run's files are read without torch; torch is imported when the network is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from er_core import ErError, RunManifest, read_run, run_classes, sha256_file

if TYPE_CHECKING:
    from er_models.model import ERModel
    from er_models.spec import NetworkSpec


@dataclass
class LoadedRun:
    """A run's network in eval mode with its weights, and what names its outputs."""

    model: ERModel  # forward(feats, present, layout, speakers) -> Output; see er_models.model
    classes: dict[str, list[str]]  # task -> class names, in output order ([] for regression)
    manifest: RunManifest  # the run's run.json
    folder: Path  # the folder run.json is in now (it may have moved since training)


def rebuild(run: RunManifest, classes: dict[str, list[str]], at: str) -> NetworkSpec:
    """The run's network (er_models.run_network), refused for runs that trained an encoder:
    their weights include the encoder, which cached features cannot feed."""
    from er_models.spec import run_network

    method = run.config.get("run", {}).get("method", "F")
    if method != "F":
        raise ErError(
            f"the run fine-tuned its text encoder (method {method}): its weights need the text, "
            "not cached features",
            at=at,
            hint="use the run's own dev/test predictions (er-eval score), or a method F run",
        )
    return run_network(run, classes, at)


def weights_path(run: RunManifest, folder: Path) -> Path:
    """The run's weights file: beside run.json (a run folder that moved), else where it was."""
    assert run.weights is not None
    here = folder / Path(run.weights.path).name
    return here if here.exists() else Path(run.weights.path)


def load_weights(model: ERModel, run: RunManifest, folder: Path) -> None:
    """Load the run's weights into `model` after checking the file's sha256 and every tensor."""
    from safetensors.torch import load_file

    from er_models.weights import load_state

    assert run.weights is not None
    path = weights_path(run, folder)
    if not path.is_file():
        raise ErError(
            "the run's weights file is missing",
            at=str(path),
            hint="the runs folder lost its .store (weights live there, linked from the run)",
        )
    if sha256_file(path) != run.weights.sha256:
        raise ErError(
            "the weights file does not match the run's sha256",
            at=str(path),
            hint="the file changed after training; restore it, or train the run again",
        )
    load_state(
        model,
        load_file(str(path)),
        str(path),
        "the weights do not fit the rebuilt network",
        "the run's weights and config disagree; train the run again",
    )


def build_run(run: RunManifest, folder: Path, classes: dict[str, list[str]]) -> ERModel:
    """The run's network with its checked weights, in eval mode (on the CPU)."""
    from er_models.model import build_model

    model = build_model(rebuild(run, classes, str(folder / "run.json")))
    load_weights(model, run, folder)
    return model.eval()


def load_run(path: str | Path) -> LoadedRun:
    """The trained run at `path` (its folder or its run.json) as a ready module:
    `.model` (eval mode, checked weights), `.classes`, `.manifest` and `.folder`.

    The model takes what er-train fed it (er_models.model.ERModel.forward); `er-eval export`
    turns it into a program that needs torch alone."""
    run, folder = read_run(path)
    classes = run_classes(run, folder)
    return LoadedRun(build_run(run, folder, classes), classes, run, folder)
