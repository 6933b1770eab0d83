"""One ``gptoss bench`` run from config to saved results.

``BenchRun(cfg, ref, out_dir, resume=...)`` validates and opens the run before any backend
exists (the folder proved writable and locked for this run), so a wrong ``--out`` or
``--resume`` fails before a download; ``run(backend, device)``
takes the environment snapshot, the model's facts and the memory bandwidth, then drives the sweep
through a journal that saves after every change. The CLI builds the backend and renders the
report: it is the one place that wires bench, backends and reports together.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.backends.base import Backend
from bench.results import ModelInfo, Results, load, summarize_environment, writable_folder
from bench.sweep.config import BenchConfig, Note, validate
from bench.sweep.journal import Journal
from bench.sweep.outdir import WRITABLE_FIX, RunLock, holds_measurements
from bench.sweep.runner import run_sweep
from diagnostics.errors import UserError
from diagnostics.meta import tool_version
from diagnostics.modelref import ModelRef

log = logging.getLogger("gptoss.bench")

RESUME_FIELDS = ("model", "backend", "device", "reps", "warmup", "mode", "devices", "parallel")


@dataclass
class BenchOutcome:
    results: Results
    results_path: Path


class BenchRun:
    def __init__(self, cfg: BenchConfig, ref: ModelRef, out_dir: Path, *, resume: bool = False,
                 notes: list[Note] = (), main: bool = True):
        """``main`` is False on the torchrun ranks other than 0: they run the sweep in lockstep
        with rank 0 but take no environment snapshot and write nothing."""
        validate(cfg)
        self.cfg, self.ref, self.notes, self.main = cfg, ref, list(notes), main
        # Rank 0 (or the only process) proves the folder writable and holds it for this run; the
        # other torchrun ranks only read what is there.
        self.out_dir = writable_folder(out_dir, WRITABLE_FIX) if main else Path(out_dir)
        self.lock = RunLock(self.out_dir).acquire() if main else None  # held until release() or the process ends
        self.path = self.out_dir / "results.json"
        self.existing: Results | None = None
        try:
            self._open_existing(resume)
        except BaseException:
            self.release()
            raise

    def _open_existing(self, resume: bool) -> None:
        if not self.path.exists():
            if resume:
                log.warning("--resume: no %s yet, starting a new run", self.path)
            return
        existing = load(self.path)  # a damaged file is one sentence, and stays as it is
        if not holds_measurements(existing):
            log.warning("%s holds no measurement (a run that failed to start); replacing it", self.path)
            return
        if not resume:
            raise UserError(
                f"{self.path} already exists; pass --resume to continue that run, or --out to write a new one."
            )
        _check_resume(existing, self.cfg)
        self.existing = existing

    def release(self) -> None:
        """Let the next run write into the folder (also done by the OS when the process ends)."""
        if self.lock is not None:
            self.lock.release()

    def run(self, backend: Backend, *, device: str | None = None, progress: bool = True) -> BenchOutcome:
        """Run the sweep on ``backend``. ``device`` is where an in-process model runs (``cpu``,
        ``cuda:N``; None for a server), as the CLI resolved it."""
        cfg = self.cfg
        if self.existing is not None:
            res = self.existing
            res.config = cfg.to_dict()
        else:
            res = self._start(backend)
            if device is not None:  # where the model actually runs (--device cpu on a GPU machine is a CPU run)
                res.env_summary["device"] = device.split(":", 1)[0]
        journal = Journal(res, self.path if self.main else None)
        bandwidth = _gpu_bandwidth(cfg, res)
        try:
            run_sweep(cfg, backend, journal, progress=progress, bandwidth=bandwidth)
        finally:
            _validity_warnings(res)
            journal.save()
        return BenchOutcome(results=res, results_path=self.path)

    def _start(self, backend: Backend) -> Results:
        environment = _environment(self.ref) if self.main else {}
        model = backend.model_info()
        _apply_spec(model, self.ref)
        res = Results(
            model=model,
            backend=backend.describe(),
            config=self.cfg.to_dict(),
            environment=environment,
            env_summary=summarize_environment(environment) if "facts" in environment else {},
            tool_version=tool_version(),
            run_id=uuid.uuid4().hex[:12],
        )
        if model.synthetic:
            res.warn("synthetic", "random synthetic weights: speed and memory transfer to the real model, the text does not")
        for note in self.notes:
            res.warn(note.code, note.message)
        return res


def _environment(ref: ModelRef) -> dict:
    """The same snapshot `gptoss check --json` prints (secrets redacted), or why it is missing."""
    try:
        from diagnostics import snapshot

        # Through JSON once, so the results file holds exactly what `gptoss check --json` prints.
        return json.loads(json.dumps(snapshot(model=ref).to_dict()))
    except Exception as exc:  # the benchmark must not die because a diagnostic did
        log.warning("environment snapshot failed: %s", exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _apply_spec(model: ModelInfo, ref: ModelRef) -> None:
    """Known gpt-oss shapes (a hub id, a synthetic name, or a local folder whose config.json has
    one): active parameters and bytes read per decoded token (the roofline)."""
    spec = ref.spec
    if spec is None:
        return
    model.active_parameters = int(spec.params_active)
    model.bytes_per_token = {path: float(spec.bytes_per_token(path)) for path in ("mxfp4", "bf16")}


def _gpu_bandwidth(cfg: BenchConfig, res: Results) -> float | None:
    """The roofline's bandwidth: that of the GPUs holding weights (``--devices``, or the one GPU),
    each recorded in ``gpu.gpus`` when there are several; the lowest is the one used (a pipeline
    waits for each GPU in turn, a parallel layout for its slowest rank)."""
    from bench.models import ranks
    from bench.sweep import bandwidth

    if res.env_summary.get("device") != "cuda" or cfg.backend != "transformers":
        res.gpu = {"name": res.env_summary.get("gpu"), "memory_bandwidth_bytes_s": None, "bandwidth_source": "not applicable"}
        return None
    facts = [g for g in (res.environment.get("facts") or {}).get("gpus") or [] if isinstance(g, dict)]
    indices = cfg.devices or [_device_index(cfg.device)]
    measured = None
    per_gpu = []
    for index in indices:
        fact = next((g for g in facts if g.get("index") == index), None) or (facts[0] if facts and len(indices) == 1 else {})
        if not cfg.measure_bandwidth:
            bw = bandwidth.datasheet(fact.get("name"), fact.get("memory_total_bytes"))
        elif not ranks.under_torchrun():
            bw = bandwidth.measure(f"cuda:{index}")
        else:  # each rank measures its own GPU at the same time; rank 0's figure stands for all
            bw = measured = measured or bandwidth.measure(f"cuda:{ranks.local_rank()}")
        per_gpu.append({"index": index, "name": fact.get("name"), "memory_total_bytes": fact.get("memory_total_bytes"),
                        "memory_bandwidth_bytes_s": bw.bytes_per_s, "bandwidth_source": bw.source})
    slowest = min(per_gpu, key=lambda g: g["memory_bandwidth_bytes_s"] or 0.0)
    res.gpu = {
        "name": res.env_summary.get("gpu") if len(per_gpu) == 1 else slowest["name"],
        "memory_bandwidth_bytes_s": slowest["memory_bandwidth_bytes_s"],  # None when one GPU's is unknown
        "bandwidth_source": slowest["bandwidth_source"],
    }
    if len(per_gpu) > 1:
        res.gpu["gpus"] = per_gpu
    return res.gpu["memory_bandwidth_bytes_s"]


def _device_index(device: str) -> int:
    return int(device.split(":", 1)[1]) if ":" in device else 0


HOST_BOUND_BELOW = 0.5  # gpu_busy_frac under this: the figure measures the host more than the GPU


def _validity_warnings(res: Results) -> None:
    """Throttling and contention seen by NVML during cases; a CPU run; host-bound cases."""
    if res.env_summary.get("device") == "cpu" and res.backend.get("kind") == "transformers":
        res.warn("cpu", "ran on the CPU: figures say nothing about a GPU")
    for case in res.cases:
        busy = case.median("gpu_busy_frac")
        if busy is not None and busy < HOST_BOUND_BELOW:
            res.warn("host_bound", f"the GPU was busy {busy:.0%} of each decode step: this figure measures the host "
                     "CPU (Python and kernel launches) more than the GPU", case.key.id)
        nvml = case.info.get("nvml") or {}
        reasons = nvml.get("throttle_reasons") or []
        if reasons:
            res.warn("throttling", f"the GPU slowed down ({', '.join(reasons)}) during this case", case.key.id)
        if nvml.get("other_processes_max"):
            res.warn("contention", f"{nvml['other_processes_max']} other process(es) used the GPU during this case", case.key.id)


def _check_resume(existing: Results, cfg: BenchConfig) -> None:
    old = existing.config
    for name in RESUME_FIELDS:
        if old.get(name) != getattr(cfg, name):
            raise UserError(
                f"--resume: the saved run used {name}={old.get(name)!r} but this command says "
                f"{getattr(cfg, name)!r}; repeat the original command with --resume, or use another --out."
            )
