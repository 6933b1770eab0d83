"""The records of a results file: dataclasses here, dicts only at the JSON edge
(``to_dict`` / ``from_dict``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bench.results.layout import Layout, known_fields
from bench.results.requests import RequestLog
from bench.results.stats import Stat
from diagnostics.meta import now_iso

SCHEMA_ID = "gptoss-harness/results/1"

# What the fields of a case key and a case result may hold.
EFFORTS = ("low", "medium", "high")
MODES = ("fixed", "natural")
QUANTS = ("auto", "mxfp4", "bf16")  # asked for; "server" for --backend openai
CACHES = ("dynamic", "static")
# How new tokens are decoded in-process: transformers' `generate`, or one captured CUDA graph of
# the model's forward replayed per token (bench/backends/transformers/graph.py); "server" for
# --backend openai.
DECODES = ("generate", "graph")
STATUSES = ("ok", "oom", "error", "skipped")
LOADS = ("waves", "closed", "poisson", "gamma")  # how a server's requests are sent (--load)


def effort_mix(effort: str) -> tuple[tuple[str, float], ...]:
    """A key's effort as (effort, share) pairs: ``"high"`` -> (("high", 1.0),); a mix such as
    ``"low:0.5+high:0.5"`` (each request draws its effort with these shares) -> its pairs."""
    if ":" not in effort:
        return ((effort, 1.0),)
    pairs = []
    for part in effort.split("+"):
        name, _, share = part.partition(":")
        pairs.append((name, float(share)))
    return tuple(pairs)


@dataclass(frozen=True)
class CaseKey:
    """What identifies a case across runs: compare and resume match on this.

    ``quant`` and ``attn`` are what was asked for; the path that actually ran is recorded beside
    the case (``CaseResult.weights_path``) and in its load record.
    """

    effort: str
    output_len: int
    prompt_len: int
    batch_size: int = 1
    mode: str = "fixed"
    cache: str = "dynamic"
    quant: str = "auto"
    attn: str = "auto"
    concurrency: int = 1  # --backend openai: requests at once (open loops: the cap, 0 for none)
    decode: str = "generate"
    # --backend openai, sustained load: the load model, its request rate (req/s; None with an open
    # loop: all at once) and burstiness (gamma), and the prompts' file (then prompt_len is 0).
    # Left out of the file (and of the id) at their defaults, so older files and ids stay the same.
    load: str = "waves"
    request_rate: float | None = None
    burstiness: float | None = None
    dataset: str | None = None

    @property
    def id(self) -> str:
        # A graph case says so after the concurrency; generate and server ids are those of files
        # written before the decode axis existed, so history and compare keep matching them.
        tail = f"/{self.decode}" if self.decode not in ("generate", "server") else ""
        text = (
            f"{self.effort}/out{self.output_len}/in{self.prompt_len}/b{self.batch_size}/"
            f"{self.mode}/{self.cache}/{self.quant}/{self.attn}/c{self.concurrency}{tail}"
        )
        if self.load != "waves":
            text += f"/{self.load}"
            if self.load in ("poisson", "gamma"):
                text += "-rinf" if self.request_rate is None else f"-r{self.request_rate:g}"
            if self.burstiness is not None:
                text += f"-b{self.burstiness:g}"
        if self.dataset:
            text += f"/ds:{self.dataset}"
        return text

    @property
    def open_loop(self) -> bool:
        return self.load in ("poisson", "gamma")

    def load_group(self) -> tuple[str, str]:
        """Cases that share this need no reload between them."""
        return (self.quant, self.attn)

    def to_dict(self) -> dict:
        d = asdict(self)
        for name, default in (("load", "waves"), ("request_rate", None), ("burstiness", None), ("dataset", None)):
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CaseKey":
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in names}
        # Files from before the decode axis: a server case was served, anything else generated.
        values.setdefault("decode", "server" if values.get("quant") == "server" else "generate")
        return cls(**values)


@dataclass
class CaseResult:
    key: CaseKey
    status: str = "ok"  # one of STATUSES
    message: str | None = None
    metrics: dict[str, Stat] = field(default_factory=dict)
    weights_path: str | None = None  # "mxfp4" | "bf16" | None (server, unknown)
    started_at: str | None = None
    duration_s: float | None = None
    # Free-form facts about the case that are not metrics: e.g. the stop reasons in natural mode,
    # the token counts the server reported.
    info: dict[str, Any] = field(default_factory=dict)
    requests: RequestLog | None = None  # a sustained-load case: every counted request

    def median(self, metric: str) -> float | None:
        stat = self.metrics.get(metric)
        return stat.median if stat else None

    def to_dict(self) -> dict:
        d = {
            "key": self.key.to_dict(),
            "id": self.key.id,
            "status": self.status,
            "message": self.message,
            "weights_path": self.weights_path,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "metrics": {name: stat.to_dict() for name, stat in self.metrics.items()},
            "info": self.info,
        }
        if self.requests is not None:
            d["requests"] = self.requests.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CaseResult":
        return cls(
            key=CaseKey.from_dict(d["key"]),
            status=d.get("status", "ok"),
            message=d.get("message"),
            metrics={k: Stat.from_dict(v) for k, v in d.get("metrics", {}).items()},
            weights_path=d.get("weights_path"),
            started_at=d.get("started_at"),
            duration_s=d.get("duration_s"),
            info=dict(d.get("info", {})),
            requests=RequestLog.from_dict(d["requests"]) if isinstance(d.get("requests"), dict) else None,
        )


@dataclass
class LoadRecord:
    """One load of the model (one per quantization path and attention implementation)."""

    quant: str  # asked for: auto | mxfp4 | bf16
    attn: str  # asked for
    weights_path: str | None = None  # what ran: mxfp4 | bf16
    experts_class: str | None = None  # Mxfp4GptOssExperts | GptOssExperts
    attn_implementation: str | None = None  # what transformers used
    dtype: str | None = None
    parameters: int | None = None
    device: str | None = None
    fallback_reason: str | None = None  # why mxfp4 was asked and bf16 ran
    status: str = "ok"
    message: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)  # names from LOAD_METRICS
    layout: Layout | None = None  # how the model was spread over devices (None: older files, servers)

    @property
    def id(self) -> str:
        """The load's id beside the case ids (compare, history and export use it)."""
        return f"load/{self.quant}/{self.attn}"

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["layout"] is None:  # files without layouts stay as they were
            del d["layout"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LoadRecord":
        kept = known_fields(cls, d)
        if kept.get("layout") is not None:
            kept["layout"] = Layout.from_dict(kept["layout"])
        return cls(**kept)


@dataclass
class ModelInfo:
    id: str  # as the user gave it: openai/gpt-oss-20b, a path, synthetic:tiny, a served name
    source: str  # hub | local | synthetic | server
    path: str | None = None  # the local checkpoint folder actually loaded
    revision: str | None = None
    synthetic: bool = False
    parameters: int | None = None
    active_parameters: int | None = None
    bytes_per_token: dict[str, float] = field(default_factory=dict)  # weights path -> bytes read per decoded token

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelInfo":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class ResultWarning:
    code: str  # fallback | contention | throttling | synthetic | cpu | interrupted | ...
    message: str
    case: str | None = None  # a case id, where it concerns one case

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Results:
    model: ModelInfo
    backend: dict[str, Any] = field(default_factory=lambda: {"kind": "transformers"})
    config: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)  # the `gptoss check --json` snapshot
    # Flat one-line view of the environment that compare, history and reports key on:
    # gpu, gpu_count, driver, cuda, torch, triton, transformers, kernels, python, platform, device.
    env_summary: dict[str, Any] = field(default_factory=dict)
    gpu: dict[str, Any] = field(default_factory=dict)  # name, memory_bandwidth_bytes_s, source of that figure
    loads: list[LoadRecord] = field(default_factory=list)
    cases: list[CaseResult] = field(default_factory=list)
    warnings: list[ResultWarning] = field(default_factory=list)
    tool_version: str = ""
    run_id: str = ""
    created_at: str = field(default_factory=now_iso)
    finished_at: str | None = None
    complete: bool = False

    # ---- queries -----------------------------------------------------------------------------

    def case(self, key: CaseKey) -> CaseResult | None:
        for c in self.cases:
            if c.key == key:
                return c
        return None

    def done_keys(self) -> set[CaseKey]:
        """Cases that need not run again on --resume (measured or found not to fit)."""
        return {c.key for c in self.cases if c.status in ("ok", "oom")}

    def add_case(self, result: CaseResult) -> None:
        """Add or replace (same key) a case."""
        self.cases = [c for c in self.cases if c.key != result.key] + [result]

    def warn(self, code: str, message: str, case: str | None = None) -> None:
        w = ResultWarning(code, message, case)
        if all(x.to_dict() != w.to_dict() for x in self.warnings):
            self.warnings.append(w)

    # ---- JSON edge ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA_ID,
            "tool_version": self.tool_version,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "complete": self.complete,
            "backend": self.backend,
            "model": self.model.to_dict(),
            "config": self.config,
            "environment": self.environment,
            "env_summary": self.env_summary,
            "gpu": self.gpu,
            "loads": [x.to_dict() for x in self.loads],
            "cases": [x.to_dict() for x in self.cases],
            "warnings": [x.to_dict() for x in self.warnings],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Results":
        return cls(
            model=ModelInfo.from_dict(d["model"]),
            backend=dict(d.get("backend", {})),
            config=dict(d.get("config", {})),
            environment=dict(d.get("environment", {})),
            env_summary=dict(d.get("env_summary", {})),
            gpu=dict(d.get("gpu", {})),
            loads=[LoadRecord.from_dict(x) for x in d.get("loads", [])],
            cases=[CaseResult.from_dict(x) for x in d.get("cases", [])],
            warnings=[ResultWarning(**x) for x in d.get("warnings", [])],
            tool_version=d.get("tool_version", ""),
            run_id=d.get("run_id", ""),
            created_at=d.get("created_at", ""),
            finished_at=d.get("finished_at"),
            complete=bool(d.get("complete", False)),
        )
