"""Data-parallel training across processes: `torchrun --nproc-per-node N -m er_train ...`.

torchrun starts N copies of er-train and sets RANK, WORLD_SIZE and LOCAL_RANK; WORLD_SIZE absent
or 1 is a single process and nothing here changes what it does. With N > 1:

- the process group is gloo on the CPU, nccl on CUDA (`--device cuda`: rank r trains on
  cuda:{LOCAL_RANK}); `launch` opens it and closes it at the end, on errors too;
- every rank walks the same global batches (same seed, same epoch order) and takes every N-th
  group (dialogue, or utterance without a context model) of each: `train.batch_size` stays the
  GLOBAL batch size, so N processes see exactly the batches one process would;
- the model is wrapped in DistributedDataParallel, which averages the ranks' gradients. Rank r's
  mean loss over its n_r utterances is scaled by N·n_r/n (n: the global batch's utterances), so
  the average is the gradient of the global batch's mean loss. That is exact for losses that are
  a mean over utterances (ce without class weights, l1, mse, focal); class-weighted ce (a
  weighted mean), batch-level terms (the contrastive [aux] objectives, the MoE balance loss,
  DIST's intra-class term) are computed over each rank's share and so only come close;
- a rank whose share of a batch is empty (a batch with fewer groups than ranks) runs the batch's
  first group with weight 0, so it still joins the gradient all-reduce;
- buffers (the contrastive pools and prototypes) are broadcast from rank 0 at each forward
  (DDP's default): every rank holds the same state, which the checkpoint saves whole, but the
  pools are fed by rank 0's share of each batch alone;
- dropout: the ranks start from the same seed (the same initial weights, which DDP broadcasts
  from rank 0 anyway), then each rank's training RNG is reseeded at every optimizer step from
  (seed, rank, step). So the ranks draw independent masks (one seed everywhere would drop the
  same units on every rank) and a resumed run draws exactly what the uninterrupted one did (a
  checkpoint holds one RNG state, rank 0's). A run with dropout on N processes therefore is not
  bit for bit the 1-process run; with every dropout at 0 it matches to float rounding;
- dev and test passes: each rank predicts a contiguous block of the groups; the outputs are
  gathered in rank order, which is the single process's row order, so every rank computes the
  same metrics and takes the same selection and early-stopping decisions;
- a fine-tuned text tower (run methods L and T) runs outside the DDP wrapper, before the model:
  its trainable weights are broadcast from rank 0 at the start and its gradients averaged over
  the ranks before each optimizer step (`average_gradients`), as DDP does for the model;
- only rank 0 writes (checkpoints, best weights, predictions, the store, run.json) and prints the
  manifest; the others wait at a barrier where they read what it wrote.

The run id and folder do not depend on N: the same run on 1 or 2 processes is one experiment.
The RunManifest's `device` says how it ran, e.g. "cpu x2".

`er-train` is a console script, not a file: start it as `torchrun ... -m er_train ARGS` or
`torchrun ... --no-python er-train ARGS`. Every rank reads the input stream, so it must be a file
argument (stdin cannot be shared).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from er_core import ErError, UsageError
from torch import nn

from er_train.batches import Batch, make_batch
from er_train.data import Split


@dataclass(frozen=True)
class World:
    """This process's place in the job: rank `rank` of `size`, GPU `local_rank` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ErError(
            f"environment variable {name}={value!r} is not an integer",
            at=f"${name}",
            hint="start distributed runs with torchrun, which sets RANK, WORLD_SIZE, LOCAL_RANK",
        ) from None


def env_world() -> World:
    """The job torchrun describes in the environment (a single process when it says nothing)."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    return World(rank, size, _env_int("LOCAL_RANK", rank))


def active() -> bool:
    """A process group of more than one process is open."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def world() -> World:
    """This process's place in the open process group (a single process when none is open)."""
    if not active():
        return World()
    d = torch.distributed
    return World(d.get_rank(), d.get_world_size(), _env_int("LOCAL_RANK", d.get_rank()))


def is_main() -> bool:
    return world().main


def _device_for(device: str, w: World) -> str:
    """The device rank `w.rank` trains on: its own GPU for `--device cuda`."""
    if not device.startswith("cuda"):
        return device
    if device != "cuda":
        raise UsageError(
            f"--device {device} under torchrun: every process would use that one GPU",
            at="--device",
            hint="pass --device cuda: process r trains on cuda:LOCAL_RANK",
        )
    if not torch.cuda.is_available() or w.local_rank >= torch.cuda.device_count():
        raise UsageError(
            f"process {w.rank} needs cuda:{w.local_rank}, torch sees "
            f"{torch.cuda.device_count() if torch.cuda.is_available() else 0} CUDA device(s)",
            at="--device",
            hint="start at most one process per GPU (torchrun --nproc-per-node), or --device cpu",
        )
    return f"cuda:{w.local_rank}"


@contextlib.contextmanager
def launch(device: str) -> Iterator[str]:
    """Join the job the environment describes, for the duration of the block; yields the device
    this process trains on. A single process (WORLD_SIZE absent or 1) yields `device` as is and
    opens nothing; a process group opened by the caller is used as it is, and left open."""
    w = env_world()
    if w.size <= 1:
        yield device
        return
    here = _device_for(device, w)
    d = torch.distributed
    if not d.is_available():
        raise ErError(
            f"WORLD_SIZE={w.size}, but this torch build has no torch.distributed",
            at="$WORLD_SIZE",
            hint="run a single process (plain er-train), or install a torch with distributed",
        )
    if d.is_initialized():
        yield here
        return
    cuda = here.startswith("cuda")
    if cuda:
        torch.cuda.set_device(w.local_rank)
    try:
        d.init_process_group(
            "nccl" if cuda else "gloo", device_id=torch.device(here) if cuda else None
        )
    except ValueError as e:  # env:// rendezvous without MASTER_ADDR / MASTER_PORT
        raise ErError(
            f"cannot join the job of WORLD_SIZE={w.size}: {e}",
            at="$MASTER_ADDR",
            hint="start distributed runs with torchrun, which sets MASTER_ADDR and MASTER_PORT",
        ) from None
    try:
        yield here
    finally:
        d.destroy_process_group()


def device_label(device: str) -> str:
    """The RunManifest's `device`: as given in a single process, "<type> xN" across N ranks."""
    w = world()
    return device if w.size == 1 else f"{torch.device(device).type} x{w.size}"


def _comm_device() -> torch.device:
    """Where collectives' tensors live: the current GPU for nccl, the CPU for gloo."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    if active():
        torch.distributed.barrier()


def sum_float(value: float) -> float:
    """The sum of `value` over the ranks (`value` itself in a single process)."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_comm_device())
    torch.distributed.all_reduce(t)
    return float(t.item())


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Every rank's `t` concatenated along dim 0 in rank order, on `t`'s device. The ranks'
    tensors may differ in their first dimension only (each is padded to the longest for the
    all_gather, then cut back)."""
    if not active():
        return t
    size, dev = torch.distributed.get_world_size(), _comm_device()
    x = t.to(dev).contiguous()
    n = torch.tensor([x.shape[0]], dtype=torch.long, device=dev)
    counts = [torch.zeros_like(n) for _ in range(size)]
    torch.distributed.all_gather(counts, n)
    lengths = [int(c.item()) for c in counts]
    padded = x.new_zeros((max(lengths), *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(size)]
    torch.distributed.all_gather(parts, padded)
    return torch.cat([p[:k] for p, k in zip(parts, lengths, strict=True)]).to(t.device)


def block(groups: int, w: World) -> tuple[int, int]:
    """[start, stop) of rank `w.rank`'s contiguous block of `groups` groups for an eval pass;
    the blocks in rank order cover 0..groups once, in order."""
    return groups * w.rank // w.size, groups * (w.rank + 1) // w.size


@dataclass
class Share:
    """A rank's part of one global training batch."""

    batch: Batch
    weight: float  # n_r / n: its share of the global batch's utterances (0: an empty share)


def shares(
    split: Split,
    batches: Sequence[np.ndarray],
    speakers: torch.Tensor,
    max_speakers: int,
    skip: int = 0,
    w: World | None = None,
) -> Iterator[Share]:
    """Rank `w.rank`'s share (groups rank::size) of each global batch of `batches` (arrays of
    group indices), skipping the first `skip`. One process gets the whole batch with weight 1.
    An empty share holds the batch's first group with weight 0 (see the module docstring)."""
    w = w or world()
    for groups in batches[skip:]:
        mine = groups[w.rank :: w.size]
        n = int(split.length[groups].sum())
        if mine.size:
            weight = 1.0 if w.size == 1 else int(split.length[mine].sum()) / n
            yield Share(make_batch(split, mine, speakers, max_speakers), weight)
        else:
            yield Share(make_batch(split, groups[:1], speakers, max_speakers), 0.0)


def step_seed(seed: int, rank: int, step: int) -> int:
    """The training RNG's seed for rank `rank` at optimizer step `step` (N > 1 only)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0])


def wrap(model: nn.Module, device: torch.device) -> nn.Module | None:
    """`model` in DistributedDataParallel when N > 1 (None in a single process)."""
    if not active():
        return None
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=may_skip(model),
    )


def may_skip(model: nn.Module) -> bool:
    """Whether a forward may leave some parameters out: routed experts (`experts`, the MoE
    fusion and head: an expert no utterance of the share chose gets no gradient). DDP must then
    search the graph for them each step (find_unused_parameters), or its all-reduce would wait
    for their gradients forever; an expert unused on every rank keeps no gradient, as in one
    process. Elsewhere every parameter is in every training graph (the missing-modality vector
    too: torch.where passes it a zero gradient), and the search would only cost time and print
    a warning."""
    return any(name.rsplit(".", 1)[-1] == "experts" for name, _ in model.named_modules())


def broadcast_trainable(module: nn.Module | None) -> None:
    """Rank 0's values of `module`'s trainable parameters on every rank: what DDP does at its
    start for the model, here for a part outside it (the fine-tuned text tower)."""
    if module is None or not active():
        return
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                x = p.data.to(_comm_device())
                torch.distributed.broadcast(x, 0)
                p.data.copy_(x)


def average_gradients(module: nn.Module | None) -> None:
    """Average the gradients of `module`'s trainable parameters over the ranks, as DDP does for
    the model it wraps: for a part outside the wrapper (the fine-tuned text tower, which runs
    before the model in each forward). Call it once per optimizer step, after the last
    micro-batch's backward. A parameter without a gradient on every rank keeps none (AdamW
    then leaves it alone, as in one process); one with a gradient somewhere gets the average,
    a missing gradient counting as zeros. One all-reduce per dtype, on flattened gradients."""
    if module is None or not active():
        return
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    size, dev = torch.distributed.get_world_size(), _comm_device()
    has = torch.tensor([float(p.grad is not None) for p in params], device=dev)
    torch.distributed.all_reduce(has)
    for dtype in sorted({p.dtype for p in params}, key=str):
        group = [(i, p) for i, p in enumerate(params) if p.dtype == dtype and has[i] > 0]
        if not group:
            continue
        flat = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for _, p in group]
        ).to(dev)
        torch.distributed.all_reduce(flat)
        flat /= size
        offset = 0
        for _, p in group:
            part = flat[offset : offset + p.numel()].view_as(p).to(p.device)
            offset += p.numel()
            if p.grad is None:
                p.grad = part.clone()
            else:
                p.grad.copy_(part)


def sync(ddp: nn.Module | None, last: bool) -> contextlib.AbstractContextManager:
    """The context of one micro-batch's forward and backward: DDP's `no_sync()` (gradients
    accumulate locally, no all-reduce) for all but the last micro-batch of an optimizer step."""
    if ddp is None or last:
        return contextlib.nullcontext()
    return ddp.no_sync()
