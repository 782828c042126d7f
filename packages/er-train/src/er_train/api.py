"""`er_train.train`: a run from Python, the same run `er-train` makes from the command line.

The command line and this function share everything after argument parsing: the config is
merged here (files left to right, then `--set` overrides, then the explicit arguments), the
stream is read here, and the run is trained by er_train.training. So a run started from a
script has the same id, folder and RunManifest as the same run started from a shell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from er_core import Envelope, RunManifest, merge_sources, to_envelopes, validate

from er_train.config import TrainConfig


def train_config(
    config: str | Path | Sequence[str | Path] = (),
    overrides: str | Sequence[str] = (),
    *,
    modalities: str | None = None,
    seed: int | None = None,
    runs: str | Path | None = None,
    threads: int | None = None,
    flag: str = "{}",
) -> tuple[TrainConfig, dict[str, str]]:
    """The resolved TrainConfig and where each key came from (errors name that origin).

    `config` is one TOML file or several, `overrides` one "key=value" or several. `flag`
    formats an explicit argument's origin: "--{}" on the command line, "{}" in Python.
    """
    # one file or one override alone is a list of one, not a string iterated letter by letter
    config = [config] if isinstance(config, (str, Path)) else config
    overrides = [overrides] if isinstance(overrides, str) else overrides
    data, origins = merge_sources([str(c) for c in config], list(overrides))
    for key, value in (("modalities", modalities), ("seed", seed)):
        if value is not None:  # an explicit argument beats the config files
            data[key], origins[key] = value, flag.format(key)
    for key, value in (("root", None if runs is None else str(runs)), ("threads", threads)):
        if value is not None:
            data.setdefault("run", {})[key] = value
            origins[f"run.{key}"] = flag.format("runs" if key == "root" else key)
    return validate(data, TrainConfig, origins), origins


def train(
    stream: Any,
    config: str | Path | Sequence[str | Path] = (),
    overrides: str | Sequence[str] = (),
    *,
    modalities: str | None = None,
    seed: int | None = None,
    runs: str | Path | None = None,
    device: str = "cpu",
    resume: str | Path | None = None,
    threads: int | None = None,
    quiet: bool = False,
) -> RunManifest:
    """Train on the dataset and features in `stream`; return the finished run's RunManifest.

    `stream`: a stream file (e.g. `er-features extract`'s output), read_stream's list, or the
    messages themselves (a DatasetManifest and a FeatureManifest per modality). `config`: TOML
    files merged left to right, then `overrides` ("train.epochs=5"), then the arguments. A run
    that finished before is returned as it is; an interrupted one resumes. Under torchrun each
    process calls this and trains its share (see er_train.distributed).
    """
    cfg, origins = train_config(
        config, overrides, modalities=modalities, seed=seed, runs=runs, threads=threads
    )
    return train_with(to_envelopes(stream), cfg, origins, device=device, resume=resume, quiet=quiet)


def train_with(
    envelopes: Sequence[Envelope],
    cfg: TrainConfig,
    origins: Mapping[str, str],
    *,
    device: str = "cpu",
    resume: str | Path | None = None,
    quiet: bool = False,
) -> RunManifest:
    """`train` once the config is resolved and the stream read (what the command line calls)."""
    from er_train import distributed
    from er_train.training import train as run_training

    folder = None if resume is None else Path(resume)
    with distributed.launch(device) as here:  # one process: nothing to launch, `device` as is
        return run_training(envelopes, cfg, origins, device=here, progress=not quiet, resume=folder)
