"""Hashing and atomic writes: a killed run never leaves a half file that a later step could read."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from er_core.errors import from_os_error, wrapped_os_error

_CHUNK = 1 << 20


def _umask() -> int:
    # os.umask can only be read by setting it; put it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file 0600, and writers that recreate the file (safetensors) keep
        # that: the output gets the mode open() would give it
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
    except BaseException as e:
        tmp_path.unlink(missing_ok=True)
        _name_the_fault(e, final)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it becomes `path` only if the block succeeds.

    If `path` already exists (another identical run finished first), the new folder is dropped:
    outputs are content-addressed, so both hold the same thing.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700, private to this user
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        _name_the_fault(e, final)
        raise


def _name_the_fault(e: BaseException, target: Path) -> None:
    """Raise an OS fault met while writing `target` as an ErError naming `target`: a write
    error names no file (or a temporary one), and Rust-backed writers wrap it in their own type.
    Anything else (a bug, Ctrl-C, an ErError) is left to propagate as it is."""
    if isinstance(e, BrokenPipeError) or not isinstance(e, Exception):
        return
    os_error = wrapped_os_error(e)
    if os_error is None or os_error.errno is None:
        return
    if isinstance(e, OSError) and e.filename and ".tmp" not in str(e.filename):
        return  # it names a real file already (one the block read, say)
    raise from_os_error(os_error, at=str(target)) from e
