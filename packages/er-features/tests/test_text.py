"""The text encoder: prompts with context, the never-truncated target, padding-aware pooling."""

from __future__ import annotations

import numpy as np
import pytest
from er_core import ErError
from er_features.base import FLAG_EMPTY, Item
from er_features.text import TextConfig, TextEncoder, render

PARTS = {
    "before": [["Ross", "hey"], ["Rachel", "what is it"]],
    "target": ["Ross", "i feel happy"],
    "after": [["Monica", "oh really"]],
}


def item(parts, uid="u"):
    return Item(uid=uid, key=uid, parts=parts)


def test_render_places_context_and_speakers():
    cfg = TextConfig(context_before=2, context_after=1)
    assert render(cfg, PARTS, "[MASK]") == (
        "Ross: hey Rachel: what is it Ross: i feel happy Monica: oh really"
    )
    bare = TextConfig(speakers=False, template="{before} {target}")
    assert render(bare, PARTS, "[MASK]") == "hey what is it i feel happy"
    prompt = TextConfig(template="{before} {target} Now {speaker} feels {mask}")
    assert render(prompt, PARTS, "[MASK]").endswith("Ross: i feel happy Now Ross feels [MASK]")


def test_long_context_is_cut_from_its_far_end_never_the_target(tiny_bert):
    long_before = [["Ross", "first " + "okay " * 30], ["Rachel", "so what"]]
    parts = {
        "before": long_before,
        "target": ["Ross", "i am fine"],
        "after": [["Joey", "yes " * 30]],
    }
    enc = TextEncoder(tiny_bert, TextConfig(max_length=24))
    ids = enc.prompt(parts)
    text = enc.tokenizer.decode(ids, skip_special_tokens=True)
    assert len(ids) <= 24
    assert "ross : i am fine" in text  # the whole target survives
    assert "so what" in text  # the nearest previous turn survives; the far end went first
    assert "first" not in text


def test_target_longer_than_max_length_is_an_error(tiny_bert):
    enc = TextEncoder(tiny_bert, TextConfig(max_length=8))
    with pytest.raises(ErError, match="longer than max_length"):
        enc.prompt({"before": [], "target": ["Ross", "yes " * 20], "after": []})


@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
def test_pooling_ignores_padding(tiny_bert, pooling):
    """An item gives the same vector alone and batched with a much longer one (padding)."""
    enc = TextEncoder(tiny_bert, TextConfig(pooling=pooling, layers=2))
    short = item({"before": [], "target": ["Ross", "yes"], "after": []}, "s")
    long = item({"before": [], "target": ["Ross", "so what is it that you feel " * 3], "after": []})
    alone = enc.encode([short]).features[0]
    together = enc.encode([short, long]).features[0]
    np.testing.assert_allclose(alone, together, atol=1e-5)
    assert not np.allclose(alone, enc.encode([long]).features[0])


def test_mask_pooling_reads_the_mask_position(tiny_bert):
    import torch

    cfg = TextConfig(template="{target} now {speaker} feels {mask}", pooling="mask")
    enc = TextEncoder(tiny_bert, cfg)
    got = enc.encode([item(PARTS)]).features[0]
    ids = enc.prompt(PARTS)
    with torch.inference_mode():
        hidden = enc.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
    want = hidden[ids.index(enc.tokenizer.mask_token_id)].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_mask_pooling_without_mask_in_template_is_an_error(tiny_bert):
    with pytest.raises(ErError, match="mask"):
        TextEncoder(tiny_bert, TextConfig(pooling="mask"))


def test_empty_text_is_flagged_and_zero(tiny_bert):
    enc = TextEncoder(tiny_bert, TextConfig())
    out = enc.encode([item({"before": [], "target": ["Ross", "  "], "after": []})])
    assert out.flags[0] == FLAG_EMPTY and not out.features.any()


def test_bf16_autocast_is_close_to_fp32(tiny_bert):
    parts = [
        item(PARTS, "a"),
        item({"before": [], "target": ["Joey", "how you doing"], "after": []}),
    ]
    fp32 = TextEncoder(tiny_bert, TextConfig()).encode(parts).features
    bf16 = TextEncoder(tiny_bert, TextConfig(bf16=True)).encode(parts).features
    assert not np.array_equal(fp32, bf16)
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cos.min() > 0.99
