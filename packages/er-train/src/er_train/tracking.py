"""What a run shows while it trains: `metrics.csv` in the run folder (always) and TensorBoard
event files under `<run folder>/tensorboard/` (with `[run] log = ["tensorboard"]`), both made
from the run's epoch records, the same records run.json ends with.

metrics.csv has one row per finished epoch:

    epoch, train/loss, train/<objective>..., dev/<task>/<metric>..., lr, seconds, best

`train/<objective>` is each objective's weighted term of the training loss, mean per batch (the
task losses by task name, the `[aux]` objectives by their names, `kd` for distillation,
`branch/<modality>` for the per-modality branches): they sum to `train/loss`. `best` is true
when the dev selection metric improved that epoch; the last such row is the selected epoch.

Why the whole file is rewritten (atomically) after each epoch's checkpoint, not appended to:
a rename is atomic and an append is not, so a reader polling the file mid-run (polars, a
plotting script) sees the previous complete file or the new one, never half a row. And the rows
are the checkpoint's history: a resumed run rewrites the file from it, so no epoch appears twice
and the finished file holds exactly run.json's `epochs`.

TensorBoard's event files can only be appended to. A run (fresh or resumed) opens its writer
with `purge_step=1` and writes its whole history again: TensorBoard's readers drop the points an
earlier process wrote at steps >= 1, so each epoch shows once, whatever a kill left behind.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from er_core import EpochRecord, require, write_bytes_atomic

from er_train.scoring import better

CSV = "metrics.csv"
TENSORBOARD = "tensorboard"


def summary_writer_class() -> Any:
    """torch's SummaryWriter, or the one-line error naming the `tensorboard` extra."""
    require("tensorboard", "TensorBoard logging", "er-train")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter


def check_loggers(log: Sequence[str]) -> None:
    """Fail before any work (and before the run folder exists) if a logger's package is
    missing: a run should not train for an hour and then refuse to log."""
    if TENSORBOARD in log:
        summary_writer_class()


def improvements(history: Sequence[EpochRecord], select: str, higher: bool) -> list[bool]:
    """For each epoch, whether its dev `select` metric beat every earlier epoch's (the `*` of
    the epoch line); recomputed from the records, so a resumed run flags the same epochs."""
    best, flags = None, []
    for record in history:
        score = record.dev[select]
        flags.append(better(score, best, higher))
        if flags[-1]:
            best = score
    return flags


def _keys(dicts: Sequence[dict[str, float]]) -> list[str]:
    """Every key of `dicts`, in order of first appearance."""
    return list(dict.fromkeys(k for d in dicts for k in d))


def scalars(record: EpochRecord) -> dict[str, float]:
    """An epoch's numbers as metrics.csv and TensorBoard name them (no epoch, seconds, best)."""
    return (
        {"train/loss": record.train_loss}
        | {f"train/{k}": v for k, v in record.losses.items()}
        | {f"dev/{k}": v for k, v in record.dev.items()}
        | {"lr": record.lr}
    )


def metrics_csv(history: Sequence[EpochRecord], select: str, higher: bool) -> bytes:
    """The metrics.csv of these epochs (header only if there are none yet). Floats are written
    as Python's shortest round-trip repr, so a reader gets run.json's numbers exactly."""
    parts = _keys([r.losses for r in history])
    dev = _keys([r.dev for r in history])
    header = ["epoch", "train/loss", *(f"train/{p}" for p in parts)]
    header += [*(f"dev/{m}" for m in dev), "lr", "seconds", "best"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    for record, best in zip(history, improvements(history, select, higher), strict=True):
        values = scalars(record)
        row = [record.epoch, *(values.get(h, "") for h in header[1:-2])]
        w.writerow([*row, record.seconds, "true" if best else "false"])
    return out.getvalue().encode()


class Tracker:
    """Writes metrics.csv (and TensorBoard events, if asked) for the run in `folder`.
    `enabled` False (ranks other than 0 under torchrun) writes nothing."""

    def __init__(
        self, folder: Path, select: str, higher: bool, log: Sequence[str], enabled: bool = True
    ):
        self.folder, self.select, self.higher, self.enabled = folder, select, higher, enabled
        self.writer = None
        if enabled and TENSORBOARD in log:
            writer = summary_writer_class()
            self.writer = writer(log_dir=str(folder / TENSORBOARD), purge_step=1)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, history: Sequence[EpochRecord]) -> None:
        """Before training (fresh or resumed): the files say what the checkpoint says."""
        if not self.enabled:
            return
        if history:
            self._write_csv(history)
        else:  # left by a run whose checkpoint is gone: not this run's epochs
            (self.folder / CSV).unlink(missing_ok=True)
        for record in history:
            self._add(record)
        self._flush()

    def epoch(self, history: Sequence[EpochRecord]) -> None:
        """After an epoch's checkpoint: its row and its points (the last of `history`)."""
        if not self.enabled:
            return
        self._write_csv(history)
        self._add(history[-1])
        self._flush()

    def _write_csv(self, history: Sequence[EpochRecord]) -> None:
        write_bytes_atomic(self.folder / CSV, metrics_csv(history, self.select, self.higher))

    def _add(self, record: EpochRecord) -> None:
        if self.writer is not None:
            for tag, value in scalars(record).items():
                self.writer.add_scalar(tag, value, global_step=record.epoch)

    def _flush(self) -> None:
        if self.writer is not None:  # readable now, not at the writer's next timed flush
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
