"""The er-train command line: a thin layer over er_train.api (the same run from Python)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from er_core.options import Quiet, Threads, app_settings, version_option

app = typer.Typer(
    **app_settings(
        "er-train",
        (
            "Train a fusion / context model on the features in the stream; pass the stream on and "
            "append a RunManifest.\n\n"
            "Example: er-features extract -m text -e minilm < dataset.ndjson | er-train "
            "--config configs/train/meld.toml --set context.kind=gru --seed 1"
        ),
    )
)


@app.command()
def main_command(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(help="Message files (NDJSON or .safetensors); '-' or none: stdin."),
    ] = None,
    config: Annotated[
        list[Path] | None,
        typer.Option("--config", "-c", help="TOML, e.g. configs/train/meld.toml (repeatable)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: --set fusion.kind=attention (repeatable)."),
    ] = None,
    modalities: Annotated[
        str | None, typer.Option("--modalities", "-m", help="T, A, V joined by +: T+A+V.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (default 0).")] = None,
    runs: Annotated[
        Path | None, typer.Option("--runs", help="Runs root (default: [run] root, 'runs').")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")] = "cpu",
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue the run in this folder (moved or copied)."),
    ] = None,
    quiet: Quiet = False,
    threads: Threads = None,
    version: Annotated[bool, version_option("er-train", torch=True)] = False,
) -> None:
    """Train on the dataset and features in the stream; select the epoch on dev, read test
    once, and append a RunManifest. Re-running a finished run does nothing; an interrupted one
    resumes from its checkpoint. Every recipe and seed has its own run folder, so a sweep is a
    shell loop: for lr in 1e-3 3e-4; do er-train feats.ndjson --set train.lr=$lr; done

    Progress (one line per epoch with its ETA, and a line every 10 s inside long epochs) goes to
    stderr; --quiet silences it. Threads: --threads N (or [run] threads; default ER_THREADS,
    then OMP_NUM_THREADS, else half the usable cores, at most 8).

    Example: er-train feats.ndjson -c configs/train/meld.toml --set fusion.kind=attention
    -m T+A+V --seed 2 > run.ndjson

    Data-parallel on N processes (gloo on CPU, nccl with --device cuda; the stream must be a
    file; train.batch_size stays the global batch; rank 0 writes and prints):
    torchrun --nproc-per-node 2 --no-python er-train feats.ndjson -c configs/train/meld.toml
    """
    from er_core import read_stream, write_stream

    from er_train import distributed
    from er_train.api import train_config, train_with

    if modalities is not None:  # a bad letter on the command line is a usage error (exit 2)
        from er_core import ErError, UsageError
        from er_models import parse_modalities

        try:
            parse_modalities(modalities)
        except ErError as e:
            raise UsageError(e.what, at=e.at, hint=e.hint) from None
    cfg, origins = train_config(
        config or [],
        set_ or [],
        modalities=modalities,
        seed=seed,
        runs=runs,
        threads=threads,
        flag="--{}",
    )
    if distributed.env_world().size > 1 and (not inputs or "-" in inputs):
        from er_core import UsageError

        raise UsageError(
            "under torchrun every process reads the stream, so it cannot come from stdin",
            at="INPUTS",
            hint="save the stream to a file and name it: torchrun ... -m er_train stream.ndjson",
        )
    envelopes = read_stream(inputs or [])
    manifest = train_with(envelopes, cfg, origins, device=device, resume=resume, quiet=quiet)
    if distributed.env_world().main:  # the other ranks print nothing on stdout
        write_stream(envelopes, [manifest])


def main() -> None:
    from er_core import run

    run(app, prog_name="er-train")
