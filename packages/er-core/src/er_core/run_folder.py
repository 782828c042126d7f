"""A finished er-train run folder, read without torch: its manifest and its class names.

er-eval predict (which must work without er-models), er-eval export and er_models.load_run all
start from a run folder the user names; this is the one reader they share, so a folder that is
not a finished run gets the same one-line error everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from er_core.errors import ErError
from er_core.messages import RunManifest

# the metadata key of er-train's prediction files (er_train.predictions); it holds the classes
PREDICTIONS_KEY = "er.predictions"
_decoder = msgspec.json.Decoder(RunManifest)


def read_run(path: str | Path) -> tuple[RunManifest, Path]:
    """The finished run a folder (or its run.json) holds, and the folder it is in now."""
    p = Path(path)
    file = p / "run.json" if p.is_dir() else p
    hint = (
        "name a finished er-train run folder (run.json is written when it finishes) or its run.json"
    )
    if not file.is_file():
        raise ErError("no run.json there", at=str(file), hint=hint)
    try:
        run = _decoder.decode(file.read_bytes())
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise ErError(f"not a run manifest ({e})", at=str(file), hint=hint) from None
    if run.status != "complete" or run.weights is None:
        raise ErError("the run has not finished (no weights)", at=str(file), hint=hint)
    return run, file.resolve().parent


def run_classes(run: RunManifest, folder: Path) -> dict[str, list[str]]:
    """task -> class names ([] for regression), in the run's task order. A run.json older than
    RunManifest.classes: read from its prediction files' metadata."""
    tasks = run.tasks or [run.task]
    classes = dict(run.classes)
    for ref in run.predictions.values():
        if all(t in classes for t in tasks):
            break
        p = folder / Path(ref.path).name
        if p.is_file():
            from safetensors import safe_open

            with safe_open(str(p), framework="numpy") as f:
                meta = json.loads((f.metadata() or {}).get(PREDICTIONS_KEY, "{}"))
            classes = {**meta.get("classes", {}), **classes}
    lacking = [t for t in tasks if t not in classes]
    if lacking:
        raise ErError(
            f"the run does not name the classes of task {lacking[0]}",
            at=str(folder / "run.json"),
            hint="re-run er-train (its run.json then lists each task's classes)",
        )
    return {t: list(classes[t]) for t in tasks}
