"""One writer per folder: an OS lock that the kernel releases when its process dies.

A run folder, a cache folder, an output folder: whoever writes there first holds
`<folder>/.lock` (an `flock`, so a `kill -9` frees it at once; no stale lock files to clean up).
A second writer waits, saying so on stderr, or with `wait=False` refuses in one line. The lock
guards writers only: readers of published files need none, since every file is published by an
atomic rename when complete.

Locks are re-entrant within a process (a step that locks its folder may call another that locks
the same one), and work on local file systems; on network file systems `flock` may be advisory
only per host.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from er_core.cli import info
from er_core.errors import ErError

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer per folder is then the user's job
    fcntl = None  # type: ignore[assignment]

_held: dict[str, tuple[int, int]] = {}  # lock path -> (fd, depth) for this process
_guard = threading.Lock()


@contextlib.contextmanager
def folder_lock(
    folder: str | os.PathLike[str], *, what: str = "folder", wait: bool = True
) -> Iterator[Path]:
    """Hold `folder`'s writer lock for the block; yields the folder (created if need be).

    `what` names the folder in messages ("run folder", "feature cache"). A lock another
    process holds is waited for (`wait=True`, the default) or refused with an ErError.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder / LOCK_NAME)
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield folder
        finally:
            _release(key)
        return
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _acquire(fd, folder, what, wait)
    except BaseException:
        os.close(fd)
        raise
    with _guard:
        _held[key] = (fd, 1)
    try:
        yield folder
    finally:
        _release(key)


def _acquire(fd: int, folder: Path, what: str, wait: bool) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    if not wait:
        raise ErError(
            f"another process is writing this {what}",
            at=str(folder),
            hint="wait for it to finish (or stop it), or write somewhere else",
        )
    info(f"waiting for another process writing the {what} {folder} ...")
    fcntl.flock(fd, fcntl.LOCK_EX)


def _release(key: str) -> None:
    with _guard:
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
            return
        del _held[key]
    os.close(fd)  # closing the descriptor drops the flock


def is_locked(folder: str | os.PathLike[str]) -> bool:
    """True if another process holds `folder`'s writer lock now (for tests and diagnostics)."""
    path = Path(folder) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
