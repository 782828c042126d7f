"""SafeTensors files that carry their own message, written atomically."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from er_core.files import atomic_path, sha256_file
from er_core.messages import FileRef, Message
from er_core.stream import METADATA_KEY, encode


def write_tensors(
    path: str | Path,
    tensors: Mapping[str, np.ndarray],
    message: Message | None = None,
    metadata: Mapping[str, str] | None = None,
) -> FileRef:
    """Write `tensors` to `path` (temp name, then rename) with `message` in the metadata."""
    from safetensors.numpy import save_file

    meta = dict(metadata or {})
    if message is not None:
        meta[METADATA_KEY] = encode(message).decode()
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata=meta)
    p = Path(path).resolve()
    return FileRef(path=str(p), sha256=sha256_file(p), bytes=p.stat().st_size)


def read_tensors(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All tensors of a file and its metadata."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118
