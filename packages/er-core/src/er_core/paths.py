"""Paths a data file names are confined to their dataset root, after links are followed.

A table or mapping names media and data files relative to a root. Checking the text of a path
is not enough: `clips/a.wav` may be a symlink to `/etc/passwd`, and so may a folder on the way.
Every reader calls `confine`, which resolves the path (realpath) and refuses one that ends
outside the resolved root, unless the user opted in to links out of it
(`er-data prepare --follow-links`, recorded in the DatasetManifest so later readers agree).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from er_core.errors import ErError


def is_relative_inside(rel: str) -> bool:
    """True if `rel`, as text, is relative and never climbs out of its root."""
    p = PurePosixPath(rel.replace("\\", "/"))
    if p.is_absolute() or (p.parts and ":" in p.parts[0]):
        return False
    depth = 0
    for part in p.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return False
    return True


def within(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """True if the resolved `path` is the resolved `root` or lies under it."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def confine(
    root: str | os.PathLike[str],
    rel: str,
    *,
    follow_links: bool = False,
    what: str = "media file",
    at: str | None = None,
) -> Path:
    """`root / rel`, checked: `rel` is relative, and (unless `follow_links`) the file it leads
    to, links followed, lies inside `root`. Returns the joined path (not resolved)."""
    if "\x00" in rel or not is_relative_inside(rel):
        raise ErError(
            f"{what} path '{rel}' escapes the dataset root",
            at=at,
            hint="paths in a table or mapping must be relative and stay inside --root",
        )
    path = Path(root) / rel
    if not follow_links and not within(path, root):
        raise ErError(
            f"{what} '{rel}' is a link that leads out of the dataset root "
            f"(to {os.path.realpath(path)})",
            at=at,
            hint="copy the file into the root, or allow links out of it with "
            "`er-data prepare --follow-links`",
        )
    return path
