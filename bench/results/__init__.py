"""The results file: the contract between bench, reports, compare, history and export.

One JSON document per run, versioned by its ``schema`` field and described by the JSON Schema in
``bench/results/schema/results-1.schema.json``. It is validated on load; older versions are upgraded on
load; it is written atomically (temporary file + rename) after every case, so a crash, an
out-of-memory or a lost Colab session loses nothing already measured.

Dataclasses here, dicts only at the JSON edge (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from bench.results.errors import UserError
from bench.results.stats import Stat

SCHEMA_ID = "gptoss-harness/results/1"
SCHEMA_PREFIX = "gptoss-harness/results/"
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).parent / "schema" / "results-1.schema.json"


class ResultsError(UserError):
    """A results file that cannot be used; the message is one sentence that says what to do."""


# --------------------------------------------------------------------------------------------
# Metrics: one registry of names, units and which direction is better. Every other module
# (compare thresholds, history columns, exports, report tables) reads names from here.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str  # "s", "tok/s", "bytes", "tokens", "fraction"
    higher_is_better: bool
    phase: str  # "case" or "load"
    description: str


_M = MetricSpec
METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in [
        _M("ttft_s", "s", False, "case", "time to first token (prompt processing + first step)"),
        _M("prefill_tok_s", "tok/s", True, "case", "prompt tokens processed per second"),
        _M("decode_tok_s", "tok/s", True, "case", "new tokens per second after the first token"),
        _M("itl_p50_s", "s", False, "case", "inter-token latency, median"),
        _M("itl_p90_s", "s", False, "case", "inter-token latency, 90th percentile"),
        _M("itl_p99_s", "s", False, "case", "inter-token latency, 99th percentile"),
        _M("e2e_s", "s", False, "case", "end-to-end time of one request"),
        _M("new_tokens", "tokens", True, "case", "new tokens generated per sequence"),
        _M("total_tok_s", "tok/s", True, "case", "output tokens per second over all sequences/requests"),
        _M("peak_alloc_bytes", "bytes", False, "case", "peak memory allocated by torch"),
        _M("peak_reserved_bytes", "bytes", False, "case", "peak memory reserved by torch's allocator"),
        _M("nvml_used_bytes", "bytes", False, "case", "device memory in use as NVML sees it"),
        _M("kv_cache_bytes", "bytes", False, "case", "size of the KV cache at the end of generation"),
        _M("roofline_frac", "fraction", True, "case", "decode speed over the memory-bandwidth roofline"),
        _M("analysis_tokens", "tokens", False, "case", "tokens on the harmony analysis channel"),
        _M("final_tokens", "tokens", False, "case", "tokens on the harmony final channel"),
        _M("time_to_final_s", "s", False, "case", "time to the first final-channel token"),
        _M("warmup_s", "s", False, "case", "wall time of the uncounted warm-up runs (torch.compile, autotuning and CUDA graph capture land here)"),
        _M("download_s", "s", False, "load", "download of the checkpoint"),
        _M("load_s", "s", False, "load", "from_pretrained"),
        _M("first_token_cold_s", "s", False, "load", "first generated token after load (compilation included)"),
        _M("load_alloc_bytes", "bytes", False, "load", "memory allocated after load"),
        _M("load_peak_bytes", "bytes", False, "load", "peak memory during load"),
    ]
}
CASE_METRICS = [m for m, s in METRICS.items() if s.phase == "case"]
LOAD_METRICS = [m for m, s in METRICS.items() if s.phase == "load"]

STATUSES = ("ok", "oom", "error", "skipped")
EFFORTS = ("low", "medium", "high")
MODES = ("fixed", "natural")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# The records
# --------------------------------------------------------------------------------------------


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
    concurrency: int = 1

    @property
    def id(self) -> str:
        return (
            f"{self.effort}/out{self.output_len}/in{self.prompt_len}/b{self.batch_size}/"
            f"{self.mode}/{self.cache}/{self.quant}/{self.attn}/c{self.concurrency}"
        )

    def load_group(self) -> tuple[str, str]:
        """Cases that share this need no reload between them."""
        return (self.quant, self.attn)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CaseKey":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


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

    def median(self, metric: str) -> float | None:
        stat = self.metrics.get(metric)
        return stat.median if stat else None

    def to_dict(self) -> dict:
        return {
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LoadRecord":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


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


# --------------------------------------------------------------------------------------------
# Validation, upgrade, reading and writing
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def json_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def validate(doc: dict, source: str = "results") -> None:
    """Raise ResultsError with one readable sentence when ``doc`` does not fit the schema."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise ResultsError(
            f"{source} is not a valid gptoss-harness results file ({where}: {first.message}); "
            "re-run `gptoss bench` to produce a new one."
        )


def _upgrade_0_to_1(doc: dict) -> dict:
    """Pre-release files (``results/0``): cases held raw samples only, the output length was
    called ``length``, and there was no ``env_summary``. Statistics are computed from the raw
    samples; nothing is invented."""
    doc = dict(doc)
    cases = []
    for c in doc.get("cases", []):
        c = dict(c)
        key = dict(c.get("key", {}))
        if "length" in key:
            key["output_len"] = key.pop("length")
        c["key"] = key
        c["id"] = CaseKey.from_dict(key).id
        samples = c.pop("samples", {})
        c["metrics"] = {name: Stat.of(values).to_dict() for name, values in samples.items()}
        cases.append(c)
    doc["cases"] = cases
    env = doc.get("environment", {})
    doc.setdefault("env_summary", summarize_environment(env) if env else {})
    doc.setdefault("gpu", {})
    doc.setdefault("complete", doc.get("finished_at") is not None)
    doc["schema"] = SCHEMA_ID
    return doc


UPGRADES = {0: _upgrade_0_to_1}


def schema_version(doc: dict, source: str = "results") -> int:
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        raise ResultsError(
            f"{source} is not a gptoss-harness results file (no \"schema\": \"{SCHEMA_PREFIX}N\" field); "
            "pass the results.json that `gptoss bench` wrote."
        )
    try:
        return int(schema[len(SCHEMA_PREFIX):])
    except ValueError:
        raise ResultsError(f"{source} has an unreadable schema version {schema!r}; pass a results.json that `gptoss bench` wrote.") from None


def upgrade(doc: dict, source: str = "results") -> dict:
    version = schema_version(doc, source)
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{source} uses results schema version {version}, newer than this gptoss-harness understands "
            f"({SCHEMA_VERSION}); upgrade with `pip install -U gptoss-harness`."
        )
    while version < SCHEMA_VERSION:
        doc = UPGRADES[version](doc)
        version += 1
    return doc


def parse(doc: Any, source: str = "results") -> Results:
    """Upgrade, validate and convert a decoded JSON document."""
    doc = upgrade(doc, source)
    validate(doc, source)
    return Results.from_dict(doc)


def load(path: str | os.PathLike) -> Results:
    """Read a results file, upgrading older versions; one clear sentence on any problem."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path} does not exist; pass the results.json that `gptoss bench` wrote.") from None
    except OSError as e:
        raise ResultsError(f"{path} cannot be read ({e.strerror}); check the path and its permissions.") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultsError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}): the file is damaged; "
            "re-run the benchmark or restore it from a copy."
        ) from None
    return parse(doc, str(path))


def save(results: Results, path: str | os.PathLike) -> Path:
    """Validate and write atomically: a reader never sees half a file."""
    path = Path(path)
    doc = results.to_dict()
    validate(doc, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


# --------------------------------------------------------------------------------------------
# Environment summary
# --------------------------------------------------------------------------------------------

SUMMARY_FIELDS = ("device", "gpu", "gpu_count", "cpu", "driver", "cuda", "torch", "triton", "transformers", "kernels", "python", "platform")


def summarize_environment(snapshot: dict) -> dict:
    """The flat view of a ``gptoss check --json`` snapshot that compare, history and reports use."""
    facts = snapshot.get("facts", {}) if isinstance(snapshot, dict) else {}
    gpus = facts.get("gpus") or []
    packages = facts.get("packages") or {}
    driver = facts.get("driver") or {}
    torch_fact = facts.get("torch") or {}
    platform_fact = facts.get("platform") or {}

    def version(name: str) -> str | None:
        p = packages.get(name) or {}
        return p.get("version")

    return {
        "device": "cuda" if gpus else "cpu",
        "gpu": gpus[0].get("name") if gpus else None,
        "gpu_count": len(gpus),
        "cpu": platform_fact.get("cpu") or None,
        "driver": driver.get("version"),
        "cuda": torch_fact.get("cuda_build"),
        "torch": version("torch"),
        "triton": version("triton"),
        "transformers": version("transformers"),
        "kernels": version("kernels"),
        "python": platform_fact.get("python"),
        "platform": platform_fact.get("system"),
    }


def env_differences(a: dict, b: dict, keys: Iterable[str] = SUMMARY_FIELDS) -> dict[str, tuple[Any, Any]]:
    """Fields of two environment summaries that differ: name -> (a, b)."""
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}
