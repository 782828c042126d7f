"""From an utterance and its dialogue to the token ids a text encoder reads.

A prompt is the target turn inside its context: `context_before` previous and `context_after`
following turns, each rendered with `turn` ("{speaker}: {text}"), joined by `joiner`, placed by
`template` around the target. The target is never truncated: while the prompt is longer than
`max_length` tokens, the following context is cut from its end first, then the previous
context from its start (whole words), so the history nearest the target is kept longest.

Each prompt also knows where the target utterance's own words are among its tokens (`span`):
pooling "target" averages those positions only, whatever context surrounds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from er_core import ErError

if TYPE_CHECKING:
    from er_features.text import TextConfig

_MARK = "\x00"  # stands for the target's text while the prompt is rendered: never whitespace


@dataclass(frozen=True)
class Prompt:
    """One utterance's token ids (special tokens included) and the [start, stop) token range of
    the target utterance's text among them ((0, 0) for an empty text, whose ids are [])."""

    ids: list[int]
    span: tuple[int, int]


def turn_text(cfg: TextConfig, speaker: str, text: str) -> str:
    if not cfg.speakers:
        return text
    return cfg.turn.format(speaker=speaker or "someone", text=text)


def _context(cfg: TextConfig, parts: dict[str, Any], cut: tuple[int, int]) -> tuple[str, str]:
    before = cfg.joiner.join(turn_text(cfg, s, t) for s, t in parts.get("before", []))
    after = cfg.joiner.join(turn_text(cfg, s, t) for s, t in parts.get("after", []))
    if cut[0]:  # drop whole words only: a cut word would tokenize into noise
        before = before[cut[0] :].partition(" ")[2]
    if cut[1]:
        after = after[: len(after) - cut[1]].rpartition(" ")[0]
    return before, after


def _fill(cfg: TextConfig, parts: dict[str, Any], mask: str, cut, target_text: str) -> str:
    speaker, _ = parts["target"]
    before, after = _context(cfg, parts, cut)
    text = cfg.template.format(
        before=before,
        after=after,
        target=turn_text(cfg, speaker, target_text),
        speaker=speaker or "someone",
        mask=mask,
    )
    return " ".join(text.split())  # empty context leaves no stray spaces


def render(cfg: TextConfig, parts: dict[str, Any], mask: str, cut: tuple[int, int] = (0, 0)) -> str:
    """The prompt for one item. `cut` = (characters dropped from the start of the previous
    context, characters dropped from the end of the following context)."""
    return _fill(cfg, parts, mask, cut, parts["target"][1])


def render_span(
    cfg: TextConfig, parts: dict[str, Any], mask: str, cut: tuple[int, int] = (0, 0)
) -> tuple[str, tuple[int, int]]:
    """`render`'s prompt and the [start, stop) characters of the target's text in it."""
    text = render(cfg, parts, mask, cut)
    body = " ".join(parts["target"][1].split())
    start = _fill(cfg, parts, mask, cut, _MARK).find(_MARK)
    if start < 0 or text[start : start + len(body)] != body:  # a template that hides the target
        start = text.rfind(body)
    return text, (start, start + len(body)) if start >= 0 else (0, 0)


def token_span(offsets: Sequence[tuple[int, int]], chars: tuple[int, int]) -> tuple[int, int]:
    """The [start, stop) tokens whose characters overlap `chars` (special tokens, whose offsets
    are (0, 0), never do)."""
    inside = [k for k, (a, b) in enumerate(offsets) if b > a and a < chars[1] and b > chars[0]]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def _tokenize(tokenizer, texts: list[str], spans: bool) -> tuple[list, list]:
    if not texts:
        return [], []
    if not spans:
        return tokenizer(texts, truncation=False)["input_ids"], [None] * len(texts)
    if not getattr(tokenizer, "is_fast", False):
        raise ErError(
            "pooling = 'target' needs a fast (Rust) tokenizer, which gives character offsets",
            at="text.pooling",
            hint="use an encoder with a tokenizer.json, or pooling mean, cls or mask",
        )
    out = tokenizer(texts, truncation=False, return_offsets_mapping=True)
    return out["input_ids"], out["offset_mapping"]


def _cut_to_fit(tokenizer, cfg: TextConfig, parts: dict[str, Any], spans: bool) -> Prompt:
    """The prompt of one over-long item, its context cut until it fits `max_length`."""
    mask = tokenizer.mask_token or ""
    cut = [0, 0]
    for _ in range(64):
        text, chars = render_span(cfg, parts, mask, (cut[0], cut[1]))
        (ids,), (offsets,) = _tokenize(tokenizer, [text], spans)
        excess = len(ids) - cfg.max_length
        if excess <= 0:
            return Prompt(list(ids), token_span(offsets, chars) if spans else (0, 0))
        # drop about `excess` tokens' worth of characters from the far end of the context
        before, after = _context(cfg, parts, (0, 0))
        step = max(4 * excess, 1)
        if cut[1] < len(after):
            cut[1] = min(len(after), cut[1] + step)
        elif cut[0] < len(before):
            cut[0] = min(len(before), cut[0] + step)
        else:
            break
    raise ErError(
        f"the utterance alone is longer than max_length = {cfg.max_length} tokens",
        at=f"utterance {parts.get('uid', '?')}",
        hint="the target is never truncated; raise text.max_length if the model allows it",
    )


def tokenize(tokenizer, cfg: TextConfig, parts_list: Sequence[dict[str, Any]]) -> list[Prompt]:
    """Every item's prompt: one batched (fast, Rust) tokenizer call, the cutting path only for
    the over-long ones; an empty target text gives Prompt([], (0, 0)). Spans are computed for
    pooling "target" only (they need character offsets)."""
    spans = cfg.pooling == "target"
    mask = tokenizer.mask_token or ""
    real = [k for k, parts in enumerate(parts_list) if parts["target"][1].strip()]
    rendered = [render_span(cfg, parts_list[k], mask) for k in real]
    ids_all, offsets_all = _tokenize(tokenizer, [text for text, _ in rendered], spans)
    out = [Prompt([], (0, 0)) for _ in parts_list]
    for k, (_, chars), ids, offsets in zip(real, rendered, ids_all, offsets_all, strict=True):
        if len(ids) > cfg.max_length:
            out[k] = _cut_to_fit(tokenizer, cfg, parts_list[k], spans)
        else:
            out[k] = Prompt(list(ids), token_span(offsets, chars) if spans else (0, 0))
    return out
