"""load_audio: every container to 16 kHz mono, exact cuts, seeking, and problems as kinds."""

from __future__ import annotations

import wave as wavfile

import numpy as np
import pytest
from er_features import audio_io
from er_features.audio_io import AudioProblem, is_silent, load_audio, rms_dbfs


def peak_hz(wave: np.ndarray, sr: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    "name, sr, video",
    [
        ("a.wav", 16000, False),
        ("a.flac", 44100, False),
        ("a.mp3", 44100, False),
        ("a.m4a", 48000, False),
        ("a.ogg", 48000, False),
        ("clip.mp4", 44100, True),  # the audio track of a video
        ("clip.avi", 22050, True),
    ],
)
def test_decodes_every_container_to_16k_mono(tmp_path, write_audio, sine, name, sr, video):
    path = write_audio(tmp_path / name, np.stack([sine(2.0, sr)] * 2), sr, video=video)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    # lossy codecs add their encoder delay and frame padding (AAC, MP3: tens of ms)
    assert 2.0 <= len(wave) / 16000 < 2.1
    assert abs(peak_hz(wave[1600:-1600]) - 1000) < 10
    # the channel mean keeps a stereo copy of a mono clip at the clip's level
    assert 0.27 < np.abs(wave[1600:-1600]).max() < 0.33


def test_48k_stereo_resamples_to_exact_length_frequency_and_level(tmp_path, write_audio, sine):
    left, right = sine(3.0, 48000, amp=0.4), np.zeros(3 * 48000, np.float32)
    wave = load_audio(write_audio(tmp_path / "st.wav", np.stack([left, right]), 48000))
    assert len(wave) == 3 * 16000
    assert abs(peak_hz(wave) - 1000) < 2
    assert np.abs(wave[800:-800]).max() == pytest.approx(0.2, abs=0.005)  # (L + R) / 2
    # a real low-pass resampler: 7 kHz (kept) and 12 kHz (above the new Nyquist: removed)
    mix = sine(3.0, 48000, 7000, 0.2) + sine(3.0, 48000, 12000, 0.2)
    wave = load_audio(write_audio(tmp_path / "hf.wav", mix, 48000))
    spectrum = np.abs(np.fft.rfft(wave)) / len(wave)
    freqs = np.fft.rfftfreq(len(wave), 1 / 16000)
    at = {
        f: spectrum[np.argmin(np.abs(freqs - f))] for f in (7000, 4000)
    }  # 12 k would alias to 4 k
    assert at[7000] > 0.05 and at[4000] < 1e-3


def test_cut_has_the_right_length_and_place(tmp_path, write_audio, sine):
    wave = np.zeros(5 * 44100, np.float32)
    wave[int(2.5 * 44100) : int(2.6 * 44100)] = sine(0.1, 44100, amp=0.8)  # a burst at 2.5 s
    path = write_audio(tmp_path / "burst.flac", wave, 44100)
    cut = load_audio(path, 2.0, 3.25)
    assert len(cut) == round(1.25 * 16000)
    onset = np.argmax(np.abs(cut) > 0.4) / 16000
    assert onset == pytest.approx(0.5, abs=0.002)
    assert len(load_audio(path, None, 1.0)) == 16000
    assert len(load_audio(path, 4.0, None)) == 16000
    assert len(load_audio(path, 4.5, 9.0)) == 8000  # a cut past the end stops at the end
    nan = float("nan")  # a table's missing times: the whole file
    np.testing.assert_array_equal(load_audio(path, nan, nan), load_audio(path))


@pytest.mark.parametrize(
    "name, video, seeks",
    [
        ("long.wav", False, True),
        ("long.flac", False, True),
        ("long.m4a", False, True),
        ("long.ogg", False, True),
        ("long.mp4", True, True),
        ("long.avi", True, True),
        ("long.mp3", False, False),  # raw stream: a seek's time is estimated from its byte offset
        ("long.mkv", False, False),  # Matroska times are milliseconds: decoded from 0
    ],
)
def test_seeking_gives_the_samples_decoding_from_zero_gives(
    tmp_path, write_audio, monkeypatch, name, video, seeks
):
    rng = np.random.default_rng(0)
    path = write_audio(tmp_path / name, 0.1 * rng.standard_normal(40 * 48000), 48000, video=video)
    calls = []
    decode = audio_io._decode
    monkeypatch.setattr(audio_io, "_decode", lambda *a, **kw: calls.append(kw) or decode(*a, **kw))
    sought = load_audio(path, 31.3, 33.0)  # start > SEEK_AFTER: seeks near 30.3 s
    assert calls[0]["sought"] is seeks
    monkeypatch.setattr(audio_io, "SEEK_AFTER", 1e9)
    decoded = load_audio(path, 31.3, 33.0)
    assert calls[-1]["sought"] is False
    assert len(sought) == len(decoded) == round(1.7 * 16000)
    # the resampler starts on a point both sample grids share, so the samples are the same
    np.testing.assert_allclose(sought, decoded, atol=1e-6)


def problem(path, *cut) -> AudioProblem:
    with pytest.raises(AudioProblem) as info:
        load_audio(path, *cut)
    return info.value


def test_problems_are_kinds_not_crashes(tmp_path, write_audio, sine, write_video):
    assert problem(tmp_path / "missing.wav").kind == "bad_media"
    (tmp_path / "junk.mp3").write_bytes(np.random.default_rng(1).bytes(4096))
    assert problem(tmp_path / "junk.mp3").kind == "bad_media"
    data = write_audio(tmp_path / "whole.wav", sine(4.0), 16000).read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])  # header says 4 s, 2 s remain
    p = problem(tmp_path / "cut.wav")
    assert p.kind == "bad_media" and "truncated" in p.text
    assert len(load_audio(tmp_path / "cut.wav", 0.5, 1.5)) == 16000  # the part that is there
    data = write_audio(tmp_path / "whole.mp4", sine(4.0, 44100), 44100, video=True).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    assert problem(tmp_path / "cut.mp4").kind == "bad_media"
    frames = [np.zeros((48, 64, 3), np.uint8)] * 12
    assert problem(write_video(tmp_path / "silent_film.mp4", frames)).kind == "no_audio"
    (tmp_path / "zero.wav").write_bytes(b"")
    assert problem(tmp_path / "zero.wav").kind == "empty"
    with wavfile.open(str(tmp_path / "none.wav"), "wb") as w:  # a header and no samples
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    assert problem(tmp_path / "none.wav").kind == "empty"
    ok = write_audio(tmp_path / "ok.wav", sine(1.0), 16000)
    assert problem(ok, 0.5, 0.5).kind == "empty"
    assert problem(ok, 0.6, 0.2).kind == "empty"
    assert problem(ok, 3.0, 4.0).kind == "empty"  # the cut lies after the audio


def test_silence(sine):
    assert is_silent(np.zeros(16000, np.float32))
    assert is_silent(np.zeros(0, np.float32))
    quiet = 1e-4 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    assert rms_dbfs(quiet) == pytest.approx(-80, abs=0.5)
    assert is_silent(quiet) and not is_silent(quiet, threshold_db=-90)
    assert rms_dbfs(sine(1.0, amp=1.0)) == pytest.approx(-3.01, abs=0.01)
    assert not is_silent(sine(1.0))


def test_resampling_in_blocks_gives_the_samples_of_one_pass(
    tmp_path, write_audio, sine, monkeypatch
):
    """Decoded frames are resampled a block at a time: however small the blocks, the samples
    are those of the whole clip in one block (the resampler is a stream), cuts included."""
    rng = np.random.default_rng(2)
    stereo = np.stack([sine(4.0, 44100, 440, 0.3), 0.1 * rng.standard_normal(4 * 44100)])
    paths = [
        write_audio(tmp_path / "s.m4a", stereo.astype(np.float32), 44100),
        write_audio(tmp_path / "s.wav", stereo.astype(np.float32), 44100),
    ]
    for path in paths:
        for cut in ((None, None), (0.7, 2.9)):
            monkeypatch.setattr(audio_io, "BLOCK_S", 1000)
            whole = load_audio(path, *cut)
            for block in (0.01, 0.3):
                monkeypatch.setattr(audio_io, "BLOCK_S", block)
                assert np.array_equal(load_audio(path, *cut), whole), (path.name, cut, block)
