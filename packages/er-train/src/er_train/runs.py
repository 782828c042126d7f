"""Run folders: where a run lives, its resumable state, and the finished run's manifest.

Layout under the runs root (`[run] root`, `--runs`):

    {category}/{dataset}--{task}/{method}--b{batch}--{loss}/{modalities}-{fusion}/{recipe hash[:12]}--{seed}/
        checkpoint.safetensors   last state: weights, optimizer, RNG; the RunState in metadata
        best.safetensors         weights of the best dev epoch so far (while training)
        weights.safetensors  ->  ../../…/.store/ab/ab…cd.safetensors   selected weights, stored once
        dev.safetensors, test.safetensors   predictions of the selected weights
        summary.txt              what the run is, in words: encoders, network, recipe (at start)
        metrics.csv              one row per finished epoch (train losses, dev metrics, lr)
        run.json                 the RunManifest, written last: its presence means "finished"
        failed.json              a run that diverged (NaN/inf loss or dev pass): never finished
        .lock                    the writer's lock (an flock; the kernel drops it when the
                                 process dies, so the file itself means nothing)

The recipe hash covers everything the result depends on but the seed: the network, the recipe
(optimizer, schedule, epochs, losses, method), the dataset and the features (er_core.recipe
lists the keys that are only labels: run.root, run.category, run.log, run.threads). So a sweep
over any key is a shell loop, every point in its own folder, and a run's seeds sit side by side.
`run.category` is only a label for grouping experiments. Weights are stored once by content
(store.py), so folders that train the same weights share one file.

One process writes a run folder at a time (`owned`): it holds the folder's lock from before the
"finished run?" check until run.json is written, so a second er-train aimed at the same folder
waits, then finds the first one's run.json (its own run: returned as is; another recipe: the
conflict error) or its checkpoint (its own: resumed; another: the conflict error).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import msgspec
from er_core import EpochRecord, ErError, FileRef, RunManifest, folder_lock, write_bytes_atomic

from er_train import distributed
from er_train.config import TrainConfig


class RunState(msgspec.Struct, kw_only=True):
    """Where training stands; saved inside each checkpoint, so both change in one rename."""

    run_id: str
    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # optimizer steps done in the current epoch
    global_step: int = 0
    loss_sum: float = 0.0  # train loss summed over the current epoch's batches so far
    loss_batches: int = 0
    loss_parts: dict[str, float] = {}  # each objective's loss summed like loss_sum
    best_score: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0  # epochs since the best, for patience
    stopped: bool = False  # early stopping fired
    seconds: float = 0.0  # training time spent before this process
    history: list[EpochRecord] = []


def run_dir(
    cfg: TrainConfig, dataset: str, task: str, tag: str, fusion: str, loss: str, recipe: str
) -> Path:
    r = cfg.run
    return (
        Path(r.root)
        / r.category
        / f"{dataset}--{task}"
        / f"{r.method}--b{cfg.train.batch_size}--{loss}"
        / f"{tag}-{fusion}"
        / f"{recipe[:12]}--{cfg.seed}"
    )


def root_of(folder: Path) -> Path:
    """The runs root a run folder sits in by the layout above (five levels up), for a run
    continued with `--resume` where it was moved: its weights go to that root's store."""
    parents = folder.resolve().parents
    return parents[4] if len(parents) > 4 else parents[0]


_decoder = msgspec.json.Decoder(RunManifest)
FAILED = "failed.json"


@contextlib.contextmanager
def owned(folder: Path) -> Iterator[None]:
    """Hold the run folder's writer lock for the block (waiting for another process that holds
    it). Under torchrun only rank 0 locks (the ranks are one writer; a second flock from rank 1
    would wait for rank 0 forever); the others wait at a barrier until it holds the lock, so
    every rank then reads the same folder state."""
    lock = folder_lock(folder, what="run folder") if distributed.is_main() else None
    with lock or contextlib.nullcontext():
        distributed.barrier()
        yield


class Failure(msgspec.Struct, kw_only=True):
    """failed.json: why a run stopped without finishing."""

    run_id: str
    error: str
    hint: str = ""
    epoch: int = 0
    step: int | None = None


def mark_failed(folder: Path, run_id: str, error: ErError, epoch: int, step: int | None) -> None:
    """Record that the run in `folder` failed (rank 0 writes; atomically, like every file)."""
    if distributed.is_main():
        f = Failure(run_id=run_id, error=error.what, hint=error.hint or "", epoch=epoch, step=step)
        write_bytes_atomic(folder / FAILED, msgspec.json.encode(f))


def check_not_failed(folder: Path) -> None:
    """A folder holding a failed run is refused until the user removes it: training is
    deterministic, so the same run would fail the same way again, and its checkpoint is kept to
    look at rather than trained on."""
    path = folder / FAILED
    if not path.is_file():
        return
    try:
        what = msgspec.json.decode(path.read_bytes(), type=Failure).error
    except msgspec.DecodeError:
        what = "unreadable failed.json"
    raise ErError(
        f"a run in this folder failed before ({what})",
        at=str(path),
        hint="change the recipe (e.g. lower train.lr, set train.grad_clip): it trains in a "
        "folder of its own; delete the folder to run this recipe again",
    )


def finished(folder: Path, run_id: str) -> RunManifest | None:
    """The manifest of a finished run with this id in `folder`, or None if not finished there."""
    path = folder / "run.json"
    if not path.is_file():
        return None
    try:
        manifest = _decoder.decode(path.read_bytes())
    except msgspec.DecodeError as e:  # written atomically by er-train: edited by hand
        raise ErError(
            f"run.json is not a RunManifest ({e})",
            at=str(path),
            hint="it was edited after the run; delete the run folder to train it again",
        ) from None
    if manifest.id != run_id:
        conflict(folder)
    return _moved(manifest, folder)


def _moved(m: RunManifest, folder: Path) -> RunManifest:
    """`m` with its own files' paths in `folder`, where the run is now: a runs root that was
    moved or copied keeps working (unchanged if the run has not moved)."""
    if m.run_dir == str(folder.resolve()):
        return m

    def here(ref: FileRef) -> FileRef:
        return msgspec.structs.replace(ref, path=str(folder.absolute() / Path(ref.path).name))

    return msgspec.structs.replace(
        m,
        run_dir=str(folder.resolve()),
        weights=here(m.weights) if m.weights is not None else None,
        predictions={k: here(v) for k, v in m.predictions.items()},
    )


def conflict(folder: Path) -> None:
    """The folder holds a run of another id: its recipe hash matches this run's, so it was made
    by another version of er-train (or it is a hash-prefix collision, 1 in 2^48)."""
    raise ErError(
        "another run is in this folder (same recipe hash, other run id: made by another version "
        "of er-train?)",
        at=str(folder),
        hint="move or delete that folder to train this run here, or use another --runs root",
    )
