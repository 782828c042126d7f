"""A MELD-like set of clips for benchmarks: 1280x720 H.264 at 24 fps with an AAC speech track
(48 kHz stereo), one utterance per clip, lengths drawn from MELD's spread (1-10 s, median
about 3 s; a log-normal cut to that range), made from real footage and speech: a random stretch
of one of the face videos, scaled to 720p, under RAVDESS sentences played one after another.
Generated, never committed (a few minutes for 200 clips on 2 cores).

Writes OUT/clips/clip_NNNN.mp4, OUT/utterances.csv and OUT/mapping.toml, so that

    er-data prepare table --root OUT --config OUT/mapping.toml

gives a dataset whose audio and video columns are the clips (dialogues of 8 clips, splits by
dialogue), ready for `er-features extract -m video` or `-m audio`.

Usage: python tools/meld_like.py OUT [--clips 200] [--seed 0] [--shared DIR]
  DIR holds face-videos/ and ravdess-speech/ (default: $ER_SHARED_DATA, else ../shared/data)
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

FPS = 24
SIZE = (1280, 720)
RATE = 48_000
LABELS = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
MAPPING = """dataset = "meld-like"
task = "emotion"
file = "utterances.csv"

[columns]
id = "{clip}"
dialogue = "dialogue"
turn = "turn"
speaker = "speaker"
text = "text"
audio = "clips/{clip}.mp4"
video = "clips/{clip}.mp4"

[split]
dev = 0.1
test = 0.1
seed = 0

[tasks.emotion]
column = "label"
classes = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
"""


def durations(n: int, rng: np.random.Generator) -> np.ndarray:
    """Seconds per clip: log-normal around 3 s, cut to [1, 10]."""
    return np.clip(rng.lognormal(np.log(3.0), 0.55, n), 1.0, 10.0)


def read_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def read_speech(path: Path) -> np.ndarray:
    """Mono float32 at 48 kHz."""
    import av

    with av.open(str(path)) as c:
        chunks = [f.to_ndarray().astype(np.float32) for f in c.decode(c.streams.audio[0])]
    pcm = np.concatenate(chunks, axis=1)
    if pcm.dtype != np.float32 or np.abs(pcm).max() > 1.5:  # int16 samples
        pcm = pcm / 32768.0
    return pcm.mean(0)


def write_clip(path: Path, frames: list[np.ndarray], speech: np.ndarray) -> None:
    import av
    import cv2

    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = *SIZE, "yuv420p"
        v.options = {"preset": "veryfast", "crf": "23"}
        a = out.add_stream("aac", rate=RATE)
        a.layout = "stereo"
        for k, rgb in enumerate(frames):
            big = cv2.resize(rgb, SIZE, interpolation=cv2.INTER_LINEAR)
            frame = av.VideoFrame.from_ndarray(big, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, FPS)
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
        stereo = np.ascontiguousarray(np.stack([speech, speech]).astype(np.float32))
        for at in range(0, stereo.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                stereo[:, at : at + 1024], format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = RATE, at
            for packet in a.encode(frame):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)


def make(out: Path, clips: int, seed: int, shared: Path) -> Path:
    rng = np.random.default_rng(seed)
    videos = [read_frames(p) for p in sorted((shared / "face-videos").glob("*.mp4"))]
    speech = [read_speech(p) for p in sorted((shared / "ravdess-speech").glob("*.wav"))]
    if not videos or not speech:
        sys.exit(f"error: no face videos or RAVDESS speech under {shared}")
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, seconds in enumerate(durations(clips, rng)):
        n = round(seconds * FPS)
        source = videos[int(rng.integers(len(videos)))]
        start = int(rng.integers(max(1, len(source) - n)))
        frames = [source[(start + k) % len(source)] for k in range(n)]  # loops a short video
        want = round(seconds * RATE)
        pcm = np.zeros(0, np.float32)
        while pcm.size < want:
            pcm = np.concatenate([pcm, speech[int(rng.integers(len(speech)))]])
        name = f"clip_{i:04d}"
        path = out / "clips" / f"{name}.mp4"
        if not path.is_file():
            tmp = path.with_suffix(".tmp.mp4")
            write_clip(tmp, frames, pcm[:want])
            tmp.replace(path)
        label = LABELS[int(rng.integers(len(LABELS)))]
        rows.append([name, f"d{i // 8:03d}", i % 8, f"s{i % 3}", f"utterance {i}", label])
        if (i + 1) % 25 == 0:
            print(f"meld_like: {i + 1}/{clips} clips", file=sys.stderr)
    with (out / "utterances.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "dialogue", "turn", "speaker", "text", "label"])
        w.writerows(rows)
    (out / "mapping.toml").write_text(MAPPING)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    default = os.environ.get("ER_SHARED_DATA", "../shared/data")
    p.add_argument("--shared", type=Path, default=Path(default))
    a = p.parse_args(argv)
    make(a.out, a.clips, a.seed, a.shared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
