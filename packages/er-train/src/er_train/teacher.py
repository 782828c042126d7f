"""One-run distillation: a finished teacher run's logits guide the student and its branches.

`[distill] teacher` names any finished run (its folder or its run.json), e.g. a text-only model.
Before training, the teacher is rebuilt from its RunManifest, its selected weights are loaded and
it predicts the TRAINING split once (eval mode, no gradient). Those logits are all the student
ever sees of it: the teacher never runs on dev or test, so evaluation is the student's alone.

In the objective, for each training batch (per utterance i, main task):

    L = L_task + Σ_aux + kl · KL_T(s_i ‖ t_i) + dist · DIST_T(s, t)
          + branches · Σ_m [ CE(b_m, y) + kl · KL_T(b_m ‖ t) + dist · DIST_T(b_m, t) ]

with s the fused student's logits, b_m the logits of modality m's branch (`[model] branches`,
trained in the same run: no separate run per modality) and KL_T, DIST_T from
er_models.distill (temperature T). `init = "text"` starts the student's text projection from the
teacher's (same feature width and model width needed).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec
import torch
from er_core import ErError, RunManifest
from er_models import build_model, run_network

from er_train.checkpoint import load_weights
from er_train.data import Data
from er_train.loop import Setup, predict

_decoder = msgspec.json.Decoder(RunManifest)


def read_teacher(where: str) -> tuple[RunManifest, Path]:
    path = Path(where)
    path = path / "run.json" if path.is_dir() else path
    if not path.is_file():
        raise ErError(
            "no finished teacher run here",
            at=f"$.distill.teacher: {where}",
            hint="name the folder of a finished er-train run (it holds run.json)",
        )
    try:
        return _decoder.decode(path.read_bytes()), path
    except msgspec.DecodeError as e:
        raise ErError(
            f"not a RunManifest ({e})", at=str(path), hint="name a run folder er-train wrote"
        ) from None


def _check_inputs(run: RunManifest, data: Data, at: str) -> None:
    """The teacher must read the student's own features and predict the same classes."""
    for m in run.modalities:
        if m not in data.features:
            raise ErError(
                f"the teacher reads {m} features, the input has none",
                at=at,
                hint="pipe the teacher's features into the stream too",
            )
        have, want = data.features[m].cache_key, run.encoder_keys.get(m, "")
        if have != want or data.dims[m] != run.dims.get(m):
            raise ErError(
                f"the teacher was trained on other {m} features ({run.encoders.get(m, '?')}, "
                f"key {want[:12]}) than the input's ({data.features[m].encoder}, key {have[:12]})",
                at=at,
                hint="extract the input's features with the teacher's encoder and config",
            )
    if run.classes.get(data.main) != data.tasks[data.main].class_names:
        raise ErError(
            f"the teacher predicts {run.classes.get(data.main)} for '{data.main}', the student "
            f"{data.tasks[data.main].class_names}",
            at=at,
            hint="distil from a run of the same dataset and task",
        )


def load_teacher(where: str, data: Data) -> tuple[RunManifest, torch.nn.Module]:
    """The teacher run's manifest and network (eval mode, frozen), checked against `data`."""
    run, path = read_teacher(where)
    at = str(path)
    _check_inputs(run, data, at)
    spec = run_network(run, run.classes, at)
    if run.weights is None:
        raise ErError("the teacher run has no weights", at=at, hint="name a finished run")
    model = build_model(spec)
    load_weights(Path(run.weights.path), model)
    model.eval().requires_grad_(False)
    return run, model


def teacher_view(data: Data, run: RunManifest) -> Data:
    """`data` restricted to the teacher's modalities (same rows, same tensors)."""
    cols = [data.modalities.index(m) for m in run.modalities]
    return dataclasses.replace(
        data,
        feats={m: data.feats[m] for m in run.modalities},
        present=data.present[:, cols],
    )


def init_text(student: torch.nn.Module, teacher: torch.nn.Module) -> None:
    """Copy the teacher's text projection (and its missing vector) into the student."""
    s_proj, t_proj = student.projection, teacher.projection
    if "text" not in s_proj.modalities or "text" not in t_proj.modalities:
        raise ErError(
            "distill.init = 'text' needs text in both the student and the teacher",
            at="$.distill.init",
            hint='set init = "none"',
        )
    src, dst = t_proj.proj["text"].state_dict(), s_proj.proj["text"].state_dict()
    if (
        any(src[k].shape != dst[k].shape for k in dst)
        or t_proj.missing.shape[1] != s_proj.missing.shape[1]
    ):
        raise ErError(
            "the teacher's text projection has another shape than the student's",
            at="$.distill.init",
            hint="use the same model.width and text features as the teacher, or init = 'none'",
        )
    s_proj.proj["text"].load_state_dict(src)
    with torch.no_grad():
        s_proj.missing[s_proj.modalities.index("text")] = t_proj.missing[
            t_proj.modalities.index("text")
        ]


def teacher_logits(s: Setup, run: RunManifest, model: torch.nn.Module) -> torch.Tensor:
    """The teacher's main-task logits for the TRAINING rows, (n, C) on the run's device, NaN
    on every dev and test row: the teacher predicts the training split and nothing else."""
    view = teacher_view(s.data, run)
    ts = dataclasses.replace(s, model=model.to(s.device), data=view, precision="fp32")
    contextual = run.config.get("context", {}).get("kind", "none") != "none"
    groups = (view.dialogues if contextual else view.singles)["train"]
    rows, outputs = predict(ts, groups, 256)
    logits = outputs[s.data.main]
    out = torch.full((len(s.data.ids), logits.shape[1]), float("nan"))
    out[rows] = logits
    return out.to(s.device)
