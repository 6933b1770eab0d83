"""Deterministic tensor data: each tensor draws from its own ``torch.Generator`` seeded from
(seed, tensor name), so the bytes depend only on the seed and the shapes."""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Iterator

from bench.models.synthetic.mxfp4 import quantize_mxfp4
from bench.models.synthetic.spec import SyntheticSpec, TensorSpec, Unit

if TYPE_CHECKING:  # pragma: no cover
    import torch

_ROWS_PER_CHUNK_ELEMS = 16 * 1024 * 1024


def _generator(seed: int, name: str):
    import torch

    digest = hashlib.sha256(f"gptoss-synthetic:{seed}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def _normal_chunks(spec: SyntheticSpec, t: TensorSpec, seed: int) -> Iterator["torch.Tensor"]:
    import torch

    if t.init == "ones":
        yield torch.ones(t.shape, dtype=torch.bfloat16)
        return
    gen = _generator(seed, t.name)
    rows = t.shape[0]
    row_elems = math.prod(t.shape[1:]) if len(t.shape) > 1 else 1
    step = max(1, _ROWS_PER_CHUNK_ELEMS // row_elems) if len(t.shape) > 1 else rows
    for r0 in range(0, rows, step):
        n = min(step, rows - r0)
        shape = (n, *t.shape[1:])
        yield (torch.randn(shape, generator=gen, dtype=torch.float32) * spec.init_std).to(torch.bfloat16)


def expert_weights(spec: SyntheticSpec, seed: int, source: str, device: str = "cpu",
                   ) -> Iterator[tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]]:
    """Per expert: (random bf16 weight ``[rows, K]``, its MXFP4 blocks, its scales), for the
    logical weight ``source`` (``model.layers.N.mlp.experts.gate_up_proj`` or ``down_proj``).
    The writer uses this; tests call it again to get the intended values. The random numbers
    always come from a CPU generator; ``device`` only runs the (exact) quantizer, so the bytes
    are the same on every device."""
    import torch

    h, i = spec.hidden_size, spec.intermediate_size
    rows, k = (2 * i, h) if source.endswith("gate_up_proj") else (h, i)
    gen = _generator(seed, source)
    for _ in range(spec.num_local_experts):
        w = (torch.randn((rows, k), generator=gen, dtype=torch.float32) * spec.init_std).to(torch.bfloat16)
        if device == "cpu":
            blocks, scales = quantize_mxfp4(w)
        else:
            blocks, scales = (t.cpu() for t in quantize_mxfp4(w.to(device, non_blocking=True)))
        yield w, blocks, scales


def unit_chunks(spec: SyntheticSpec, unit: Unit, seed: int, device: str = "cpu",
                 ) -> Iterator[tuple[str, "torch.Tensor"]]:
    """(tensor name, data) in the unit's order; MXFP4 blocks stream expert by expert, their
    scales (1/16 of the size) follow once the blocks are written."""
    import torch

    pending_scales: dict[str, torch.Tensor] = {}
    for t in unit.tensors:
        if t.init == "mxfp4" and t.name.endswith("_blocks"):
            scales = []
            for _, blocks, sc in expert_weights(spec, seed, t.source, device):
                yield t.name, blocks
                scales.append(sc)
            pending_scales[t.source] = torch.stack(scales)
        elif t.init == "mxfp4":
            yield t.name, pending_scales.pop(t.source)
        else:
            for chunk in _normal_chunks(spec, t, seed):
                yield t.name, chunk
