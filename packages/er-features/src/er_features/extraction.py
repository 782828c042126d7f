"""`er-features extract`: the dataset in the stream -> cached feature shards + a FeatureManifest.

The work is cut into chunks of `shard_size` unique inputs, ordered by (cost, key) so the cut
depends only on the inputs: a killed run, a `--shard i/n` slice or a torchrun rank recomputes
exactly the chunks an uninterrupted single run would, with the same batches, so the features
end up bit-identical. Each finished chunk is one shard in the cache; a chunk whose items are
all cached costs nothing, and a partly cached one computes only its missing items.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
from er_core import (
    Config,
    DatasetManifest,
    Envelope,
    ErError,
    FeatureManifest,
    NonNegativeInt,
    PositiveInt,
    Progress,
    content_id,
    find,
    info,
    nonfinite_rows,
    set_threads,
    to_dict,
)
from er_data import check_table

from er_features import audio as audio_mod
from er_features import cache as fcache
from er_features import text as text_mod
from er_features import video as video_mod
from er_features.audio import AudioConfig
from er_features.base import (
    FLAG_BAD_MEDIA,
    FLAG_NAMES,
    FLAG_NONFINITE,
    FLAG_UNUSABLE,
    Encoded,
    Encoder,
    Item,
)
from er_features.index import write_index
from er_features.items import media_items, text_items
from er_features.once import HashMemo
from er_features.registry import DEFAULTS, Resolved, resolve
from er_features.text import TextConfig
from er_features.video import VideoConfig

TOOL = "er-features 0.1.0"
# each encoder module's own version: a change to its code that changes vectors changes the key
CODE_VERSION = {
    "hf-text": text_mod.VERSION,
    "whisper": audio_mod.VERSION,
    "face-cnn": video_mod.VERSION,
}


class ExtractOptions(msgspec.Struct, frozen=True):
    """The ranges of extract's numeric command-line options (checked before any work)."""

    batch_size: PositiveInt | None = None


class ExtractConfig(Config, frozen=True, kw_only=True):
    modality: Literal["text", "audio", "video", ""] = ""
    encoder: str = ""  # alias, folder or hub id; "" = the modality's default
    shard_size: PositiveInt = 256  # unique inputs per cache shard: the unit of resume and of memory
    batch_size: NonNegativeInt = 0  # 0 = the encoder's default
    on_bad_media: Literal["error", "flag"] = "error"
    text: TextConfig = TextConfig()
    audio: AudioConfig = AudioConfig()
    video: VideoConfig = VideoConfig()


def build_encoder(res: Resolved, cfg: ExtractConfig, device: str) -> Encoder:
    from transformers.utils import logging

    logging.disable_progress_bar()  # stderr is for er's own progress and errors
    logging.set_verbosity_error()
    kw = {"device": device} | ({"batch_size": cfg.batch_size} if cfg.batch_size else {})
    if res.family == "hf-text":
        from er_features.text import TextEncoder

        return TextEncoder(res.folder, cfg.text, **kw)
    if res.family == "whisper":
        from er_features.audio import AudioEncoder

        return AudioEncoder(res.folder, cfg.audio, **kw)
    from er_features.video import VideoEncoder

    return VideoEncoder(res.folder, cfg.video, **kw)


def chunk(items: Sequence[Item], size: int) -> list[list[Item]]:
    """Unique inputs in a dataset-independent order, cut into chunks of `size`."""
    unique = {it.key: it for it in reversed(items)}  # the first row with a key represents it
    order = sorted(unique.values(), key=lambda it: (it.cost, it.key))
    return [order[i : i + size] for i in range(0, len(order), size)]


def extract(
    envelopes: Sequence[Envelope],
    cfg: ExtractConfig,
    *,
    cache: Path,
    out: Path,
    device: str = "cpu",
    part: tuple[int, int] | None = None,
    quiet: bool = False,
    threads: int | None = None,
    compute: bool = True,
) -> FeatureManifest:
    """Compute what the cache lacks for this part, then write the part's index and manifest.

    `compute=False` only gathers (every chunk must be cached): what rank 0 does after a
    torchrun barrier to describe the whole dataset. `quiet`: no progress lines on stderr.
    `threads`: torch's CPU threads when there is work (None: er_core's default, which does not
    oversubscribe a shared machine). Not recorded: the features do not depend on it, and the
    manifest has no field outside its id and cache key that could hold it.
    """
    if cfg.modality == "":
        raise ErError("no modality given", at="modality", hint="pass --modality text|audio|video")
    if cfg.shard_size < 1:
        raise ErError("shard_size must be at least 1", at="shard_size", hint="e.g. 256")
    dataset = find(envelopes, DatasetManifest)
    modality = cfg.modality
    table = check_table(dataset)
    if modality == "text":
        _has_text(table, dataset)  # before the encoder is looked up: the dataset is the problem
    res = resolve(cfg.encoder or DEFAULTS[modality], modality, cache)
    section = to_dict(getattr(cfg, modality))
    code = {"family": res.family, "version": CODE_VERSION[res.family]}
    key = fcache.cache_key(modality, res.weights_sha256, {**code, **section})
    folder = fcache.folder_for(cache, key)
    fcache.describe(folder, {"modality": modality, "encoder": res.name, "config": section})

    memo = HashMemo(cache)
    if modality == "text":
        items, missing = text_items(table, cfg.text), []
    else:
        items, missing = media_items(table, dataset, modality, memo, quiet=quiet)
        memo.save()
    absent_files = [m for m in missing if m.path]
    if absent_files and cfg.on_bad_media == "error":
        m = absent_files[0]
        raise ErError(
            f"{modality} file missing for utterance {m.uid} ({len(absent_files)} missing in all)",
            at=m.path,
            hint="restore the file, or pass --on-bad-media flag to give such rows flagged zeros",
        )

    chunks = chunk(items, cfg.shard_size)
    mine = [c for j, c in enumerate(chunks) if part is None or j % part[1] == part[0]]
    lookup = fcache.scan(folder)
    for bad in lookup.unreadable:
        info(f"warning: unreadable cache shard skipped, its items are recomputed: {bad}")
    if compute:
        _compute(mine, lookup, folder, res, cfg, device, quiet, threads)

    keys = {it.key for c in mine for it in c}
    covered = [it for it in items if it.key in keys]
    if part is not None and part[0] != 0:
        missing = []  # rows without media belong to slice 0, so a merge covers them once
    ids = table["id"].to_list()
    return _manifest(dataset, res, cfg, key, folder, covered, missing, lookup, out, part, ids)


def _has_text(table, dataset: DatasetManifest) -> None:
    """A dataset mapped without transcripts (every text "") has nothing to encode: placeholder
    text would give every utterance the same vector and look like a working feature."""
    if table.height and (table["text"].fill_null("").str.strip_chars() == "").all():
        raise ErError(
            f"dataset {dataset.dataset} has no text to encode",
            at=dataset.table.path,
            hint="this dataset has no text column (columns.text not mapped); import its "
            "features with er-features import",
        )


def _compute(mine, lookup, folder, res, cfg, device, quiet, threads) -> None:
    """Encode the items of `mine` that the cache lacks, one chunk at a time, and publish each
    chunk as a shard. Chunks are computed without holding the cache's lock (slices and torchrun
    ranks compute in parallel), and published under it after a fresh look at what is cached
    (fcache.publish): two processes never both claim an item."""
    if not any(it.key not in lookup.rows for c in mine for it in c):
        return
    todo = sum(it.key not in lookup.rows for c in mine for it in c)
    set_threads(threads)  # only when there is work: a warm run imports no torch
    encoder = build_encoder(res, cfg, device)  # only when there is work: a warm run loads nothing
    with Progress(todo, f"extract {cfg.modality} {res.name}", quiet=quiet) as bar:
        for items in mine:
            need = sum(it.key not in lookup.rows for it in items)  # computed here or by another
            _compute_chunk(items, lookup, folder, encoder, cfg)
            bar.update(need)


def _compute_chunk(items, lookup, folder, encoder, cfg) -> None:
    """One chunk: encode what the cache lacks, check it, publish it as a shard."""
    fcache.refresh(lookup, folder)  # another process may have filled this chunk meanwhile
    batch = [it for it in items if it.key not in lookup.rows]
    if not batch:
        return
    enc = encoder.encode(batch)
    if cfg.on_bad_media == "error" and enc.problems:
        i, problem = next(iter(enc.problems.items()))
        raise ErError(
            f"{cfg.modality} of utterance {batch[i].uid} is unusable: {problem}",
            at=batch[i].path,
            hint="replace the file, or pass --on-bad-media flag to give it a flagged zero row",
        )
    _finite_or_flag(enc, batch, cfg)
    fcache.publish(
        folder,
        [it.key for it in batch],
        enc,
        lookup,
        dim=encoder.dim,
        extras=encoder.extras,
        names=[it.uid for it in batch],
    )


def _finite_or_flag(enc: Encoded, batch: Sequence[Item], cfg: ExtractConfig) -> None:
    """Rows with NaN or inf anywhere: an error naming the first item, or under
    `--on-bad-media flag` zero rows flagged FLAG_NONFINITE (never cached as numbers)."""
    bad = set(nonfinite_rows(enc.features).tolist())
    for v in enc.extras.values():
        bad |= set(nonfinite_rows(v).tolist())
    if not bad:
        return
    rows = sorted(bad)
    if cfg.on_bad_media == "error":
        it = batch[rows[0]]
        more = f" ({len(rows) - 1} more in its shard)" if len(rows) > 1 else ""
        raise ErError(
            f"the {cfg.modality} encoder gave NaN or inf for utterance {it.uid}{more}",
            at=it.path or f"utterance {it.uid}",
            hint="check that input (NaN samples, a corrupt file) and the encoder's weights; "
            "--on-bad-media flag stores such rows as flagged zeros",
        )
    enc.features[rows] = 0.0
    for v in enc.extras.values():
        v[rows] = 0.0
    enc.flags[rows] |= FLAG_NONFINITE


def _manifest(dataset, res, cfg, key, folder, covered, missing, lookup, out, part, ids):
    used: dict[Path, int] = {}
    for it in covered:
        if it.key not in lookup.rows:
            raise ErError(
                f"features of utterance {it.uid} are not in the cache",
                at=str(folder),
                hint="run every --shard slice (or extract without --shard) before merging",
            )
        used.setdefault(lookup.rows[it.key][0], len(used))
    shard_flags = {}
    for path in used:
        fcache.check_shard(path)
        shard_flags[path] = fcache.read_flags(path)

    where = {it.uid: lookup.rows[it.key] for it in covered}
    gone = {m.uid: m for m in missing}
    order = [uid for uid in ids if uid in where or uid in gone]
    shard = np.full(len(order), -1, np.int32)
    row = np.full(len(order), -1, np.int32)
    flags = np.zeros(len(order), np.uint8)
    for n, uid in enumerate(order):
        if uid in where:
            path, r = where[uid]
            shard[n], row[n], flags[n] = used[path], r, shard_flags[path][r]
        else:
            flags[n] = FLAG_BAD_MEDIA
    unusable = ((flags & FLAG_UNUSABLE) > 0) & (shard >= 0)
    if cfg.on_bad_media == "error" and unusable.any():
        n = int(np.nonzero(unusable)[0][0])
        raise ErError(
            f"{cfg.modality} of utterance {order[n]} was found unusable by an earlier run",
            at=order[n],
            hint="replace the media file, or pass --on-bad-media flag",
        )

    part_s = f"{part[0]}/{part[1]}" if part else ""
    section = to_dict(getattr(cfg, cfg.modality))
    run_id = content_id(
        {"dataset": dataset.id, "table": dataset.table.sha256, "cache_key": key, "part": part_s}
    )
    index_ref = write_index(out, run_id, order, shard, row, flags)
    width = {k: int(v) for k, v in _extras_of(used).items()}
    return FeatureManifest(
        id=run_id,
        tool=TOOL,
        modality=cfg.modality,
        encoder=res.name,
        encoder_source=res.source,
        weights_sha256=res.weights_sha256,
        config={"family": res.family, "version": CODE_VERSION[res.family], **section},
        cache_key=key,
        dim=_dim_of(used, folder),
        extras=width,
        dataset=dataset.id,
        table_sha256=dataset.table.sha256,
        count=len(order),
        index=index_ref,
        shards=[_ref(p) for p in used],
        fallbacks={
            name: int(((flags & bit) > 0).sum())
            for bit, name in FLAG_NAMES.items()
            if ((flags & bit) > 0).any()
        },
        part=part_s,
    )


def _ref(path: Path):
    from er_core import FileRef

    return FileRef(path=str(path.resolve()), sha256=path.stem, bytes=path.stat().st_size)


def _shapes(path: Path) -> dict[str, list[int]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118


def _extras_of(used: dict[Path, int]) -> dict[str, int]:
    if not used:
        return {}
    shapes = _shapes(next(iter(used)))
    return {k: s[1] for k, s in shapes.items() if k not in ("features", "flags")}


def _dim_of(used: dict[Path, int], folder: Path) -> int:
    if used:
        return _shapes(next(iter(used)))["features"][1]
    any_shard = fcache.shards(folder)
    return _shapes(any_shard[0])["features"][1] if any_shard else 0
