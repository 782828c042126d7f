"""IEMOCAP in its official `IEMOCAP_full_release` layout (Busso et al., 2008).

    <root>/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt     labels (one file per dialogue)
    <root>/Session{1..5}/dialog/transcriptions/<dialog>.txt    transcripts
    <root>/Session{1..5}/sentences/wav/<dialog>/<utt>.wav      one WAV per utterance
    <root>/Session{1..5}/dialog/avi/DivX/<dialog>.avi          one video per dialogue

`<root>` may also be the folder that holds `IEMOCAP_full_release/`; media paths then start with
`IEMOCAP_full_release/` (they are always relative to `--root`).

An EmoEvaluation label line is `[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[v, a, d]`;
its other lines (`C-E1:`, `A-E1:`, `%` headers, blanks) are annotator detail and are skipped. A
transcript line is `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`; lines that are not
(`M: breathing`) are skipped, and so are transcripts of unlabelled turns (`..._MXX1`).

Decisions:
- Tasks `emotion6` (hap, sad, neu, ang, exc, fru: the conversation-level setup of DialogueRNN,
  COSMIC, MMGCN, ...) and `emotion4` (hap, sad, neu, ang, with exc merged into hap and fru
  unlabelled: the speech-emotion setup). Default `emotion6`, as er is built for conversations.
- Utterances labelled anything else (xxx = no agreement, sur, fea, dis, oth) are not in the table.
- `turn` orders the dialogue's turns by start time; `prepare` renumbers the turns in the table
  from 0 before it keeps the rows of one task, so a turn is the same whatever the task.
- A labelled utterance with no (or an empty) transcript is dropped with one warning that counts
  them: a damaged copy still prepares, and the loss is visible. A whole missing transcription
  file is an error.
- Split: `test_session` (default 5) is test; the other sessions are train, with `dev_fraction` of
  their dialogues (whole dialogues, never single turns) drawn as dev by `random.Random(seed)`
  over the sorted dialogue names, so a seed always gives the same dev set.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import polars as pl
from er_core import Config, ErError, NonNegativeInt, TaskInfo, warn
from msgspec import Meta

from er_data.adapters.base import Loaded
from er_data.csvio import decode
from er_data.table import Fraction, encode_labels, finish

EMOTION6 = ["hap", "sad", "neu", "ang", "exc", "fru"]
EMOTION4 = ["hap", "sad", "neu", "ang"]
RELEASE = "IEMOCAP_full_release"
SESSIONS = range(1, 6)

# `[6.2901 - 8.2357]  Ses01F_impro01_F000  neu  [2.5000, 2.5000, 2.5000]`
_LABEL = re.compile(
    r"\[\s*(?P<start>[-+0-9.eE]+)\s*-\s*(?P<end>[-+0-9.eE]+)\s*\]\s+(?P<utt>\S+)\s+(?P<label>\S+)"
    r"(?:\s+\[[^\]]*\])?\s*"
)
# `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`
_TRANSCRIPT = re.compile(r"(?P<utt>\S+)\s+\[[^\]]*\]:\s?(?P<text>.*)")


class Options(Config, frozen=True):
    task: str = "emotion6"
    test_session: Annotated[int, Meta(ge=1, le=5)] = 5  # leave-one-session-out evaluation
    dev_fraction: Fraction = 0.1  # share of the training dialogues held out as dev, in [0, 1)
    seed: NonNegativeInt = 0  # draws the dev dialogues
    encodings: tuple[str, ...] = ("utf-8", "cp1252")
    media: bool = True  # False: text only, even if the WAV and AVI folders exist


@dataclass
class _Turn:
    utt: str
    start: float
    end: float
    label: str
    source: str


class Iemocap:
    name = "iemocap"
    version = "1"
    Options = Options

    def inputs(self, root: Path, opts: Options) -> list[Path]:
        files = []
        for session in _sessions(root).values():
            for emo in _dialog_files(session):
                files += [emo, session / "dialog" / "transcriptions" / emo.name]
        return sorted(files)

    def load(self, root: Path, opts: Options) -> Loaded:
        sessions = _sessions(root)
        if opts.test_session not in sessions:
            raise ErError(
                f"Session{opts.test_session} not found (test_session = {opts.test_session})",
                at=str(root),
                hint=f"found {', '.join(f'Session{n}' for n in sessions)}; set test_session",
            )
        if len(sessions) < 5:
            warn(f"IEMOCAP: only {', '.join(f'Session{n}' for n in sessions)} found under {root}")
        rows: list[dict] = []
        untranscribed: list[str] = []
        for n, session in sessions.items():
            for emo in _dialog_files(session):
                rows += _dialog_rows(root, n, emo, opts, untranscribed)
        if untranscribed:
            warn(
                f"IEMOCAP: dropped {len(untranscribed)} labelled utterances with no transcript"
                f" ({', '.join(untranscribed[:3])}{', ...' if len(untranscribed) > 3 else ''})"
            )
        frame = pl.DataFrame(rows, infer_schema_length=None)
        if frame.is_empty():
            raise ErError(
                "no labelled utterances found", at=str(root), hint="check the EmoEvaluation files"
            )
        frame = frame.filter(pl.col("label").is_in(EMOTION6))  # xxx, sur, fea, dis, oth: out
        frame = _assign_splits(frame, opts)
        frame = encode_labels(frame, "label", "emotion6", EMOTION6)
        frame = encode_labels(frame, "label", "emotion4", EMOTION4, {"exc": "hap", "fru": ""})
        tasks = {
            "emotion6": TaskInfo(type="classification", column="emotion6", classes=EMOTION6),
            "emotion4": TaskInfo(type="classification", column="emotion4", classes=EMOTION4),
        }
        frame = finish(frame.sort("dialogue", "turn"), tasks)
        modalities = ["text"] + [m for m in ("audio", "video") if frame[m].is_not_null().any()]
        return Loaded("iemocap", frame, tasks, modalities)


def _sessions(root: Path) -> dict[int, Path]:
    """Session number -> folder, looking in `root` and then in `root/IEMOCAP_full_release`."""
    for base in (root, root / RELEASE):
        found = {n: base / f"Session{n}" for n in SESSIONS if (base / f"Session{n}").is_dir()}
        if found:
            return found
    raise ErError(
        "no Session1..5 folders found under root",
        at=str(root),
        hint=f"pass the {RELEASE} folder (the one holding Session1 ... Session5) as --root",
    )


def _dialog_files(session: Path) -> list[Path]:
    folder = session / "dialog" / "EmoEvaluation"
    if not folder.is_dir():
        raise ErError(
            "EmoEvaluation folder not found",
            at=str(folder),
            hint=f"each Session folder of {RELEASE} holds dialog/EmoEvaluation/<dialog>.txt",
        )
    # `._x.txt` are macOS resource forks that many copies of the release carry: not label files
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("."))


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _labels(root: Path, path: Path, encodings: tuple[str, ...]) -> list[_Turn]:
    turns = []
    name = _rel(root, path)
    for n, line in enumerate(decode(path, encodings).splitlines(), start=1):
        line = line.strip()
        if not line.startswith("["):  # annotator lines, `%` headers, blanks
            continue
        m = _LABEL.fullmatch(line)
        try:
            start, end = float(m["start"]), float(m["end"])  # type: ignore[index]
        except (TypeError, ValueError):
            start = end = float("nan")
        if m is None or not 0 <= start <= end:
            raise ErError(
                f"malformed label line '{line[:60]}'",
                at=f"{name}:line {n}",
                hint="label lines read `[start - end]<TAB>utterance<TAB>label<TAB>[v, a, d]`",
            )
        turns.append(_Turn(m["utt"], start, end, m["label"].lower(), f"{name}:line {n}"))
    return turns


def _transcripts(path: Path, encodings: tuple[str, ...]) -> dict[str, str]:
    if not path.is_file():
        raise ErError(
            "transcription file not found",
            at=str(path),
            hint="every dialog/EmoEvaluation/<dialog>.txt needs its dialog/transcriptions/<dialog>.txt",
        )
    out = {}
    for line in decode(path, encodings).splitlines():
        m = _TRANSCRIPT.fullmatch(line.strip())
        if m:  # anything else (`M: breathing`) is not an utterance
            out[m["utt"]] = m["text"].strip()
    return out


def _dialog_rows(
    root: Path, n: int, emo: Path, opts: Options, untranscribed: list[str]
) -> list[dict]:
    """The rows of one dialogue; appends to `untranscribed` the labelled turns with no text."""
    session, dialog = emo.parents[2], emo.stem
    turns = sorted(_labels(root, emo, opts.encodings), key=lambda t: (t.start, t.utt))
    texts = _transcripts(session / "dialog" / "transcriptions" / emo.name, opts.encodings)
    wav_dir = session / "sentences" / "wav"
    avi = session / "dialog" / "avi" / "DivX" / f"{dialog}.avi"
    # A missing media folder means a text-only copy; a missing file in a present folder is a
    # media issue that prepare() reports.
    has_wav = opts.media and wav_dir.is_dir()
    has_avi = opts.media and avi.parent.is_dir()
    rows = []
    for turn, t in enumerate(turns):
        if not texts.get(t.utt):
            if t.label in EMOTION6:  # others are dropped anyway: no need to warn about them
                untranscribed.append(t.utt)
            continue
        rows.append(
            {
                "id": t.utt,
                "dialogue": dialog,
                "turn": turn,
                # `Ses01M_impro01_F003` is spoken by session 1's woman, whoever leads the dialogue
                "speaker": f"{t.utt[:5]}_{t.utt.rsplit('_', 1)[-1][:1]}",
                "text": texts[t.utt],
                "session": n,
                "label": t.label,
                "audio": _rel(root, wav_dir / dialog / f"{t.utt}.wav") if has_wav else None,
                "video": _rel(root, avi) if has_avi else None,
                "video_start": t.start if has_avi else None,
                "video_end": t.end if has_avi else None,
                "source": t.source,
            }
        )
    return rows


def _assign_splits(frame: pl.DataFrame, opts: Options) -> pl.DataFrame:
    train = sorted(frame.filter(pl.col("session") != opts.test_session)["dialogue"].unique())
    n_dev = round(opts.dev_fraction * len(train))
    if opts.dev_fraction > 0 and len(train) > 1:
        n_dev = min(max(n_dev, 1), len(train) - 1)  # a dev set when asked, and some training
    dev = random.Random(opts.seed).sample(train, n_dev)
    split = (
        pl.when(pl.col("session") == opts.test_session)
        .then(pl.lit("test"))
        .when(pl.col("dialogue").is_in(dev))
        .then(pl.lit("dev"))
        .otherwise(pl.lit("train"))
    )
    return frame.with_columns(split.alias("split")).drop("session")
