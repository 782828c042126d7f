"""Content-addressed files under the runs root, linked into run folders by relative symlinks.

`<root>/.store/<sha256[:2]>/<sha256><suffix>` holds each distinct file once: a hundred runs that
save identical weights (a frozen encoder, a seed that converged to the same point) cost its size
once. Links are relative, so a runs folder that moves keeps working.
"""

from __future__ import annotations

import os
from pathlib import Path

from er_core import sha256_file


def store_root(runs_root: Path) -> Path:
    return runs_root / ".store"


def put(runs_root: Path, src: Path, link: Path) -> Path:
    """Move `src` into the store (dropped if an identical file is there) and point `link` at it.

    Returns the stored path. The link is replaced atomically.
    """
    digest = sha256_file(src)
    dst = store_root(runs_root) / digest[:2] / f"{digest}{src.suffix}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        src.unlink()
    else:
        os.replace(src, dst)
    target = os.path.relpath(dst, link.parent)
    tmp = link.with_name(f".{link.name}.link")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return dst
