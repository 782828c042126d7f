"""`er-data prepare`: an adapter's table, checked, written once under its content id."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec
import polars as pl
from er_core import (
    DatasetManifest,
    ErError,
    FileRef,
    MediaIssue,
    Progress,
    UsageError,
    atomic_dir,
    confine,
    content_id,
    merge_sources,
    output_dir,
    sha256_bytes,
    sha256_file,
    to_dict,
    validate,
    warn,
    write_bytes_atomic,
)
from er_core.config import origin_of as _origin
from er_core.stream import encode

from er_data import __version__, check, media, table
from er_data.adapters import get

TABLE_NAME = "utterances.parquet"
MANIFEST_NAME = "manifest.json"
# bumped when prepare's own rules change what it writes for the same inputs (2: turns renumbered
# from 0, dialogues checked), so an older output folder is not taken for this one
TABLE_RULES = 2


def prepare(
    adapter_name: str,
    root: str | Path,
    *,
    task: str | None = None,
    configs: Sequence[str] = (),
    overrides: Sequence[str] = (),
    out: str | Path = "er-out",
    follow_links: bool = False,
    quiet: bool = False,
) -> DatasetManifest:
    """Load `adapter_name`'s dataset under `root`, check it, and write its table and manifest
    under `out` (a no-op if that output exists). Every data and media file must lie inside
    `root` once links are followed, unless `follow_links`. `quiet`: no progress lines."""
    adapter = get(adapter_name)
    root = Path(root)
    if not root.is_dir():
        raise ErError(
            "dataset root not found",
            at=str(root),
            hint="pass the folder that holds the dataset as --root",
        )
    root = root.resolve()
    sets = [*overrides, *([f"task={task}"] if task else [])]
    if adapter.name == "table" and not configs:
        raise UsageError(
            "the table adapter needs a mapping",
            at="--config",
            hint="pass --config mapping.toml (see configs/data/example-table.toml)",
        )
    data, origins = merge_sources(configs, sets)
    opts = validate(data, adapter.Options, origins)
    try:
        # the files that define the table, confined before any is read
        sources = [_confine(root, p, follow_links, "data file") for p in adapter.inputs(root, opts)]
        loaded = adapter.load(root, opts)
    except ErError as e:
        # an adapter names a config key as `$.a.b`; say which file (or --set) brought it
        if e.at and e.at.startswith("$.") and (origin := _origin(e.at[2:], origins)):
            e.at = f"{origin}:{e.at}"
        raise
    if opts.task not in loaded.tasks:
        raise ErError(
            f"{loaded.dataset} has no task '{opts.task}'",
            at="--task",
            hint=f"tasks: {', '.join(loaded.tasks)}",
        )
    info_ = loaded.tasks[opts.task]
    # keys (ids, splits, dialogues, turns) are checked on every row, whatever the task; turns
    # are renumbered before the rows of this task are kept, so a turn is the same for any task
    check.check_keys(loaded.frame)
    frame = check.renumber_turns(loaded.frame)
    labelled = opts.task if check.has_labels(info_) else None  # None: loose clips, no labels
    if labelled:
        frame = frame.filter(pl.col(info_.column).is_not_null())  # rows labelled for this task
    check.check(frame, loaded.tasks, labelled=labelled, transcripts="text" in loaded.modalities)
    confine_media(root, frame, follow_links)

    inputs = {rel: sha256_file(root / rel) for rel in sources}
    cid = content_id(
        {
            "tool": "er-data prepare",
            "rules": TABLE_RULES,
            "follow_links": follow_links,
            "adapter": adapter.name,
            "adapter_version": adapter.version,
            "options": _id_options(adapter, opts),
            "inputs": inputs,
            "media": _media_listing(root, frame),
        }
    )
    folder = Path(output_dir(str(out), "er-data", cid))
    if (folder / MANIFEST_NAME).is_file():  # identical step already done: a no-op
        done = msgspec.json.decode((folder / MANIFEST_NAME).read_bytes(), type=DatasetManifest)
        try:
            check.check_table(done)
        except ErError as e:
            e.hint = f"the earlier output is damaged: remove {folder} and rerun"
            raise
        return done

    issues = check_media(root, frame, quiet=quiet)
    for issue in issues[:10]:
        warn(f"{issue.problem} media for {issue.utterance}: {issue.path}")
    if len(issues) > 10:
        warn(f"... and {len(issues) - 10} more media problems (listed in the manifest)")
    splits, per_class = table.class_counts(frame, info_)
    with atomic_dir(folder) as tmp:
        frame.write_parquet(tmp / TABLE_NAME, statistics=False)
        final_table = folder.resolve() / TABLE_NAME
        manifest = DatasetManifest(
            id=cid,
            tool=f"er-data {__version__}",
            dataset=loaded.dataset,
            task=opts.task,
            task_type=info_.type,
            classes=list(info_.classes),
            label_column=info_.column,
            tasks=loaded.tasks,
            splits=splits,
            class_counts=per_class,
            table=FileRef(
                path=str(final_table),
                sha256=sha256_file(tmp / TABLE_NAME),
                bytes=(tmp / TABLE_NAME).stat().st_size,
            ),
            source_root=str(root),
            modalities=loaded.modalities,
            adapter=adapter.name,
            adapter_version=adapter.version,
            config=to_dict(opts),
            inputs=inputs,
            media_issues=issues,
            follow_links=follow_links,
        )
        write_bytes_atomic(tmp / MANIFEST_NAME, encode(manifest) + b"\n")
    return manifest


def _confine(root: Path, path: Path, follow_links: bool, what: str) -> str:
    """`path` (an adapter's file under root) as a path relative to root, once confined."""
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    confine(root, rel, follow_links=follow_links, what=what, at=str(path))
    return rel


def confine_media(root: Path, frame: pl.DataFrame, follow_links: bool) -> None:
    """Every media path of the table leads to a file inside root (links followed), unless
    `follow_links`: a clip or a folder on its way that links out is refused, naming the row."""
    for kind in ("audio", "video"):
        rows = frame.filter(pl.col(kind).is_not_null()).unique(
            kind, keep="first", maintain_order=True
        )
        for rel, source in rows.select(kind, "source").iter_rows():
            confine(root, rel, follow_links=follow_links, what=f"{kind} file", at=source)


def _id_options(adapter, opts) -> dict:
    """The options as the output's id sees them: an option the adapter added later is left out
    while at its default (`late_defaults`), so outputs prepared before it keep their ids."""
    options = to_dict(opts)
    for key, default in getattr(adapter, "late_defaults", {}).items():
        if options.get(key) == default:
            del options[key]
    return options


def _media_listing(root: Path, frame: pl.DataFrame) -> str:
    """A digest of which media files exist and their sizes: part of the output's id."""
    lines = []
    for rel in sorted(set(frame["audio"].drop_nulls()) | set(frame["video"].drop_nulls())):
        p = root / rel
        lines.append(f"{rel}\t{p.stat().st_size if p.is_file() else -1}")
    return sha256_bytes("\n".join(lines).encode())


def check_media(root: Path, frame: pl.DataFrame, quiet: bool = False) -> list[MediaIssue]:
    """Every media path the table names: missing, or present but not opening. Opening 14k MELD
    clips takes minutes on a cold disk, so it reports progress (er_core.Progress)."""
    can_probe = media.have_decoder()
    rows = frame.select("id", "audio", "video").rows()
    if not any(a or v for _, a, v in rows):
        return []
    if not can_probe:
        warn("PyAV is not installed: media are checked for existence only (install er-data[media])")
    seen: dict[tuple[str, str], str | None] = {}
    issues = []
    with Progress(len(rows), "prepare: media", unit="utt", quiet=quiet) as bar:
        for uid, audio, video in rows:
            for kind, rel in (("audio", audio), ("video", video)):
                if rel is None:
                    continue
                if (kind, rel) not in seen:
                    path = root / rel
                    seen[kind, rel] = (
                        media.probe(path, kind)
                        if can_probe
                        else (None if path.is_file() else "missing")
                    )
                if seen[kind, rel]:
                    issues.append(MediaIssue(utterance=uid, path=rel, problem=seen[kind, rel]))
            bar.update(1)
    return issues
