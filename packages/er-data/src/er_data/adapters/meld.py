"""MELD in its official layout (Poria et al., ACL 2019).

    <root>/train_sent_emo.csv  dev_sent_emo.csv  test_sent_emo.csv
    <root>/train_splits/dia{D}_utt{U}.mp4
    <root>/dev_splits_complete/dia{D}_utt{U}.mp4
    <root>/output_repeated_splits_test/dia{D}_utt{U}.mp4

Clips are optional: with no clip folder the table is text-only. A WAV beside a clip
(`dia{D}_utt{U}.wav`, as `er-data synth` writes) is used as its audio; otherwise the clip's own
audio track is. Dialogue ids restart in each split, so ids carry the split: `dev/dia3_utt0`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from er_core import Config, ErError, TaskInfo

from er_data.adapters.base import Loaded
from er_data.csvio import read_delimited
from er_data.table import encode_labels, finish, first_row

EMOTIONS = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
SENTIMENTS = ["neutral", "positive", "negative"]
FILES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
CLIP_DIRS = {
    "train": "train_splits",
    "dev": "dev_splits_complete",
    "test": "output_repeated_splits_test",
}
COLUMNS = ["Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"]


class Options(Config, frozen=True):
    task: str = "emotion"
    # older copies of the CSVs are cp1252 (\x92 for ’); both are read
    encodings: tuple[str, ...] = ("utf-8", "cp1252")
    media: bool = True  # False: text only, even if clip folders exist


class Meld:
    name = "meld"
    version = "1"
    Options = Options

    def inputs(self, root: Path, opts: Options) -> list[Path]:
        return [root / f for f in FILES.values()]

    def load(self, root: Path, opts: Options) -> Loaded:
        parts = []
        for split, fname in FILES.items():
            frame = read_delimited(root / fname, COLUMNS, encodings=opts.encodings)
            parts.append(_rows(frame, split, root, opts.media))
        frame = pl.concat(parts, how="diagonal_relaxed")
        frame = encode_labels(frame, "Emotion", "emotion", EMOTIONS)
        frame = encode_labels(frame, "Sentiment", "sentiment", SENTIMENTS)
        tasks = {
            "emotion": TaskInfo(type="classification", column="emotion", classes=EMOTIONS),
            "sentiment": TaskInfo(type="classification", column="sentiment", classes=SENTIMENTS),
        }
        frame = finish(frame, tasks)
        modalities = ["text"] + [m for m in ("audio", "video") if frame[m].is_not_null().any()]
        return Loaded("meld", frame, tasks, modalities)


def _int_column(frame: pl.DataFrame, col: str) -> pl.Expr:
    row = first_row(frame, pl.col(col).str.strip_chars().cast(pl.Int64, strict=False).is_null())
    if row is not None:
        raise ErError(
            f"{col} '{row[col]}' is not an integer",
            at=row["source"],
            hint="MELD ids are whole numbers",
        )
    return pl.col(col).str.strip_chars().cast(pl.Int64)


def _rows(frame: pl.DataFrame, split: str, root: Path, media: bool) -> pl.DataFrame:
    frame = frame.with_columns(
        _int_column(frame, "Dialogue_ID").alias("_d"),
        _int_column(frame, "Utterance_ID").alias("_u"),
    )
    stem = pl.format("dia{}_utt{}", pl.col("_d"), pl.col("_u"))
    clip_dir = root / CLIP_DIRS[split]
    out = frame.select(
        pl.format("{}/{}", pl.lit(split), stem).alias("id"),
        pl.format("{}/dia{}", pl.lit(split), pl.col("_d")).alias("dialogue"),
        pl.col("_u").alias("turn"),
        pl.col("Speaker").str.strip_chars().fill_null("").alias("speaker"),
        pl.col("Utterance").str.strip_chars().alias("text"),
        pl.lit(split).alias("split"),
        "Emotion",
        "Sentiment",
        "source",
        stem.alias("_stem"),
    )
    if media and clip_dir.is_dir():
        present = {p.name for p in clip_dir.iterdir()}
        video = pl.format("{}/{}.mp4", pl.lit(CLIP_DIRS[split]), pl.col("_stem"))
        wav_names = [n[:-4] for n in present if n.endswith(".wav")]
        audio = (
            pl.when(pl.col("_stem").is_in(wav_names))
            .then(pl.format("{}/{}.wav", pl.lit(CLIP_DIRS[split]), pl.col("_stem")))
            .otherwise(video)
        )
        out = out.with_columns(video.alias("video"), audio.alias("audio"))
    return out.drop("_stem")
