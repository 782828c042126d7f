"""`er-data prepare`: an adapter's table, checked, written once under its content id."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec
import polars as pl
from er_core import (
    DatasetManifest,
    ErError,
    FileRef,
    MediaIssue,
    UsageError,
    atomic_dir,
    content_id,
    info,
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

from er_data import __version__, media, table
from er_data.adapters import get

TABLE_NAME = "utterances.parquet"
MANIFEST_NAME = "manifest.json"


def prepare(
    adapter_name: str,
    root: str | Path,
    *,
    task: str | None = None,
    configs: Sequence[str] = (),
    overrides: Sequence[str] = (),
    out: str | Path = "er-out",
) -> DatasetManifest:
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
    frame = loaded.frame.filter(pl.col(info_.column).is_not_null())  # rows labelled for this task
    table.check(frame, loaded.tasks)

    inputs = {
        str(p.relative_to(root)) if p.is_relative_to(root) else str(p): sha256_file(p)
        for p in adapter.inputs(root, opts)
    }
    cid = content_id(
        {
            "tool": "er-data prepare",
            "adapter": adapter.name,
            "adapter_version": adapter.version,
            "options": to_dict(opts),
            "inputs": inputs,
            "media": _media_listing(root, frame),
        }
    )
    folder = Path(output_dir(str(out), "er-data", cid))
    if (folder / MANIFEST_NAME).is_file():  # identical step already done: a no-op
        return msgspec.json.decode((folder / MANIFEST_NAME).read_bytes(), type=DatasetManifest)

    issues = check_media(root, frame)
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
        )
        write_bytes_atomic(tmp / MANIFEST_NAME, encode(manifest) + b"\n")
    return manifest


def _media_listing(root: Path, frame: pl.DataFrame) -> str:
    """A digest of which media files exist and their sizes: part of the output's id."""
    lines = []
    for rel in sorted(set(frame["audio"].drop_nulls()) | set(frame["video"].drop_nulls())):
        p = root / rel
        lines.append(f"{rel}\t{p.stat().st_size if p.is_file() else -1}")
    return sha256_bytes("\n".join(lines).encode())


def check_media(root: Path, frame: pl.DataFrame) -> list[MediaIssue]:
    """Every media path the table names: missing, or present but not opening."""
    can_probe = media.have_decoder()
    rows = frame.select("id", "audio", "video").rows()
    if not any(a or v for _, a, v in rows):
        return []
    if not can_probe:
        warn("PyAV is not installed: media are checked for existence only (install er-data[media])")
    seen: dict[tuple[str, str], str | None] = {}
    issues = []
    for n, (uid, audio, video) in enumerate(rows, start=1):
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
        if n % 2000 == 0 and sys.stderr.isatty():
            info(f"checked media of {n}/{len(rows)} utterances")
    return issues
