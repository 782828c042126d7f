"""The network a config describes: projection, fusion, context and head, resolved and hashed.

The sections come from the same TOML files er-train reads (`[model]`, `[fusion]`, `[context]`,
`[head]` and the `[aux.NAME]` objectives); other sections are ignored here. The network hash names checkpoints: it covers the
resolved parts, the input widths, the tasks and the code version, so two runs share it exactly
when their weights are interchangeable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from er_core import (
    Config,
    Dropout,
    ErError,
    PositiveInt,
    RunManifest,
    content_id,
    to_dict,
    validate,
)

from er_models.registry import Resolved, resolve

# Bump when a part's code changes what its weights mean (names in checkpoints, shapes, maths).
CODE_VERSION = 1
MODALITIES = ("text", "audio", "video")
SECTIONS = ("model", "fusion", "context", "head", "aux")  # the config sections of the network
SHORT = {"text": "T", "audio": "A", "video": "V"}


class ModelSection(Config, frozen=True):
    """`[model]`: the per-modality projection to a shared width."""

    width: PositiveInt = 256  # every modality is projected to this width before fusion
    dropout: Dropout = 0.1  # on the input features, before the projection
    layer_norm: bool = True  # after the projection
    max_speakers: PositiveInt = (
        8  # speaker slots per dialogue for context models (the rest share one)
    )
    # a classifier of the main task on each modality's token alone, trained beside the fused
    # model (one-run distillation trains them from a teacher); not used for predictions
    branches: bool = False


class _Network(Config, frozen=True):
    model: ModelSection = ModelSection()


@dataclass(frozen=True)
class TaskSpec:
    """One prediction target: `classes` > 0 for classification, 0 for regression."""

    name: str
    classes: int

    @property
    def regression(self) -> bool:
        return self.classes == 0


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that fixes a network's shape: build it with `er_models.build_model`."""

    model: ModelSection
    fusion: Resolved
    context: Resolved
    head: Resolved
    dims: dict[str, int] = field(default_factory=dict)  # modality -> input width, in T, A, V order
    tasks: tuple[TaskSpec, ...] = ()
    aux: tuple[tuple[str, Resolved], ...] = ()  # (name, objective): the `[aux.NAME]` tables

    @property
    def modalities(self) -> list[str]:
        return list(self.dims)

    def to_dict(self) -> dict[str, Any]:
        model = to_dict(self.model)
        # options added after the first release are left out at their defaults, so the hashes
        # of networks that do not use them stay what they were
        if not model["branches"]:
            del model["branches"]
        out = {
            "model": model,
            "fusion": self.fusion.to_dict(),
            "context": self.context.to_dict(),
            "head": self.head.to_dict(),
            "dims": dict(self.dims),
            "tasks": {t.name: t.classes for t in self.tasks},
        }
        if self.aux:
            out["aux"] = {name: r.to_dict() for name, r in self.aux}
        return out

    @property
    def hash(self) -> str:
        """The network hash: sha256 of the resolved network, input widths, tasks, code version."""
        return content_id({"network": self.to_dict(), "code": CODE_VERSION})


DEFAULT_SECTIONS: dict[str, dict[str, Any]] = {
    "fusion": {"kind": "concat"},
    "context": {"kind": "none"},
    "head": {"kind": "classification"},
}


def check_sections(
    data: Mapping[str, Any], origins: Mapping[str, str] | None = None
) -> tuple[ModelSection, dict[str, Resolved], tuple[tuple[str, Resolved], ...]]:
    """Validate the network sections of merged config `data` (`[model]`, the parts, `[aux.*]`)
    without inputs: a caller checks them before reading any data, so a bad value (width = 0,
    dropout = 2, an unknown kind) costs no work. Returns them resolved."""
    origins = origins or {}
    # validated as a section of the whole config, so an error names `model.width` and its file
    model = validate({"model": dict(data.get("model", {}))}, _Network, origins).model
    sections = {
        family: resolve(family, {**default, **data.get(family, {})}, origins)
        for family, default in DEFAULT_SECTIONS.items()
    }
    aux = data.get("aux", {}) or {}
    if not isinstance(aux, Mapping) or not all(isinstance(v, Mapping) for v in aux.values()):
        raise ErError(
            "[aux] must hold one table per objective",
            at=origins.get("aux", "$.aux"),
            hint="e.g. [aux.spcl] with weight = 0.1 (kind defaults to the table name)",
        )
    objectives = tuple(
        (name, resolve("aux", {"kind": name, **table}, origins, prefix=f"aux.{name}"))
        for name, table in sorted(aux.items())
    )
    return model, sections, objectives


def parse_network(
    data: Mapping[str, Any],
    dims: Mapping[str, int],
    tasks: Mapping[str, int],
    origins: Mapping[str, str] | None = None,
) -> NetworkSpec:
    """Resolve the network sections of merged config `data` for inputs `dims` (modality ->
    width, each >= 1) and `tasks` (name -> number of classes, 0 for regression)."""
    unknown = [m for m in dims if m not in MODALITIES]
    if unknown or not dims:
        raise ErError(
            f"unknown or no modalities: {', '.join(unknown) or 'none'}",
            at="<inputs>",
            hint="modalities are text, audio and video",
        )
    empty = [m for m in MODALITIES if m in dims and int(dims[m]) < 1]
    if empty:  # a zero-width input would train a network that ignores it, silently
        raise ErError(
            f"{', '.join(empty)} features have width {dims[empty[0]]}",
            at="<inputs>",
            hint="re-extract or re-import the features: each vector needs at least one value",
        )
    if not tasks:
        raise ErError("no task to predict", at="<inputs>", hint="name a task of the dataset")
    model, sections, objectives = check_sections(data, origins)
    ordered = {m: int(dims[m]) for m in MODALITIES if m in dims}
    return NetworkSpec(
        model=model,
        fusion=sections["fusion"],
        context=sections["context"],
        head=sections["head"],
        dims=ordered,
        tasks=tuple(TaskSpec(n, int(c)) for n, c in tasks.items()),
        aux=objectives,
    )


def run_network(run: RunManifest, classes: Mapping[str, list[str]], at: str) -> NetworkSpec:
    """A finished run's network, rebuilt from its resolved config and its tasks' `classes`
    (`at` names its run.json in errors); the hash must be the run's own, or the weights would not
    mean what they meant."""
    sections = {k: run.config[k] for k in SECTIONS if k in run.config}
    spec = parse_network(sections, run.dims, {t: len(c) for t, c in classes.items()})
    if spec.hash != run.network_hash:
        raise ErError(
            f"the run's config builds network {spec.hash[:12]} here, the run has "
            f"{run.network_hash[:12]}: it was made by another er-models version",
            at=at,
            hint="use the er-models version that trained the run (see its `tool`), or train again",
        )
    return spec


def modality_tag(modalities: list[str]) -> str:
    """["text", "audio"] -> "T+A" (the form used in folder names and tables)."""
    return "+".join(SHORT[m] for m in MODALITIES if m in modalities)


def parse_modalities(tag: str) -> list[str]:
    """`T+A+V` (or `text+audio`) -> ["text", "audio", "video"]; an error names a bad letter."""
    full = {v: k for k, v in SHORT.items()} | {m: m for m in MODALITIES}
    out = []
    for part in tag.replace(",", "+").split("+"):
        key = part.strip()
        key = key.upper() if len(key) == 1 else key.lower()
        if key not in full:
            raise ErError(
                f"unknown modality '{part}' in '{tag}'",
                at="--modalities",
                hint="write letters T, A, V joined by +, e.g. T+A+V",
            )
        out.append(full[key])
    return [m for m in MODALITIES if m in out]
