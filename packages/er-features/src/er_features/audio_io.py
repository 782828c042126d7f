"""Decode any audio (wav, flac, mp3, the audio track of mp4/avi/mkv) to 16 kHz mono float32.

One path for every container: PyAV demuxes and decodes, libswresample (a filtered resampler, not
a naive decimation) converts the rate, and the channels are averaged. swresample's own mono
downmix sums stereo at -3 dB each, so a stereo copy of a mono clip would come out 1.41x louder;
Whisper's log-mel has an absolute level, so the channel mean is taken instead (a stereo copy of a
clip then gives the clip's own samples).

A cut `start..end` (seconds on the stream's timeline) seeks to a point a little before `start`
when `start` is far into the file, so a 3 s utterance in a 40 min episode does not decode 40 min.
The margin warms the decoder (AAC frames overlap) and the resampler's filter before the cut, and
the samples come out the same as decoding from 0 (tested); containers whose timestamps cannot
promise that (SEEKABLE) are decoded from 0.

Channels are read from packed (interleaved) frames only, whatever their count and sample type:
PyAV cannot read the planes of a planar frame of 8 or more channels (see _drop_head).

What is wrong with a file is raised as `AudioProblem(kind, text)`, kind one of bad_media
(also: NaN or inf samples in a float file), no_audio, empty: the encoder turns it into a flag and the batch goes on.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

SEEK_AFTER = 5.0  # seconds: cuts starting later than this seek instead of decoding from 0
SEEK_MARGIN = 1.0  # seconds decoded before the cut (decoder and resampler warm-up)
# A decode that ends this much short of the duration the header declares is a truncated file.
TRUNCATED_S = 0.5
TRUNCATED_SHARE = 0.02
# Decoded frames (AAC: 21 ms each) are gathered and resampled a block at a time: one call per
# block, not per frame, and the same samples (the resampler is a stream: how its input is cut
# never changes its output, tested)
BLOCK_S = 10
# FFmpeg's probe (see _open): 32 KB read to find the streams, and no video frame decoded to
# learn the video's parameters (skip_frame concerns video decoders only; 4.8 -> 1.3 ms to open
# a 720p mp4, the same samples)
PROBE = {"probesize": "32768", "skip_frame": "all"}
# Demuxers whose seeks land on exact sample times. Others decode from 0: Matroska stamps frames
# to the millisecond (16 samples at 16 kHz), raw streams (mp3, aac, ac3) estimate the time of a
# seek from its byte offset; both moved a cut by 5 to 100 samples in tests.
SEEKABLE = {"wav", "w64", "aiff", "flac", "ogg", "avi", "mov,mp4,m4a,3gp,3g2,mj2"}


class AudioProblem(Exception):
    """The media gives no usable audio. kind: bad_media | no_audio | empty."""

    def __init__(self, kind: str, text: str):
        super().__init__(text)
        self.kind = kind
        self.text = text


def _open(path: str | Path):
    """(container, audio stream); every failure to open becomes an AudioProblem.

    FFmpeg's default probe reads up to 5 MB to guess stream parameters: 10 ms for a 3 s WAV,
    as long as encoding it with trim. Containers and codecs that say what they hold in their
    header need 32 KB; a file whose audio is not found that way is opened again with defaults.
    A video track would also cost a few decoded frames at open; PROBE skips them.
    """
    import av

    p = Path(path)
    if not p.is_file():
        raise AudioProblem("bad_media", f"file not found: {p}")
    if p.stat().st_size == 0:
        raise AudioProblem("empty", "the file is empty (0 bytes)")
    container = None
    try:
        for options in (PROBE, {}):
            if container is not None:
                container.close()
            container = av.open(str(p), options=options)
            audio = container.streams.audio
            if audio and audio[0].codec_context.sample_rate:
                break
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        if container is not None:
            container.close()
        raise AudioProblem("bad_media", f"cannot open as media ({type(e).__name__}: {e})") from None
    if not container.streams:
        container.close()
        raise AudioProblem("empty", "the file holds no streams (a zero-length clip)")
    if not container.streams.audio:
        container.close()
        raise AudioProblem("no_audio", "no audio track in the file")
    return container, container.streams.audio[0]


def _wav_seconds(path: Path) -> float | None:
    """The duration a RIFF/WAVE header declares (its data chunk's size), None if not a WAV or
    the size is unknown. FFmpeg clamps a WAV's duration to the bytes present, so a cut-off WAV
    looks whole to it; the header still says how long it was."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        byte_rate = 0
        while chunk := f.read(8):
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if name == b"fmt ":
                fmt = f.read(size + size % 2)
                byte_rate = int.from_bytes(fmt[8:12], "little")
            elif name == b"data":  # 0 and 0xFFFFFFFF: written to a pipe, size unknown
                ok = byte_rate > 0 and 0 < size < 0xFFFFFFFF
                return size / byte_rate if ok else None
            else:
                f.seek(size + size % 2, 1)  # chunks are padded to even sizes
    return None


def _declared_seconds(container, stream, path: Path) -> float | None:
    """The duration the header declares (WAV data size, the stream's, the container's)."""
    wav = _wav_seconds(path)
    if wav is not None:
        return wav
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def load_audio(
    path: str | Path, start: float | None = None, end: float | None = None, sr: int = 16000
) -> np.ndarray:
    """(T,) float32 mono at `sr` Hz of the cut [start, end] seconds (None: file start / end).

    Raises AudioProblem: bad_media (missing, undecodable, truncated), no_audio (no audio
    track), empty (zero-length file or stream, or a cut that holds no samples).
    """
    import av

    start, end = (None if v is None or math.isnan(v) else float(v) for v in (start, end))
    lo = max(0.0, start) if start is not None else 0.0
    if end is not None and end <= lo:
        raise AudioProblem("empty", f"empty cut: start {start} s, end {end} s")
    container, stream = _open(path)
    t0 = stream.start_time or 0  # stream timeline origin, in time_base units
    base = stream.time_base
    try:
        decoded = None
        exact = base is not None and base * (stream.codec_context.sample_rate or 1) <= 1
        if lo > SEEK_AFTER and exact and container.format.name in SEEKABLE:
            try:  # lands on the last seekable point at or before the margin
                container.seek(t0 + int((lo - SEEK_MARGIN) / base), stream=stream, backward=True)
                decoded = _decode(container, stream, sr, end, t0, sought=True)
            except av.FFmpegError:
                decoded = None
            if decoded is None:  # not seekable, or frames without times: decode from 0
                container.close()
                container, stream = _open(path)
        if decoded is None:
            decoded = _decode(container, stream, sr, end, t0, sought=False)
        wave, first, ended = decoded
        declared = _declared_seconds(container, stream, Path(path))
    except av.FFmpegError as e:
        raise AudioProblem("bad_media", f"undecodable audio ({type(e).__name__}: {e})") from None
    finally:
        container.close()

    got = first + len(wave) / sr  # stream time at the end of what was decoded
    short = declared is not None and declared - got > max(TRUNCATED_S, TRUNCATED_SHARE * declared)
    if ended and short and (end is None or got < end):  # the cut needs what is missing
        raise AudioProblem(
            "bad_media",
            f"truncated audio: decoded {got:.2f} s of the {declared:.2f} s the header declares",
        )
    if len(wave) == 0:
        raise AudioProblem("empty", "the audio track holds no samples")
    # (T,) samples of the cut; sample k of `wave` sits at time first + k / sr
    a = max(0, round((lo - first) * sr))
    b = len(wave) if end is None else max(a, min(len(wave), round((end - first) * sr)))
    if b <= a:
        raise AudioProblem(
            "empty", f"the cut {lo:.2f}..{end} s lies beyond the audio ({got:.2f} s)"
        )
    cut = np.ascontiguousarray(wave[a:b], dtype=np.float32)
    bad = int(np.count_nonzero(~np.isfinite(cut)))
    if bad:  # a float file can hold NaN or inf: that is damage, not silence
        raise AudioProblem("bad_media", f"the audio holds {bad} NaN or inf samples")
    return cut


def _drop_head(frame, d: int):
    """The frame without its first d samples (a new AudioFrame, same format, layout, rate).

    Through an AudioFifo, never `to_ndarray`/`planes`: PyAV finds a frame's planes by walking
    FFmpeg's `extended_data` to a NULL pointer, which a planar frame of 8 or more channels
    does not have (8 = AV_NUM_DATA_POINTERS): it reads past the array and crashes."""
    import av

    fifo = av.AudioFifo()
    frame.pts = None  # the fifo would check timestamps; only the samples matter here
    fifo.write(frame)
    fifo.read(d)
    out = fifo.read()
    out.sample_rate = frame.sample_rate
    return out


def _decode(container, stream, sr: int, end: float | None, t0: int, sought: bool):
    """(wave (T,) float32 mono at sr, stream time of wave[0] in s, whether the file ran out);
    None after a seek (`sought`) that lands on frames without times (the cut cannot be placed).

    The first sample fed to the resampler sits on a point the input and output sample grids
    share (every 1/gcd(rates) s from the stream's origin), so after a seek the output samples
    fall at the same times as when decoding from 0: a cut gives the same samples either way.
    """
    import av

    resampler, fifo = None, None
    chunks: list[np.ndarray] = []  # (n,) mono pieces
    first: float | None = None
    fed, ran_out = 0, True  # input samples given to the resampler
    for frame in container.decode(stream):
        if resampler is None:
            if frame.pts is None and sought:
                return None
            rate, base = frame.sample_rate, frame.time_base or stream.time_base
            at = float((frame.pts - t0) * base) if frame.pts is not None else 0.0
            d = -round(at * rate) % (rate // math.gcd(rate, sr))  # input samples to the grid
            if d >= frame.samples:
                continue  # the whole frame lies before the first shared grid point
            first = at + d / rate
            frame = _drop_head(frame, d) if d else frame
            # keep the file's channels: they are averaged below, not swr-downmixed. Packed
            # output ("flt"): one plane whatever the channel count (see _drop_head for why
            # planar frames of 8+ channels cannot be read); interleaving is exact, so the
            # samples are those of planar "fltp"
            resampler = av.AudioResampler(format="flt", layout=frame.layout.name, rate=sr)
            fifo = av.AudioFifo()
        frame.pts = None  # the fifo would check timestamps; only the samples matter here
        fifo.write(frame)
        fed += frame.samples
        if fifo.samples >= BLOCK_S * rate:
            chunks += _resampled(resampler, fifo.read(), rate)
        if end is not None and first + fed / rate >= end + SEEK_MARGIN:
            ran_out = False  # past the cut with the filter's tail to spare: stop decoding
            break
    if resampler is not None:
        if fifo.samples:
            chunks += _resampled(resampler, fifo.read(), rate)
        chunks += [_mono(out) for out in resampler.resample(None)]  # the filter's delayed tail
    wave = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return wave.astype(np.float32, copy=False), first or 0.0, ran_out


def _resampled(resampler, block, rate: int) -> list[np.ndarray]:
    """The mono pieces of one block of input samples through the (stateful) resampler."""
    block.sample_rate = rate
    return [_mono(out) for out in resampler.resample(block)]


def _mono(frame) -> np.ndarray:
    """(n,) float32: the channel mean of a packed float frame ((1, n * C) interleaved)."""
    channels = frame.layout.nb_channels
    return frame.to_ndarray().reshape(-1, channels).T.mean(axis=0)  # (C, n) -> (n,)


def rms_dbfs(wave: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale square wave = 0 dBFS)."""
    if len(wave) == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def is_silent(wave: np.ndarray, threshold_db: float = -60.0) -> bool:
    """Whether the clip's RMS level is below `threshold_db` dBFS (all-zero audio is silent)."""
    return rms_dbfs(wave) < threshold_db
