"""The processes of one run under torchrun (``--tp``/``--ep``): which one this is, and the few
things they must agree on.

Every rank runs the same sweep in lockstep (each forward pass is a collective), so a decision
taken from a clock, such as ``--max-time``, is taken by rank 0 and followed by the others
(``agree``); what each rank measured on its own GPU is gathered to rank 0 (``gather``), which
alone writes the results. Outside torchrun every function here is the identity, a one-element
list, or a no-op.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

T = TypeVar("T")


def _dist():
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed support
        return None
    return dist if dist.is_available() and dist.is_initialized() else None


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank() -> int:
    return int(os.environ.get("RANK", "0")) if under_torchrun() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if under_torchrun() else 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1")) if under_torchrun() else 1


def is_main() -> bool:
    return rank() == 0


def init(device: str) -> None:
    """Join the process group: NCCL bound to this rank's GPU, or gloo on the CPU."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    timeout = timedelta(hours=2)  # ranks wait for each other through loads of a 65 GB checkpoint
    if device.startswith("cuda"):
        index = int(device.split(":", 1)[1]) if ":" in device else local_rank()
        torch.cuda.set_device(index)
        dist.init_process_group("nccl", device_id=torch.device("cuda", index), timeout=timeout)
    else:
        dist.init_process_group("gloo", timeout=timeout)


def agree(value: T) -> T:
    """Rank 0's ``value`` on every rank."""
    dist = _dist()
    if dist is None:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    dist = _dist()
    if dist is None:
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def barrier() -> None:
    dist = _dist()
    if dist is not None:
        dist.barrier()


def finish() -> None:
    dist = _dist()
    if dist is not None:
        dist.destroy_process_group()
