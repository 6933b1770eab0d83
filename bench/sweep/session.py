"""`gptoss bench` end to end: config -> environment snapshot -> backend -> sweep -> results file.

The CLI parses options into a BenchConfig, calls ``run_bench`` and then renders the report
(the CLI is the one place that wires bench and reports together); everything else is here.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench import __version__
from bench import results as R
from bench.sweep.config import BenchConfig, validate
from bench.results.errors import UserError
from bench.sweep.runner import run_sweep

log = logging.getLogger("gptoss.bench")


@dataclass
class BenchOutcome:
    results: R.Results
    results_path: Path


def _environment(cfg: BenchConfig) -> dict:
    """The same snapshot `gptoss check --json` prints (secrets redacted), or why it is missing."""
    try:
        from diagnostics import snapshot

        # Through JSON once, so the results file holds exactly what `gptoss check --json` prints.
        return json.loads(json.dumps(snapshot(model=cfg.model).to_dict()))
    except Exception as exc:  # the benchmark must not die because a diagnostic did
        log.warning("environment snapshot failed: %s", exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _apply_spec(model: R.ModelInfo, model_id: str) -> None:
    """Known gpt-oss shapes: active parameters and bytes read per decoded token (the roofline)."""
    from diagnostics.models import spec_for

    spec = spec_for(model_id)
    if spec is None:
        return
    model.active_parameters = int(spec.params_active)
    model.bytes_per_token = {path: float(spec.bytes_per_token(path)) for path in ("mxfp4", "bf16")}


def _make_backend(cfg: BenchConfig, progress: bool):
    if cfg.backend == "openai":
        from bench.backends.openai.backend import OpenAIBackend

        return OpenAIBackend(cfg, model=cfg.model)
    from bench.backends.transformers.backend import TransformersBackend

    return TransformersBackend(cfg, progress=progress)


def _start_results(cfg: BenchConfig, backend, environment: dict) -> R.Results:
    model = backend.model_info()
    _apply_spec(model, cfg.model)
    summary = R.summarize_environment(environment) if "facts" in environment else {}
    res = R.Results(
        model=model,
        backend=backend.describe(),
        config=cfg.to_dict(),
        environment=environment,
        env_summary=summary,
        tool_version=__version__,
        run_id=uuid.uuid4().hex[:12],
    )
    if model.synthetic:
        res.warn("synthetic", "random synthetic weights: speed and memory transfer to the real model, the text does not")
    return res


def _gpu_bandwidth(cfg: BenchConfig, res: R.Results) -> float | None:
    from bench.sweep import bandwidth

    if res.env_summary.get("device") != "cuda" or cfg.backend != "transformers":
        res.gpu = {"name": res.env_summary.get("gpu"), "memory_bandwidth_bytes_s": None, "bandwidth_source": "not applicable"}
        return None
    gpus = (res.environment.get("facts") or {}).get("gpus") or [{}]
    bw = (
        bandwidth.measure()
        if cfg.measure_bandwidth
        else bandwidth.datasheet(res.env_summary.get("gpu"), gpus[0].get("memory_total_bytes"))
    )
    res.gpu = {
        "name": res.env_summary.get("gpu"),
        "memory_bandwidth_bytes_s": bw.bytes_per_s,
        "bandwidth_source": bw.source,
    }
    return bw.bytes_per_s


def _validity_warnings(res: R.Results) -> None:
    """Throttling and contention seen by NVML during cases; a CPU run."""
    if res.env_summary.get("device") == "cpu" and res.backend.get("kind") == "transformers":
        res.warn("cpu", "ran on the CPU: figures say nothing about a GPU")
    for case in res.cases:
        nvml = case.info.get("nvml") or {}
        reasons = nvml.get("throttle_reasons") or []
        if reasons:
            res.warn("throttling", f"the GPU slowed down ({', '.join(reasons)}) during this case", case.key.id)
        if nvml.get("other_processes_max"):
            res.warn("contention", f"{nvml['other_processes_max']} other process(es) used the GPU during this case", case.key.id)


def _check_resume(existing: R.Results, cfg: BenchConfig) -> None:
    old = existing.config
    for name in ("model", "backend", "device", "reps", "warmup", "mode"):
        if old.get(name) != getattr(cfg, name):
            raise UserError(
                f"--resume: the saved run used {name}={old.get(name)!r} but this command says "
                f"{getattr(cfg, name)!r}; repeat the original command with --resume, or use another --out."
            )


def run_bench(
    cfg: BenchConfig,
    out_dir: Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> BenchOutcome:
    validate(cfg)
    out_dir = Path(out_dir)
    path = out_dir / "results.json"
    existing = None
    if path.exists():
        if not resume:
            raise UserError(
                f"{path} already exists; pass --resume to continue that run, or --out to write a new one."
            )
        existing = R.load(path)
        _check_resume(existing, cfg)
    elif resume:
        log.warning("--resume: no %s yet, starting a new run", path)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the output folder {out_dir} ({e.strerror}); pass a writable --out.") from None

    backend = _make_backend(cfg, progress)
    if existing is not None:
        res = existing
        res.config = cfg.to_dict()
    else:
        res = _start_results(cfg, backend, _environment(cfg))
        if cfg.backend == "transformers":
            # Where the model actually runs (--device cpu on a GPU machine is a CPU run).
            res.env_summary["device"] = _resolved_device(cfg.device)
    bandwidth = _gpu_bandwidth(cfg, res)
    try:
        run_sweep(cfg, backend, res, path, progress=progress, bandwidth=bandwidth)
    finally:
        _validity_warnings(res)
        R.save(res, path)
    return BenchOutcome(results=res, results_path=path)


def _resolved_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"
