"""Shared fixtures for er-data's tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def er_data(
    *args: str, input: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the real `er-data` CLI in a subprocess, as a user's shell would."""
    return subprocess.run(
        [sys.executable, "-m", "er_data", *args],
        input=input,
        capture_output=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture
def cli():
    return er_data


class TinyMedia:
    """Smallest real media files: they open and decode, so only missing or junk files are issues."""

    @staticmethod
    def wav(path: Path, seconds: float = 0.1) -> Path:
        import wave

        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(b"\x00\x00" * int(16000 * seconds))
        return path

    @staticmethod
    def clip(path: Path) -> Path:
        """A 3-frame 32x32 mp4 with a short AAC track: it has both an audio and a video stream."""
        import av
        import numpy as np

        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w", format="mp4") as c:
            v = c.add_stream("mpeg4", rate=10)
            v.width = v.height = 32
            v.pix_fmt = "yuv420p"
            a = c.add_stream("aac", rate=16000)
            a.layout = "mono"
            for i in range(3):
                frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), "rgb24")
                for p in v.encode(frame):
                    c.mux(p)
            for p in v.encode():
                c.mux(p)
            sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            sound.sample_rate, sound.pts = 16000, 0
            for p in [*a.encode(sound), *a.encode()]:
                c.mux(p)
        return path


@pytest.fixture
def tiny_media() -> TinyMedia:
    return TinyMedia()
