"""How many GPUs gpt-oss needs on each weights path and layout, and the bytes each GPU holds.

The layouts `gptoss bench` offers (bench.backends.transformers.parallel):

- one GPU: everything on it;
- a pipeline (``--devices``): accelerate's device_map spreads whole layers evenly, so each of
  ``k`` GPUs holds about ``1/k`` of the weights and of the KV cache; the load's transient (one
  layer's experts being converted) lands on whichever GPU holds that layer;
- expert parallel (``--ep k``): each rank holds ``1/k`` of the experts (and of their load
  transient) and a full copy of everything else, the KV cache included (attention is replicated);
- tensor parallel (``--tp k``): transformers' plan for gpt-oss splits only the output head
  (5.17; 5.24 the embedding too), so each rank holds nearly the whole model.

Per GPU, ``needed`` is what stays resident (weights, KV cache, CUDA context) and decides the fit,
as the memory check decides it for one GPU; ``load_peak`` is what torch's allocator peaks at while
loading (weights + the transient), the figure a results file's ``load_peak_bytes`` measures.
Estimates built on diagnostics.models' sizes, measured for 20b on one H100 and scaled for 120b.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from diagnostics.models import BF16_BYTES, MXFP4_BYTES_PER_PARAM, ModelSpec

LAYOUTS = ("single", "pipeline", "expert-parallel", "tensor-parallel")
MAX_GPUS = 16


@dataclass(frozen=True)
class GpuShare:
    layout: str
    gpus: int
    load_peak_bytes: int  # per GPU: weights + load transient (torch's allocator)
    needed_bytes: int  # per GPU: weights + KV cache + CUDA context, resident after the load


def _experts_fraction(spec: ModelSpec, path: str) -> float:
    """The experts' share of the weight bytes on ``path`` (the part expert parallelism splits)."""
    per_param = MXFP4_BYTES_PER_PARAM if path == "mxfp4" else BF16_BYTES
    experts = spec.mxfp4_params * per_param
    total = spec.checkpoint_bytes if path == "mxfp4" else spec.bf16_bytes
    return experts / total


def share(spec: ModelSpec, path: str, layout: str, gpus: int, context_tokens: int, cuda_context_bytes: int) -> GpuShare:
    """The bytes each of ``gpus`` GPUs holds with ``layout`` (the largest share, where they differ)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}")
    k = 1 if layout == "single" else gpus
    weights = spec.load_bytes(path)
    transient = spec.load_transient_bytes(path)
    kv = spec.kv_cache_bytes(context_tokens)
    if layout in ("single", "pipeline"):
        held, moved, kv_held = weights / k, transient, kv / k
    elif layout == "expert-parallel":
        experts = weights * _experts_fraction(spec, path)
        held, moved, kv_held = weights - experts + experts / k, transient / k, kv
    else:  # tensor parallel: the output head is split, the rest replicated
        head = spec.embedding_params * BF16_BYTES
        held, moved, kv_held = weights - head + head / k, transient, kv
    return GpuShare(layout, k, math.ceil(held + moved), math.ceil(held + kv_held + cuda_context_bytes))


def gpus_needed(spec: ModelSpec, path: str, layout: str, free_bytes: list[int], context_tokens: int,
                cuda_context_bytes: int) -> tuple[GpuShare | None, bool]:
    """The fewest GPUs ``layout`` needs, given the free memory of the visible GPUs in order:
    (their share, True when that many are visible). Past the visible ones, more GPUs like the
    first are assumed, up to ``MAX_GPUS``; (None, False) when even those would not do."""
    if not free_bytes:
        return None, False
    counts = [1] if layout == "single" else range(2, MAX_GPUS + 1)
    for k in counts:
        if layout == "expert-parallel" and spec.num_experts % k:
            continue
        s = share(spec, path, layout, k, context_tokens, cuda_context_bytes)
        free = min(free_bytes[:k]) if k <= len(free_bytes) else free_bytes[0]
        if s.needed_bytes <= free:
            return s, k <= len(free_bytes)
    return None, False


# ---- the check ------------------------------------------------------------------------------------


def _option(s: GpuShare) -> str:
    """The `gptoss bench` option that makes the layout."""
    if s.layout == "pipeline":
        return f"--devices {','.join(str(i) for i in range(s.gpus))}"
    return f"--ep {s.gpus}" if s.layout == "expert-parallel" else f"--tp {s.gpus}"


def _path_line(spec: ModelSpec, path: str, free: list[int], ctx) -> tuple[str, GpuShare | None, bool]:
    """One path's sentence, its best layout and whether that fits on the visible GPUs."""
    from diagnostics.check_base import CUDA_CONTEXT_BYTES
    from diagnostics.models import gib

    args = (ctx.context_tokens, CUDA_CONTEXT_BYTES)
    single, _ = gpus_needed(spec, path, "single", free, *args)
    name = {"mxfp4": "MXFP4", "bf16": "bf16 (dequantized)"}[path]
    if single is not None:
        return f"{name}: 1 GPU (~{gib(single.needed_bytes)}).", single, True
    options = []
    best: tuple[GpuShare | None, bool] = (None, False)
    for layout in ("pipeline", "expert-parallel"):
        s, visible = gpus_needed(spec, path, layout, free, *args)
        if s is None:
            continue
        where = "" if visible else f", more than the {len(free)} visible"
        options.append(f"{s.gpus} with {_option(s)} (~{gib(s.needed_bytes)} per GPU{where})")
        if best[0] is None or (visible, -s.gpus) > (best[1], -best[0].gpus):
            best = (s, visible)
    tp = share(spec, path, "tensor-parallel", max(2, len(free)), *args)
    tp_note = f"; --tp splits only the output head (~{gib(tp.needed_bytes)} per GPU)"
    if not options:
        return f"{name}: more than {MAX_GPUS} GPUs like GPU 0{tp_note}.", None, False
    return f"{name}: " + " or ".join(options) + tp_note + ".", best[0], best[1]


def check_gpu_count(f, ctx):
    """How many of the visible GPUs each weights path needs, and on which layout."""
    from diagnostics.check_base import result, visible_gpus
    from diagnostics.models import gib

    spec = ctx.spec
    title = "GPUs needed" + (f" ({spec.name})" if spec else "")
    if spec is None:
        return result("gpu_count", title, "skip", f"{ctx.model} is not a gpt-oss model this tool knows the size of.")
    gpus = visible_gpus(f)
    free = [g.memory_free_bytes if g.memory_free_bytes is not None else g.memory_total_bytes for g in gpus]
    if not gpus or any(x is None for x in free):
        return result("gpu_count", title, "skip", "No GPU with a known amount of memory.")
    lines = {path: _path_line(spec, path, free, ctx) for path in ("mxfp4", "bf16")}
    head = f"{len(gpus)} visible GPU(s), {gib(free[0])} free on GPU {gpus[0].index}. "
    message = head + " ".join(text for text, _, _ in lines.values())
    path = f.mxfp4.path if f.mxfp4.path in ("mxfp4", "bf16") else "mxfp4"
    _, best, visible = lines[path]
    if best is not None and best.gpus == 1:
        return result("gpu_count", title, "pass", message)
    if best is not None and visible:
        return result("gpu_count", title, "warn", message,
                      f"gptoss bench --model {ctx.model} {_option(best)}   # the {path} path spread over {best.gpus} GPUs")
    return result("gpu_count", title, "warn", message,
                  "Use a machine with more (or larger) GPUs" + (", or get the MXFP4 path working." if path == "bf16" else "."))
