"""One or more results files seen together: a label per run, and what varies between cases.

A report of several runs is a comparison, so every run gets a short label built from what
differs between the runs (GPU, package versions, weights path, cache mode, ...); tables and plots
show only the case-key fields that vary, the way llama-bench does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from bench.results import EFFORTS, CaseKey, CaseResult, LoadRecord, Results
from bench.results.layout import Layout

# --------------------------------------------------------------------------------------------
# Run-level fields: what can differ between two runs, in the order labels mention them.
# --------------------------------------------------------------------------------------------


def _gpu(r: Results) -> str | None:
    es = r.env_summary
    if (es.get("device") or "").lower() == "cpu":
        return "CPU"
    name = es.get("gpu") or r.gpu.get("name")
    if not name:
        return None
    name = str(name)
    for prefix in ("NVIDIA ", "nvidia "):
        if name.startswith(prefix):
            name = name[len(prefix):]
    count = es.get("gpu_count")
    return f"{count}x {name}" if isinstance(count, int) and count > 1 else name


def _joined(values) -> str | None:
    values = sorted({str(v) for v in values if v is not None})
    return "+".join(values) if values else None


def _weights(r: Results) -> str | None:
    return _joined([x.weights_path for x in r.loads] + [c.weights_path for c in r.cases])


def layout_gpus(layout: Layout) -> int:
    """The GPUs a layout spread the model over (0: it ran on the CPU)."""
    if layout.devices:
        return sum(not d.device.startswith("cpu") for d in layout.devices)
    return max(layout.world_size, 1)


def layout_text(layout: Layout) -> str:
    """``1 GPU``, ``pipeline ×2``, ``expert-parallel ×4``; ``CPU`` or ``tensor-parallel ×2 (CPU)`` without GPUs."""
    gpus = layout_gpus(layout)
    if not gpus:
        return "CPU" if layout.kind == "single" else f"{layout.kind} ×{layout.world_size} (CPU)"
    return "1 GPU" if layout.kind == "single" else f"{layout.kind} ×{gpus}"


def _layouts(r: Results) -> str | None:
    return _joined(layout_text(x.layout) for x in r.loads if x.layout is not None)


def _env(name: str) -> Callable[[Results], str | None]:
    def get(r: Results) -> str | None:
        v = r.env_summary.get(name)
        return None if v is None else str(v)

    return get


@dataclass(frozen=True)
class RunField:
    name: str  # column header in the runs table
    get: Callable[[Results], str | None]
    label: Callable[[str], str]  # how a run label mentions the value


RUN_FIELDS: list[RunField] = [
    RunField("GPU", _gpu, lambda v: v),
    RunField("layout", _layouts, lambda v: v),
    RunField("model", lambda r: r.model.id, lambda v: v),
    RunField("weights", _weights, lambda v: f"{v} weights"),
    RunField("cache", lambda r: _joined(c.key.cache for c in r.cases), lambda v: f"{v} cache"),
    RunField("mode", lambda r: _joined(c.key.mode for c in r.cases), lambda v: f"{v} mode"),
    RunField("attention", lambda r: _joined(x.attn_implementation for x in r.loads), lambda v: f"attn {v}"),
    RunField("backend", lambda r: r.backend.get("kind"), lambda v: f"{v} backend"),
    RunField("CPU", _env("cpu"), lambda v: v),
    RunField("torch", _env("torch"), lambda v: f"torch {v}"),
    RunField("transformers", _env("transformers"), lambda v: f"transformers {v}"),
    RunField("kernels", _env("kernels"), lambda v: f"kernels {v}"),
    RunField("triton", _env("triton"), lambda v: f"triton {v}"),
    RunField("CUDA", _env("cuda"), lambda v: f"CUDA {v}"),
    RunField("driver", _env("driver"), lambda v: f"driver {v}"),
    RunField("python", _env("python"), lambda v: f"python {v}"),
    RunField("platform", _env("platform"), lambda v: v),
    RunField("synthetic", lambda r: "synthetic" if r.model.synthetic else "real", lambda v: f"{v} weights"),
]

LABEL_PARTS = 3  # a label names at most this many differing fields; the runs table has them all

# --------------------------------------------------------------------------------------------
# Case-level fields: the key, plus the weights path that actually ran.
# --------------------------------------------------------------------------------------------

# (attribute, column header, how a short case label writes a value)
KEY_FIELDS: list[tuple[str, str, Callable[[object], str]]] = [
    ("effort", "effort", str),
    ("mode", "mode", str),
    ("cache", "cache", lambda v: f"{v} cache"),
    ("decode", "decode", str),
    ("quant", "quant", lambda v: f"quant {v}"),
    ("attn", "attn", lambda v: f"attn {v}"),
    ("weights_path", "weights", lambda v: f"{v}"),
    ("prompt_len", "prompt", lambda v: f"in {v}"),
    ("batch_size", "batch", lambda v: f"b{v}"),
    ("concurrency", "conc", lambda v: f"c{v}"),
    ("load", "load", str),
    ("request_rate", "rate (req/s)", lambda v: "rate inf" if v is None else f"{v:g} req/s"),
    ("burstiness", "burst", lambda v: f"burstiness {v:g}"),
    ("dataset", "dataset", lambda v: f"dataset {v}"),
    ("output_len", "out", lambda v: f"out {v}"),
]
KEY_HEADERS = {name: header for name, header, _ in KEY_FIELDS}
# How a sentence names a field's value when every case shares it.
CONSTANT_TEXT = {
    "effort": lambda v: f"effort {v}",
    "output_len": lambda v: f"{v} new tokens",
    "prompt_len": lambda v: f"{v}-token prompt",
    "batch_size": lambda v: f"batch {v}",
    "concurrency": lambda v: f"concurrency {v}",
    "load": lambda v: f"load {v}",
    "request_rate": lambda v: f"{v:g} req/s",
    "burstiness": lambda v: f"burstiness {v:g}",
    "dataset": lambda v: f"prompts from {v}",
    "mode": lambda v: f"{v} mode",
    "cache": lambda v: f"{v} cache",
    "decode": lambda v: f"decoded by {v}",
    "quant": lambda v: f"quantization asked: {v}",
    "attn": lambda v: f"attention asked: {v}",
    "weights_path": lambda v: f"weights path {v}",
}
DEFAULT_KEY_COLUMNS = ["effort", "output_len"]


def case_value(case: CaseResult, name: str):
    if name == "weights_path":
        return case.weights_path
    return getattr(case.key, name)


def _sort_value(name: str, value):
    if name == "effort":
        return (EFFORTS.index(value) if value in EFFORTS else len(EFFORTS), str(value))
    if value is None:
        return (1, "")
    if isinstance(value, (int, float)):
        return (0, f"{value:020.6f}")
    return (0, str(value))


@dataclass
class Run:
    results: Results
    label: str
    index: int
    source: str | None = None  # the file it came from, when known


def load_for(run: Run, case: CaseResult) -> LoadRecord | None:
    """The load a case ran on: the one of its quantization and attention, or the run's only load."""
    loads = run.results.loads
    for x in loads:
        if x.quant == case.key.quant and x.attn == case.key.attn:
            return x
    return loads[0] if len(loads) == 1 else None


@dataclass
class RunSet:
    runs: list[Run]
    differing: list[RunField] = field(default_factory=list)  # run fields whose value differs
    varying: list[str] = field(default_factory=list)  # case fields shown as columns
    # Case fields that vary inside at least one run: what plot labels name (a field that varies
    # only between runs is a property of the run, which the run label and runs table carry).
    within: list[str] = field(default_factory=list)
    constant: dict[str, object] = field(default_factory=dict)  # case fields equal in every case

    @property
    def multi(self) -> bool:
        return len(self.runs) > 1

    def cases(self, status: str | None = None) -> list[tuple[Run, CaseResult]]:
        """Every (run, case), runs in order, cases sorted by key; optionally one status only."""
        out = []
        for run in self.runs:
            for case in sorted(run.results.cases, key=self.case_sort_key):
                if status is None or case.status == status:
                    out.append((run, case))
        return out

    def case_sort_key(self, case: CaseResult):
        return tuple(_sort_value(name, case_value(case, name)) for name, _, _ in KEY_FIELDS)

    def case_label(self, case: CaseResult, exclude: tuple[str, ...] = ()) -> str:
        """A short label from the fields that vary within a run, e.g. ``low · out 512``."""
        fields_ = self.within if self.multi else self.varying
        parts = [
            fmt(case_value(case, name))
            for name, _, fmt in KEY_FIELDS
            if name in fields_ and name not in exclude and case_value(case, name) is not None
        ]
        return " · ".join(parts)

    def keys(self) -> list[CaseKey]:
        """Distinct case keys over all runs, sorted."""
        seen: dict[CaseKey, CaseResult] = {}
        for _, case in self.cases():
            seen.setdefault(case.key, case)
        return [k for k, _ in sorted(seen.items(), key=lambda kv: self.case_sort_key(kv[1]))]


def build_runset(results: list[Results], sources: list[str | None] | None = None) -> RunSet:
    sources = sources or [None] * len(results)
    differing = [f for f in RUN_FIELDS if len({f.get(r) for r in results}) > 1]
    labels = _labels(results, differing)
    runs = [Run(r, label, i, src) for i, (r, label, src) in enumerate(zip(results, labels, sources))]

    all_cases = [c for r in results for c in r.cases]
    varying, constant = [], {}
    for name, _, _ in KEY_FIELDS:
        values = {case_value(c, name) for c in all_cases} - {None}
        if len(values) > 1:
            varying.append(name)
        elif values:
            constant[name] = next(iter(values))
    if not varying:
        varying = [n for n in DEFAULT_KEY_COLUMNS if n in constant or not all_cases]
        for n in varying:
            constant.pop(n, None)
    within = [
        name
        for name, _, _ in KEY_FIELDS
        if any(len({case_value(c, name) for c in r.cases} - {None}) > 1 for r in results)
    ]
    return RunSet(runs, differing=differing, varying=varying, within=within, constant=constant)


def _labels(results: list[Results], differing: list[RunField]) -> list[str]:
    """Labels from the differing fields, in RUN_FIELDS order, taking a field only when it tells
    runs apart that the fields already taken do not (GPU, then model, weights, cache, ...)."""
    if len(results) == 1:
        r = results[0]
        return [r.run_id or r.model.id]
    chosen: list[RunField] = []
    for f in differing:
        if len(chosen) == LABEL_PARTS:
            break
        before = len({tuple(c.get(r) for c in chosen) for r in results})
        after = len({tuple(c.get(r) for c in chosen + [f]) for r in results})
        if after > before:
            chosen.append(f)
        if after == len(results):
            break
    labels = []
    for i, r in enumerate(results):
        parts = [f.label(f.get(r)) if f.get(r) is not None else f"no {f.name}" for f in chosen]
        labels.append(" · ".join(parts) if parts else (r.run_id or f"run {i + 1}"))
    # Runs that still share a label (same everything, e.g. two repetitions) get their run id or a
    # number, so no two series in a plot or columns in a table carry one name.
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    out, seen = [], {}
    for r, label in zip(results, labels):
        if counts[label] > 1:
            seen[label] = seen.get(label, 0) + 1
            suffix = r.run_id if r.run_id and sum(x.run_id == r.run_id for x in results) == 1 else f"#{seen[label]}"
            label = f"{label} ({suffix})"
        out.append(label)
    return out
