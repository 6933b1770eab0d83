"""How a load spread the model over devices: the parallel layout record of a results file.

``single`` (one device), ``pipeline`` (accelerate's device_map: consecutive layers on each GPU,
one GPU works at a time), ``tensor-parallel`` and ``expert-parallel`` (one process per GPU under
torchrun, all GPUs work at once). ``sharded`` says which parts of the model the layout actually
split across ranks, read from the loaded model rather than from the plan's promise; a part not
listed is replicated on every rank (or, for a pipeline, lives on one GPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

LAYOUT_KINDS = ("single", "pipeline", "tensor-parallel", "expert-parallel")
#: Parts a parallel plan may split: the routed experts, the output head, the embedding, attention.
MODEL_PARTS = ("experts", "lm_head", "embed_tokens", "attention")


def known_fields(cls, d: dict) -> dict:
    """The entries of ``d`` that are fields of the dataclass ``cls`` (newer files may hold more)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass
class DeviceShare:
    """One device of a layout and what it held after the load."""

    device: str  # cuda:N as the process saw it, or cpu
    name: str | None = None  # the GPU's name
    memory_total_bytes: int | None = None
    layers: int | None = None  # decoder layers placed on it (pipeline)
    load_alloc_bytes: int | None = None  # torch's allocated bytes after the load
    load_peak_bytes: int | None = None  # torch's peak allocated bytes during the load

    @classmethod
    def from_dict(cls, d: dict) -> "DeviceShare":
        return cls(**known_fields(cls, d))


@dataclass
class Layout:
    kind: str  # one of LAYOUT_KINDS
    world_size: int = 1  # processes (torchrun ranks); 1 for single and pipeline
    devices: list[DeviceShare] = field(default_factory=list)
    sharded: list[str] = field(default_factory=list)  # parts of MODEL_PARTS split across ranks
    plan: dict[str, str] = field(default_factory=dict)  # transformers' plan as applied: pattern -> style
    roofline_bytes_per_token: float | None = None  # weight bytes the busiest GPU reads per decoded token
    predicted_load_peak_bytes: int | None = None  # per GPU, as `gptoss check` predicts it (diagnostics.multi_gpu)

    @property
    def concurrent(self) -> bool:
        """True when every GPU works on every token at once (tensor or expert parallel)."""
        return self.kind in ("tensor-parallel", "expert-parallel")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Layout":
        kept = known_fields(cls, d)
        kept["devices"] = [DeviceShare.from_dict(x) for x in d.get("devices", [])]
        return cls(**kept)
