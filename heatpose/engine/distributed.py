"""Distributed set-up the torchrun way: everything comes from ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``.

``torchrun --nproc-per-node N -m heatpose train ...`` starts N processes with those variables
set; :func:`init_distributed` turns them into a process group (NCCL on CUDA, gloo on CPU) and
the device this process should use. Without them everything below degrades to a single
process: ``rank 0`` of ``world 1``, collectives become no-ops.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job, and whether :func:`init_distributed` made the group."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # True when init_distributed created the group (and must destroy it)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def init_distributed() -> DistInfo:
    """Read torchrun's environment, pick the device and join (or reuse) the process group.

    A process group that the caller already initialised is reused and left to the caller.
    On CUDA each process uses ``cuda:LOCAL_RANK``; on CPU, the host's cores are shared
    between the local processes so N processes do not each start ``ncores`` threads.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    owns_group = False
    if dist.is_available() and dist.is_initialized():
        world_size, rank = dist.get_world_size(), dist.get_rank()
    elif world_size > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=30))
        owns_group = True
    if device.type == "cpu" and world_size > 1 and "OMP_NUM_THREADS" not in os.environ:
        local_world = _env_int("LOCAL_WORLD_SIZE", world_size)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return DistInfo(rank, world_size, local_rank, device, owns_group)


@contextlib.contextmanager
def distributed_run() -> Iterator[DistInfo]:
    """:func:`init_distributed` for the length of a ``with`` block, then tear down what it made.

    After an error on this rank the barrier is skipped: peers stuck in another collective
    would never reach it.
    """
    info = init_distributed()
    try:
        yield info
    except BaseException:
        if info.owns_group:
            shutdown(wait=False)
        raise
    if info.owns_group:
        shutdown()


def shutdown(wait: bool = True) -> None:
    """Wait for every rank, then destroy the process group.

    Without the barrier the first rank to finish tears down its gloo connections while a
    peer may still be using them, and a rank can abort at exit (SIGABRT, failing the job
    after its work is done).
    """
    if dist.is_available() and dist.is_initialized():
        if wait and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_dist():
        dist.barrier()


def reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over all processes (the tensor itself in a single process)."""
    if not is_dist():
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not is_dist():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank.

    DDP keeps parameters identical but each process updates its own running statistics in
    its last forward pass; evaluating after this makes every rank use the weights that rank 0
    saves in the checkpoint.
    """
    if is_dist():
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=src)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel wrapper (whose keys carry ``module.``)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def shard_indices(num_items: int, rank: int | None = None, world_size: int | None = None) -> list[int]:
    """This rank's share of ``range(num_items)``: strided, no padding, no duplicates.

    Unlike ``DistributedSampler`` (which pads with repeats so every rank has the same count),
    the shards partition the dataset exactly, which evaluation needs.
    """
    rank = get_rank() if rank is None else rank
    world_size = (dist.get_world_size() if is_dist() else 1) if world_size is None else world_size
    return list(range(rank, num_items, world_size))
