"""Loose clips with no labels: new utterances for a trained run to classify (`er-eval predict`).

    er-data prepare files --text "I love it" --audio a.wav --video v.mp4    one utterance
    er-data prepare files --video a.mp4 --video b.mp4                        two, in this order
    er-data prepare files DIR                                                a folder of clips

Named on the command line, each of --text, --audio and --video is given once per utterance or
not at all (`""` leaves one utterance without it); the root is the folder that holds every named
file, and the table's paths are relative to it. A folder holds one utterance per file stem, in
sorted order: `.wav .flac .mp3` audio, `.mp4 .avi .mov .mkv` video, and a `.txt` of the same
stem is its transcript (a stem with only a `.txt` is a text-only utterance; other files are not
read). A video without an audio file of its own gives its sound track as the audio, as MELD's
clips do. Ids are the file stems (`#2`, `#3` ... on a repeated stem; `u1`, `u2` ... for text
alone).

Decisions:
- No labels: the table's one task (`--task`, default "emotion") is a classification with no
  classes and a null label in every row. The classes come from the run that predicts it; er-data's
  checks read "a classification task without classes" as "unlabelled" (check.has_labels).
- Every row is in the test split: `er-eval predict` predicts every split, and a context model
  batches each split's dialogues, so one split keeps the clips together; "test" because that is
  what these clips are to the run, data it never saw. (er-train refuses the table: its rows
  have no label.)
- Each clip is its own dialogue (turn 0): unrelated clips must not be context for one another.
  `--dialogue NAME` (option `dialogue`) makes them one conversation, in the given order.
- The clips' bytes are the adapter's inputs (hashed into the output's id), not only their names
  and sizes: the same name with a new recording is new data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import polars as pl
from er_core import Config, ErError, TaskInfo, UsageError

from er_data import media
from er_data.adapters.base import Loaded
from er_data.table import BASE_COLUMNS, MEDIA_COLUMNS, finish

AUDIO = (".wav", ".flac", ".mp3")
VIDEO = (".mp4", ".avi", ".mov", ".mkv")
TEXT = ".txt"
SPLIT = "test"


class Options(Config, frozen=True):
    task: str = "emotion"
    # one entry per utterance, in order; "" = this utterance has none. All empty: read the
    # folder (--root) instead. Paths are relative to the root.
    text: tuple[str, ...] = ()
    audio: tuple[str, ...] = ()
    video: tuple[str, ...] = ()
    dialogue: str = ""  # "" = each clip its own dialogue; a name = one dialogue, in order


class Files:
    name = "files"
    version = "1"
    Options = Options

    def inputs(self, root: Path, opts: Options) -> list[Path]:
        rows = _rows(root, opts)
        return [root / rel for r in rows for rel in (r["audio"], r["video"], r["_txt"]) if rel]

    def load(self, root: Path, opts: Options) -> Loaded:
        reserved = {*BASE_COLUMNS, *MEDIA_COLUMNS, "source"}
        if opts.task in reserved or opts.task.endswith("_name") or not opts.task.isidentifier():
            raise UsageError(
                f"'{opts.task}' cannot name a task", at="--task", hint="use a name like emotion"
            )
        rows = _rows(root, opts)
        frame = pl.DataFrame(rows).drop("_txt")
        frame = frame.with_columns(
            pl.lit(SPLIT).alias("split"),
            pl.lit("").alias("speaker"),
            pl.lit(None, dtype=pl.Int32).alias(opts.task),
            pl.lit(None, dtype=pl.String).alias(f"{opts.task}_name"),
        )
        if opts.dialogue:
            frame = frame.with_columns(
                pl.lit(opts.dialogue).alias("dialogue"), pl.int_range(pl.len()).alias("turn")
            )
        else:
            frame = frame.with_columns(pl.col("id").alias("dialogue"), pl.lit(0).alias("turn"))
        tasks = {opts.task: TaskInfo(type="classification", column=opts.task, classes=[])}
        frame = finish(frame, tasks)
        modalities = [m for m in ("audio", "video") if frame[m].is_not_null().any()]
        if (frame["text"] != "").any():
            modalities.insert(0, "text")
        return Loaded("files", frame, tasks, modalities)


def _rows(root: Path, opts: Options) -> list[dict]:
    named = [opts.text, opts.audio, opts.video]
    rows = _named(root, opts) if any(named) else _folder(root)
    if not rows:
        raise ErError(
            "no clips to prepare",
            at=str(root),
            hint=f"put {', '.join(AUDIO + VIDEO)} or {TEXT} files in the folder, or name them "
            "with --audio, --video, --text",
        )
    seen: dict[str, int] = {}
    for row in rows:  # a stem met again (clips from two folders) gets a number
        n = seen[row["id"]] = seen.get(row["id"], 0) + 1
        if n > 1:
            row["id"] = f"{row['id']}#{n}"
    return rows


def _named(root: Path, opts: Options) -> list[dict]:
    """One row per utterance named in the options (each list empty or one entry per utterance)."""
    n = max(len(opts.text), len(opts.audio), len(opts.video))
    for key in ("text", "audio", "video"):
        given = len(getattr(opts, key))
        if given not in (0, n):
            raise UsageError(
                f"--{key} is given for {given} of {n} utterances",
                at=f"--{key}",
                hint=f'give --{key} once per utterance, in order (--{key} "" for none), or not '
                "at all",
            )
    rows = []
    for i in range(n):
        text = opts.text[i].strip() if opts.text else ""
        audio = (opts.audio[i] if opts.audio else "") or None
        video = (opts.video[i] if opts.video else "") or None
        for rel in (audio, video):
            if rel and not (root / rel).is_file():
                raise ErError("clip not found", at=str(root / rel), hint="check the path")
        if not (text or audio or video):
            raise UsageError(
                f"utterance {i + 1} has no text, audio or video",
                at="--text",
                hint="give each utterance at least one of them",
            )
        first = video or audio
        stem = Path(first).stem if first else f"u{i + 1}"
        source = f"{first or '--text'} (utterance {i + 1})"
        rows.append(_row(root, stem, text, audio, video, None, source))
    return rows


def _folder(root: Path) -> list[dict]:
    """One row per file stem of the folder (not its subfolders), in sorted order."""
    stems: dict[str, dict[str, list[str]]] = {}
    for p in sorted(root.iterdir()):
        suffix = p.suffix.lower()
        kind = "audio" if suffix in AUDIO else "video" if suffix in VIDEO else None
        kind = "text" if suffix == TEXT else kind
        if kind is None or p.name.startswith(".") or not p.is_file():
            continue
        stems.setdefault(p.stem, {}).setdefault(kind, []).append(p.name)
    rows = []
    for stem, found in stems.items():
        for kind, names in found.items():
            if len(names) > 1:
                raise ErError(
                    f"clip '{stem}' has {len(names)} {kind} files: {', '.join(names)}",
                    at=str(root / names[0]),
                    hint=f"keep one {kind} file per stem (rename the others)",
                )
        txt = found.get("text", [None])[0]
        text = _read_text(root / txt) if txt else ""
        audio, video = found.get("audio", [None])[0], found.get("video", [None])[0]
        source = video or audio or txt
        rows.append(_row(root, stem, text, audio, video, txt, source))
    return rows


def _row(root, stem, text, audio, video, txt, source) -> dict:
    if audio is None and video is not None and _has_sound(root / video):
        audio = video  # the clip's own sound track
    return {
        "id": stem,
        "text": text,
        "audio": audio,
        "video": video,
        "source": source,
        "_txt": txt,
    }


def _has_sound(path: Path) -> bool:
    """True if the video has an audio stream (or PyAV is missing and cannot say: extraction,
    which needs it, then reports a clip without one)."""
    return not media.have_decoder() or media.probe(path, "audio") is None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise ErError(
            "transcript is not UTF-8 text", at=str(path), hint="save the .txt file as UTF-8"
        ) from None


def named_clips(
    text: Sequence[str], audio: Sequence[str | Path], video: Sequence[str | Path]
) -> tuple[Path, list[str]]:
    """Clips named on the command line -> (root, `--set` overrides for the options).

    The root is the deepest folder that holds every named file (the working folder for text
    alone); each path is made relative to it, links resolved. A missing file is an error that
    names it as it was given."""
    resolved: dict[str, list[str | None]] = {}
    for key, paths in (("audio", audio), ("video", video)):
        out: list[str | None] = []
        for p in paths:
            if str(p) == "":
                out.append(None)
                continue
            if not Path(p).is_file():
                raise ErError(
                    f"{key} clip not found", at=str(p), hint="check the path (a file, not a folder)"
                )
            out.append(os.path.realpath(p))
        resolved[key] = out
    files = [p for ps in resolved.values() for p in ps if p]
    root = Path(os.path.commonpath([os.path.dirname(p) for p in files])) if files else Path.cwd()
    sets = [f"text={_toml_list(text)}"] if text else []
    for key, ps in resolved.items():
        if ps:
            rels = [os.path.relpath(p, root) if p else "" for p in ps]
            sets.append(f"{key}={_toml_list(rels)}")
    return root, sets


def toml_string(value: str) -> str:
    """`value` as a TOML basic string: what `--set key=<this>` reads back as `value`."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(toml_string(v) for v in values) + "]"
