"""Content addressing: an output's id is the sha256 of the canonical JSON of what made it."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")


def canonical_json(obj: Any) -> bytes:
    """Compact JSON with sorted keys: equal inputs give equal bytes, whatever the dict order."""
    return _encoder.encode(obj)


def content_id(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def output_dir(root: str, tool: str, cid: str) -> str:
    """Where a tool writes the output named by `cid`: `<root>/<tool>/<id[:12]>`."""
    return f"{root.rstrip('/')}/{tool}/{cid[:12]}"
