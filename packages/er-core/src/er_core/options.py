"""Options every er tool shares, so a flag means one thing everywhere.

Short flags across the five tools (docs/cli.md lists them; a test keeps them one meaning each):
`-c` --config, `-m` --modality/--modalities, `-e` --encoder, `-n` --utterances,
`-f` --family, `-q` --quiet, `-j` --threads.

    @app.callback()
    def root(version: Annotated[bool, version_option("er-data")] = False) -> None: ...

    def extract(..., quiet: Quiet = False, threads: Threads = None) -> None:
        set_threads(threads)
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Annotated, Any

import typer

Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress lines on stderr (errors and warnings stay)."),
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        "-j",
        min=1,
        help="CPU threads for torch (default: ER_THREADS or OMP_NUM_THREADS, else half the "
        "usable cores, at most 8).",
    ),
]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(tool: str, torch: bool = False) -> str:
    """`er-train 0.1.0 (er-core 0.1.0, …); Python 3.11.9; torch 2.5.1, CUDA 12.4 (no device)`."""
    deps = sorted({"er-core", *_er_requirements(tool)} - {tool})
    text = f"{tool} {_version(tool)}"
    if deps:
        text += " (" + ", ".join(f"{d} {_version(d)}" for d in deps) + ")"
    text += f"; Python {platform.python_version()}"
    if torch:
        text += "; " + _torch()
    return text


def _er_requirements(dist: str) -> list[str]:
    try:
        reqs = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return []
    reqs = [r for r in reqs if "extra ==" not in r]  # an optional extra is not a dependency
    names = (r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0] for r in reqs)
    return [n.strip() for n in names if n.strip().startswith("er-")]


def _torch() -> str:
    try:
        import torch
    except ImportError:
        return "torch not installed"
    cuda = torch.version.cuda
    if not cuda:
        return f"torch {torch.__version__}, CPU build"
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"torch {torch.__version__}, CUDA {cuda} ({n} device{'s' if n != 1 else ''})"


def version_option(tool: str, torch: bool = False) -> Any:
    """The `--version` option of `tool`: prints `versions(tool)` and exits 0."""

    def show(value: bool) -> None:
        if value:
            print(versions(tool, torch))
            raise typer.Exit()

    return typer.Option(
        "--version",
        callback=show,
        is_eager=True,
        help="Print the versions of this tool and what it runs on, then exit.",
    )


def app_settings(name: str, help: str, **extra: Any) -> dict[str, Any]:
    """The Typer settings every er tool uses: completion on (`--install-completion`), plain
    help text, no rich tracebacks (er_core.run turns errors into `error:`/`hint:` lines)."""
    return {
        "name": name,
        "help": help,
        "add_completion": True,
        "pretty_exceptions_enable": False,
        "rich_markup_mode": None,
        **extra,
    }
