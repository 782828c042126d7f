"""AudioEncoder on a tiny random Whisper: the full window is transformers' encoder, pooling sees
only real frames, trim is per clip (bit for bit), long clips are chunked, problems are flags."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from er_core import ErError
from er_features.audio import AudioConfig, AudioEncoder
from er_features.base import FLAG_BAD_MEDIA, FLAG_EMPTY, FLAG_NO_AUDIO, FLAG_SILENT, Item


@pytest.fixture(scope="module")
def encoders(tiny_whisper):
    """window -> encoder (mean pooling) on the tiny Whisper."""
    return {w: AudioEncoder(tiny_whisper, AudioConfig(window=w)) for w in ("trim", "full")}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, tuple[str, np.ndarray]]:
    """name -> (16 kHz wav path, its samples): noise bursts of different lengths (odd ones too)."""
    import wave as wavfile

    root = tmp_path_factory.mktemp("audio-clips")
    rng = np.random.default_rng(5)
    out = {}
    for name, n in {"a": 40_321, "b": 23_999, "c": 57_600, "short": 321}.items():
        x = np.round(0.2 * rng.standard_normal(n) * 32767).astype(np.int16)
        path = root / f"{name}.wav"
        with wavfile.open(str(path), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
            w.writeframes(x.tobytes())
        out[name] = (str(path), x.astype(np.float32) / 32768)
    return out


def items(clips, *names) -> list[Item]:
    return [Item(uid=n, path=clips[n][0]) for n in names]


def reference(folder, mel: np.ndarray, hidden: int | None = None) -> np.ndarray:
    """transformers' own WhisperEncoder on a (n_mels, 3000) mel: (1500, D)."""
    import torch
    from transformers import WhisperModel

    enc = WhisperModel.from_pretrained(str(folder)).encoder.eval()
    with torch.inference_mode():
        out = enc(torch.from_numpy(mel)[None], output_hidden_states=hidden is not None)
    return (out.last_hidden_state if hidden is None else out.hidden_states[hidden])[0].numpy()


def test_full_window_is_transformers_encoder(tiny_whisper, encoders, clips):
    full = encoders["full"]
    mel, real = full.log_mel(clips["a"][1])
    assert mel.shape == (80, 3000)
    assert real == math.ceil(math.ceil(40_321 / 160) / 2)  # 100 mel frames/s, halved by conv2
    np.testing.assert_allclose(full.frames(mel), reference(tiny_whisper, mel), atol=1e-5)
    for k in (0, 1):  # hidden states below the last: embeddings, after layer 1
        enc = AudioEncoder(tiny_whisper, AudioConfig(window="full", layer=k))
        np.testing.assert_allclose(enc.frames(mel), reference(tiny_whisper, mel, k), atol=1e-5)


def test_full_pools_only_the_real_frames(tiny_whisper, encoders, clips):
    full = encoders["full"]
    mel, real = full.log_mel(clips["a"][1])
    frames = reference(tiny_whisper, mel)
    got = full.encode(items(clips, "a")).features[0]
    np.testing.assert_allclose(got, frames[:real].mean(0), atol=1e-5)
    assert np.abs(got - frames.mean(0)).max() > 1e-3  # the padded frames would change it


def test_trim_runs_on_real_frames_and_differs_from_full(encoders, clips):
    trim, full = encoders["trim"], encoders["full"]
    for name in ("a", "b", "short"):
        wave = clips[name][1]
        mel_t, real_t = trim.log_mel(wave)
        mel_f, real_f = full.log_mel(wave)
        assert real_t == real_f and mel_t.shape == (80, 2 * real_t)  # padded to even only
        # the same log-mel frames as the 30 s window (level clamp and edges included)
        np.testing.assert_allclose(mel_t, mel_f[:, : mel_t.shape[1]], atol=1e-6)
        assert trim.frames(mel_t).shape == (real_t, 32)
    t = trim.encode(items(clips, "a")).features[0]
    f = full.encode(items(clips, "a")).features[0]
    assert np.abs(t - f).max() > 1e-3  # no 30 s context: different features, as documented


@pytest.mark.parametrize("window", ["trim", "full"])
def test_a_clips_features_do_not_depend_on_its_batch(encoders, clips, window):
    enc = encoders[window]
    alone = enc.encode(items(clips, "a")).features[0]
    for batch in (["b", "a", "c"], ["c", "short", "b", "a"], ["a", "a"]):
        out = enc.encode(items(clips, *batch))
        for row in [i for i, n in enumerate(batch) if n == "a"]:
            assert np.array_equal(out.features[row], alone)  # bit for bit


def test_zeros_appended_to_a_batch_partner_do_not_change_a_sample(
    tmp_path, write_audio, encoders, clips
):
    longer = write_audio(
        tmp_path / "b0.wav", np.concatenate([clips["b"][1], np.zeros(48_000)]), 16000
    )
    for enc in encoders.values():
        before = enc.encode(items(clips, "a", "b")).features
        after = enc.encode([items(clips, "a")[0], Item(uid="b0", path=str(longer))]).features
        assert np.array_equal(before[0], after[0])
        assert not np.array_equal(before[1], after[1])  # the partner itself did change


def test_mean_std_doubles_dim_and_pools_the_same_frames(tiny_whisper, encoders, clips):
    enc = AudioEncoder(tiny_whisper, AudioConfig(pooling="mean+std"))
    assert enc.dim == 2 * encoders["trim"].dim == 64
    got = enc.encode(items(clips, "b")).features[0]
    frames = enc.frames(enc.log_mel(clips["b"][1])[0])  # (S, 32): trim frames are all real
    np.testing.assert_allclose(got[:32], frames.mean(0), atol=1e-5)
    np.testing.assert_allclose(got[32:], frames.std(0), atol=1e-5)
    np.testing.assert_allclose(
        got[:32], encoders["trim"].encode(items(clips, "b")).features[0], atol=1e-6
    )


@pytest.mark.parametrize("window", ["trim", "full"])
def test_long_clip_is_chunked_and_pooled_over_every_real_frame(
    tmp_path, write_audio, sine, tiny_whisper, window
):
    rng = np.random.default_rng(2)
    wave = sine(65.0) + 0.05 * rng.standard_normal(65 * 16000).astype(np.float32)
    path = write_audio(tmp_path / "long.wav", wave, 16000)
    enc = AudioEncoder(tiny_whisper, AudioConfig(window=window, pooling="mean+std"))
    got = enc.encode([Item(uid="long", path=str(path))]).features[0]
    wave = np.round(np.clip(wave, -1, 1) * 32767) / 32767  # what the 16-bit file holds
    parts = []
    for a in (0, 30 * 16000, 60 * 16000):  # 30 s + 30 s + 5 s
        mel, real = enc.log_mel(wave[a : a + 30 * 16000].astype(np.float32))
        parts.append(enc.frames(mel)[:real])
    assert [len(p) for p in parts] == [1500, 1500, 250]
    frames = np.concatenate(parts)
    np.testing.assert_allclose(got[:32], frames.mean(0), atol=2e-4)
    np.testing.assert_allclose(got[32:], frames.std(0), atol=2e-4)
    # chunks of 10 s: a different split, so different features (the option is wired)
    ten = AudioEncoder(tiny_whisper, AudioConfig(window=window, chunk_seconds=10.0))
    assert (
        np.abs(ten.encode([Item(uid="long", path=str(path))]).features[0] - got[:32]).max() > 1e-4
    )


def test_problems_become_flags_and_the_batch_goes_on(
    tmp_path, write_audio, write_video, encoders, clips
):
    silent = write_audio(tmp_path / "silent.wav", np.zeros(16000), 16000)
    film = write_video(tmp_path / "film.mp4", [np.zeros((48, 64, 3), np.uint8)] * 12)
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wav file at all" * 10)
    batch = [
        Item(uid="missing", path=str(tmp_path / "missing.wav")),
        Item(uid="junk", path=str(tmp_path / "junk.wav")),
        Item(uid="film", path=str(film)),
        Item(uid="cut", path=clips["a"][0], start=1.0, end=1.0),
        Item(uid="silent", path=str(silent)),
        *items(clips, "a"),
    ]
    for enc in encoders.values():
        out = enc.encode(batch)
        want = [FLAG_BAD_MEDIA, FLAG_BAD_MEDIA, FLAG_NO_AUDIO, FLAG_EMPTY, FLAG_SILENT, 0]
        assert out.flags.tolist() == want
        assert sorted(out.problems) == [0, 1] and "not found" in out.problems[0]
        assert not out.features[:4].any()  # fallbacks are zeros
        assert np.abs(out.features[4]).sum() > 0  # silence is still encoded
        np.testing.assert_array_equal(out.features[5], enc.encode(items(clips, "a")).features[0])


def test_a_cut_encodes_the_cut(tmp_path, encoders, clips):
    enc = encoders["trim"]
    path, wave = clips["c"]
    cut = enc.encode([Item(uid="c", path=path, start=0.5, end=2.25)]).features[0]
    mel, real = enc.log_mel(wave[8000:36000])
    np.testing.assert_allclose(cut, enc.frames(mel)[:real].mean(0), atol=1e-6)


def test_config_names_what_changes_the_output(tiny_whisper, encoders):
    trim, full = encoders["trim"].config, encoders["full"].config
    assert trim["window"] == "trim" and full["window"] == "full"
    assert trim["mel"] == {"sampling_rate": 16000, "n_fft": 400, "hop_length": 160,
                           "n_mels": 80, "window_frames": 3000, "dither": 0.0}  # fmt: skip
    assert {"pooling", "layer", "silence_db", "chunk_seconds", "version"} <= set(trim)


def test_bad_settings_are_errors(tiny_whisper):
    for cfg, at in [
        (AudioConfig(layer=3), "audio.layer"),
        (AudioConfig(layer=-4), "audio.layer"),
        (AudioConfig(chunk_seconds=31.0), "audio.chunk_seconds"),
        (AudioConfig(chunk_seconds=0.0), "audio.chunk_seconds"),
    ]:
        with pytest.raises(ErError) as info:
            AudioEncoder(tiny_whisper, cfg)
        assert info.value.at == at
    AudioEncoder(tiny_whisper, AudioConfig(layer=-3))  # -3 = hidden state 0, the embeddings
    for bad in ({"window": "fast"}, {"pooling": "max"}, {"windows": "trim"}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, AudioConfig)


@pytest.mark.gpu
def test_cuda_device_gives_the_cpu_features(tiny_whisper, encoders, clips):
    enc = AudioEncoder(tiny_whisper, AudioConfig(), device="cuda")
    assert next(enc.encoder.parameters()).device.type == "cuda"
    got = enc.encode(items(clips, "a", "b")).features
    np.testing.assert_allclose(
        got, encoders["trim"].encode(items(clips, "a", "b")).features, atol=1e-4
    )


def test_clips_side_by_side_give_the_features_of_one_at_a_time(
    tiny_whisper, clips, tmp_path, broken_media
):
    """workers = 2 or 3 clips decoded and encoded at once: the same features and flags, bit
    for bit, as one clip at a time (and a broken file stays a flag, in its row)."""
    names = ["a", "b", "c", "short", "a"]
    batch = [*items(clips, *names), Item(uid="bad", path=str(broken_media["truncated"]))]
    one = AudioEncoder(tiny_whisper, AudioConfig(), workers=1).encode(batch)
    for workers in (2, 3):
        got = AudioEncoder(tiny_whisper, AudioConfig(), workers=workers).encode(batch)
        assert np.array_equal(got.features, one.features)
        assert np.array_equal(got.flags, one.flags) and got.problems == one.problems
    assert one.flags[-1] & FLAG_BAD_MEDIA


def test_int8_is_close_to_fp32_and_still_a_function_of_the_clip(tiny_whisper, encoders, clips):
    """precision = int8: the linear layers quantised; features near fp32's but not equal, the
    same bit for bit whatever the batch or the clips side by side; fp32 keeps its old key."""
    import torch

    enc = AudioEncoder(tiny_whisper, AudioConfig(precision="int8"), workers=1)
    fp32 = encoders["trim"].encode(items(clips, "a", "b", "c")).features
    one = enc.encode(items(clips, "a", "b", "c"))
    assert not (one.flags & ~np.uint8(FLAG_SILENT)).any() and np.isfinite(one.features).all()
    assert not np.array_equal(one.features, fp32)  # the quantised layers really run
    centred = one.features - fp32.mean(0), fp32 - fp32.mean(0)
    cos = (centred[0] * centred[1]).sum(1) / np.linalg.norm(centred[0], axis=1)
    assert (cos / np.linalg.norm(centred[1], axis=1) > 0.9).all()
    kinds = [type(m) for m in enc.encoder.modules()]
    assert torch.nn.Linear not in kinds and torch.ao.nn.quantized.dynamic.Linear in kinds
    side = AudioEncoder(tiny_whisper, AudioConfig(precision="int8"), workers=2)
    got = side.encode(items(clips, "c", "a", "short", "b"))
    assert np.array_equal(got.features[[1, 3, 0]], one.features)
    assert enc.config["precision"] == "int8" and "precision" not in encoders["trim"].config


def test_int8_on_a_gpu_is_refused(tiny_whisper):
    with pytest.raises(ErError) as info:
        AudioEncoder(tiny_whisper, AudioConfig(precision="int8"), device="cuda")
    assert info.value.at == "audio.precision" and "CPU only" in str(info.value)
