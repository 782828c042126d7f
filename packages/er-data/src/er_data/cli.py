"""The er-data command line: a thin layer over er_data's plain functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="er-data",
    help=(
        "Datasets -> one canonical utterance table (Parquet) and a DatasetManifest on stdout.\n\n"
        "Example: er-data prepare meld --root datasets/MELD --task sentiment | er-data stats"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set key=value (repeatable)."),
]
Configs = Annotated[
    list[Path] | None,
    typer.Option("--config", "-c", help="TOML config, merged left to right (repeatable)."),
]
Inputs = Annotated[
    list[str] | None,
    typer.Argument(help="Message files (NDJSON or .safetensors); '-' or none: stdin."),
]


@app.command()
def prepare(
    adapter: Annotated[str, typer.Argument(help="Dataset layout: meld, iemocap, sims or table.")],
    root: Annotated[Path, typer.Option("--root", help="Folder that holds the dataset.")],
    task: Annotated[
        str | None, typer.Option("--task", help="Prediction target, e.g. emotion, sentiment.")
    ] = None,
    config: Configs = None,
    set_: Sets = None,
    out: Annotated[
        Path, typer.Option("--out", help="Output root; the table goes to OUT/er-data/<id>/.")
    ] = Path("er-out"),
) -> None:
    """Write the utterance table and print its DatasetManifest.

    Example: er-data prepare meld --root datasets/MELD --task emotion > meld.json
    """
    from er_core import write_stream

    from er_data.prepare import prepare as run_prepare

    manifest = run_prepare(
        adapter,
        root,
        task=task,
        configs=[str(c) for c in config or []],
        overrides=set_ or [],
        out=out,
    )
    write_stream([], [manifest])


@app.command("adapters")
def list_adapters() -> None:
    """List the dataset adapters."""
    from er_data.adapters import names

    for n in names():
        print(n)


def main() -> None:
    from er_core import run

    run(app, prog_name="er-data")


if __name__ == "__main__":
    main()
