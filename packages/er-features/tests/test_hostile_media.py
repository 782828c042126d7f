"""Hostile media (issue 12): float WAVs holding NaN (class 3), multi-channel audio of any
layout and sample type (class 7: an 8-channel WAV used to crash the process)."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from er_core import ErError, load_features, read_stream, sha256_file
from er_features import once
from er_features.audio_io import AudioProblem, load_audio
from er_features.base import FLAG_BAD_MEDIA
from er_features.extraction import ExtractConfig, extract

SR = 16000


def int_wav(path: Path, data: np.ndarray, width: int, sr: int = SR) -> Path:
    """A PCM WAV (16- or 32-bit) of (C, n) floats in [-1, 1], written by the `wave` module."""
    scale, dtype = {2: (32767, "<i2"), 4: (2**31 - 1, "<i4")}[width]
    pcm = np.round(data.T * scale).astype(dtype)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(data.shape[0])
        w.setsampwidth(width)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path


def float_wav(path: Path, data: np.ndarray, sr: int = SR) -> Path:
    """An IEEE-float WAV (format tag 3, 32-bit) of (C, n) samples, NaN and inf kept as given
    (the `wave` module writes PCM only)."""
    data = np.asarray(data, "<f4")
    channels = data.shape[0]
    body = data.T.tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, sr, sr * 4 * channels, 4 * channels, 32)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    riff += b"data" + struct.pack("<I", len(body)) + body
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    return path


def channels_of(n_channels: int, seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """((C, n) channels, each a sine at its own level, (n,) their mean)."""
    t = np.arange(round(seconds * SR)) / SR
    levels = np.linspace(0.1, 0.5, n_channels)[:, None]
    data = levels * np.sin(2 * np.pi * 440 * t)[None]
    return data, data.mean(0)


# --- class 7: any channel count, any sample type, downmixed to the channel mean -----------------


@pytest.mark.parametrize("n_channels", [2, 6, 8, 12])
@pytest.mark.parametrize("kind, tol", [("int16", 1e-4), ("int32", 1e-6), ("float", 1e-6)])
def test_multichannel_wav_is_downmixed_to_the_channel_mean(tmp_path, n_channels, kind, tol):
    data, mean = channels_of(n_channels)
    path = tmp_path / f"{kind}-{n_channels}.wav"
    if kind == "float":
        float_wav(path, data)
    else:
        int_wav(path, data, width=2 if kind == "int16" else 4)
    # in a child process: a crash (the old exit 139) fails the test instead of killing pytest
    code = (
        "import sys, numpy as np; from er_features.audio_io import load_audio; "
        "np.save(sys.argv[2], load_audio(sys.argv[1]))"
    )
    out = tmp_path / "wave.npy"
    r = subprocess.run([sys.executable, "-c", code, str(path), str(out)], capture_output=True)
    assert r.returncode == 0, (r.returncode, r.stderr.decode()[-500:])
    got = np.load(out)
    assert got.shape == mean.shape and np.abs(got - mean).max() < tol


def test_planar_8_channel_aac_cut_after_a_seek(tmp_path):
    """AAC decodes to planar frames; a cut far into the file seeks and drops the head of the
    first frame (at 44.1 kHz the 16 kHz grid is every 441 input samples): all without reading
    a planar frame's planes, which PyAV cannot do for 8 channels."""
    import av

    sr, seconds = 44100, 8
    t = np.arange(sr * seconds) / sr
    pcm = np.round(np.stack([0.2 * np.sin(2 * np.pi * 300 * t)] * 8).T * 32767).astype("<i2")
    src = tmp_path / "s8.wav"
    with wave.open(str(src), "wb") as w:
        w.setnchannels(8), w.setsampwidth(2), w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    path = tmp_path / "a8.mp4"
    with av.open(str(src)) as inp, av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=sr, layout="7.1")
        size = a.codec_context.frame_size
        rs = av.AudioResampler(format="fltp", layout="7.1", rate=sr, frame_size=size)
        for frame in inp.decode(audio=0):
            for o in rs.resample(frame):
                out.mux(a.encode(o))
        for o in rs.resample(None):
            out.mux(a.encode(o))
        out.mux(a.encode(None))
    code = (
        "import sys, numpy as np; from er_features.audio_io import load_audio; "
        "np.save(sys.argv[2], load_audio(sys.argv[1], 6.3, 7.3)); "
        "np.save(sys.argv[3], load_audio(sys.argv[1])[round(6.3 * 16000) : round(7.3 * 16000)])"
    )
    cut, whole = tmp_path / "cut.npy", tmp_path / "whole.npy"
    r = subprocess.run([sys.executable, "-c", code, str(path), cut, whole], capture_output=True)
    assert r.returncode == 0, (r.returncode, r.stderr.decode()[-500:])
    got, want = np.load(cut), np.load(whole)
    # the seek gives the samples decoding from 0 gives (to 1e-6 here: 7.1 AAC does not decode
    # bit-exactly after a seek); AAC's LFE channel drops the 300 Hz tone, so the mean of the
    # 8 channels is 7/8 of it
    assert got.shape == (SR,) and np.abs(got - want).max() < 1e-5
    assert abs(np.sqrt(np.mean(got**2)) - 7 / 8 * 0.2 / np.sqrt(2)) < 0.005


# --- class 3: NaN samples are damage, never "silent" features -----------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_bad_media(tmp_path, bad):
    data, _ = channels_of(2)
    data[1, 100:200] = bad
    with pytest.raises(AudioProblem) as e:
        load_audio(float_wav(tmp_path / "nan.wav", data))
    assert e.value.kind == "bad_media" and "NaN or inf" in e.value.text


@pytest.fixture
def own_synth(tmp_path):
    """A private synthetic dataset whose files a test may replace: (data root, stream)."""
    root = tmp_path / "data"
    run = [sys.executable, "-m", "er_data"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*run, "synth", "--out", str(root), "--utterances", "6"], check=True, env=env)
    prep = subprocess.run(
        [*run, "prepare", "meld", "--root", str(root), "--out", str(tmp_path / "o")],
        check=True,
        capture_output=True,
        env=env,
    )
    return root, read_stream(["-"], stdin=io.BytesIO(prep.stdout))


def test_nan_wav_is_an_error_naming_the_file_or_a_flagged_row(own_synth, tiny_whisper, tmp_path):
    root, envs = own_synth
    wavs = sorted((root / "train_splits").glob("*.wav"))
    data, _ = channels_of(1)
    data[0, 500:900] = np.nan
    float_wav(wavs[0], data)
    eight, _ = channels_of(8)
    int_wav(wavs[1], eight, width=2)  # an 8-channel clip is simply downmixed
    kw = {"cache": tmp_path / "c", "out": tmp_path / "o"}
    with pytest.raises(ErError, match="NaN or inf samples") as e:
        extract(envs, ExtractConfig(modality="audio", encoder=str(tiny_whisper)), **kw)
    assert os.path.realpath(e.value.at) == os.path.realpath(wavs[0])
    assert "--on-bad-media flag" in e.value.hint
    cfg = ExtractConfig(modality="audio", encoder=str(tiny_whisper), on_bad_media="flag")
    m = extract(envs, cfg, **kw)
    fs = load_features(m)
    nan_row = fs.ids.index(f"train/{wavs[0].stem}")
    eight_row = fs.ids.index(f"train/{wavs[1].stem}")
    assert np.isfinite(fs.features).all() and m.fallbacks == {"bad_media": 1}
    assert fs.flags[nan_row] == FLAG_BAD_MEDIA and not fs.features[nan_row].any()
    assert fs.flags[eight_row] == 0 and fs.features[eight_row].any()


# --- class 4: what identifies a media file is its content ---------------------------------------


def rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    assert len(data) == st.st_size
    time.sleep(0.05)  # a later clock tick: ctime moves, whatever mtime says
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_hash_memo_sees_a_rewrite_with_the_same_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(once, "RACY_S", 0.0)  # remember even a just-written file
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"a" * 4096)
    memo = once.HashMemo(tmp_path / "cache")
    first = memo(clip)
    memo.save()
    assert len(json.loads((tmp_path / "cache" / "hashes.json").read_text())) == 1
    assert once.HashMemo(tmp_path / "cache")(clip) == first  # the fast path, in a new run
    rewrite_keeping_size_and_mtime(clip, b"b" * 4096)
    assert once.HashMemo(tmp_path / "cache")(clip) == sha256_file(clip) != first


def test_hash_memo_does_not_remember_a_racy_file(tmp_path):
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"a" * 10)  # changed just now: a rewrite in the same tick could hide
    memo = once.HashMemo(tmp_path / "cache")
    assert memo(clip) == sha256_file(clip) and memo.memo == {}


def test_a_rewritten_clip_gets_new_features(own_synth, tiny_whisper, tmp_path, monkeypatch):
    monkeypatch.setattr(once, "RACY_S", 0.0)
    root, envs = own_synth
    wav = sorted((root / "train_splits").glob("*.wav"))[0]
    kw = {"cache": tmp_path / "c", "out": tmp_path / "o"}
    cfg = ExtractConfig(modality="audio", encoder=str(tiny_whisper))
    before = load_features(extract(envs, cfg, **kw))
    data = wav.read_bytes()
    head = data.index(b"data") + 8  # the header stays; the samples become other samples
    noise = np.random.default_rng(0).integers(-3000, 3000, (len(data) - head) // 2, np.int16)
    rewrite_keeping_size_and_mtime(wav, data[:head] + noise.astype("<i2").tobytes())
    after = load_features(extract(envs, cfg, **kw))
    row = before.ids.index(f"train/{wav.stem}")
    assert not np.array_equal(before.features[row], after.features[row])
    others = [i for i in range(len(before.ids)) if i != row]
    assert np.array_equal(before.features[others], after.features[others])


# --- classes 5 and 6: the table is checked by er-data; media stay inside the dataset root -------


def with_table(envs, frame, path: Path):
    """The stream with its DatasetManifest naming `frame`, written to `path` with a valid sha."""
    import msgspec
    from er_core import DatasetManifest, FileRef

    frame.write_parquet(path)
    ds = next(e.message for e in envs if isinstance(e.message, DatasetManifest))
    ref = FileRef(path=str(path), sha256=sha256_file(path), bytes=path.stat().st_size)
    return [msgspec.structs.replace(ds, table=ref)]


def envelopes(messages):
    from er_core.stream import encode

    return read_stream(["-"], stdin=io.BytesIO(b"".join(encode(m) + b"\n" for m in messages)))


def table_of(envs):
    import polars as pl
    from er_core import DatasetManifest

    ds = next(e.message for e in envs if isinstance(e.message, DatasetManifest))
    return pl.read_parquet(ds.table.path)


def test_a_table_naming_a_file_out_of_the_root_is_refused(own_synth, tiny_whisper, tmp_path):
    import polars as pl

    _, envs = own_synth
    frame = table_of(envs)
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("../../../../../../../etc/passwd"))
        .otherwise(pl.col("audio"))
        .alias("audio")
    )
    hostile = envelopes(with_table(envs, bad, tmp_path / "t.parquet"))
    cfg = ExtractConfig(modality="audio", encoder=str(tiny_whisper), on_bad_media="flag")
    with pytest.raises(ErError) as e:
        extract(hostile, cfg, cache=tmp_path / "c", out=tmp_path / "o")
    assert "etc/passwd" in e.value.what and e.value.hint
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").rglob("*.safetensors"))


def test_a_media_link_out_of_the_root_needs_the_opt_in(own_synth, tiny_whisper, tmp_path):
    import msgspec
    from er_core import DatasetManifest

    root, envs = own_synth
    wav = sorted((root / "train_splits").glob("*.wav"))[0]
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(wav.read_bytes())
    wav.unlink()
    wav.symlink_to(outside)
    cfg = ExtractConfig(modality="audio", encoder=str(tiny_whisper))
    kw = {"cache": tmp_path / "c", "out": tmp_path / "o"}
    with pytest.raises(ErError, match="link that leads out of the dataset root") as e:
        extract(envs, cfg, **kw)
    assert wav.stem in e.value.at and "--follow-links" in e.value.hint
    ds = next(e.message for e in envs if isinstance(e.message, DatasetManifest))
    opted = envelopes([msgspec.structs.replace(ds, follow_links=True)])
    m = extract(opted, cfg, **kw)
    assert m.count == 6 and not m.fallbacks


def test_a_table_with_duplicate_ids_is_refused_by_the_one_table_check(
    own_synth, tiny_whisper, tmp_path
):
    import polars as pl

    _, envs = own_synth
    frame = table_of(envs)
    dup = frame.with_columns(pl.lit(frame["id"][0]).alias("id"))
    hostile = envelopes(with_table(envs, dup, tmp_path / "t.parquet"))
    with pytest.raises(ErError) as e:
        extract(hostile, ExtractConfig(modality="text", encoder=str(tiny_whisper)), **{
            "cache": tmp_path / "c", "out": tmp_path / "o"})  # fmt: skip
    assert "bug in er" not in (e.value.hint or "") and e.value.hint
