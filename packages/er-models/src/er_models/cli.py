"""The er-models command line: a thin layer over er_models.describe's plain functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from er_core.options import app_settings, version_option

app = typer.Typer(
    **app_settings(
        "er-models",
        (
            "The registry of network parts (fusion, context, head, loss) that er-train builds from "
            "TOML: list them with their options, or describe the network a config makes.\n\n"
            "Example: er-models describe --set fusion.kind=deep --dims text=384,audio=384 "
            "--tasks emotion=7"
        ),
        no_args_is_help=True,
    )
)


@app.callback()
def root(version: Annotated[bool, version_option("er-models", torch=True)] = False) -> None:
    """Network parts by name, and the networks configs make."""


@app.command("list")
def list_(
    family: Annotated[
        str | None,
        typer.Option("--family", "-f", metavar="FAMILY", help="fusion, context, head or loss."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="One JSON object per part.")] = False,
) -> None:
    """List every registered part with its options, types and defaults, one line each.

    Example: er-models list --family fusion
    """
    import json

    from er_models.describe import list_parts, render_list

    rows = list_parts(family)
    if json_:
        print("\n".join(json.dumps(r) for r in rows))
    else:
        print(render_list(rows), end="")


@app.command()
def describe(
    config: Annotated[
        list[Path] | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="TOML with [model] [fusion] [context] [head] (repeatable).",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Override a key: --set fusion.kind=deep (repeatable).",
        ),
    ] = None,
    dims: Annotated[
        str,
        typer.Option(
            "--dims",
            metavar="M=WIDTH,...",
            help="Input widths, modality=width: text=384,audio=512.",
        ),
    ] = "text=384",
    tasks: Annotated[
        str,
        typer.Option(
            "--tasks",
            metavar="NAME=CLASSES,...",
            help="Targets, name=classes (0 = regression): emotion=7.",
        ),
    ] = "emotion=7",
    json_: Annotated[
        bool, typer.Option("--json", help="The description as one JSON object.")
    ] = False,
) -> None:
    """Show a config's network: its parts, parameter counts and network hash.

    Resolves [model] [fusion] [context] [head] from the merged configs (other sections, such as
    [train] or [loss], are ignored) for the given input widths and tasks, builds the network and
    prints one line per part. The network hash is the name er-train gives its checkpoints.

    Example: er-models describe -c net.toml --set fusion.kind=deep
    --dims text=384,audio=384,video=512 --tasks emotion=7,sentiment=3
    """
    import json

    from er_core import merge_sources

    from er_models.describe import describe as describe_network
    from er_models.describe import parse_dims, parse_tasks, render_describe
    from er_models.spec import parse_network

    widths, targets = parse_dims(dims), parse_tasks(tasks)
    data, origins = merge_sources([str(c) for c in config or []], set_ or [])
    d = describe_network(parse_network(data, widths, targets, origins))
    print(json.dumps(d) if json_ else render_describe(d), end="\n" if json_ else "")


def main() -> None:
    from er_core import run

    run(app, prog_name="er-models")
