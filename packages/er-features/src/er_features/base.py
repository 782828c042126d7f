"""What every encoder shares: the items it encodes, what it returns, and the fallback flags.

An encoder turns a list of `Item`s into one pooled feature vector per item. It never raises for
one bad item: it returns the item's fallback (zeros) with a flag bit set and, for bad media, the
problem in `Encoded.problems`, so the caller decides whether that is an error or a flagged row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

# Fallback flags, one bit each; a row's features are zeros whenever a flag other than
# FLAG_SILENT is set. Names are what the FeatureManifest counts under `fallbacks`.
FLAG_BAD_MEDIA = 1  # media file missing or undecodable
FLAG_EMPTY = 2  # zero-length clip (or an empty cut), or empty text
FLAG_SILENT = 4  # audio decodes but is silent (features are computed, the flag warns)
FLAG_NO_AUDIO = 8  # the media file has no audio track
FLAG_NO_FACE = 16  # no face in any sampled frame
FLAG_NONFINITE = 32  # the encoder gave NaN or inf for this input (kept only under `flag`)
FLAG_NAMES = {
    FLAG_BAD_MEDIA: "bad_media",
    FLAG_EMPTY: "empty",
    FLAG_SILENT: "silent",
    FLAG_NO_AUDIO: "no_audio",
    FLAG_NO_FACE: "no_face",
    FLAG_NONFINITE: "nonfinite",
}
# Rows no run may use unless the user asked for flagged rows (`--on-bad-media flag`).
FLAG_UNUSABLE = FLAG_BAD_MEDIA | FLAG_NONFINITE


@dataclass(frozen=True)
class Item:
    """One utterance to encode.

    `key` is the sha256 of the input as given (text, or media hash + cut), filled in by extract.
    Text encoders read `parts` (rendering is theirs); media encoders read `path`/`start`/`end`
    (seconds; None = the whole file). `cost` orders items for length-sorted batching.
    """

    uid: str
    key: str = ""
    parts: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    start: float | None = None
    end: float | None = None
    cost: float = 0.0


@dataclass
class Encoded:
    """An encoder's output for n items, in the order they were given.

    features: (n, dim) float32; flags: (n,) uint8 of FLAG_* bits; extras: name -> (n, k) float32
    (e.g. "logits" (n, 7), "face_ratio" (n, 1)); problems: item index -> what was wrong with its
    media (only for FLAG_BAD_MEDIA rows).
    """

    features: np.ndarray
    flags: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)


class Encoder(Protocol):
    """The interface extract drives. `config` describes what shapes the output besides the
    weights, for inspection. The cache key is built without loading the model, from the
    weights hash, the module's VERSION and the modality's config section, so an encoder must
    take every output-changing setting from those (its folder counts as weights)."""

    modality: str
    dim: int
    extras: dict[str, int]  # extra tensor name -> width

    @property
    def config(self) -> dict[str, Any]: ...

    def encode(self, items: Sequence[Item]) -> Encoded: ...


def empty_encoded(n: int, dim: int, extras: dict[str, int], flag: int = 0) -> Encoded:
    """n fallback rows: zero features and extras, every row flagged with `flag`."""
    return Encoded(
        features=np.zeros((n, dim), np.float32),
        flags=np.full((n,), flag, np.uint8),
        extras={k: np.zeros((n, w), np.float32) for k, w in extras.items()},
    )
