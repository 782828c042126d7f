"""`er-eval export`: a trained run as a standalone bundle that torch alone can load and run.

A run folder needs er to be used: its network exists only as a config in run.json and er-models'
code. The bundle holds everything another project needs, written at once (er_core.atomic_dir):

    model.pt              TorchScript program: one dialogue's features -> probabilities
    weights.safetensors   the run's weights (er-models' state dict), byte for byte
    network.json          the resolved network config (model, fusion, context, head, dims, tasks)
    classes.json          task -> class names, in the program's output order
    encoders.json         per modality: the encoder that made the features (name, source, keys)
    bundle.json           run id, versions, the program's signature, the measured differences
    README.md             how to call the program with torch alone
    check/                with --check: the test split's inputs and the run's own probabilities

Exactness is measured, never assumed: every export compares the program with the eager model on
random dialogues (export_program.self_check), and `--check STREAM` runs the run's test split,
read from the dataset and features the run was trained on, through the saved program and
compares it with the run's own test probabilities. Either above 1e-6 is refused.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from er_core import DatasetManifest, Envelope, ErError, aligned_features, atomic_dir, find, info

from er_eval import __version__
from er_eval.export_readme import readme

try:
    import torch
    from er_models.loading import LoadedRun, load_run, weights_path

    from er_eval.export_program import EXACT, build_program, self_check, uses_speakers
except ImportError as e:  # er-models is the `predict` extra of er-eval
    raise ErError(
        f"er-eval export needs er-models and torch ({e})",
        hint="install er-eval[predict] (uv sync --extra predict, or pip install 'er-eval[predict]')",
    ) from None

FORMAT = 1  # bundle.json "format": bump when a file's meaning changes


@dataclass
class CheckInputs:
    """One split's rows grouped by dialogue (turn order), and what the run predicted for them."""

    feats: dict[str, np.ndarray]  # modality -> (n, d) float32
    present: np.ndarray  # (n, M) bool
    speakers: np.ndarray  # (n,) int64 dialogue-local speaker slots
    dialogue: np.ndarray  # (n,) int64 dialogue number, rows of a dialogue contiguous
    expected: dict[str, np.ndarray]  # task -> (n, C) probabilities or (n,) values
    ids: list[str]


def export_run(
    run_path: str | Path, out: str | Path, check: Sequence[Envelope] | None = None
) -> dict[str, Any]:
    """Write the bundle of the run at `run_path` to the new folder `out`; returns bundle.json.

    `check`: the stream the run was trained on (its dataset and features); its test split then
    goes through the saved program and must reproduce the run's test probabilities."""
    out = Path(out)
    if not out.parent.is_dir():
        raise ErError(
            "the folder that would hold the bundle does not exist",
            at=str(out.parent),
            hint="create it first, or name --out inside an existing folder",
        )
    if out.exists():
        raise ErError(
            "the bundle folder already exists",
            at=str(out),
            hint="name a new folder with --out, or delete this one",
        )
    loaded = load_run(run_path)
    at = str(loaded.folder / "run.json")
    inputs = check_inputs(loaded, check) if check is not None else None
    program = build_program(loaded.model, at)
    exact = self_check(program, loaded.model)
    if not exact <= EXACT:
        raise ErError(
            f"the exported program differs from the run's network by {exact:.2e} (more than "
            f"{EXACT:g}): fusion '{loaded.model.spec.fusion.kind}' or head "
            f"'{loaded.model.spec.head.kind}' does not trace faithfully",
            at=at,
            hint="use er-eval predict with this run; export supports the other fusions and heads",
        )
    meta = bundle_json(loaded, exact)
    with atomic_dir(out) as tmp:
        program.save(str(tmp / "model.pt"))
        shutil.copyfile(weights_path(loaded.manifest, loaded.folder), tmp / "weights.safetensors")
        _json(tmp / "network.json", loaded.model.spec.to_dict())
        _json(tmp / "classes.json", loaded.classes)
        _json(tmp / "encoders.json", encoders_json(loaded, check))
        if inputs is not None:
            meta["check"] = write_check(tmp, inputs, loaded)
        _json(tmp / "bundle.json", meta)
        (tmp / "README.md").write_text(readme(meta))
    info(f"er-eval export: run {loaded.manifest.id[:12]} -> {out}")
    return meta


def _json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def bundle_json(loaded: LoadedRun, exact: float) -> dict[str, Any]:
    run, spec = loaded.manifest, loaded.model.spec
    from er_models import __version__ as models_version

    return {
        "format": FORMAT,
        "run": run.id,
        "dataset": run.dataset,
        "dataset_name": run.dataset_name,
        "network_hash": run.network_hash,
        "network": {k: getattr(spec, k).kind for k in ("fusion", "context", "head")},
        "encoders": {m: run.encoders.get(m, "") for m in spec.modalities},
        "versions": {
            "trained_with": run.tool,
            "er-eval": __version__,
            "er-models": models_version,
            "torch": torch.__version__.split("+")[0],
        },
        "signature": {
            "modalities": list(spec.modalities),
            "dims": dict(spec.dims),
            "speakers": uses_speakers(loaded.model),
            "max_speakers": spec.model.max_speakers,
            "tasks": {
                t: ("regression" if not c else "classification") for t, c in loaded.classes.items()
            },
            "classes": loaded.classes,
        },
        "self_check_max_abs_diff": exact,
        "check": None,
    }


def encoders_json(loaded: LoadedRun, check: Sequence[Envelope] | None) -> dict[str, Any]:
    """Per modality: the encoder as the run names it, the FeatureManifest id and cache key (the
    hash of the encoder's weights and config), the width; with the training stream at hand
    also where the weights came from, their sha256 and the preprocessing config."""
    from er_core import FeatureManifest

    run = loaded.manifest
    found = {e.message.id: e.message for e in check or () if isinstance(e.message, FeatureManifest)}
    out = {}
    for m in run.modalities:
        entry: dict[str, Any] = {
            "encoder": run.encoders.get(m, ""),
            "features": run.features.get(m, ""),
            "cache_key": run.encoder_keys.get(m, ""),
            "dim": run.dims.get(m, 0),
        }
        fm = found.get(run.features.get(m, ""))
        if fm is not None:
            entry |= {
                "source": fm.encoder_source,
                "weights_sha256": fm.weights_sha256,
                "config": fm.config,
            }
        out[m] = entry
    return out


def check_inputs(loaded: LoadedRun, envelopes: Sequence[Envelope]) -> CheckInputs:
    """The run's test split from its training stream, grouped by dialogue as er-train grouped
    it, with the probabilities the run wrote for it (its test prediction file)."""
    from er_data import check_table
    from er_models.layout import groups_by_split, speaker_slots

    from er_eval.prediction import select_features
    from er_eval.runs import load_predictions

    run = loaded.manifest
    ds = find(envelopes, DatasetManifest)
    if ds.id != run.dataset:
        raise ErError(
            f"--check holds dataset {ds.dataset} ({ds.id[:12]}), the run was trained on "
            f"{run.dataset_name} ({run.dataset[:12]})",
            at="--check",
            hint="pass the stream the run was trained on (its dataset and features)",
        )
    if "test" not in run.predictions:
        raise ErError(
            "the run has no test predictions to check against",
            at=str(loaded.folder / "run.json"),
            hint="export without --check, or train with a test split",
        )
    preds = load_predictions(run, "test", loaded.folder)
    table = check_table(ds)
    cols = [table[c].to_numpy() for c in ("dialogue", "turn")]
    groups = groups_by_split(*cols, table["split"].to_list(), ["test"])["test"]
    rows = groups.rows
    ids = table["id"].to_list()
    feats, present = {}, []
    for m, fm in select_features(envelopes, ds, run).items():
        fs = aligned_features(fm, ds, ids)
        feats[m] = np.ascontiguousarray(fs.features[rows], np.float32)
        present.append(fs.flags[rows] == 0)
    order = [ids[r] for r in rows]
    where = {u: i for i, u in enumerate(preds.ids)}
    if sorted(where) != sorted(order):
        raise ErError(
            "the run's test predictions cover other utterances than the table's test split",
            at=str(preds.path),
            hint="pass the stream the run was trained on",
        )
    pick = np.array([where[u] for u in order], np.int64)
    expected = {}
    for task, names in loaded.classes.items():
        key = f"{task}.probs" if names else f"{task}.pred"
        expected[task] = np.asarray(preds.tensors[key])[pick].astype(np.float32)
    slots = speaker_slots(*cols, table["speaker"].to_list())[rows]
    dialogue = np.repeat(np.arange(groups.groups), groups.length)
    return CheckInputs(feats, np.stack(present, 1), slots, dialogue, expected, order)


def run_dialogues(program: Any, x: CheckInputs) -> dict[str, np.ndarray]:
    """The program's outputs for every row of `x`, one call per dialogue."""
    parts: dict[str, list[np.ndarray]] = {}
    bounds = np.flatnonzero(np.r_[True, x.dialogue[1:] != x.dialogue[:-1], True])
    with torch.no_grad():
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            got = program(
                {m: torch.from_numpy(f[lo:hi]) for m, f in x.feats.items()},
                torch.from_numpy(x.present[lo:hi]),
                torch.from_numpy(x.speakers[lo:hi]),
            )
            for task, y in got.items():
                parts.setdefault(task, []).append(y.numpy())
    return {t: np.concatenate(p) for t, p in parts.items()}


def write_check(folder: Path, x: CheckInputs, loaded: LoadedRun) -> dict[str, Any]:
    """Run the SAVED program (model.pt in `folder`) over `x`, refuse a difference above 1e-6,
    and keep the inputs and expected outputs in check/ for tools/check_bundle.py."""
    from safetensors.numpy import save_file

    with warnings.catch_warnings():  # torch >= 2.9 calls TorchScript deprecated
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.jit.load(str(folder / "model.pt"))
    got = run_dialogues(program, x)
    diff = max(float(np.abs(got[t] - x.expected[t]).max(initial=0.0)) for t in x.expected)
    n = len(x.ids)
    info(f"er-eval export: test split, {n} utterances: max |diff| {diff:.3g} (limit {EXACT:g})")
    if not diff <= EXACT:
        precision = loaded.manifest.config.get("train", {}).get("precision", "fp32")
        raise ErError(
            f"the exported program gives the run's test split probabilities {diff:.3g} away from "
            f"the run's own (limit {EXACT:g})",
            at=str(loaded.folder / "run.json"),
            hint=f"the run evaluated in {precision}, the program computes in fp32"
            if precision != "fp32"
            else "pass the exact stream the run was trained on; else report this as a bug",
        )
    (folder / "check").mkdir()
    inputs = {**x.feats, "present": x.present, "speakers": x.speakers, "dialogue": x.dialogue}
    meta = {"ids": json.dumps(x.ids)}
    save_file(inputs, str(folder / "check" / "features.safetensors"), metadata=meta)
    save_file(x.expected, str(folder / "check" / "expected.safetensors"), metadata=meta)
    return {
        "split": "test",
        "utterances": n,
        "dialogues": int(x.dialogue.max(initial=-1)) + 1,
        "max_abs_diff": diff,
    }
