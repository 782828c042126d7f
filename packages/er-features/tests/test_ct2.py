"""ct2.py: a tiny random Whisper written as a CTranslate2 model.bin (by the writer below, the
inverse of the mapping) must convert back to exactly the same transformers model."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from er_core import ErError
from er_features.ct2 import convert_whisper, read_ct2
from safetensors.numpy import load_file
from transformers import (
    WhisperConfig,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

# --- a CTranslate2 writer (version 6), the inverse of ct2._state_dict --------------------------


def to_ct2(sd: dict[str, torch.Tensor], enc_layers: int, dec_layers: int, heads: int) -> dict:
    v: dict[str, np.ndarray] = {}

    def put(ct: str, hf: str, kind: str = "linear") -> None:
        a, b = ("gamma", "beta") if kind == "norm" else ("weight", "bias")
        v[f"{ct}/{a}"], v[f"{ct}/{b}"] = sd[f"{hf}.weight"].numpy(), sd[f"{hf}.bias"].numpy()

    def fuse(ct: str, hf: str, names: list[str]) -> None:
        v[f"{ct}/weight"] = np.concatenate([sd[f"{hf}.{n}.weight"].numpy() for n in names])
        zeros = np.zeros(sd[f"{hf}.{names[-1]}.bias"].shape, np.float32)  # k has no bias
        v[f"{ct}/bias"] = np.concatenate(
            [sd[f"{hf}.{n}.bias"].numpy() if n != "k_proj" else zeros for n in names]
        )

    for side, n in (("encoder", enc_layers), ("decoder", dec_layers)):
        for i in range(n):
            ct, hf = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            put(f"{ct}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm", "norm")
            fuse(f"{ct}/self_attention/linear_0", f"{hf}.self_attn", ["q_proj", "k_proj", "v_proj"])
            put(f"{ct}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
            if side == "decoder":
                put(f"{ct}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm", "norm")
                put(f"{ct}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
                fuse(f"{ct}/attention/linear_1", f"{hf}.encoder_attn", ["k_proj", "v_proj"])
                put(f"{ct}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
            put(f"{ct}/ffn/layer_norm", f"{hf}.final_layer_norm", "norm")
            put(f"{ct}/ffn/linear_0", f"{hf}.fc1")
            put(f"{ct}/ffn/linear_1", f"{hf}.fc2")
        put(f"{side}/layer_norm", f"model.{side}.layer_norm", "norm")
        v[f"{side}/position_encodings/encodings"] = sd[
            f"model.{side}.embed_positions.weight"
        ].numpy()
        v[f"{side}/num_heads"] = np.array(heads, np.int16)
    put("encoder/conv1", "model.encoder.conv1")
    put("encoder/conv2", "model.encoder.conv2")
    v["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"].numpy()
    v["decoder/scale_embeddings"] = np.array(0, np.int8)
    return v


def write_ct2(path: Path, v: dict[str, np.ndarray], dtype=np.float16) -> bytes:
    codes = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2}
    codes[np.dtype(np.float16)] = 4

    def s(text: str) -> bytes:
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = [struct.pack("<I", 6), s("WhisperSpec"), struct.pack("<II", 3, len(v))]
    for name, a in sorted(v.items()):
        a = a.astype(dtype) if a.dtype.kind == "f" else a
        out += [s(name), struct.pack(f"<B{a.ndim}I", a.ndim, *a.shape)]
        out += [struct.pack("<BI", codes[a.dtype], a.nbytes), a.tobytes()]
    out += [struct.pack("<I", 1), s("decoder/projection/weight"), s("decoder/embeddings/weight")]
    data = b"".join(out)
    path.write_bytes(data)
    return data


# --- a tiny model, its tokenizer, its CTranslate2 files ------------------------------------------


def tokenizer_json(multilingual: bool) -> dict:
    """A byte-level BPE whose specials sit at Whisper's ids (50256 English-only, 50257 multi)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    n_text = 50257 if multilingual else 50256
    vocab = {c: i for i, c in enumerate(sorted(alphabet))}
    vocab |= {f"tok{i}": i for i in range(len(vocab), n_text)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    langs = list(LANGUAGES)[:99]  # 99 languages in both vocabularies (51864 and 51865)
    specials = ["<|endoftext|>", "<|startoftranscript|>", *[f"<|{x}|>" for x in langs]]
    specials += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>"]
    specials += ["<|nocaptions|>", "<|notimestamps|>"]
    tok.add_special_tokens(specials)
    return json.loads(tok.to_str())


@pytest.fixture(scope="module", params=[False, True], ids=["english", "multilingual"])
def tiny(request, tmp_path_factory):
    """(model, folder with model.bin + tokenizer.json + config.json, model.bin bytes) for a
    random Whisper with d_model 16, 2+2 layers, 2 heads and the real vocabulary size."""
    multilingual = request.param
    folder = tmp_path_factory.mktemp("ct2")
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer_json(multilingual)))
    extra = {"suppress_ids": [1, 2, 7], "suppress_ids_begin": [220, 50256 + multilingual]}
    (folder / "config.json").write_text(json.dumps({**extra, "alignment_heads": [[1, 0]]}))
    torch.manual_seed(0)
    cfg = WhisperConfig(
        vocab_size=51865 if multilingual else 51864,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
    )
    model = WhisperForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # layer norms start at 1/0: make every tensor distinct
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    sd = {k: t.detach().clone() for k, t in model.state_dict().items()}
    data = write_ct2(folder / "model.bin", to_ct2(sd, 2, 2, 2), np.float32)
    return model, folder, data


# --- tests ----------------------------------------------------------------------------------------


def test_roundtrip_float32_is_exact(tiny, tmp_path):
    model, folder, _ = tiny
    convert_whisper([folder / "model.bin"], folder, tmp_path)
    got = load_file(str(tmp_path / "model.safetensors"))
    want = {k: t.numpy() for k, t in model.state_dict().items()}
    assert "proj_out.weight" not in got  # tied: transformers restores it from embed_tokens
    assert set(got) == set(want) - {"proj_out.weight"}
    for key, a in got.items():
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, want[key], atol=1e-6, rtol=0, err_msg=key)

    loaded = WhisperForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.proj_out.weight.data_ptr() == loaded.model.decoder.embed_tokens.weight.data_ptr()
    feats = torch.randn(1, 80, 3000)
    start = torch.tensor([[loaded.config.decoder_start_token_id]])
    with torch.no_grad():
        a = model(feats, decoder_input_ids=start).logits
        b = loaded(feats, decoder_input_ids=start).logits
    assert torch.allclose(a, b, atol=1e-5)


def test_config_tokenizer_and_generation(tiny, tmp_path):
    model, folder, _ = tiny
    multilingual = model.config.vocab_size == 51865
    convert_whisper([folder / "model.bin"], folder, tmp_path)
    cfg = WhisperConfig.from_pretrained(tmp_path)
    assert (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers) == (16, 2, 2)
    assert (cfg.encoder_attention_heads, cfg.encoder_ffn_dim, cfg.num_mel_bins) == (2, 32, 80)
    assert cfg.decoder_start_token_id == (50258 if multilingual else 50257)
    assert cfg.eos_token_id == cfg.pad_token_id == (50257 if multilingual else 50256)

    tok = WhisperTokenizerFast.from_pretrained(tmp_path)
    assert len(tok) == cfg.vocab_size  # text + specials + 1501 timestamps
    assert tok.eos_token_id == cfg.eos_token_id
    assert tok.convert_tokens_to_ids("<|30.00|>") == cfg.vocab_size - 1
    assert tok.decode(tok("hi there").input_ids, skip_special_tokens=True) == "hi there"
    proc = WhisperProcessor.from_pretrained(tmp_path)
    feats = proc(np.zeros(16000, np.float32), sampling_rate=16000, return_tensors="pt")
    assert feats.input_features.shape == (1, 80, 3000)

    gen = json.loads((tmp_path / "generation_config.json").read_text())
    assert gen["is_multilingual"] is multilingual
    assert gen["no_timestamps_token_id"] == cfg.vocab_size - 1502
    assert gen["suppress_tokens"] == [1, 2, 7] and gen["alignment_heads"] == [[1, 0]]
    if multilingual:
        assert gen["language"] == "en" and gen["lang_to_id"]["<|en|>"] == 50259
    loaded = WhisperForConditionalGeneration.from_pretrained(tmp_path).eval()
    out = loaded.generate(feats.input_features, max_new_tokens=3)
    assert out.shape[0] == 1 and out.shape[1] >= 1


def test_float16_split_parts_stream(tiny, tmp_path):
    model, folder, _ = tiny
    sd = {k: t.detach() for k, t in model.state_dict().items()}
    data = write_ct2(tmp_path / "model.bin", to_ct2(sd, 2, 2, 2), np.float16)
    cut = len(data) // 2 + 3  # mid-tensor: a reader must carry on into the next part
    (tmp_path / "model.bin.part1").write_bytes(data[:cut])
    (tmp_path / "model.bin.part2").write_bytes(data[cut:])
    parts = [tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"]
    whole, aliases = read_ct2([tmp_path / "model.bin"])
    split, _ = read_ct2(parts)
    assert aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert whole.keys() == split.keys()
    assert all(np.array_equal(whole[k], split[k]) for k in whole)
    assert (
        whole["encoder/num_heads"] == 2 and whole["decoder/embeddings/weight"].dtype == np.float32
    )

    out = tmp_path / "hf"
    convert_whisper(parts, folder, out)
    got = load_file(str(out / "model.safetensors"))
    for key, a in got.items():  # exactly the float16 values, widened
        assert np.array_equal(a, sd[key].half().float().numpy()), key


def test_truncated_and_bad_files_name_the_file(tiny, tmp_path):
    _, folder, data = tiny
    cut = tmp_path / "model.bin"
    cut.write_bytes(data[:-100])
    with pytest.raises(ErError, match="truncated") as err:
        read_ct2([cut])
    assert str(cut) in str(err.value)
    (tmp_path / "a").write_bytes(data[:1000])
    (tmp_path / "b").write_bytes(data[1000:-7])
    with pytest.raises(ErError, match="truncated") as err:
        read_ct2([tmp_path / "a", tmp_path / "b"])
    assert str(tmp_path / "b") in str(err.value)
    with pytest.raises(ErError, match="truncated") as err:
        convert_whisper([cut], folder, tmp_path / "out")
    assert not (tmp_path / "out" / "model.safetensors").exists()

    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"PK\x03\x04" + data[4:200])
    with pytest.raises(ErError, match="version-6") as err:
        read_ct2([bad])
    assert str(bad) in str(err.value)
    with pytest.raises(ErError, match="version-6"):  # parts given in the wrong order
        read_ct2([tmp_path / "b", tmp_path / "a"])


def test_tokenizer_must_fit_the_model(tiny, tmp_path):
    model, folder, _ = tiny
    other = tmp_path / "src"
    other.mkdir()
    multilingual = model.config.vocab_size == 51865
    (other / "tokenizer.json").write_text(json.dumps(tokenizer_json(not multilingual)))
    with pytest.raises(ErError, match="does not fit the model"):
        convert_whisper([folder / "model.bin"], other, tmp_path / "out")
