"""The offline weight packages, for real: MiniLM and MPNet load, both Whisper models convert and
transcribe a RAVDESS sentence. Run: uv run pytest -m slow packages/er-features/tests/test_packaged_slow.py"""

from __future__ import annotations

import json
import re
import time

import pytest
import torch
from er_core import ErError
from er_features import packaged

pytestmark = pytest.mark.slow
SENTENCE = "kids are talking by the door"  # RAVDESS statement 01
CLIP = "ravdess-speech/03-01-01-01-01-01-01.wav"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def transcribe(folder, wav, **kwargs) -> str:
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    processor = WhisperProcessor.from_pretrained(folder)
    feats = processor(wav, sampling_rate=16000, return_tensors="pt").input_features  # (1, 80, 3000)
    with torch.no_grad():
        ids = model.generate(feats, **kwargs)
    return processor.batch_decode(ids, skip_special_tokens=True)[0]


def test_minilm_loads_offline():
    from transformers import AutoModel, AutoTokenizer

    folder = packaged.minilm()
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        out = model(**tok(["I am so happy today."], return_tensors="pt")).last_hidden_state
    assert out.shape[-1] == 384 and torch.isfinite(out).all()


def test_mpnet_unpacks_once_and_loads(weights_cache):
    from transformers import AutoModel, AutoTokenizer

    t = time.perf_counter()
    folder = packaged.mpnet_base(weights_cache)
    print(f"mpnet-base unpacked in {time.perf_counter() - t:.1f} s")
    assert (folder / "config.json").is_file()
    assert not list(folder.parent.rglob("*.zip"))  # the joined zip is deleted after unpacking
    record = json.loads((folder.parent / "er-weights.json").read_text())
    assert record["files"]["all-mpnet-base-v2/model.safetensors"] == packaged.MPNET_SHA256
    assert packaged.mpnet_base(weights_cache) == folder
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    assert model.config.hidden_size == 768
    with torch.no_grad():
        out = model(**tok(["I am so happy today."], return_tensors="pt")).last_hidden_state
    assert out.shape[-1] == 768 and torch.isfinite(out).all()


@pytest.mark.realdata
def test_whisper_tiny_en(weights_cache, shared_data, load_16k, monkeypatch):
    t = time.perf_counter()
    folder = packaged.whisper_tiny_en(weights_cache)
    print(f"whisper-tiny.en converted in {time.perf_counter() - t:.1f} s")
    text = transcribe(folder, load_16k(shared_data / CLIP))
    print(f"whisper-tiny.en: {text!r}")
    assert SENTENCE in normalise(text)

    # A second call reuses the folder: no conversion, the record untouched.
    record = folder / "er-weights.json"
    stamp = (record.stat().st_mtime_ns, record.read_bytes())

    def no_conversion(*args):
        raise AssertionError("converted again")

    monkeypatch.setattr("er_features.ct2.convert_whisper", no_conversion)
    t = time.perf_counter()
    assert packaged.whisper_tiny_en(weights_cache) == folder
    print(f"whisper-tiny.en second call: {time.perf_counter() - t:.2f} s")
    assert (record.stat().st_mtime_ns, record.read_bytes()) == stamp

    # A converted file changed afterwards is an error naming the folder, never used.
    weights = folder / "model.safetensors"
    with weights.open("r+b") as f:
        f.seek(-4, 2)
        original = f.read(4)
        f.seek(-4, 2)
        f.write(bytes(b ^ 0xFF for b in original))
    try:
        with pytest.raises(ErError, match="do not verify") as err:
            packaged.whisper_tiny_en(weights_cache)
        assert str(folder) in str(err.value)
    finally:
        with weights.open("r+b") as f:
            f.seek(-4, 2)
            f.write(original)
    assert packaged.whisper_tiny_en(weights_cache) == folder


@pytest.mark.realdata
def test_whisper_base(weights_cache, shared_data, load_16k):
    t = time.perf_counter()
    folder = packaged.whisper_base(weights_cache)
    print(f"whisper-base converted in {time.perf_counter() - t:.1f} s")
    wav = load_16k(shared_data / CLIP)
    default = transcribe(folder, wav)  # the generation config says English, transcribe
    forced = transcribe(folder, wav, language="en", task="transcribe")
    print(f"whisper-base: {default!r} / forced English: {forced!r}")
    assert SENTENCE in normalise(default) and SENTENCE in normalise(forced)
