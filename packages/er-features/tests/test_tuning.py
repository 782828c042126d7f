"""The fine-tuning API (er_features.tuning) and the prompts it builds: the target's token span
through any context and any cut, pooling "target" over exactly that span, the encoder split
into a frozen lower part and a trainable upper part that together give the whole model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from er_core import ErError
from er_features.base import Item
from er_features.prompts import render_span, token_span, tokenize
from er_features.text import TextConfig, TextEncoder
from er_features.tuning import split_layers, text_model

PARTS = {
    "before": [["Ross", "hey"], ["Rachel", "what is it"]],
    "target": ["Ross", "i feel happy"],
    "after": [["Monica", "oh really"]],
}
TARGET = TextConfig(context_before=2, context_after=1, pooling="target")


def span_text(enc: TextEncoder, parts) -> str:
    (p,) = tokenize(enc.tokenizer, enc.cfg, [parts])
    return enc.tokenizer.decode(p.ids[p.span[0] : p.span[1]])


@pytest.mark.parametrize(
    "cfg",
    [
        TARGET,
        TextConfig(pooling="target"),  # alone
        TextConfig(context_before=2, template="{before} [SEP] {target}", pooling="target"),
        TextConfig(context_before=2, speakers=False, pooling="target"),
        TextConfig(
            context_before=2, template="{target} now {speaker} feels {mask}", pooling="target"
        ),
    ],
    ids=["around", "alone", "sep", "no-speakers", "prompt"],
)
def test_target_span_holds_the_target_text_only(tiny_bert, cfg):
    enc = TextEncoder(tiny_bert, cfg)
    assert span_text(enc, PARTS) == "i feel happy"


def test_span_survives_the_history_cut_which_starts_at_the_far_end(tiny_bert):
    parts = {
        "before": [["Ross", "first " + "okay " * 30], ["Rachel", "so what"]],
        "target": ["Ross", "i am fine"],
        "after": [["Joey", "yes " * 30]],
    }
    cfg = TextConfig(context_before=2, context_after=1, max_length=24, pooling="target")
    enc = TextEncoder(tiny_bert, cfg)
    (p,) = tokenize(enc.tokenizer, cfg, [parts])
    text = enc.tokenizer.decode(p.ids, skip_special_tokens=True)
    assert len(p.ids) <= 24 and "so what" in text and "first" not in text and "yes" not in text
    assert enc.tokenizer.decode(p.ids[p.span[0] : p.span[1]]) == "i am fine"


def test_render_span_and_token_span_by_hand():
    text, chars = render_span(TARGET, PARTS, "[MASK]")
    assert text[chars[0] : chars[1]] == "i feel happy"
    # special tokens (0, 0) never count; a token overlapping the range does
    offsets = [(0, 0), (0, 4), (5, 9), (9, 10), (11, 15), (0, 0)]
    assert token_span(offsets, (5, 10)) == (2, 4)
    assert token_span(offsets, (20, 30)) == (0, 0)


def test_target_pooling_is_the_mean_of_the_span(tiny_bert):
    enc = TextEncoder(tiny_bert, TARGET)
    got = enc.encode([Item(uid="u", key="u", parts=PARTS)]).features[0]
    (p,) = tokenize(enc.tokenizer, TARGET, [PARTS])
    with torch.inference_mode():
        hidden = enc.model(input_ids=torch.tensor([p.ids])).last_hidden_state[0]
    want = hidden[p.span[0] : p.span[1]].mean(0).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    mean = TextEncoder(tiny_bert, TextConfig(context_before=2, context_after=1))
    assert not np.allclose(got, mean.encode([Item(uid="u", key="u", parts=PARTS)]).features[0])


def test_text_model_names_bad_options_and_encoders(tiny_bert):
    model = text_model(str(tiny_bert), {"pooling": "target"})
    assert model.dim == 32 and model.cfg.pooling == "target" and len(model.weights_sha256) == 64
    with pytest.raises(ErError) as e:
        text_model(str(tiny_bert), {"pooling": "middle"}, at="$.finetune")
    assert e.value.at.endswith("$.finetune.text.pooling")
    with pytest.raises(ErError) as e:
        text_model("no-such-encoder", {}, at="$.finetune")
    assert e.value.at == "$.finetune.encoder" and e.value.hint


def test_split_layers_gives_the_whole_model(tiny_bert):
    model = text_model(str(tiny_bert), {}).model
    ids = torch.tensor([[2, 11, 12, 13, 14, 3], [2, 15, 16, 3, 0, 0]])
    attention = (ids > 0).long()
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=attention).last_hidden_state
    lower, upper = split_layers(model, 1)
    assert not any(p.requires_grad for p in lower.parameters())
    assert len(lower.encoder.layer) == 1 and len(upper.encoder.layer) == 1
    assert not any("embeddings" in k for k in upper.state_dict())
    with torch.no_grad():
        hidden = lower(input_ids=ids, attention_mask=attention).last_hidden_state
        got = upper.eval()(inputs_embeds=hidden, attention_mask=attention).last_hidden_state
    real = attention.bool()
    torch.testing.assert_close(got[real], full[real], atol=1e-5, rtol=0)


@pytest.mark.parametrize("n", [0, 2, 5])
def test_split_layers_outside_the_model_is_an_error(tiny_bert, n):
    model = text_model(str(tiny_bert), {}).model
    with pytest.raises(ErError, match="has 2 layers") as e:
        split_layers(model, n, at="$.finetune.frozen_layers")
    assert e.value.at == "$.finetune.frozen_layers" and "1..1" in e.value.hint
