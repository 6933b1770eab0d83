"""Where a model runs, decided once from ``--device`` (auto, cpu, cuda, cuda:N).

The CLI resolves the user's choice here and passes the answer down: to the loader and to the
results file's environment summary. ``nvml_index`` maps a CUDA device to the GPU NVML reads.
"""

from __future__ import annotations

import os

from diagnostics.errors import UserError

DEVICES = ("auto", "cuda", "cpu")


def resolve_device(device: str = "auto") -> str:
    """``cpu`` or ``cuda:N``: ``auto`` is the first CUDA GPU when torch sees one, else the CPU;
    ``cuda`` without a GPU, or a GPU index that does not exist, is a UserError."""
    import torch

    device = (device or "auto").lower()
    has_cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda:0" if has_cuda else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not has_cuda:
            raise UserError("--device cuda was asked but torch sees no CUDA GPU; use --device cpu (or auto), or run `gptoss check` to see why.")
        try:
            index = int(device.split(":", 1)[1]) if ":" in device else 0
        except ValueError:
            raise UserError(f"unknown device '{device}'; use auto, cuda, cuda:N or cpu.") from None
        if index >= torch.cuda.device_count():
            raise UserError(f"{device} does not exist (torch sees {torch.cuda.device_count()} GPU(s)); pick another --device.")
        return f"cuda:{index}"
    raise UserError(f"unknown device '{device}'; use auto, cuda, cuda:N or cpu.")


def nvml_index(cuda_index: int, visible: str | None = None) -> int:
    """The NVML (physical) index of CUDA device ``cuda_index``: NVML ignores
    ``CUDA_VISIBLE_DEVICES``, CUDA numbers the GPUs it lists from 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    listed = [x.strip() for x in (visible or "").split(",") if x.strip()]
    if listed and all(x.isdigit() for x in listed) and cuda_index < len(listed):
        return int(listed[cuda_index])
    return cuda_index


def device_kind(device: str) -> str:
    """``cuda:1`` -> ``cuda``; ``cpu`` -> ``cpu``."""
    return device.split(":", 1)[0]
