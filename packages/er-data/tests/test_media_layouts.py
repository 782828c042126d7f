"""`er-data validate` decodes audio of any channel layout as extraction does, downmixed to mono
(issue 12, class 7: an 8-channel 16-bit WAV crashed extraction and passed validate), and flags
float audio holding NaN or inf samples (class 3)."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from er_data import media
from er_data.preparation import prepare
from er_data.validation import validate

av = pytest.importorskip("av")

RATE = 16000


def pcm_wav(path: Path, channels: int, seconds: float = 1.0) -> Path:
    """A 16-bit PCM WAV of `channels` channels of noise, written with the `wave` module."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(channels)
    x = (rng.uniform(-0.5, 0.5, (int(RATE * seconds), channels)) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(x.tobytes())
    return path


def float_wav(path: Path, x: np.ndarray) -> Path:
    """A 32-bit IEEE-float WAV (format 3) of (n, channels) samples, header written by hand."""
    channels = x.shape[1]
    data = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, RATE, RATE * 4 * channels, 4 * channels, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize("channels", [1, 2, 6, 8, 12])
def test_any_channel_count_decodes_to_its_length(tmp_path: Path, channels: int) -> None:
    got = media.decode(pcm_wav(tmp_path / f"c{channels}.wav", channels), "audio")
    assert got.problem is None
    assert got.seconds == pytest.approx(1.0, abs=0.01)


def test_float_audio_with_nan_is_flagged(tmp_path: Path) -> None:
    x = np.zeros((RATE, 2), np.float32)
    assert media.decode(float_wav(tmp_path / "ok.wav", x), "audio").problem is None
    x[100, 1] = np.nan
    x[200, 0] = np.inf
    got = media.decode(float_wav(tmp_path / "nan.wav", x), "audio")
    assert got.problem == "2 NaN or inf audio samples"


MAPPING = """
dataset = "layouts"
file = "utts.csv"
[columns]
id = "u"
dialogue = "u"
text = "t"
split = "s"
audio = "wav"
[tasks.emotion]
column = "e"
classes = ["a"]
"""


def test_validate_passes_an_8_channel_wav(tmp_path: Path, cli) -> None:
    root = tmp_path / "data"
    pcm_wav(root / "eight.wav", 8)
    pcm_wav(root / "mono.wav", 1)
    csv = "u,t,s,wav,e\nu1,hi,train,eight.wav,a\nu2,yo,dev,mono.wav,a\nu3,ok,test,eight.wav,a\n"
    (root / "utts.csv").write_text(csv)
    (tmp_path / "map.toml").write_text(MAPPING)
    m = prepare("table", root, configs=[str(tmp_path / "map.toml")], out=tmp_path / "out")
    assert m.media_issues == [] and validate(m) == []
    args = ["prepare", "table", "--root", str(root), "-c", str(tmp_path / "map.toml")]
    prepared = cli(*args, "--out", str(tmp_path / "o"))
    assert prepared.returncode == 0, prepared.stderr.decode()
    checked = cli("validate", input=prepared.stdout)
    assert checked.returncode == 0, checked.stderr.decode()
    assert checked.stdout == prepared.stdout
