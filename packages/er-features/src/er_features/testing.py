"""Tiny random-initialised encoders for tests and examples: real folders, seconds to build.

Each writes the same kind of folder the registry resolves (a transformers folder, or an er
face-CNN folder), so a test drives the real code path with `--encoder <folder>` and no weights.
"""

from __future__ import annotations

from pathlib import Path

from er_features.face_cnn import tiny_face_cnn_folder

__all__ = ["tiny_face_cnn_folder", "tiny_text_folder", "tiny_whisper_folder"]

WORDS = [
    "i",
    "you",
    "he",
    "she",
    "it",
    "we",
    "they",
    "am",
    "is",
    "are",
    "was",
    "not",
    "no",
    "yes",
    "so",
    "what",
    "why",
    "how",
    "oh",
    "okay",
    "yeah",
    "hey",
    "feel",
    "feels",
    "happy",
    "sad",
    "angry",
    "joy",
    "fear",
    "now",
    "said",
    "say",
    "the",
    "a",
    "to",
    "and",
    "of",
    "that",
    "this",
    "there",
    "here",
    "someone",
    "ross",
    "rachel",
    "monica",
    "joey",
    "chandler",
    "phoebe",
    "good",
    "bad",
    "great",
    "fine",
    "well",
    "really",
]


def tiny_text_folder(folder: Path, seed: int = 0) -> Path:
    """A 2-layer BERT (hidden 32) with a small WordPiece vocabulary (words, letters, pieces)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":", ".", ",", "!", "?", "'"]
    vocab += WORDS + list(letters) + [f"##{c}" for c in letters]
    wordpiece = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    special = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]"}
    special |= {"sep_token": "[SEP]", "mask_token": "[MASK]"}
    BertTokenizerFast(tokenizer_object=wordpiece, **special).save_pretrained(folder)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(cfg).eval().save_pretrained(folder)
    return folder


def tiny_whisper_folder(folder: Path, seed: int = 0) -> Path:
    """A Whisper with d_model 32, 2 + 2 layers, 80 mel bins, 1500 positions, and its
    WhisperFeatureExtractor: the folder layout packaged.py writes for real weights."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cfg = WhisperConfig(
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=64,
        vocab_size=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=3,
    )
    WhisperModel(cfg).eval().save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder
