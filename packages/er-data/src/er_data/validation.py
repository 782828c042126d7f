"""`er-data validate`: does every media file the table names exist and decode, all the way?

`prepare` only opens each container (cheap); this decodes every frame of the stream a row uses,
because the failures that waste a feature-extraction run are files that open but are cut short
(an interrupted download, a full disk) or corrupt midway. It checks the files as they are now, so
it also catches media changed or deleted after `prepare` wrote the manifest.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
from er_core import DatasetManifest, MediaIssue, Progress, confine, require

from er_data import media
from er_data.check import check_table

# a segment may end this far past the decoded end: containers and annotations round differently
END_SLACK = 0.5


def validate(manifest: DatasetManifest, quiet: bool = False) -> list[MediaIssue]:
    """One MediaIssue per utterance whose audio or video is missing, undecodable, cut short, or
    shorter than the segment the row asks for. Each file is decoded once, however many
    utterances share it (IEMOCAP cuts a whole session's AVI into utterances by start/end).
    `quiet`: no progress lines."""
    frame = check_table(manifest)
    require("av", "validating media", "er-data")
    root = Path(manifest.source_root)
    kinds = [k for k in ("audio", "video") if k in frame.columns]  # the column is the kind

    # every (kind, path) once, in table order, so progress and results are reproducible; each
    # confined to the root (links followed) before it is opened, as prepare confined it
    unique: dict[tuple[str, str], media.Decoded | None] = {}
    for kind in kinds:
        for rel, source in frame.filter(pl.col(kind).is_not_null()).select(kind, "source").rows():
            if (kind, rel) not in unique:
                follow = manifest.follow_links
                confine(root, rel, follow_links=follow, what=f"{kind} file", at=source)
                unique[kind, rel] = None
    _decode_all(root, unique, quiet)

    issues = []
    for row in frame.iter_rows(named=True):
        for kind in kinds:
            rel = row[kind]
            if rel is None:
                continue
            result = unique[kind, rel]
            assert result is not None
            problem = result.problem or _segment_problem(row, kind, result.seconds)
            if problem:
                issues.append(MediaIssue(utterance=row["id"], path=rel, problem=problem))
    return issues


def _decode_all(
    root: Path, unique: dict[tuple[str, str], media.Decoded | None], quiet: bool
) -> None:
    """Fill `unique` with each file's decode result, with a progress line (files/s, ETA).

    FFmpeg releases the GIL while it decodes, so a few threads keep the cores busy on datasets
    of many short clips (MELD); long files also decode with FFmpeg's own frame threads.
    """
    keys = list(unique)
    with (
        Progress(len(keys), "validate: decode", unit="files", quiet=quiet) as bar,
        ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool,
    ):
        results = pool.map(lambda key: media.decode(root / key[1], key[0]), keys)
        for key, result in zip(keys, results, strict=True):
            unique[key] = result
            bar.update(1)


def _segment_problem(row: dict, kind: str, seconds: float) -> str | None:
    """A row that cuts a segment out of a longer file needs the file to reach the segment."""
    start, end = row.get(f"{kind}_start"), row.get(f"{kind}_end")
    if start is not None and end is not None and end < start:
        return f"segment ends ({end:.2f} s) before it starts ({start:.2f} s)"
    last = end if end is not None else start
    if last is not None and last > seconds + END_SLACK:
        return f"segment reaches {last:.2f} s but the media decodes to {seconds:.2f} s"
    return None
