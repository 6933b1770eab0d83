"""Results objects and files for the compare, history, export, CI-flow and scaling tests."""

from __future__ import annotations

import json

from bench import results as R
from bench.results.layout import DeviceShare, Layout
from bench.results.stats import Stat

H100 = "NVIDIA H100 80GB HBM3"
KEY = R.CaseKey(effort="low", output_len=256, prompt_len=128)
KEY2 = R.CaseKey(effort="high", output_len=256, prompt_len=128)

BASE_ENV = {
    "device": "cuda", "gpu": H100, "gpu_count": 1, "driver": "550.54", "cuda": "12.4", "torch": "2.11.0",
    "triton": "3.4.0", "transformers": "5.17.0", "kernels": "0.16.2", "python": "3.11.7", "platform": "Linux",
}

# Ten repetitions of decode speed (tok/s) around 100.
DECODE_BASE = [100.0, 101.0, 99.5, 100.5, 100.2, 99.8, 100.1, 100.7, 99.2, 100.4]


def make_results(
    cases: dict[R.CaseKey, dict[str, list[float]]] | None = None,
    *,
    run_id: str = "run-base",
    env: dict | None = None,
    weights_path: str = "mxfp4",
    statuses: dict[R.CaseKey, str] | None = None,
    loads: list[R.LoadRecord] | None = None,
    model_id: str = "synthetic:gpt-oss-20b",
    created_at: str = "2025-01-01T00:00:00+00:00",
) -> R.Results:
    """A results object from per-case raw samples (the way `gptoss bench` builds them)."""
    cases = cases if cases is not None else {KEY: {"decode_tok_s": DECODE_BASE}}
    statuses = statuses or {}
    env = {**BASE_ENV, **(env or {})}
    res = R.Results(
        model=R.ModelInfo(id=model_id, source="synthetic" if model_id.startswith("synthetic:") else "hub",
                          synthetic=model_id.startswith("synthetic:")),
        env_summary=env,
        run_id=run_id,
        tool_version="0.1.0",
        created_at=created_at,
        complete=True,
    )
    for key, metrics in cases.items():
        status = statuses.get(key, "ok")
        res.add_case(R.CaseResult(
            key=key,
            status=status,
            message="CUDA out of memory" if status == "oom" else None,
            metrics={m: Stat.of(v) for m, v in metrics.items()} if status == "ok" else {},
            weights_path=weights_path,
        ))
    res.loads = loads if loads is not None else [
        R.LoadRecord(quant="auto", attn="auto", weights_path=weights_path, metrics={"load_s": 10.0, "load_peak_bytes": 15.2e9})
    ]
    return res


GIB = 1024**3


def layout_results(
    kind: str,
    gpus: int,
    cases: dict[R.CaseKey, dict[str, list[float]]],
    *,
    weights_path: str = "mxfp4",
    weights_gib: float = 60.8,
    copied: float = 0.06,
    run_id: str | None = None,
    **kw,
) -> R.Results:
    """A run of ``synthetic:gpt-oss-120b`` on ``gpus`` GPUs of one layout (single, pipeline,
    expert-parallel, tensor-parallel): the load's layout with each GPU's bytes (a pipeline holds
    1/N of the weights per GPU; --ep/--tp 1/N of the split part plus a copy of the rest, the
    ``copied`` share), and per case every GPU's peak under ``info.gpus``, summed in peak_alloc_bytes.
    Every run is on one machine of 8 H200s (``gpu_count``), as a sweep is."""
    total = weights_gib * GIB
    per_gpu = total if kind == "single" else total / gpus if kind == "pipeline" else total * (copied + (1 - copied) / gpus)
    layout = Layout(kind, world_size=gpus if kind in ("tensor-parallel", "expert-parallel") else 1,
                    devices=[DeviceShare(f"cuda:{i}", "NVIDIA H200", load_alloc_bytes=round(per_gpu) + i * 1024,
                                         load_peak_bytes=round(per_gpu * 1.1)) for i in range(gpus)])
    load = R.LoadRecord(quant="auto", attn="auto", weights_path=weights_path, device="cuda:0", layout=layout,
                        metrics={"load_s": 10.0, "load_alloc_bytes": round(per_gpu) * gpus})
    res = make_results(cases, run_id=run_id or f"run-{kind}-{gpus}", weights_path=weights_path, loads=[load],
                       model_id="synthetic:gpt-oss-120b", env={"gpu": "NVIDIA H200", "gpu_count": 8}, **kw)
    for case in res.cases:
        peak = per_gpu + 2 * GIB * case.key.batch_size
        if case.status == "ok":
            case.metrics["peak_alloc_bytes"] = Stat.of([peak * gpus])
        if gpus > 1:
            case.info["gpus"] = {f"cuda:{i}": {"peak_alloc_bytes": [peak + i * 1024] * 2} for i in range(gpus)}
    return res


def save_results(tmp_path, name: str, res: R.Results) -> str:
    return str(R.save(res, tmp_path / name))


def old_v0_file(tmp_path, samples: dict[str, list[float]], *, gpu: str = H100, torch: str = "2.10.0",
                output_len: int = 256, **top) -> str:
    """A pre-release results file (schema results/0): raw samples only, ``length`` for the output."""
    doc = {
        "schema": "gptoss-harness/results/0",
        "tool_version": "0.0.9",
        "run_id": "old-run",
        "created_at": "2024-12-01T00:00:00+00:00",
        "backend": {"kind": "transformers"},
        "model": {"id": "synthetic:gpt-oss-20b", "source": "synthetic", "synthetic": True},
        "config": {},
        "environment": {"facts": {"gpus": [{"name": gpu}], "packages": {"torch": {"version": torch}}}},
        "loads": [],
        "cases": [{"key": {"effort": "low", "length": output_len, "prompt_len": 128, "batch_size": 1, "mode": "fixed",
                           "cache": "dynamic", "quant": "auto", "attn": "auto", "concurrency": 1},
                   "status": "ok", "samples": samples}],
        "warnings": [],
        **top,
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    return str(path)
