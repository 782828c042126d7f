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


def toy_table(
    path: Path,
    counts: dict[str, dict[str, int]] | dict[str, int],
    classes: list[str] = (),
    *,
    task: str = "emotion",
):
    """A canonical utterance table (one utterance per dialogue) with `counts[split][class]` rows
    of each class, or `counts[split]` rows of a regression target when `classes` is empty.
    Returns its FileRef (real sha256), for a DatasetManifest that passes the table check."""
    import polars as pl
    from er_core import FileRef, TaskInfo, sha256_file
    from er_data.table import finish

    rows = []
    for split, per in counts.items():
        labels = [c for c, n in per.items() for _ in range(n)] if classes else [0.5] * per
        for label in labels:
            i = len(rows)
            row = {"id": f"{split}/u{i}", "dialogue": f"{split}/d{i}", "turn": 0}
            row |= {"text": f"utterance {i}", "split": split, "source": f"toy.csv:row {i + 1}"}
            if classes:
                row |= {task: classes.index(label), f"{task}_name": label}
            else:
                row[task] = label
            rows.append(row)
    info = TaskInfo(
        type="classification" if classes else "regression", column=task, classes=list(classes)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    finish(pl.DataFrame(rows), {task: info}).write_parquet(path)
    return FileRef(path=str(path), sha256=sha256_file(path), bytes=path.stat().st_size)


@pytest.fixture
def make_table():
    return toy_table


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
