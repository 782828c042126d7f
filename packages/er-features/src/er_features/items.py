"""From the utterance table (read by er_data.check_table) to the items an encoder reads, each
with its content key. Media paths are confined to the dataset's root (er_core.confine).

The key of an item is the sha256 of its input as given: for text the target and its context
turns (speaker, text) exactly as the table holds them; for media the file's sha256 and the cut
(start, end). A media file is identified by its content: its sha256 is reused without reading
it only while its full stat stamp, ctime included, is unchanged (once.HashMemo). The encoder's
weights and config are keyed separately (the cache folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from er_core import DatasetManifest, ErError, Progress, canonical_json, confine, sha256_bytes

from er_features.once import HashMemo
from er_features.text import TextConfig


@dataclass
class Missing:
    """A row whose media cannot be keyed: no path in the table, or no file on disk."""

    uid: str
    path: str
    problem: str


def text_items(table, cfg: TextConfig) -> list:
    from er_features.base import Item

    rows = table.select("id", "dialogue", "turn", "speaker", "text").rows()
    by_dialogue: dict[str, list[tuple[int, str, str, str]]] = {}
    for uid, dia, turn, speaker, text in rows:
        by_dialogue.setdefault(dia, []).append((turn, uid, speaker or "", text or ""))
    place: dict[str, tuple[str, int]] = {}
    for dia, turns in by_dialogue.items():
        turns.sort()
        for pos, (_, uid, _, _) in enumerate(turns):
            place[uid] = (dia, pos)
    items = []
    for uid, *_ in rows:
        dia, pos = place[uid]
        turns = by_dialogue[dia]
        lo, hi = max(0, pos - cfg.context_before), pos + 1 + cfg.context_after
        parts = {
            "before": [[s, t] for _, _, s, t in turns[lo:pos]],
            "target": [turns[pos][2], turns[pos][3]],
            "after": [[s, t] for _, _, s, t in turns[pos + 1 : hi]],
        }
        cost = sum(len(t) + len(s) for s, t in [*parts["before"], parts["target"], *parts["after"]])
        items.append(Item(uid=uid, key=sha256_bytes(canonical_json(parts)), parts=parts, cost=cost))
    return items


def media_items(
    table, dataset: DatasetManifest, modality: str, memo: HashMemo, quiet: bool = False
):
    """(items with keys, rows that cannot be keyed) for the audio or video column. Keying
    hashes every file not hashed before: minutes for a dataset's first run, so it has a
    progress line (`quiet`: none)."""
    from er_features.base import Item

    if modality not in table.columns:
        raise ErError(
            f"the dataset's table has no '{modality}' column",
            at=dataset.table.path,
            hint="prepare the dataset with its media (er-data prepare ... --root the full dataset)",
        )
    root = Path(dataset.source_root)
    cols = ["id", modality, f"{modality}_start", f"{modality}_end", "source"]
    items, missing = [], []
    rows = table.select(cols).rows()
    with Progress(len(rows), f"extract {modality}: media hashes", quiet=quiet) as bar:
        for uid, rel, start, end, source in rows:
            bar.update(1)
            if not rel:
                missing.append(Missing(uid, "", f"no {modality} in the table"))
                continue
            # the file the table names, links followed, must lie inside the dataset's root
            # (unless prepare was told --follow-links): a table naming ../../etc/passwd is refused
            at = f"{dataset.table.path}:{uid} ({source})"
            what = f"{modality} file"
            path = confine(root, rel, follow_links=dataset.follow_links, what=what, at=at)
            path = path.resolve()
            if not path.is_file():
                missing.append(Missing(uid, str(path), "missing"))
                continue
            key = sha256_bytes(canonical_json([memo(path), start, end]))
            items.append(Item(uid=uid, key=key, path=str(path), start=start, end=end))
    return items, missing
