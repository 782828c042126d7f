"""`er-data synth`: a SYNTHETIC dataset in MELD's layout, for tests and demos (never for claims).

Why it exists: the pipeline's tests need text, audio and video that carry a label, fast, with no
download. Why it looks the way it does: for each utterance and each modality independently, a
"cue label" is drawn: the true label with probability `p_<modality>`, else a uniformly random
class. The modality is rendered from its cue label plus continuous noise (text from templates,
audio from `synth_voice`, video from `synth_face`). So each modality alone is informative but
noisy, and the modalities err independently: fusing them beats any one, which is the property
the fusion tests check. The cue labels are written to `synth_cues.csv` (the MELD adapter ignores
it) so a test can compare a model with the best any model could do.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import msgspec
import numpy as np
from er_core import (
    Config,
    ErError,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    Probability,
    Progress,
    UsageError,
    atomic_dir,
    check_options,
    info,
    load_config,
    require,
)
from msgspec import Meta

from er_data import __version__
from er_data.adapters.meld import CLIP_DIRS, EMOTIONS, FILES

MODALITIES = ("text", "audio", "video")
SPEAKERS = ["Alex", "Blake", "Casey", "Drew", "Emery", "Finley", "Gray", "Harper", "Indy", "Jules"]
# per emotion, " | "-separated templates; {name}, {place}, {time} and {thing} are filled at random
_TEMPLATE_TEXT = """
neutral: I'll see you at {place} at {time}. | Did you get the {thing}? | {name} said it's on the
  table. | We moved it to {time}. | It's the one next to {place}.
joy: This is wonderful, I love the {thing}! | Yes! {name}, we did it! | I'm so happy you came to
  {place}! | Best day ever, thank you so much! | Ha, that's great news about the {thing}!
surprise: Wait, what? {name} did what? | No way! Really? | Oh my god, the {thing} is here? | Are
  you serious? At {time}? | Whoa, I did not see that coming!
anger: Stop it, {name}, I'm sick of this! | You broke my {thing} again! | How dare you say that
  to me! | Get out of {place}, right now! | This is ridiculous, I'm furious!
sadness: I miss {name} so much. | I lost the {thing}, and it hurts. | Nothing feels right since
  {time}. | I'm sorry, I just feel so alone. | It's over, I can't fix it.
disgust: Ew, that {thing} is gross. | Ugh, {name}, that's disgusting. | That smell in {place}
  makes me sick. | Yuck, don't touch me with that. | That's revolting, how could you eat it?
fear: I'm scared, {name}, something's in {place}. | Please don't leave me alone tonight. | What
  was that noise? I'm terrified. | Oh no, they're coming, hide! | I'm afraid of the {thing}.
"""
TEMPLATES = {
    label: [t.strip() for t in body.split(" | ")]
    for label, body in (
        block.split(": ", 1) for block in _TEMPLATE_TEXT.replace("\n  ", " ").strip().split("\n")
    )
}
SLOTS = {
    "place": ["the coffee house", "the apartment", "the museum", "work", "the airport"],
    "time": ["noon", "eight", "Tuesday", "the weekend", "tonight"],
    "thing": ["couch", "ticket", "sandwich", "letter", "duck"],
}
# label-free padding, so text is not a clean lookup either
PREFIXES = ["Okay, ", "So, ", "Well, ", "Um, ", "You know, ", "I mean, ", "Hey, "]
SUFFIXES = [" Anyway.", " Right?", " I guess.", " Let me get my coat.", " It's almost noon."]
# the sentiment of each emotion, as MELD annotates; surprise is either, drawn per utterance
SENTIMENT = {"neutral": "neutral", "joy": "positive"} | dict.fromkeys(
    ("anger", "sadness", "disgust", "fear"), "negative"
)
# MELD's columns, in order
CSV_COLUMNS = (  # noqa: SIM905
    "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,"
    "StartTime,EndTime"
).split(",")
# the plan's keys that fill the CSV columns before StartTime and EndTime
_CSV_KEYS = "serial text speaker label sentiment dialogue turn season episode".split()  # noqa: SIM905


class SynthOptions(Config, frozen=True):
    """`--set key=value` options of `er-data synth`, each with its range (a value out of it is
    a usage error naming the key). The upper bounds keep a demo set small enough to render."""

    p_text: Probability = 0.55  # chance a modality's cue label is the true label
    p_audio: Probability = 0.5
    p_video: Probability = 0.5
    noise: NonNegativeFloat = 1.0  # continuous noise on top of the cue label (0: clean)
    persistence: Probability = 0.3  # chance an utterance keeps the previous turn's emotion
    fps: Annotated[int, Meta(ge=1, le=60)] = 12
    size: Annotated[int, Meta(ge=48, le=1024)] = 160  # video frame side, pixels
    seconds: Annotated[float, Meta(gt=0.1, le=60.0)] = 1.0  # clip length
    dialogue_len: tuple[PositiveInt, PositiveInt] = (3, 8)  # utterances per dialogue, min, max
    # of dialogues: train, dev, test; a dev set big enough to select models on
    split: tuple[NonNegativeFloat, NonNegativeFloat, NonNegativeFloat] = (0.6, 0.2, 0.2)


class SynthArgs(msgspec.Struct, frozen=True):
    """The command's numeric options (`er-data synth -n N --seed S`) and their ranges."""

    utterances: Annotated[int, Meta(ge=3)]  # one dialogue per split at least
    seed: NonNegativeInt


def _check(o: SynthOptions) -> None:
    """What one field's range cannot say."""
    lo, hi = o.dialogue_len
    if lo > hi:
        raise UsageError(
            f"dialogue_len [{lo}, {hi}] has min > max",
            at="--set dialogue_len",
            hint="give [min, max] with min <= max, e.g. --set dialogue_len=[3,8]",
        )
    if sum(o.split) <= 0:
        raise UsageError(
            "split gives no dialogues to any split",
            at="--set split",
            hint="give shares of train, dev and test, e.g. --set split=[0.6,0.2,0.2]",
        )


def plan(utterances: int, o: SynthOptions, rng: np.random.Generator) -> list[dict]:
    """Every utterance's split, ids, speaker, labels and cue labels, before any rendering."""
    lo, hi = o.dialogue_len
    hi = min(hi, max(1, utterances // 3))  # at least three dialogues: one per split
    lengths: list[int] = []
    while sum(lengths) < utterances:
        lengths.append(int(rng.integers(min(lo, hi), hi + 1)))
    lengths[-1] -= sum(lengths) - utterances
    n = len(lengths)
    n_test = max(1, round(o.split[2] / sum(o.split) * n))
    n_dev = max(1, round(o.split[1] / sum(o.split) * n))
    splits = ["train"] * (n - n_dev - n_test) + ["dev"] * n_dev + ["test"] * n_test
    shifts = {s: float(rng.normal(0, 2.0)) for s in SPEAKERS}  # each voice's own pitch
    rows, next_id, serial = [], dict.fromkeys(FILES, 0), dict.fromkeys(FILES, 0)
    for length, split in zip(lengths, splits, strict=True):
        cast = [str(s) for s in rng.choice(SPEAKERS, size=int(rng.integers(2, 4)), replace=False)]
        season, episode = int(rng.integers(1, 11)), int(rng.integers(1, 25))
        clock = rng.uniform(60, 1200)  # seconds into the (imaginary) episode
        label = str(rng.choice(EMOTIONS))
        for turn in range(length):
            if turn and rng.uniform() >= o.persistence:
                label = str(rng.choice(EMOTIONS))
            cues = {
                m: label if rng.uniform() < getattr(o, f"p_{m}") else str(rng.choice(EMOTIONS))
                for m in MODALITIES
            }
            speaker = cast[turn % len(cast)] if rng.uniform() < 0.8 else str(rng.choice(cast))
            sentiment = SENTIMENT.get(label) or str(rng.choice(["positive", "negative"]))
            serial[split] += 1
            rows.append(
                {
                    "split": split,
                    "dialogue": next_id[split],
                    "turn": turn,
                    "serial": serial[split],
                    "speaker": speaker,
                    "shift": shifts[speaker],
                    "label": label,
                    "sentiment": sentiment,
                    "cues": cues,
                    "season": season,
                    "episode": episode,
                    "start": clock,
                    "end": clock + rng.uniform(1.0, 4.0),
                }
            )
            clock = rows[-1]["end"] + rng.uniform(0.1, 1.0)
        next_id[split] += 1
    return rows


def text(label: str, rng: np.random.Generator, noise: float) -> str:
    """An utterance from `label`'s templates, padded with label-free filler now and then."""
    line = str(rng.choice(TEMPLATES[label]))
    line = line.format(name=rng.choice(SPEAKERS), **{k: rng.choice(v) for k, v in SLOTS.items()})
    if rng.uniform() < 0.3 * noise:
        line = str(rng.choice(PREFIXES)) + line[0].lower() + line[1:]
    if rng.uniform() < 0.3 * noise:
        line += str(rng.choice(SUFFIXES))
    return line


def _clock(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def synth(
    out: Path,
    *,
    layout: str = "meld",
    utterances: int = 300,
    seed: int = 0,
    overrides: Sequence[str] = (),
    quiet: bool = False,
) -> Path:
    """Write a synthetic MELD-layout dataset of `utterances` utterances into `out` (new or empty).

    The same seed and options give byte-identical files. Returns `out`. `quiet`: no progress.
    """
    if layout != "meld":
        raise UsageError(f"unknown layout '{layout}'", hint="synth writes the meld layout only")
    check_options(SynthArgs, {"utterances": utterances, "seed": seed})
    try:
        o = load_config(SynthOptions, (), overrides)
    except ErError as e:  # every option comes from --set: a bad one is a usage error
        raise UsageError(e.what, at=e.at, hint=e.hint) from None
    _check(o)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ErError(
            "output folder exists and is not empty",
            at=str(out),
            hint="choose an empty or new folder, or remove this one",
        )
    # the faces are drawn and encoded with OpenCV, an optional extra: say so before any work
    require("cv2", "er-data synth (drawing the video clips)", "er-data")
    from er_data import synth_face, synth_voice

    began = time.perf_counter()
    rows = plan(utterances, o, np.random.default_rng(seed))
    with atomic_dir(out) as tmp:
        for folder in CLIP_DIRS.values():
            (tmp / folder).mkdir()
        for i, r in enumerate(rows):
            # one generator per utterance and modality: a modality's noise never shifts another's,
            # and the files do not depend on the order the threads below finish in
            r["text"] = text(r["cues"]["text"], np.random.default_rng([seed, i, 0]), o.noise)

        def render(i: int) -> None:
            r, gen = rows[i], lambda k: np.random.default_rng([seed, i, k])
            stem = tmp / CLIP_DIRS[r["split"]] / f"dia{r['dialogue']}_utt{r['turn']}"
            wav, mp4 = stem.with_suffix(".wav"), stem.with_suffix(".mp4")
            synth_voice.write_voice(wav, r["cues"]["audio"], gen(1), o.seconds, o.noise, r["shift"])
            synth_face.write_clip(
                mp4, r["cues"]["video"], gen(2), o.size, o.fps, o.seconds, o.noise
            )

        # OpenCV and numpy release the GIL in their heavy calls: threads give ~1.5x on 2 cores
        with (
            Progress(len(rows), "synth", unit="utt", quiet=quiet) as bar,
            ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool,
        ):
            for _ in pool.map(render, range(len(rows))):
                bar.update(1)
        _write_csvs(tmp, rows)
        _write_readme(tmp, o, seed, utterances)
    counts = {s: sum(r["split"] == s for r in rows) for s in FILES}
    info(
        f"synth: wrote {len(rows)} SYNTHETIC utterances (train {counts['train']}, dev "
        f"{counts['dev']}, test {counts['test']}) to {out} in {time.perf_counter() - began:.1f} s"
    )
    return out


def _write_csvs(folder: Path, rows: list[dict]) -> None:
    for split, name in FILES.items():
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(CSV_COLUMNS)
            for r in (r for r in rows if r["split"] == split):
                times = [_clock(r["start"]), _clock(r["end"])]
                w.writerow([*(r[k] for k in _CSV_KEYS), *times])
    with open(folder / "synth_cues.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "emotion", *(f"{m}_cue" for m in MODALITIES)])
        for r in rows:
            uid = f"{r['split']}/dia{r['dialogue']}_utt{r['turn']}"
            w.writerow([uid, r["label"], *(r["cues"][m] for m in MODALITIES)])


def _write_readme(folder: Path, o: SynthOptions, seed: int, utterances: int) -> None:
    settings = ", ".join(f"{k}={getattr(o, k)}" for k in o.__struct_fields__)
    (folder / "README.txt").write_text(
        "SYNTHETIC DATA - NOT A REAL DATASET.\n\n"
        f"Written by `er-data synth` (er-data {__version__}), seed {seed}, {utterances} utterances,\n"
        f"options: {settings}.\n\n"
        "It imitates MELD's folder layout and CSV columns so `er-data prepare meld` reads it, but the\n"
        "text comes from templates, the audio is a synthesised voice and the video a drawn face.\n"
        "For each utterance and modality a cue label is drawn (the true emotion with probability\n"
        "p_<modality>, else a random one) and that modality is rendered from it with noise, so each\n"
        "modality alone is informative but noisy and fusion beats any single one. synth_cues.csv\n"
        "lists the cue labels. Use it for tests and demos only; numbers measured on it say nothing\n"
        "about emotion recognition on real data.\n",
        encoding="utf-8",
    )
