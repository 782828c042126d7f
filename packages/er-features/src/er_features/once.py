"""Weights prepared once into the cache (an unpacked archive, a converted model), verified by hash.

`build_once` names the output folder by the hash of its sources, builds it in a temporary folder
that is renamed into place only when complete, and records every file's sha256 in
`er-weights.json`. A later call checks the recorded hashes before reusing the folder; a folder that
does not verify is an error that says how to rebuild it, never silently used.

File hashes are by content; `HashMemo` documents its one fast path (a stamp that includes ctime,
which any rewrite changes and no user can set back) and why it is safe.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from er_core import ErError, atomic_dir, canonical_json, sha256_bytes, sha256_file

RECORD = "er-weights.json"


def cache_root(value: str | Path | None = None) -> Path:
    """The cache folder: `value`, else $ER_CACHE, else ~/.cache/er."""
    if value:
        return Path(value).expanduser().resolve()
    env = os.environ.get("ER_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    return (Path.home() / ".cache" / "er").resolve()


# A stamp taken less than this long after the file's last change is not remembered: a
# rewrite within the same timestamp tick (coarse file-system clocks) would leave it unchanged.
RACY_S = 2.0


class HashMemo:
    """sha256 of files by content, with one fast path: a digest is remembered (in
    `cache/hashes.json`) under the file's full stamp, (realpath, device, inode, size, mtime_ns,
    ctime_ns), and reused only while that stamp is unchanged.

    What identifies a media or weights file is its content; the stamp only says when the bytes
    hashed before must still be the bytes there. It can: any write, truncation, rename over
    the path or `touch -d` (which sets mtime) changes ctime, and no system call lets a user
    set ctime back. Stamps of files changed less than RACY_S before hashing are not remembered
    (the "racy" case: a second write in the same clock tick would keep the stamp). Off POSIX
    (no trustworthy ctime) nothing is remembered and every file is hashed on every run. What
    this trusts: the system clock never runs backwards past a remembered change, and the file
    system keeps ctime (local POSIX file systems do)."""

    def __init__(self, cache: Path | None):
        trusted = os.name == "posix"
        self.path = cache / "hashes.json" if cache is not None and trusted else None
        self.memo: dict[str, str] = {}
        self.dirty = False
        if self.path is not None:
            try:
                loaded = json.loads(self.path.read_text())
                self.memo = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self.memo = {}

    @staticmethod
    def stamp(path: Path) -> tuple[str, float]:
        """(the stamp of `path`, seconds since its last change)."""
        st = path.stat()
        stamp = f"{path}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
        return stamp, time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9

    def __call__(self, path: Path) -> str:
        path = Path(path).resolve()
        if self.path is None and os.name != "posix":
            return sha256_file(path)
        before, age = self.stamp(path)
        digest = self.memo.get(before)
        if digest is not None:
            return digest
        digest = sha256_file(path)
        after, _ = self.stamp(path)
        if after == before and age > RACY_S:  # unchanged while hashed, and not racy
            self.memo[before] = digest
            self.dirty = True
        return digest

    def save(self) -> None:
        if self.path is not None and self.dirty:
            from er_core import write_bytes_atomic

            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(self.path, json.dumps(self.memo).encode())
            self.dirty = False


def file_sha256(path: Path, cache: Path | None = None) -> str:
    """sha256 of one file, memoised in the cache (see HashMemo)."""
    memo = HashMemo(cache)
    digest = memo(path)
    memo.save()
    return digest


def folder_sha256(folder: Path, cache: Path | None = None) -> str:
    """One hash for a folder of weights: sha256 over the sorted (relative path, file sha256)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != RECORD)
    memo = HashMemo(cache)
    listing = [[str(p.relative_to(folder)), memo(p)] for p in files]
    memo.save()
    return sha256_bytes(canonical_json(listing))


def build_once(
    cache: Path,
    name: str,
    sources: Sequence[Path],
    build: Callable[[Path], None],
    version: str = "1",
) -> Path:
    """`cache/weights/<name>-<key12>/`, built by `build(tmp_folder)` the first time only.

    key = sha256 of (version, each source's sha256): new sources or a new conversion version
    build a new folder. Every later call verifies the recorded file hashes.
    """
    memo = HashMemo(cache)
    key = sha256_bytes(canonical_json([version, [memo(p) for p in sources]]))
    memo.save()
    out = cache / "weights" / f"{name}-{key[:12]}"
    record = out / RECORD
    if record.is_file():
        verify_folder(out)
        return out
    with atomic_dir(out) as tmp:
        build(tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        listing = {str(p.relative_to(tmp)): sha256_file(p) for p in files}
        data = {"name": name, "key": key, "version": version, "files": listing}
        (tmp / RECORD).write_text(json.dumps(data, indent=1))
    return out


def verify_folder(folder: Path) -> str:
    """Check every file against `er-weights.json`; returns the folder's weights hash."""
    data = json.loads((folder / RECORD).read_text())
    for rel, want in data["files"].items():
        p = folder / rel
        if not p.is_file() or sha256_file(p) != want:
            raise ErError(
                f"prepared weights do not verify ({rel} missing or changed)",
                at=str(folder),
                hint=f"delete {folder} and run again to rebuild it",
            )
    return sha256_bytes(canonical_json(sorted(data["files"].items())))
