"""Checking media files: does each exist, and does its container open (quick) or decode (full)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import NamedTuple


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


class Decoded(NamedTuple):
    """What a full decode found: a problem (None if the file is sound) and the seconds decoded."""

    problem: str | None
    seconds: float


# Below this share of the declared duration a decode counts as cut short. Containers round their
# durations and encoders pad the last frame, so a sound file can fall a little under 100%.
MIN_DECODED = 0.9


def decode(path: Path, kind: str) -> Decoded:
    """Decode the whole first `kind` ("audio"/"video") stream of `path`, as a reader would.

    Catches what `probe` cannot: a file whose header opens but whose data is cut short or
    corrupt. The decoded length is compared with the length the container declares; for a WAV,
    FFmpeg derives the duration from the file size, so the RIFF header's own data size is
    checked too (a truncated WAV otherwise decodes "fully", just shorter).
    """
    problem = probe(path, kind)
    if problem:
        return Decoded(problem, 0.0)
    if path.suffix.lower() == ".wav":
        problem = _wav_truncation(path)
        if problem:
            return Decoded(problem, 0.0)
    import av

    count = samples = nonfinite = 0
    try:
        with av.open(str(path)) as c:
            stream = (c.streams.audio if kind == "audio" else c.streams.video)[0]
            stream.thread_type = "AUTO"  # frame threads: long videos decode several times faster
            if stream.duration and stream.time_base:
                declared = float(stream.duration * stream.time_base)
            else:
                declared = c.duration / av.time_base if c.duration else 0.0
            rate = float(stream.average_rate or 0) if kind == "video" else 0.0
            mono = _Mono() if kind == "audio" else None
            for frame in c.decode(stream):
                count += 1
                if mono is not None:
                    mono.add(frame)
            if mono is not None:
                samples, nonfinite = mono.finish()
            sample_rate = stream.codec_context.sample_rate if kind == "audio" else 0
    except (av.FFmpegError, OSError, ValueError, EOFError) as e:
        return Decoded(f"decode error after {count} frames ({type(e).__name__})", 0.0)
    if count == 0:
        return Decoded(f"no {kind} frames decode", 0.0)
    if kind == "audio" and nonfinite:  # a float file can hold NaN or inf: damage, not silence
        return Decoded(f"{nonfinite} NaN or inf audio samples", samples / (sample_rate or 1))
    if kind == "audio":
        seconds = samples / sample_rate if sample_rate else 0.0
    else:
        seconds = count / rate if rate else declared  # no frame rate: trust the container
    if declared > 0 and seconds < MIN_DECODED * declared:
        return Decoded(f"truncated: {seconds:.2f} s of {declared:.2f} s decode", seconds)
    return Decoded(None, seconds)


class _Mono:
    """Audio downmixed to mono as feature extraction reads it (er-features' audio_io): each
    frame through a resampler to packed float at its own rate, whatever its channel layout,
    then the channels averaged. Packed, because PyAV cannot read the planes of a planar frame
    of 8 or more channels (it walks past FFmpeg's 8 data pointers and crashes)."""

    def __init__(self) -> None:
        self.resampler = None
        self.samples = self.nonfinite = 0

    def add(self, frame) -> None:
        import av

        if self.resampler is None:
            layout = frame.layout.name
            self.resampler = av.AudioResampler(format="flt", layout=layout, rate=frame.sample_rate)
        for out in self.resampler.resample(frame):
            self._count(out)

    def finish(self) -> tuple[int, int]:
        """(mono samples decoded, how many are NaN or inf)."""
        if self.resampler is not None:
            for out in self.resampler.resample(None):  # the filter's delayed samples
                self._count(out)
        return self.samples, self.nonfinite

    def _count(self, out) -> None:
        import numpy as np

        channels = out.layout.nb_channels
        wave = out.to_ndarray().reshape(-1, channels).mean(axis=1)  # (n * C,) -> (n,)
        self.samples += len(wave)
        self.nonfinite += int(np.count_nonzero(~np.isfinite(wave)))


def _wav_truncation(path: Path) -> str | None:
    """A problem if the RIFF header declares more sample bytes than the file holds."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # RF64, W64 or not RIFF at all: leave it to the decoder
        pos = 12
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return "truncated WAV: no data chunk"
            cid, n = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            pos += 8
            if cid == b"data":
                # 0 and 0xFFFFFFFF mean "unknown" (a streamed write): nothing to compare
                if n in (0, 0xFFFFFFFF) or size - pos >= n:
                    return None
                return f"truncated WAV: {size - pos} of {n} data bytes"
            pos += n + (n & 1)  # chunks are padded to even sizes
            f.seek(pos)
