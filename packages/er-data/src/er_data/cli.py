"""The er-data command line: a thin layer over er_data's plain functions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from er_core import Quiet, app_settings, version_option

app = typer.Typer(
    **app_settings(
        "er-data",
        "Datasets -> one canonical utterance table (Parquet) and a DatasetManifest on stdout.\n\n"
        "Example: er-data prepare meld --root datasets/MELD --task sentiment | er-data stats",
        no_args_is_help=True,
    )
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


@app.callback()
def root(version: Annotated[bool, version_option("er-data")] = False) -> None:
    """Datasets -> one canonical utterance table (Parquet) and a DatasetManifest on stdout."""


@app.command()
def prepare(
    adapter: Annotated[
        str, typer.Argument(help="Dataset layout: meld, iemocap, sims, table or files.")
    ],
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="Folder that holds the dataset (the same as --root).", show_default=False
        ),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option("--root", help="Folder that holds the dataset.", show_default=False),
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="Prediction target, e.g. emotion, sentiment.")
    ] = None,
    config: Configs = None,
    set_: Sets = None,
    out: Annotated[
        Path, typer.Option("--out", help="Output root; the table goes to OUT/er-data/<id>/.")
    ] = Path("er-out"),
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links",
            help="Accept data and media files (or folders on their way) that are symlinks "
            "leading out of --root. Off: such a file is refused. Recorded in the manifest "
            "(readers honour it) and part of the output's id.",
        ),
    ] = False,
    text: Annotated[
        list[str] | None,
        typer.Option("--text", help="files: one utterance's transcript (repeat, in order)."),
    ] = None,
    audio: Annotated[
        list[str] | None,
        typer.Option("--audio", help="files: one utterance's audio file (repeat, in order)."),
    ] = None,
    video: Annotated[
        list[str] | None,
        typer.Option("--video", help="files: one utterance's video file (repeat, in order)."),
    ] = None,
    dialogue: Annotated[
        str | None,
        typer.Option(
            "--dialogue", help="files: one dialogue of this name, the clips its turns in order."
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Write the utterance table and print its DatasetManifest.

    Example: er-data prepare meld --root datasets/MELD --task emotion > meld.json

    New clips, no labels (for er-eval predict): er-data prepare files --text "I love it"
    --video clip.mp4, or er-data prepare files FOLDER (one utterance per file stem).
    """
    from er_core import UsageError, write_stream

    from er_data.adapters.files import named_clips, toml_string
    from er_data.preparation import prepare as run_prepare

    sets = list(set_ or [])
    if folder is not None and root is not None:
        raise UsageError("the dataset folder is given twice", at="--root", hint="give it once")
    root = root if root is not None else folder
    named = bool(text or audio or video)
    if (named or dialogue is not None) and adapter != "files":
        raise UsageError(
            "--text, --audio, --video and --dialogue are the files adapter's",
            at="--text" if named else "--dialogue",
            hint="er-data prepare files --text ... --audio ... --video ...",
        )
    if named:
        if root is not None:
            raise UsageError(
                "clips are named and a folder is given", at="--root", hint="give one or the other"
            )
        root, clip_sets = named_clips(text or [], audio or [], video or [])
        sets += clip_sets
    if dialogue is not None:
        sets.append(f"dialogue={toml_string(dialogue)}")
    if root is None:
        raise UsageError(
            "no dataset folder", at="--root", hint=f"er-data prepare {adapter} --root FOLDER"
        )
    manifest = run_prepare(
        adapter,
        root,
        task=task,
        configs=[str(c) for c in config or []],
        overrides=sets,
        out=out,
        follow_links=follow_links,
        quiet=quiet,
    )
    write_stream([], [manifest])


@app.command()
def stats(
    inputs: Inputs = None,
    format_: Annotated[
        str,
        typer.Option(
            "--format", help="table (stderr, stream passes on stdout), json or csv (stdout)."
        ),
    ] = "table",
) -> None:
    """Class distribution per split of the dataset in the stream.

    Example: er-data prepare meld --root datasets/MELD | er-data stats
    """
    from er_core import DatasetManifest, UsageError, find, read_stream, write_stream

    from er_data.table_stats import render, stats_frame

    if format_ not in ("table", "json", "csv"):
        raise UsageError(f"unknown --format '{format_}'", hint="use table, json or csv")
    envelopes = read_stream(inputs or [])
    frame = stats_frame(find(envelopes, DatasetManifest))
    if format_ == "table":
        print(render(frame, "table"), file=sys.stderr)
        write_stream(envelopes)
    else:
        sys.stdout.write(render(frame, format_))


@app.command()
def validate(
    inputs: Inputs = None,
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing", help="Report bad media but exit 0.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Check that every media file of the dataset in the stream exists and decodes.

    Lists the bad ones on stderr and exits 1 unless --allow-missing; on success the stream
    passes through. Example: er-data prepare meld --root datasets/MELD | er-data validate
    """
    from er_core import DatasetManifest, ErError, find, read_stream, warn, write_stream

    from er_data.validation import validate as run_validate

    envelopes = read_stream(inputs or [])
    issues = run_validate(find(envelopes, DatasetManifest), quiet=quiet)
    for issue in issues:
        warn(f"{issue.problem}: {issue.path} (utterance {issue.utterance})")
    if issues and not allow_missing:
        raise ErError(
            f"{len(issues)} media file(s) missing or undecodable",
            at=issues[0].path,
            hint="restore the files, or pass --allow-missing to go on without them",
        )
    write_stream(envelopes)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the synthetic dataset into.")],
    layout: Annotated[
        str, typer.Option("--layout", help="Folder layout to imitate (meld).")
    ] = "meld",
    utterances: Annotated[
        int, typer.Option("--utterances", "-n", help="Number of utterances, all splits.")
    ] = 300,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives the same files.")
    ] = 0,
    set_: Sets = None,
    quiet: Quiet = False,
) -> None:
    """Write a SYNTHETIC dataset (not real data) with text, audio and video in the MELD layout.

    Each modality carries part of the label signal, with noise, so fusing them beats any one.
    For tests and demos only. Example: er-data synth --out demo/data && er-data prepare meld --root demo/data
    """
    from er_data.synthetic import synth as run_synth

    run_synth(
        out, layout=layout, utterances=utterances, seed=seed, overrides=set_ or [], quiet=quiet
    )


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
