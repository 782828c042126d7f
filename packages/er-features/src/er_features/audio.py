"""Audio encoder: a Whisper encoder (transformers folder) pooled over a clip's real frames.

Whisper's encoder was trained on 30 s windows: transformers pads every clip to 3000 log-mel
frames (100/s) and its encoder refuses anything else, so a 3 s utterance pays for a 30 s pass.
Two windows, named and measured (tests/benchmarks/test_bench_audio.py):

- `full`: the standard padded 30 s pass, as Whisper was trained; pooling covers only the encoder
  frames of real audio (the encoder halves the mel rate: 50 frames/s), never the padding.
- `trim`: the encoder runs on the real mel frames only (padded to an even count), positional
  embeddings sliced to that length. The layers are called here, since transformers' forward
  insists on 3000 frames. 8.5x faster on 3.5 s clips (tiny.en, 2 CPU threads); its features
  differ from `full` (the model never saw short windows): per-clip cosine 0.96, but 0.82 once
  each window's mean over the clips is removed (Whisper features share a large common part).

Both windows use the same log-mel frames for the real audio (the trim mel is computed on the
clip plus enough zeros that every frame touching real samples, and the level clamp, match the
30 s mel). Clips longer than `chunk_seconds` are cut into chunks, each encoded alone, and pooled
over all real frames of all chunks.

Each chunk is encoded in its own forward pass, at its own length. Batched passes would pad
short clips (leaking padding through attention unless masked) and, even at equal lengths,
change the row count of every matrix product, which on CPU rounds differently (measured:
1e-6 between a clip alone and the same clip in a batch of two). One pass per chunk makes a
clip's features a function of the clip alone, bit for bit, and costs nothing on CPU (16 trim
clips of 3.5 s at d 384: 0.22 s one by one, 0.23 s as one batch). On a GPU, batches would be
faster; length-bucketed, masked batches are the way to add them, at the price of bit-exactness.

`precision = "int8"` (CPU only) runs the encoder's linear layers (attention projections and MLP,
nearly all its work) with int8 weights, one scale per output channel, and activations quantised
per call: about twice the fp32 speed, features a little apart from fp32's (tests/benchmarks/
test_bench_meld_scale.py measures both); still a function of the clip alone, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from er_core import Config, ErError, FiniteFloat, PositiveFloat, to_dict

from er_features.audio_io import AudioProblem, is_silent, load_audio
from er_features.base import (
    FLAG_BAD_MEDIA,
    FLAG_EMPTY,
    FLAG_NO_AUDIO,
    FLAG_SILENT,
    Encoded,
    Item,
    empty_encoded,
)

# Bump when the computation changes for the same config and weights (enters `config`, the key).
VERSION = 1
FLAGS = {"bad_media": FLAG_BAD_MEDIA, "no_audio": FLAG_NO_AUDIO, "empty": FLAG_EMPTY}
TAIL = 400  # zeros after a trim clip: 2 x n_fft/2, so frames touching real audio see no edge


class AudioConfig(Config, frozen=True, kw_only=True):
    window: Literal["trim", "full"] = "trim"  # real frames only, or Whisper's padded 30 s pass
    pooling: Literal["mean", "mean+std"] = "mean"  # over real frames; mean+std doubles dim
    layer: int = -1  # encoder hidden state: 0 = embeddings, k = after layer k, -1 = last (normed)
    silence_db: FiniteFloat = -60.0  # clips whose RMS is below this (dBFS) get FLAG_SILENT
    chunk_seconds: PositiveFloat = 30.0  # longer clips are encoded in chunks of this length (<= 30)
    precision: Literal["fp32", "int8"] = "fp32"  # int8: linear layers quantised (CPU, ~2x)


class Moments:
    """Running count, mean and sum of squared deviations (Chan et al.'s pairwise update) of
    frame vectors, in float64: a long clip's chunks pool without keeping their frames."""

    def __init__(self, width: int):
        self.n, self.mean, self.m2 = 0, np.zeros(width), np.zeros(width)

    def add(self, frames: np.ndarray) -> None:  # frames (F, D)
        nb = len(frames)
        if nb == 0:
            return
        frames = frames.astype(np.float64)
        mean_b = frames.mean(0)
        m2_b = np.square(frames - mean_b).sum(0)
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2_b + np.square(delta) * (self.n * nb / n)
        self.n = n

    def pooled(self, std: bool) -> np.ndarray:
        if not std:
            return self.mean.astype(np.float32)
        return np.concatenate([self.mean, np.sqrt(self.m2 / max(self.n, 1))]).astype(np.float32)


class AudioEncoder:
    """base.Encoder for audio clips (Item.path, .start, .end in seconds; any container PyAV
    reads). `batch_size` is accepted for the interface and has no effect: every chunk gets its
    own forward pass (see the module docstring), and a clip is decoded, encoded and pooled
    whole, so memory holds `workers` clips at a time."""

    modality = "audio"

    def __init__(
        self,
        folder: Path,
        cfg: AudioConfig,
        device: str = "cpu",
        batch_size: int = 16,
        workers: int = 0,
    ):
        """`workers` clips are decoded and encoded at once, each pass on one thread (0 =
        torch's thread count): the passes are small, so clips side by side use the cores far
        better than one pass spread over them. It never changes a feature."""
        import torch
        from transformers import WhisperFeatureExtractor, WhisperModel

        if cfg.precision == "int8" and device != "cpu":
            raise ErError(
                f"audio.precision = int8 runs on the CPU only, not on {device}",
                at="audio.precision",
                hint="use precision = fp32 on a GPU (it is fast there)",
            )
        self.cfg, self.device, self.batch_size = cfg, device, max(1, batch_size)
        self.fe = WhisperFeatureExtractor.from_pretrained(str(folder))
        self.fe.dither = 0.0  # dither adds noise: the same clip must give the same features
        whisper = WhisperModel.from_pretrained(str(folder), dtype=torch.float32)
        self.encoder = whisper.encoder.to(device).eval()  # the decoder is dropped with `whisper`
        if cfg.precision == "int8":
            self.encoder = int8_linears(self.encoder)
        self.sr = int(self.fe.sampling_rate)
        self.hop = int(self.fe.hop_length)
        self.window_frames = int(self.fe.nb_max_frames)  # 3000 mel frames = 30 s
        n_layers = len(self.encoder.layers)
        if not -(n_layers + 1) <= cfg.layer <= n_layers:
            raise ErError(
                f"audio.layer = {cfg.layer}, but the encoder has {n_layers} layers",
                at="audio.layer",
                hint=f"choose 0..{n_layers} (0 = embeddings) or -1..-{n_layers + 1} from the end",
            )
        self.depth = cfg.layer % (n_layers + 1)  # hidden states 0..n_layers, as transformers'
        longest = self.window_frames * self.hop / self.sr
        if not 0 < cfg.chunk_seconds <= longest:
            raise ErError(
                f"audio.chunk_seconds = {cfg.chunk_seconds} is out of range",
                at="audio.chunk_seconds",
                hint=f"use a value in (0, {longest:g}]: Whisper's window is {longest:g} s",
            )
        self.chunk = round(cfg.chunk_seconds * self.sr)  # samples per chunk
        width = int(self.encoder.config.d_model)
        self.dim = 2 * width if cfg.pooling == "mean+std" else width
        self.extras: dict[str, int] = {}
        self.workers = workers or max(1, torch.get_num_threads())
        self._torch = torch

    @property
    def config(self) -> dict[str, Any]:
        """What changes the output besides the weights (hashed apart): the encoder settings, the
        log-mel settings read from the folder, how audio is decoded, and this code's version."""
        fe = self.fe
        mel = {"sampling_rate": self.sr, "n_fft": fe.n_fft, "hop_length": self.hop}
        mel |= {"n_mels": fe.feature_size, "window_frames": self.window_frames, "dither": 0.0}
        settings = to_dict(self.cfg)
        if settings["precision"] == "fp32":  # the key fp32 features had before int8 existed
            del settings["precision"]
        return settings | {
            "mel": mel,
            "decode": "pyav-swresample-fltp, channel mean",
            "version": VERSION,
        }

    def log_mel(self, wave: np.ndarray) -> tuple[np.ndarray, int]:
        """(mel (n_mels, T) float32, real encoder frames) of one chunk of <= 30 s.

        full: T = 3000 (the clip padded to 30 s). trim: T = the real mel frames rounded up to
        even (the extra one is the 30 s mel's next frame), so every output frame is real.
        """
        n = len(wave)
        real_mel = math.ceil(n / self.hop)  # frames centred on a real sample
        real_enc = math.ceil(real_mel / 2)  # conv2 has stride 2
        if self.cfg.window == "full":
            mel = self.fe(wave, sampling_rate=self.sr, return_tensors="np")["input_features"][0]
            return mel.astype(np.float32), real_enc
        padded = np.zeros(max(n, min(self.fe.n_samples, n + TAIL)), np.float32)
        padded[:n] = wave
        mel = self.fe(
            padded, sampling_rate=self.sr, padding="longest", truncation=False, return_tensors="np"
        )["input_features"][0]
        return mel[:, : 2 * real_enc].astype(np.float32), real_enc

    def frames(self, mel: np.ndarray) -> np.ndarray:
        """(S, D) float32 hidden states (layer `cfg.layer`) of one (n_mels, T) mel, S = T / 2.

        Whisper's encoder forward, layer by layer, with the positions sliced to S: for T = 3000
        it is exactly transformers' `WhisperEncoder` (tested)."""
        torch, enc = self._torch, self.encoder
        gelu = torch.nn.functional.gelu
        with torch.inference_mode():
            x = torch.from_numpy(mel)[None].to(self.device)  # (1, n_mels, T)
            h = gelu(enc.conv2(gelu(enc.conv1(x))))  # (1, D, S)
            h = h.permute(0, 2, 1)  # (1, S, D)
            h = h + enc.embed_positions.weight[: h.shape[1]]
            for layer in enc.layers[: self.depth]:
                h = layer(h, None)  # no mask: every frame of the pass belongs to this clip
            if self.depth == len(enc.layers):
                h = enc.layer_norm(h)
            return h[0].float().cpu().numpy()

    def encode(self, items: Sequence[Item]) -> Encoded:
        out = empty_encoded(len(items), self.dim, self.extras)
        if self.workers == 1 or len(items) < 2:
            for i, item in enumerate(items):
                self._encode_one(item, i, out)
            return out
        from concurrent.futures import ThreadPoolExecutor

        torch, threads = self._torch, self._torch.get_num_threads()
        torch.set_num_threads(1)  # one thread per pass, `workers` passes side by side
        try:
            with ThreadPoolExecutor(min(self.workers, len(items))) as pool:
                list(pool.map(self._encode_one, items, range(len(items)), [out] * len(items)))
        finally:
            torch.set_num_threads(threads)
        return out

    def _encode_one(self, item: Item, i: int, out: Encoded) -> None:
        """Fill row i: pooled features and flags, or the item's fallback."""
        try:
            wave = load_audio(item.path, item.start, item.end, self.sr)  # (n,)
        except AudioProblem as p:
            out.flags[i] |= FLAGS[p.kind]
            if p.kind == "bad_media":
                out.problems[i] = p.text
            return
        if is_silent(wave, self.cfg.silence_db):
            out.flags[i] |= FLAG_SILENT  # features are still computed: silence is data
        acc = Moments(int(self.encoder.config.d_model))
        for a in range(0, len(wave), self.chunk):
            mel, real = self.log_mel(wave[a : a + self.chunk])
            acc.add(self.frames(mel)[:real])  # only frames of real audio, never padding
        out.features[i] = acc.pooled(std=self.cfg.pooling == "mean+std")


def int8_linears(module):
    """`module` (on the CPU) with every nn.Linear replaced by a dynamically quantised one: int8
    weights with a scale per output channel, activations quantised per call."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch announces the API's move to torchao; it works here
        warnings.simplefilter("ignore")
        return quantize_dynamic(module, {torch.nn.Linear: per_channel_dynamic_qconfig})
