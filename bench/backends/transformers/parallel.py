"""Several devices: the layout the command line asks for, the ``from_pretrained`` arguments that
make it, and what the loaded model really looks like.

- ``--devices 0,1`` (or ``all``): a pipeline. accelerate's ``device_map="auto"`` places whole
  layers on the listed GPUs (``max_memory`` names only those), and a token passes through them
  one GPU after the other.
- ``--tp N``: transformers' tensor-parallel plan (``tp_plan="auto"``), one process per GPU under
  torchrun. For gpt-oss that plan splits little: transformers 5.17 shards only ``lm_head``, 5.24
  the embedding too; attention and the experts are replicated on every rank.
- ``--ep N``: transformers' expert-parallel plan, one process per GPU under torchrun: each rank
  holds ``E/N`` experts of every layer (the bulk of the weights), the rest is replicated, and the
  experts' outputs are summed across ranks.

Which parts a load really split is read from the model afterwards (``sharded_parts``), never
taken from the plan's name; the results record it with the memory each device held.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from bench.results.layout import LAYOUT_KINDS, Layout
from diagnostics.errors import UserError
from diagnostics.models import BF16_BYTES, MXFP4_BYTES_PER_PARAM

#: Share of a GPU's free memory accelerate may fill with weights; the rest is for the KV cache,
#: activations and the allocator.
PIPELINE_MEMORY_FRACTION = 0.90


@dataclass(frozen=True)
class ParallelPlan:
    """Where the weights go: ``devices`` are this process's devices (single, pipeline) or, before
    a torchrun launch, the GPUs the ranks will take, in rank order."""

    kind: str = "single"  # one of LAYOUT_KINDS
    devices: tuple[str, ...] = ("cpu",)
    world_size: int = 1

    def __post_init__(self):
        if self.kind not in LAYOUT_KINDS:
            raise ValueError(f"unknown layout {self.kind!r}")

    @property
    def distributed(self) -> bool:
        return self.kind in ("tensor-parallel", "expert-parallel")

    @property
    def gpu_indices(self) -> list[int]:
        return [int(d.split(":", 1)[1]) for d in self.devices if d.startswith("cuda:")]

    def for_rank(self, local_rank: int) -> "ParallelPlan":
        """A torchrun worker's view: its own device, numbered as its process sees it (the launch
        makes the listed GPUs visible in rank order)."""
        device = f"cuda:{local_rank}" if self.devices[0].startswith("cuda") else "cpu"
        return dataclasses.replace(self, devices=(device,))


def parse_devices(text: str, gpu_count: int) -> list[int]:
    """``0,1`` or ``all`` -> GPU indices (UserError for anything else)."""
    text = (text or "").strip().lower()
    if gpu_count < 1:
        raise UserError(f"--devices {text} needs CUDA GPUs but torch sees none; drop --devices, or run `gptoss check` to see why.")
    if text == "all":
        return list(range(gpu_count))
    out: list[int] = []
    for item in text.split(","):
        item = item.strip().removeprefix("cuda:")
        if not item.isdigit():
            raise UserError(f"--devices got {text!r}; give GPU indices separated by commas (e.g. 0,1) or all.")
        index = int(item)
        if index >= gpu_count:
            raise UserError(f"--devices names GPU {index} but torch sees {gpu_count} GPU(s) (0 to {gpu_count - 1}); pick among them.")
        if index in out:
            raise UserError(f"--devices names GPU {index} twice; list each GPU once.")
        out.append(index)
    return out


def plan_parallel(device: str, devices: str | None, tp: int | None, ep: int | None,
                  gpu_count: int) -> ParallelPlan:
    """The layout from ``--device`` (already resolved: ``cpu`` or ``cuda:N``), ``--devices``,
    ``--tp`` and ``--ep``. A torchrun layout on a machine without a GPU runs on the CPU over gloo."""
    if tp and ep:
        raise UserError("--tp and --ep are two ways to split the model; pick one.")
    ranks = tp or ep
    if devices and device == "cpu" and gpu_count:
        raise UserError("--devices lists GPUs but --device cpu was asked; drop one of them.")
    listed = parse_devices(devices, gpu_count) if devices else None
    if not ranks:
        if listed is None:
            return ParallelPlan("single", (device,))
        if len(listed) == 1:
            return ParallelPlan("single", (f"cuda:{listed[0]}",))
        return ParallelPlan("pipeline", tuple(f"cuda:{i}" for i in listed))
    flag = "--tp" if tp else "--ep"
    kind = "tensor-parallel" if tp else "expert-parallel"
    if ranks < 2:
        raise UserError(f"{flag} {ranks} is one process; use {flag} 2 or more, or drop {flag}.")
    if device == "cpu":
        if listed:
            raise UserError(f"--devices lists GPUs but {flag} runs on the CPU here; drop --devices or --device cpu.")
        return ParallelPlan(kind, ("cpu",) * ranks, ranks)
    if listed is None:
        if ranks > gpu_count:
            raise UserError(f"{flag} {ranks} needs {ranks} GPUs but torch sees {gpu_count}; use {flag} {gpu_count} or fewer.")
        listed = list(range(ranks))
    elif len(listed) != ranks:
        raise UserError(f"{flag} {ranks} runs one process per GPU but --devices lists {len(listed)}; list {ranks} GPUs.")
    return ParallelPlan(kind, tuple(f"cuda:{i}" for i in listed), ranks)


#: The first transformers release whose MXFP4 MoE routes by the experts' own parallel hook. Older
#: ones switch to expert-parallel routing as soon as any module is parallel (transformers issue
#: #40031), which assumes each rank holds 1/N of the experts; ``--tp`` replicates them, so the
#: output is wrong: on 5.17 the logits of gpt-oss-20b under ``--tp 2`` had cosine 0.62 to one
#: GPU's, with other greedy tokens from the first, while bf16 under ``--tp 2`` gave one GPU's.
TP_MXFP4_ROUTES_BY_EXPERTS = (5, 24)


def check_tp_weights_path(plan: ParallelPlan, quants: list[str], transformers_version: tuple[int, int] | None = None) -> None:
    """Refuse ``--tp`` on the MXFP4 kernel path (a GPU, ``--quant auto`` or ``mxfp4``) with a
    transformers release that computes it wrong (``transformers_version``: the installed one,
    read only when the layout is tensor parallel on GPUs)."""
    if plan.kind != "tensor-parallel" or not plan.devices[0].startswith("cuda") or not {"auto", "mxfp4"} & set(quants):
        return
    if transformers_version is None:
        from bench.backends.transformers.loading import transformers_major_minor

        transformers_version = transformers_major_minor()
    if transformers_version >= TP_MXFP4_ROUTES_BY_EXPERTS:
        return
    version = ".".join(map(str, transformers_version))
    raise UserError(
        f"--tp on the MXFP4 path computes wrong outputs with transformers {version} (its MXFP4 experts route as if "
        "each rank held a share of them, and --tp gives every rank all of them); use --ep for MXFP4, or --tp with --quant bf16."
    )


# ---- from_pretrained ------------------------------------------------------------------------------


def distributed_config(kind: str, world_size: int):
    """transformers' ``DistributedConfig`` for a torchrun layout, in the spelling of the installed
    release: 5.17 turns expert parallelism on with ``enable_expert_parallel`` (the expert plan
    replaces the tensor plan); 5.21 and later with ``ep_size`` beside the model's own tensor plan
    (5.24 refuses an empty one, so its ``embed_tokens``/``lm_head`` split comes along)."""
    try:
        from transformers.distributed import DistributedConfig
    except ImportError:
        DistributedConfig = None
    if DistributedConfig is None:
        if kind == "tensor-parallel":
            return None  # older releases take tp_plan="auto" as a from_pretrained argument
        raise UserError("--ep needs transformers' DistributedConfig (transformers 5.17 or newer); upgrade transformers or use --tp.")
    if kind == "tensor-parallel":
        return DistributedConfig(tp_size=world_size, tp_plan="auto")
    names = {f.name for f in dataclasses.fields(DistributedConfig)}
    if "ep_size" in names:
        return DistributedConfig(tp_size=world_size, ep_size=world_size)
    return DistributedConfig(tp_size=world_size, enable_expert_parallel=True)


def placement_kwargs(plan: ParallelPlan, free_bytes: Callable[[int], int] | None = None) -> dict[str, Any]:
    """``device_map`` (and ``max_memory``) or ``distributed_config`` for ``from_pretrained``."""
    if plan.kind == "single":
        dev = plan.devices[0]
        return {"device_map": {"": dev} if dev != "cpu" else None}
    if plan.kind == "pipeline":
        if free_bytes is None:
            import torch

            def free_bytes(i: int) -> int:
                return torch.cuda.mem_get_info(i)[0]
        max_memory = {i: int(free_bytes(i) * PIPELINE_MEMORY_FRACTION) for i in plan.gpu_indices}
        return {"device_map": "auto", "max_memory": max_memory}
    config = distributed_config(plan.kind, plan.world_size)
    if config is None:
        return {"tp_plan": "auto"}
    return {"distributed_config": config}


# ---- the loaded model -----------------------------------------------------------------------------


def _is_sharded(tensor: Any) -> bool:
    placements = getattr(tensor, "placements", None)  # a DTensor
    return bool(placements) and any(getattr(p, "is_shard", lambda: False)() for p in placements)


def sharded_parts(model: Any) -> list[str]:
    """The parts of a loaded gpt-oss that are split across ranks: ``experts`` when a layer holds
    fewer experts than the config names (expert parallelism, MXFP4 or not), the others when
    their weight is a DTensor sharded along some dimension."""
    parts = []
    config = getattr(model, "config", None)
    layers = getattr(getattr(model, "model", None), "layers", None) or []
    experts = getattr(getattr(layers[0], "mlp", None), "experts", None) if len(layers) else None
    total = getattr(config, "num_local_experts", None)
    local = getattr(experts, "num_experts", None)
    if experts is not None and (
        (total and local and local < total) or any(_is_sharded(p) for p in experts.parameters(recurse=False))
    ):
        parts.append("experts")
    if _is_sharded(getattr(getattr(model, "lm_head", None), "weight", None)):
        parts.append("lm_head")
    if _is_sharded(getattr(getattr(getattr(model, "model", None), "embed_tokens", None), "weight", None)):
        parts.append("embed_tokens")
    attn = getattr(layers[0], "self_attn", None) if len(layers) else None
    if attn is not None and any(_is_sharded(p) for p in attn.parameters()):
        parts.append("attention")
    return parts


def applied_plan(model: Any, kind: str) -> dict[str, str]:
    """transformers' plans as the model holds them (pattern -> style); empty outside torchrun.
    5.17 answers ``tp_plan`` with the expert plan when that is on; 5.21+ keeps ``ep_plan`` apart."""
    if kind not in ("tensor-parallel", "expert-parallel"):
        return {}
    out: dict[str, str] = {}
    for name in ("tp_plan", "ep_plan") if kind == "expert-parallel" else ("tp_plan",):
        try:
            plan = getattr(model, name, None)
        except Exception:  # a plan property that refuses (no plan of that kind)
            plan = None
        if isinstance(plan, dict):
            out.update({str(k): str(v) for k, v in plan.items()})
    return out


def layers_per_device(model: Any) -> dict[str, int]:
    """Decoder layers per device of an accelerate device map: each layer goes with the longest
    entry that contains it (``model.layers.3``, ``model.layers``, ``model`` or ``""``)."""
    device_map = getattr(model, "hf_device_map", None) or {}
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None) or 0
    counts: dict[str, int] = {}
    for i in range(n if device_map else 0):
        name = f"model.layers.{i}"
        holders = [k for k in device_map if k == "" or name == k or name.startswith(k + ".")]
        if not holders:
            continue
        dev = device_map[max(holders, key=len)]
        key = f"cuda:{dev}" if isinstance(dev, int) else str(dev)
        counts[key] = counts.get(key, 0) + 1
    return counts


def roofline_bytes_per_token(spec: Any, path: str | None, layout: Layout) -> float | None:
    """Weight bytes the busiest GPU reads per decoded token at batch 1 on ``layout``.

    Single GPU and pipeline: all of them (in a pipeline the GPUs read their layers one after the
    other, so the time is the same as on one GPU of the same bandwidth). Tensor and expert
    parallel: every rank reads the replicated parts and its share (1/N) of the sharded ones, all
    at once. The active experts count as evenly spread over the ranks: the ideal."""
    if spec is None or path not in ("mxfp4", "bf16"):
        return None
    total = float(spec.bytes_per_token(path))
    if not layout.concurrent or layout.world_size < 2:
        return total
    per_param = MXFP4_BYTES_PER_PARAM if path == "mxfp4" else BF16_BYTES
    parts = {
        "experts": spec.num_layers * spec.experts_per_token * spec.expert_weight_params * per_param,
        "lm_head": spec.embedding_params * BF16_BYTES,
        "attention": spec.num_layers * spec.attention_params_per_layer * BF16_BYTES,
    }
    split = sum(v for k, v in parts.items() if k in layout.sharded)
    return total - split + split / layout.world_size


def describe_layout(model: Any, plan: ParallelPlan) -> Layout:
    """The layout as loaded: this process's devices with their memory after the load, the layers
    each holds (pipeline), and what a torchrun plan split. Under torchrun this is one rank's view
    (``gather_layout`` joins the ranks)."""
    from bench.models.device import nvml_index
    from bench.results.layout import DeviceShare

    layers = layers_per_device(model)
    shares = []
    for dev in plan.devices[: 1 if plan.distributed else None]:
        share = DeviceShare(device=dev, layers=layers.get(dev))
        if dev.startswith("cuda:"):
            import torch

            index = int(dev.split(":", 1)[1])
            props = torch.cuda.get_device_properties(index)
            share.name, share.memory_total_bytes = props.name, int(props.total_memory)
            share.load_alloc_bytes = int(torch.cuda.memory_allocated(index))
            share.load_peak_bytes = int(torch.cuda.max_memory_allocated(index))
            if plan.distributed:  # name the GPU as the user numbers it
                share.device = f"cuda:{nvml_index(index)}"
        shares.append(share)
    return Layout(
        kind=plan.kind,
        world_size=plan.world_size,
        devices=shares,
        sharded=sharded_parts(model) if plan.distributed else [],
        plan=applied_plan(model, plan.kind),
    )


def gather_layout(layout: Layout, gather: Callable[[Any], list[Any]]) -> Layout:
    """Every rank's device in one layout (each rank passes its own; all get the whole)."""
    if not layout.concurrent:
        return layout
    shares = [share for part in gather(layout.devices) for share in part]
    return dataclasses.replace(layout, devices=shares)
