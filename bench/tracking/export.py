"""Export a results file for existing dashboards: pytest-benchmark JSON and github-action-benchmark.

pytest-benchmark JSON (``--format pytest-benchmark``) is the document ``pytest --benchmark-json``
writes: ``machine_info``, ``commit_info``, ``benchmarks[]`` (group, name, fullname, params, param,
extra_info, options, stats{min, max, mean, stddev, rounds, median, iqr, q1, q3, iqr_outliers,
stddev_outliers, outliers, ld15iqr, hd15iqr, ops, total, data, iterations}), ``datetime`` and
``version``. pytest-benchmark measures durations and treats smaller as better, so:

* metrics in seconds (ttft_s, itl_*, e2e_s, time_to_final_s, warmup_s; load: download_s, load_s,
  first_token_cold_s) are exported as they are, one benchmark per case and metric, the raw
  repetitions as rounds (load metrics: one round);
* throughput metrics (decode_tok_s, prefill_tok_s, total_tok_s) are exported inverted, as seconds
  per token (``decode_s_per_tok``...), so that smaller is better holds for every entry;
* memory, token counts and fractions are not durations: they go into ``extra_info`` (medians).

github-action-benchmark (``--format github-action-benchmark``) takes a JSON list of
``{name, unit, value, range, extra}`` for its ``customBiggerIsBetter`` or
``customSmallerIsBetter`` tool. One file serves one tool, so ``--tool`` picks the metrics whose
direction fits it (METRICS[...].higher_is_better): bigger-is-better exports throughput and the
roofline fraction, smaller-is-better exports times and memory. ``value`` is the median, ``range``
``± stdev``, ``extra`` n, p5/p95, weights path, GPU and model.
"""

from __future__ import annotations

import json
import math
import statistics
from bisect import bisect_left, bisect_right
from typing import Any, Sequence

from bench.results.errors import UserError
from bench.results import METRICS, Results

FORMATS = ("pytest-benchmark", "github-action-benchmark")
TOOLS = ("customBiggerIsBetter", "customSmallerIsBetter")
# The pytest-benchmark release whose JSON layout this mirrors (checked against its source).
PYTEST_BENCHMARK_FORMAT_VERSION = "5.2.3"
THROUGHPUT_SUFFIX = "_tok_s"


# --------------------------------------------------------------------------------------------
# pytest-benchmark statistics (pytest-benchmark's own Stats, or the same definitions)
# --------------------------------------------------------------------------------------------


def _quartiles(data: Sequence[float]) -> tuple[float, float]:
    """Q1 and Q3 as pytest-benchmark computes them.

    Even n: the medians of the lower and upper halves. Odd n = 4m + r: a weighted pair of order
    statistics (the interpolation used by pytest-benchmark, "method 3").
    """
    s = sorted(data)
    n = len(s)
    if n == 1:
        return s[0], s[0]
    if n % 2 == 0:
        return statistics.median(s[: n // 2]), statistics.median(s[n // 2:])
    m, r = divmod(n, 4)
    if r == 1:
        return 0.25 * s[m - 1] + 0.75 * s[m], 0.75 * s[3 * m] + 0.25 * s[3 * m + 1]
    return 0.75 * s[m] + 0.25 * s[m + 1], 0.25 * s[3 * m + 1] + 0.75 * s[3 * m + 2]


def pytest_benchmark_stats(data: Sequence[float], iterations: int = 1) -> dict[str, Any]:
    """The ``stats`` block of one benchmark: computed by pytest-benchmark's own ``Stats`` when it
    is installed (its definitions change between releases), else by the same formulas here."""
    data = [float(x) for x in data]
    if not data:
        raise ValueError("no data")
    try:
        from pytest_benchmark.stats import Stats
    except ImportError:
        return _own_stats(data, iterations)
    ref = Stats()
    for x in data:
        ref.update(x)
    out = {name: getattr(ref, name) for name in Stats.fields}
    out.update(data=data, iterations=iterations)
    return out


def _own_stats(data: list[float], iterations: int) -> dict[str, Any]:
    s = sorted(data)
    n = len(s)
    mean = statistics.mean(data)
    stddev = statistics.stdev(data) if n > 1 else 0
    q1, q3 = _quartiles(data)
    iqr = q3 - q1
    # Tukey's fences: the lowest and highest datum within 1.5 IQR of the quartiles.
    ld15iqr = s[bisect_left(s, q1 - 1.5 * iqr)]
    hd15iqr = s[bisect_right(s, q3 + 1.5 * iqr) - 1]
    iqr_out = sum(1 for v in data if v < q1 - 1.5 * iqr or v > q3 + 1.5 * iqr)
    sd_out = sum(1 for v in data if v < mean - stddev or v > mean + stddev)
    total = sum(data)
    return {
        "min": s[0],
        "max": s[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": n,
        "median": statistics.median(data),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_out,
        "stddev_outliers": sd_out,
        "outliers": f"{sd_out};{iqr_out}",
        "ld15iqr": ld15iqr,
        "hd15iqr": hd15iqr,
        "ops": n / total if total else 0,
        "total": total,
        "data": data,
        "iterations": iterations,
    }


def _pb_version() -> str:
    try:
        from importlib.metadata import version

        return version("pytest-benchmark")
    except Exception:
        return PYTEST_BENCHMARK_FORMAT_VERSION


def exported_name(metric: str) -> tuple[str, bool]:
    """The pytest-benchmark name of a metric and whether its values are inverted (1/x)."""
    spec = METRICS[metric]
    if spec.unit == "tok/s":
        stem = metric[: -len(THROUGHPUT_SUFFIX)] if metric.endswith(THROUGHPUT_SUFFIX) else metric
        return f"{stem}_s_per_tok", True
    return metric, False


def _exportable(metric: str) -> bool:
    return METRICS[metric].unit in ("s", "tok/s")


def machine_info(r: Results) -> dict[str, Any]:
    env = r.env_summary
    return {
        "node": env.get("hostname") or "",
        "processor": "",
        "machine": "",
        "python_compiler": "",
        "python_implementation": "CPython",
        "python_implementation_version": env.get("python") or "",
        "python_version": env.get("python") or "",
        "python_build": [],
        "release": "",
        "system": env.get("platform") or "",
        "cpu": {},
        "gptoss": {
            **{k: env.get(k) for k in ("device", "gpu", "gpu_count", "driver", "cuda", "torch", "triton", "transformers", "kernels")},
            "model": r.model.id,
            "synthetic": r.model.synthetic,
            "run_id": r.run_id,
            "tool_version": r.tool_version,
        },
    }


def commit_info(commit: str | None) -> dict[str, Any]:
    return {
        "id": commit or "unknown",
        "time": None,
        "author_time": None,
        "dirty": False,
        "project": "gptoss-harness",
        "branch": "(unknown)",
    }


def to_pytest_benchmark(r: Results, commit: str | None = None) -> dict[str, Any]:
    benchmarks = []
    model = r.model.id
    for case in r.cases:
        if case.status != "ok":
            continue
        others = {m: s.median for m, s in case.metrics.items() if not _exportable(m) and s.median is not None}
        for metric, stat in case.metrics.items():
            if not _exportable(metric) or not stat.samples:
                continue
            name, inverted = exported_name(metric)
            data = stat.samples
            if inverted:
                if any(v <= 0 for v in data):
                    continue  # a zero throughput has no finite time per token
                data = [1.0 / v for v in data]
            extra = {"metric": metric, "unit": "s" if not inverted else "s/tok", "case": case.key.id,
                     "weights_path": case.weights_path, "model": model, "median_" + metric: stat.median, "metrics": others}
            if inverted:
                extra["transform"] = f"1/{metric}"
            benchmarks.append(_pb_entry(name, case.key.id, case.key.to_dict(), data, extra, model))
    for rec in r.loads:
        if rec.status != "ok":
            continue
        rec_id = rec.id
        others = {m: v for m, v in rec.metrics.items() if v is not None and not _exportable(m)}
        for metric, value in rec.metrics.items():
            if value is None or not _exportable(metric):
                continue
            extra = {"metric": metric, "unit": "s", "case": rec_id, "weights_path": rec.weights_path, "model": model, "metrics": others}
            benchmarks.append(_pb_entry(metric, rec_id, {"quant": rec.quant, "attn": rec.attn}, [value], extra, model))
    return {
        "machine_info": machine_info(r),
        "commit_info": commit_info(commit),
        "benchmarks": benchmarks,
        "datetime": r.finished_at or r.created_at,
        "version": _pb_version(),
    }


def _pb_entry(name: str, param: str, params: dict, data: list[float], extra: dict, model: str) -> dict[str, Any]:
    return {
        "group": name,
        "name": f"{name}[{param}]",
        "fullname": f"gptoss::{model}::{name}[{param}]",
        "params": params,
        "param": param,
        "extra_info": extra,
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": len(data), "max_time": 0,
                    "min_time": 0, "warmup": False},
        "stats": pytest_benchmark_stats(data),
    }


# --------------------------------------------------------------------------------------------
# github-action-benchmark
# --------------------------------------------------------------------------------------------


def tool_for(metric: str) -> str:
    return TOOLS[0] if METRICS[metric].higher_is_better else TOOLS[1]


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def to_github_action_benchmark(r: Results, tool: str = TOOLS[0], metrics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    if tool not in TOOLS:
        raise UserError(f"unknown tool {tool!r}; use one of {', '.join(TOOLS)}.")
    if metrics:
        for m in metrics:
            if m not in METRICS:
                raise UserError(f"unknown metric {m!r}; valid metrics: {', '.join(METRICS)}.")
            if tool_for(m) != tool:
                raise UserError(f"{m} is {'bigger' if METRICS[m].higher_is_better else 'smaller'}-is-better, so it belongs to "
                                f"--tool {tool_for(m)}; export it in a second file with that tool.")
    wanted = set(metrics) if metrics else {m for m in METRICS if tool_for(m) == tool}
    gpu = r.env_summary.get("gpu") or "cpu"
    out = []
    for case in r.cases:
        if case.status != "ok":
            continue
        for metric in METRICS:
            stat = case.metrics.get(metric)
            if metric not in wanted or stat is None or stat.median is None or not math.isfinite(stat.median):
                continue
            out.append({
                "name": f"{case.key.id} {metric}",
                "unit": METRICS[metric].unit,
                "value": stat.median,
                **({"range": f"± {stat.stdev:.4g}"} if stat.n > 1 and stat.stdev is not None else {}),
                "extra": f"n={stat.n}\np5={_g(stat.p5)} p95={_g(stat.p95)}\nweights={case.weights_path or '-'}\ngpu={gpu}\nmodel={r.model.id}",
            })
    for rec in r.loads:
        if rec.status != "ok":
            continue
        for metric in METRICS:
            value = rec.metrics.get(metric)
            if metric not in wanted or value is None:
                continue
            out.append({
                "name": f"{rec.id} {metric}",
                "unit": METRICS[metric].unit,
                "value": value,
                "extra": f"n=1\nweights={rec.weights_path or '-'}\ngpu={gpu}\nmodel={r.model.id}",
            })
    return out


def export(r: Results, fmt: str, *, commit: str | None = None, tool: str = TOOLS[0], metrics: Sequence[str] | None = None) -> Any:
    if fmt == "pytest-benchmark":
        if metrics:
            raise UserError("--metric applies to --format github-action-benchmark only; pytest-benchmark gets every time metric.")
        return to_pytest_benchmark(r, commit)
    if fmt == "github-action-benchmark":
        return to_github_action_benchmark(r, tool, metrics)
    raise UserError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"
