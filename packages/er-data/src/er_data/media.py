"""Checking media files: does each exist, and does its container open (quick) or decode (full)."""

from __future__ import annotations

from pathlib import Path


def have_decoder() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def probe(path: Path, kind: str) -> str | None:
    """None if `path` exists and its container opens with a `kind` ("audio"/"video") stream;
    otherwise a short description of the problem. Reads headers only."""
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty file"
    import av

    try:
        with av.open(str(path)) as c:
            streams = c.streams.audio if kind == "audio" else c.streams.video
            if not streams:
                return f"no {kind} stream"
    except (av.FFmpegError, OSError, ValueError) as e:
        return f"does not open ({type(e).__name__})"
    return None
