"""One error type for every tool: what went wrong, where, and how to fix it."""

from __future__ import annotations


class ErError(Exception):
    """A failure the user can act on; the CLI runner prints it as two lines and exits 1.

    `at` names the place: a file and row (`train.csv:row 12`), or a JSON path (`$.fusion.kind`).
    """

    exit_code = 1

    def __init__(self, what: str, *, at: str | None = None, hint: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.at = at
        self.hint = hint

    def lines(self) -> list[str]:
        """`error: <what>, at <where>` and `hint: <fix>`, each one line whatever the text holds."""
        head = f"error: {one_line(self.what)}" + (f", at {one_line(self.at)}" if self.at else "")
        return [head] + ([f"hint: {one_line(self.hint)}"] if self.hint else [])

    def __str__(self) -> str:
        return "\n".join(self.lines())


class UsageError(ErError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


def one_line(text: str) -> str:
    """`text` with its line breaks folded into spaces (the protocol's messages are one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


# errno -> (what happened, the fix): the ordinary faults of a file system, each with a real hint
_OS_HINTS = {
    "ENOSPC": ("no space left on the device", "free some space, or write to another disk"),
    "EDQUOT": ("disk quota exceeded", "free some space, or write to another disk"),
    "EFBIG": ("file too large for the file system", "write to another file system"),
    "EACCES": ("permission denied", "check the permissions of the path, or write elsewhere"),
    "EPERM": ("operation not permitted", "check the permissions of the path, or write elsewhere"),
    "EROFS": ("read-only file system", "write to a writable folder (--out, --runs, --cache)"),
    "ENOENT": ("no such file or folder", "check the path; was it moved or deleted while er ran?"),
    "ENOTDIR": ("a part of the path is not a folder", "check the path"),
    "EISDIR": ("is a folder, not a file", "name a file, not a folder"),
    "EEXIST": ("already exists", "remove it or choose another name"),
    "ENAMETOOLONG": ("file name too long", "use a shorter path"),
    "EMFILE": ("too many open files", "raise the limit (ulimit -n) and rerun"),
    "EIO": ("input/output error", "the disk or the file system reported a fault; check it"),
    "EBADF": ("the stream is closed", "give the command an open stdout (a file or a pipe)"),
}


def from_os_error(e: OSError, *, at: str | None = None) -> ErError:
    """An ErError for an ordinary OS fault: what happened (by errno), where, and the fix."""
    import errno as _errno

    name = _errno.errorcode.get(e.errno or 0, "")
    what, hint = _OS_HINTS.get(
        name, (e.strerror or type(e).__name__, "check the path and the disk")
    )
    where = at or e.filename
    if e.filename2:
        where = f"{e.filename} -> {e.filename2}"
    return ErError(what, at=str(where) if where else None, hint=hint)


def wrapped_os_error(e: BaseException) -> OSError | None:
    """The OS fault inside another library's error: Rust-backed writers (polars, safetensors)
    report a full disk as their own error type whose text ends in `(os error 28)`."""
    import os as _os
    import re as _re

    if isinstance(e, OSError):
        return e
    m = _re.search(r"\(os error (\d+)\)", str(e))
    if m is None:
        return None
    code = int(m.group(1))
    return OSError(code, _os.strerror(code))
