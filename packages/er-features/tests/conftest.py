"""Shared fixtures for er-features' tests. Tests build tiny random models; real weights are for
`slow` tests. Sections below are owned by the module they serve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# --- common: data, CLIs ---------------------------------------------------------------------


def _run(module: str, *args: str, input: bytes | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        input=input,
        capture_output=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def cli():
    """Run `er-features ARGS` in a subprocess: cli(*args, input=bytes, env={...})."""
    return lambda *args, **kw: _run("er_features", *args, **kw)


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory) -> bytes:
    """A small synthetic MELD-layout dataset, prepared: its DatasetManifest stream (bytes)."""
    root = tmp_path_factory.mktemp("synth")
    made = _run(
        "er_data", "synth", "--out", str(root / "data"), "--utterances", "24", "--seed", "0"
    )
    assert made.returncode == 0, made.stderr.decode()
    prep = _run(
        "er_data",
        "prepare",
        "meld",
        "--root",
        str(root / "data"),
        "--task",
        "emotion",
        "--out",
        str(root / "out"),
    )
    assert prep.returncode == 0, prep.stderr.decode()
    return prep.stdout


# --- text: a tiny random BERT with its own WordPiece vocabulary --------------------------------


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT (hidden 32) with a small vocabulary: a real transformers folder."""
    from er_features.testing import tiny_text_folder

    return tiny_text_folder(tmp_path_factory.mktemp("tiny-bert"))


# --- video: clips written here, er-data's synthetic faces, tiny face CNNs, broken media --------


def _write_video(
    path: Path, frames, fps: int = 24, gop: int = 12, bframes: int = 2, **opts
) -> Path:
    """An H.264 mp4 of BGR frames with a keyframe every `gop` frames and B-frames (so decode
    order differs from display order, as in real footage). opts: muxer options (movflags)."""
    import av

    with av.open(str(path), "w", options=opts) as out:
        s = out.add_stream("libx264", rate=fps)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"}
        for f in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
        out.mux(s.encode(None))
    return Path(path)


@pytest.fixture(scope="session")
def write_video():
    """write_video(path, frames, fps=24, gop=12, bframes=2, **muxer_options) -> path."""
    return _write_video


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory) -> Path:
    """600 frames (25 s at 24 fps) of 64x48 noise, a keyframe every 12: every frame differs,
    so a wrong frame cannot pass for the right one."""
    import numpy as np

    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(600)]
    return _write_video(tmp_path_factory.mktemp("long") / "long.mp4", frames)


@pytest.fixture(scope="session")
def synth_videos(tmp_path_factory) -> list[Path]:
    """er-data's synthetic MELD clips (160x160, 12 fps, 1 s, mp4v, one drawn face each)."""
    root = tmp_path_factory.mktemp("synth-video")
    made = _run("er_data", "synth", "--out", str(root), "--utterances", "10", "--seed", "0")
    assert made.returncode == 0, made.stderr.decode()
    return sorted(root.rglob("*.mp4"))


@pytest.fixture(scope="session")
def face_frames(synth_videos) -> list:
    """BGR frames (160x160) in which the default Haar cascade finds exactly one face."""
    from er_features.faces import FaceDetector, to_grey
    from er_features.video_io import read_all_frames

    det, out = FaceDetector(), []
    for p in synth_videos:
        frame = read_all_frames(p)[0][0]
        if det.detect(to_grey(frame)) is not None:
            out.append(frame)
    assert len(out) >= 3, "er-data's synthetic faces should be found by the Haar cascade"
    return out


@pytest.fixture(scope="session")
def tiny_face_cnns(tmp_path_factory) -> dict[str, Path]:
    """architecture -> a small random-initialised er face-CNN folder."""
    from er_features.face_cnn import tiny_face_cnn_folder

    root = tmp_path_factory.mktemp("face-cnn")
    return {a: tiny_face_cnn_folder(root / a, a) for a in ("mini-xception", "pyemotion-v2")}


@pytest.fixture(scope="session")
def broken_media(tmp_path_factory, long_clip) -> dict[str, Path]:
    """name -> a file that cannot give frames: missing, corrupt, truncated (index at the end or
    at the front), audio only, zero-length (a writer closed before any frame)."""
    import av
    import cv2
    import numpy as np

    root = tmp_path_factory.mktemp("broken")
    rng = np.random.default_rng(3)
    (root / "corrupt.mp4").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    data = long_clip.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])  # moov atom lost
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(120)]
    fast = _write_video(root / "fast.mp4", frames, movflags="+faststart").read_bytes()
    (root / "truncated_faststart.mp4").write_bytes(fast[: len(fast) // 2])  # index, half the data
    with av.open(str(root / "audio_only.m4a"), "w") as out:
        s = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 16000), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 16000
        out.mux(s.encode(frame))
        out.mux(s.encode(None))
    w = cv2.VideoWriter(str(root / "zero.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 12, (64, 64))
    w.release()
    names = ["corrupt.mp4", "truncated.mp4", "truncated_faststart.mp4", "audio_only.m4a"]
    return (
        {"missing": root / "missing.mp4"}
        | {n.split(".")[0]: root / n for n in names}
        | {"zero": root / "zero.mp4"}
    )


# --- offline weights (packaged.py, ct2.py): a session cache and 16 kHz speech ------------------


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory) -> Path:
    """A cache folder for prepared weights, shared by the session (never ~/.cache or the repo):
    each model is unpacked or converted once per test run."""
    return tmp_path_factory.mktemp("weights-cache")


@pytest.fixture(scope="session")
def load_16k():
    """load_16k(path) -> (n,) float32 mono at 16 kHz, resampled by PyAV (libswresample, a
    filtered resampler: no naive decimation)."""
    import av
    import numpy as np

    def load(path: Path):
        chunks = []
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        with av.open(str(path)) as media:
            for frame in media.decode(audio=0):
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]  # flush
        return np.concatenate(chunks).astype(np.float32)

    return load


# --- audio (audio_io.py, audio.py): a tiny random Whisper, audio files written with PyAV -------


def _write_audio(path: Path, wave, sr: int, codec: str | None = None, video: bool = False) -> Path:
    """Encode `wave` ((n,) mono or (C, n) float in [-1, 1]) at `sr` Hz into `path`; the codec
    follows the suffix (wav pcm_s16le, flac, mp3, m4a/mp4 aac, ogg opus, avi pcm), and
    `video=True` adds a small video track first (an mp4/avi with picture and sound)."""
    import av
    import numpy as np

    wave = np.atleast_2d(np.asarray(wave, np.float32))  # (C, n)
    defaults = {".wav": "pcm_s16le", ".flac": "flac", ".mp3": "libmp3lame", ".m4a": "aac",
                ".mp4": "aac", ".ogg": "libopus", ".avi": "pcm_s16le", ".mkv": "flac"}  # fmt: skip
    codec = codec or defaults[Path(path).suffix]
    layout = {1: "mono", 2: "stereo"}[wave.shape[0]]
    with av.open(str(path), "w") as out:
        if video:
            vs = out.add_stream("mpeg4", rate=12)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream(codec, rate=sr, layout=layout)
        fmts = [f.name for f in a.codec_context.codec.audio_formats]
        fmt = "fltp" if "fltp" in fmts else "s16"
        step = a.codec_context.frame_size or 1024
        for i in range(0, wave.shape[1], step):
            part = wave[:, i : i + step]
            if fmt == "s16":  # packed: (1, n * C), channels interleaved
                part = (np.clip(part, -1, 1) * 32767).astype(np.int16).reshape(1, -1, order="F")
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(part), format=fmt, layout=layout
            )
            frame.sample_rate, frame.pts = sr, i
            out.mux(a.encode(frame))
        out.mux(a.encode(None))
        if video:
            for k in range(max(1, round(wave.shape[1] / sr * 12))):
                img = np.full((48, 64, 3), (7 * k) % 256, np.uint8)
                out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            out.mux(vs.encode(None))
    return Path(path)


@pytest.fixture(scope="session")
def write_audio():
    """write_audio(path, wave, sr, codec=None, video=False) -> path (see _write_audio)."""
    return _write_audio


@pytest.fixture(scope="session")
def sine():
    """sine(seconds, sr=16000, freq=1000.0, amp=0.3) -> (n,) float32."""
    import numpy as np

    def make(seconds: float, sr: int = 16000, freq: float = 1000.0, amp: float = 0.3):
        t = np.arange(round(seconds * sr)) / sr
        return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)

    return make


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    """A random-initialised Whisper (d_model 32, 2 layers, 2 heads, 80 mel bins, 1500 positions)
    with a WhisperFeatureExtractor: a real transformers folder, as packaged.py writes one."""
    from er_features.testing import tiny_whisper_folder

    return tiny_whisper_folder(tmp_path_factory.mktemp("tiny-whisper"))
