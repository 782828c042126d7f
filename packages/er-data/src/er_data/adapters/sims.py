"""CH-SIMS in its official layout (Yu et al., ACL 2020); CH-SIMS v2 reads the same way.

    <root>/label.csv                          video_id, clip_id, text, label, label_T, label_A,
                                              label_V, annotation, mode
    <root>/Raw/<video_id>/<clip_id>.mp4       one clip per utterance: `Raw/video_0001/0001.mp4`

Decisions:
- Tasks: `regression` (the multimodal `label`, in [-1, 1]; the default), `regression_T`,
  `regression_A`, `regression_V` (the unimodal labels, when their columns are there), and
  `sentiment2`, `sentiment3`, `sentiment5` binned from `label` as MMSA does for SIMS: a value v
  is in class i when edges[i] < v <= edges[i + 1], so 0 is negative in `sentiment2` and -0.1 is
  negative, 0.1 neutral in `sentiment3`. The `annotation` column is not used (it is `label`'s
  sign, which `sentiment3` already gives with MMSA's neutral band).
- `mode` train / valid / test -> split train / dev / test.
- id `<video_id>/<clip_id>`, dialogue = the video, turn = the clip's rank in its video (numeric
  when clip ids are), speaker "" (SIMS does not name speakers).
- Video only: the clip's own sound track is its audio (audio = the clip, like MELD). A numeric
  clip id is formatted with `clip_name` (`{clip_id:04d}.mp4`: 1 -> 0001.mp4); when that file is
  missing but `<clip_id>.mp4` exists, that one is used. Without `Raw/` the table is text-only.
- A label that is not a number in [-1, 1] is an error naming its row of label.csv.
- The release assigns `mode` per clip, so a video's clips may fall in different splits. A
  dialogue never spans splits (context from a test clip must not reach a training clip), so such
  a video's clips in each split form their own dialogue, `<video_id>@<split>` (a warning counts
  them); a video wholly in one split is the dialogue `<video_id>`.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
from er_core import Config, ErError, TaskInfo, warn

from er_data.adapters.base import Loaded
from er_data.csvio import read_delimited
from er_data.table import finish, first_row

LABEL_FILE = "label.csv"
REQUIRED = ["video_id", "clip_id", "text", "label", "mode"]
UNIMODAL = {"regression_T": "label_T", "regression_A": "label_A", "regression_V": "label_V"}
SPLITS = {"train": "train", "valid": "dev", "val": "dev", "dev": "dev", "test": "test"}
# MMSA's bins for SIMS (metricsTop.py: ms_2, ms_3, ms_5) and our names for their classes
BINS = {
    "sentiment2": ([-1.01, 0.0, 1.01], ["negative", "positive"]),
    "sentiment3": ([-1.01, -0.1, 0.1, 1.01], ["negative", "neutral", "positive"]),
    "sentiment5": (
        [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01],
        ["strong_negative", "weak_negative", "neutral", "weak_positive", "strong_positive"],
    ),
}


class Options(Config, frozen=True):
    task: str = "regression"
    clip_name: str = "{clip_id:04d}.mp4"  # file name of a clip in Raw/<video_id>/
    # label.csv is UTF-8; a copy re-saved on a Chinese-locale Windows is GB18030 (GBK)
    encodings: tuple[str, ...] = ("utf-8", "gb18030")
    media: bool = True  # False: text only, even if Raw/ exists


class Sims:
    name = "sims"
    version = "2"
    Options = Options

    def inputs(self, root: Path, opts: Options) -> list[Path]:
        return [root / LABEL_FILE]

    def load(self, root: Path, opts: Options) -> Loaded:
        frame = read_delimited(root / LABEL_FILE, REQUIRED, encodings=opts.encodings)
        frame = frame.with_columns([pl.col(c).str.strip_chars() for c in ("video_id", "clip_id")])
        _check_ids(frame)
        targets = {"regression": "label"} | {
            task: col for task, col in UNIMODAL.items() if col in frame.columns
        }
        frame = frame.with_columns(
            [_target(frame, col).alias(task) for task, col in targets.items()]
        )
        tasks = {t: TaskInfo(type="regression", column=t) for t in targets}
        for task, (edges, classes) in BINS.items():
            frame = frame.with_columns(_binned(pl.col("regression"), edges, classes, task))
            tasks[task] = TaskInfo(type="classification", column=task, classes=classes)
        frame = frame.with_columns(
            pl.format("{}/{}", "video_id", "clip_id").alias("id"),
            _turns(frame).alias("turn"),
            pl.lit("").alias("speaker"),
            pl.col("text").str.strip_chars(),
            _splits(frame).alias("split"),
        )
        frame = frame.with_columns(_dialogues(frame))
        if opts.media and (root / "Raw").is_dir():
            clips = _clip_paths(root, frame, opts.clip_name)
            frame = frame.with_columns(
                pl.Series("video", clips, pl.String), pl.Series("audio", clips, pl.String)
            )
        frame = finish(frame, tasks)
        modalities = ["text"] + [m for m in ("audio", "video") if frame[m].is_not_null().any()]
        return Loaded("sims", frame, tasks, modalities)


def _check_ids(frame: pl.DataFrame) -> None:
    for col in ("video_id", "clip_id"):
        row = first_row(frame, pl.col(col).is_null() | (pl.col(col) == ""))
        if row is not None:
            raise ErError(
                f"empty {col}", at=row["source"], hint="every row of label.csv names its clip"
            )


def _target(frame: pl.DataFrame, col: str) -> pl.Series:
    """`col` as floats; anything that is not a number in [-1, 1] is an error naming its row."""
    values = []
    for raw, source in frame.select(col, "source").iter_rows():
        try:
            v = float(raw)
        except (TypeError, ValueError):
            v = math.nan
        if not -1.0 <= v <= 1.0:  # NaN fails this too
            raise ErError(
                f"{col} '{raw}' is not a number in [-1, 1]",
                at=source,
                hint="CH-SIMS sentiment labels run from -1 (negative) to 1 (positive)",
            )
        values.append(v)
    return pl.Series(col, values, pl.Float64)


def _dialogues(frame: pl.DataFrame) -> pl.Expr:
    """The video, or `<video_id>@<split>` for each split's part of a video that spans splits."""
    spans = pl.col("split").n_unique().over("video_id") > 1
    split_videos = frame.filter(spans)["video_id"].unique(maintain_order=True).to_list()
    if split_videos:
        shown = ", ".join(split_videos[:3]) + (", ..." if len(split_videos) > 3 else "")
        warn(
            f"CH-SIMS: {len(split_videos)} video(s) have clips in several splits ({shown}); "
            "each split's clips form their own dialogue, <video_id>@<split>"
        )
    split_id = pl.format("{}@{}", "video_id", "split")
    return pl.when(spans).then(split_id).otherwise(pl.col("video_id")).alias("dialogue")


def _turns(frame: pl.DataFrame) -> pl.Series:
    """Rank of each clip in its video, by number when clip ids are numbers (2 before 10)."""
    ranked = (
        frame.select("video_id", "clip_id")
        .with_row_index("_row")
        .sort("video_id", pl.col("clip_id").cast(pl.Int64, strict=False), "clip_id")
        .with_columns(pl.int_range(pl.len()).over("video_id").alias("turn"))
        .sort("_row")
    )
    return ranked["turn"]


def _binned(v: pl.Expr, edges: list[float], classes: list[str], task: str) -> list[pl.Expr]:
    """Class index and name of v: class i when edges[i] < v <= edges[i + 1]."""
    index = pl.when((v > edges[0]) & (v <= edges[1])).then(pl.lit(0, pl.Int32))
    for i in range(1, len(classes)):
        index = index.when((v > edges[i]) & (v <= edges[i + 1])).then(pl.lit(i, pl.Int32))
    index = index.otherwise(None)
    names = index.replace_strict(dict(enumerate(classes)), return_dtype=pl.String)
    return [index.alias(task), names.alias(f"{task}_name")]


def _splits(frame: pl.DataFrame) -> pl.Expr:
    mode = pl.col("mode").str.strip_chars().str.to_lowercase()
    row = first_row(frame, ~mode.is_in(list(SPLITS)) | mode.is_null())
    if row is not None:
        raise ErError(
            f"unknown mode '{row['mode']}'",
            at=row["source"],
            hint="CH-SIMS modes are train, valid and test",
        )
    return mode.replace_strict(SPLITS)


def _clip_paths(root: Path, frame: pl.DataFrame, template: str) -> list[str]:
    """Each row's clip, relative to root: `clip_name` first, then the bare `<clip_id>.mp4`."""
    out = []
    for video_id, clip_id, source in frame.select("video_id", "clip_id", "source").iter_rows():
        value: int | str = int(clip_id) if clip_id.isdigit() else clip_id
        try:
            name = template.format(clip_id=value, video_id=video_id)
        except (KeyError, IndexError, ValueError) as e:
            raise ErError(
                f"clip_name '{template}' does not fit clip_id '{clip_id}' ({e})",
                at=source,
                hint="set clip_name to a template of {clip_id} (and {video_id}), e.g. '{clip_id}.mp4'",
            ) from None
        rel = f"Raw/{video_id}/{name}"
        bare = f"Raw/{video_id}/{clip_id}.mp4"
        if not (root / rel).is_file() and (root / bare).is_file():
            rel = bare
        out.append(rel)
    return out
