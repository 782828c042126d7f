"""torchrun support: each rank extracts its slice, then all wait so rank 0 can gather."""

from __future__ import annotations

import os


def torchrun_rank() -> tuple[int, int] | None:
    """(rank, world size) when started by torchrun with more than one process, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return int(os.environ["RANK"]), world


def wait_for_all() -> None:
    """A barrier over every rank (gloo: works with or without CUDA)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()
    dist.destroy_process_group()
