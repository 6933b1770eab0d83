"""Tables of a report, in the style of llama-bench: only the columns that vary, value ± spread.

Each builder returns a :class:`Table` (strings already formatted); ``to_markdown`` renders it,
the HTML renderer reads the same object. ``cases_csv`` exports the case table with raw SI values
(median, stdev, p5, p95, n per metric) for a spreadsheet.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from bench.results import CASE_METRICS, LOAD_METRICS, METRICS, SUMMARY_FIELDS, CaseResult, Results
from bench.results.stats import Stat
from reports.runs import KEY_FIELDS, KEY_HEADERS, RunSet, build_runset, case_value
from reports.units import DisplayUnit, fmt, fmt_bandwidth, fmt_count, fmt_spread, fmt_value, metric_unit


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    align: list[str] = field(default_factory=list)  # "l" | "r" per column
    emphasis: set[int] = field(default_factory=set)  # rows to highlight (e.g. fields that differ)
    row_classes: list[str] = field(default_factory=list)  # per row, e.g. "oom" (HTML only)
    note: str | None = None  # one line under the table
    wrap: set[int] = field(default_factory=set)  # columns of prose (messages): wrapped, kept readable

    def __post_init__(self) -> None:
        if not self.align:
            self.align = ["l"] * len(self.headers)

    def __len__(self) -> int:
        return len(self.rows)


def _md_cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def to_markdown(table: Table) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in table.headers) + " |"]
    lines.append("| " + " | ".join("---:" if a == "r" else "---" for a in table.align) + " |")
    for i, row in enumerate(table.rows):
        cells = [_md_cell(c) for c in row]
        if i in table.emphasis and cells:
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", f"_{table.note}_"]
    return "\n".join(lines)


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table for a terminal: columns padded to their widest cell."""
    widths = [max(len(h), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines) + "\n"


def shorten(text: str | None, limit: int = 400) -> str:
    if not text:
        return "—"
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# Runs, environment, model, loads
# --------------------------------------------------------------------------------------------


def _status_counts(cases: list[CaseResult]) -> str:
    counts: dict[str, int] = {}
    for c in cases:
        counts[c.status] = counts.get(c.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"


def runs_table(rs: RunSet) -> Table:
    """One row per run: its label, what differs, how far it got."""
    headers = ["run", "run id"] + [f.name for f in rs.differing] + ["cases", "complete"]
    rows = []
    for run in rs.runs:
        r = run.results
        rows.append(
            [run.label, r.run_id or "—"]
            + [f.get(r) or "—" for f in rs.differing]
            + [_status_counts(r.cases), "yes" if r.complete else "no (partial run)"]
        )
    return Table(headers, rows)


ENV_NAMES = {
    "device": "device",
    "gpu": "GPU",
    "gpu_count": "GPU count",
    "cpu": "CPU",
    "driver": "NVIDIA driver",
    "cuda": "CUDA (torch build)",
    "torch": "torch",
    "triton": "triton",
    "transformers": "transformers",
    "kernels": "kernels",
    "python": "python",
    "platform": "platform",
}


def _env_values(rs: RunSet) -> list[tuple[str, list[str]]]:
    keys = list(SUMMARY_FIELDS) + sorted({k for run in rs.runs for k in run.results.env_summary} - set(SUMMARY_FIELDS))
    rows = []
    for key in keys:
        rows.append((ENV_NAMES.get(key, key), [cell(run.results.env_summary.get(key)) for run in rs.runs]))
    rows.append(("memory bandwidth", [_bandwidth(run.results.gpu) for run in rs.runs]))
    return rows


def _bandwidth(gpu: dict) -> str:
    bw = gpu.get("memory_bandwidth_bytes_s")
    if not isinstance(bw, (int, float)):
        return "—"
    source = gpu.get("bandwidth_source")  # the key bench.sweep.session writes
    return fmt_bandwidth(float(bw)) + (f" ({source})" if source else "")


def cell(value) -> str:
    """A value as a table cell: a dash for nothing, yes/no for booleans."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def environment_table(rs: RunSet) -> Table:
    """Environment summary: field | value, or field | one column per run with differences marked."""
    rows, emphasis = [], set()
    for name, values in _env_values(rs):
        if rs.multi and len(set(values)) > 1:
            emphasis.add(len(rows))
        rows.append([name] + values)
    headers = ["field"] + ([run.label for run in rs.runs] if rs.multi else ["value"])
    note = "Fields in bold differ between the runs." if emphasis else None
    return Table(headers, rows, emphasis=emphasis, note=note)


def model_table(rs: RunSet) -> Table:
    rows_spec = [
        ("model", lambda r: r.model.id),
        ("source", lambda r: r.model.source),
        ("synthetic weights", lambda r: cell(r.model.synthetic)),
        ("parameters", lambda r: fmt_count(r.model.parameters)),
        ("active parameters", lambda r: fmt_count(r.model.active_parameters)),
        ("revision", lambda r: r.model.revision),
        ("checkpoint path", lambda r: r.model.path),
        ("backend", lambda r: " ".join(str(x) for x in (r.backend.get("kind"), r.backend.get("base_url")) if x)),
        ("run id", lambda r: r.run_id),
        ("tool version", lambda r: r.tool_version),
        ("started", lambda r: r.created_at),
        ("finished", lambda r: r.finished_at),
        ("complete", lambda r: "yes" if r.complete else "no (partial run)"),
    ]
    rows, emphasis = [], set()
    for name, get in rows_spec:
        values = [cell(get(run.results)) for run in rs.runs]
        if rs.multi and len(set(values)) > 1 and name not in ("run id", "started", "finished"):
            emphasis.add(len(rows))
        rows.append([name] + values)
    headers = ["field"] + ([run.label for run in rs.runs] if rs.multi else ["value"])
    return Table(headers, rows, emphasis=emphasis)


def load_verdict(load) -> str:
    """One sentence on which weights path ran and why."""
    if load.status != "ok":
        return f"load {load.status}: {shorten(load.message, 200)}"
    path, asked = load.weights_path, load.quant
    experts = f" ({load.experts_class})" if load.experts_class else ""
    if path == "mxfp4":
        return f"MXFP4 kernels ran{experts}: the fast, memory-lean path."
    if path == "bf16":
        if asked == "bf16":
            return f"bf16 as asked{experts}."
        reason = f": {load.fallback_reason}" if load.fallback_reason else " (no reason recorded)"
        return f"fell back to bf16{experts}, about twice the memory of MXFP4{reason}"
    if path is None:
        return "weights path unknown (not recorded, e.g. a server backend)."
    return f"{path}{experts}."


def loads_table(rs: RunSet) -> Table:
    """One row per model load: what was asked, what ran (the verdict sentences sit above it)."""
    loads = [(run, x) for run in rs.runs for x in run.results.loads]
    with_message = any(x.message or x.fallback_reason for _, x in loads)
    headers = (["run"] if rs.multi else []) + [
        "quant asked",
        "attn asked",
        "weights path",
        "experts class",
        "attention",
        "dtype",
        "device",
        "status",
    ] + (["message / fallback reason"] if with_message else [])
    rows, classes = [], []
    for run, x in loads:
        row = ([run.label] if rs.multi else []) + [
            x.quant,
            x.attn,
            cell(x.weights_path),
            cell(x.experts_class),
            cell(x.attn_implementation),
            cell(x.dtype),
            cell(x.device),
            x.status,
        ]
        if with_message:
            row.append(shorten(x.message or x.fallback_reason))
        rows.append(row)
        fallback = x.weights_path == "bf16" and x.quant != "bf16"
        classes.append("bad" if x.status != "ok" else ("warn" if fallback else ""))
    return Table(headers, rows, row_classes=classes, wrap={len(headers) - 1} if with_message else set())


LOAD_HEADERS = {
    "download_s": "download",
    "load_s": "load",
    "first_token_cold_s": "first token (cold)",
    "load_alloc_bytes": "allocated after load",
    "load_peak_bytes": "peak during load",
}


def load_timing_table(rs: RunSet) -> Table:
    present = [m for m in LOAD_METRICS if any(x.metrics.get(m) is not None for run in rs.runs for x in run.results.loads)]
    headers = (["run"] if rs.multi else []) + ["quant", "attn"] + [LOAD_HEADERS.get(m, m) for m in present]
    rows = []
    for run in rs.runs:
        for x in run.results.loads:
            cells = []
            for m in present:
                v = x.metrics.get(m)
                cells.append(fmt_value(v, METRICS[m].unit))
            rows.append(([run.label] if rs.multi else []) + [x.quant, x.attn] + cells)
    align = ["l"] * (len(headers) - len(present)) + ["r"] * len(present)
    return Table(headers, rows, align=align)


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

SPEED_METRICS = [
    "decode_tok_s",
    "ttft_s",
    "prefill_tok_s",
    "itl_p50_s",
    "itl_p90_s",
    "itl_p99_s",
    "e2e_s",
    "total_tok_s",
    "new_tokens",
    "roofline_frac",
    "gpu_busy_frac",
    "warmup_s",
]
ENERGY_METRICS = ["energy_j_per_tok", "avg_power_w"]
SERVING_METRICS = [
    "request_throughput", "goodput_req_s", "goodput_frac", "error_rate", "tpot_s",
    "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s",
    "e2e_p50_s", "e2e_p90_s", "e2e_p99_s", "itl_all_p50_s", "itl_all_p90_s", "itl_all_p99_s",
]
MEMORY_METRICS = ["peak_alloc_bytes", "peak_reserved_bytes", "nvml_used_bytes", "kv_cache_bytes"]
CHANNEL_METRICS = ["analysis_tokens", "final_tokens", "time_to_final_s"]

METRIC_LABELS = {
    "decode_tok_s": "decode",
    "ttft_s": "TTFT",
    "prefill_tok_s": "prefill",
    "itl_p50_s": "ITL p50",
    "itl_p90_s": "ITL p90",
    "itl_p99_s": "ITL p99",
    "e2e_s": "end-to-end",
    "total_tok_s": "total",
    "new_tokens": "new tokens",
    "roofline_frac": "of roofline",
    "peak_alloc_bytes": "peak torch alloc",
    "peak_reserved_bytes": "peak torch reserved",
    "nvml_used_bytes": "NVML used",
    "kv_cache_bytes": "KV cache",
    "analysis_tokens": "analysis tokens",
    "final_tokens": "final tokens",
    "time_to_final_s": "time to final",
    "warmup_s": "warm-up",
    "gpu_busy_frac": "GPU busy",
    "energy_j_per_tok": "energy per token",
    "avg_power_w": "power",
    "tpot_s": "TPOT",
    "request_throughput": "requests",
    "goodput_req_s": "goodput",
    "goodput_frac": "within SLO",
    "error_rate": "errors",
    **{f"{m}_p{q}_s": f"{label} p{q}" for m, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "e2e"), ("itl_all", "ITL"))
       for q in (50, 90, 99)},
}

SPREAD_NOTE = "Each value: median ± sample standard deviation over the n repetitions."


def metric_header(metric: str, unit_label: str) -> str:
    label = METRIC_LABELS.get(metric, metric)
    if unit_label in ("tokens", ""):
        return label
    return f"{label} ({unit_label})"


def other_metrics(rs: RunSet) -> list[str]:
    """Metrics present in the cases that no named group lists (a newer writer's additions)."""
    known = set(SPEED_METRICS) | set(SERVING_METRICS) | set(MEMORY_METRICS) | set(ENERGY_METRICS) | set(CHANNEL_METRICS)
    found = {m for _, c in rs.cases() for m in c.metrics}
    return sorted(found - known)


def present_metrics(rs: RunSet, metrics: list[str]) -> list[str]:
    return [m for m in metrics if any(_has(c, m) for _, c in rs.cases())]


def _has(case: CaseResult, metric: str) -> bool:
    s = case.metrics.get(metric)
    return s is not None and s.median is not None


def _new_tokens_is_output_len(rs: RunSet) -> bool:
    """Fixed mode generates exactly output_len tokens: a new-tokens column would repeat it."""
    return all(c.median("new_tokens") in (None, c.key.output_len) for _, c in rs.cases("ok"))


def key_columns(rs: RunSet, exclude: tuple[str, ...] = ()) -> list[str]:
    return [name for name, _, _ in KEY_FIELDS if name in rs.varying and name not in exclude]


def _key_cell(case: CaseResult, name: str) -> str:
    return cell(case_value(case, name))


def _spread_cell(s: Stat | None, unit: DisplayUnit) -> str:
    """``median ± stdev`` of one metric in the column's display unit; a dash when not measured."""
    if s is None or s.median is None:
        return "—"
    return fmt_spread(unit(s.median), None if s.stdev is None else unit(s.stdev), s.n)


def case_table(rs: RunSet, metrics: list[str]) -> Table | None:
    """Measured cases (status ok) with the varying key columns and the given metrics present."""
    metrics = [m for m in present_metrics(rs, metrics) if not (m == "new_tokens" and _new_tokens_is_output_len(rs))]
    if not metrics:
        return None
    cases = [(run, c) for run, c in rs.cases("ok") if any(_has(c, m) for m in metrics)]
    keys = key_columns(rs)
    units = {m: metric_unit(m, [c.median(m) for _, c in cases]) for m in metrics}
    headers = (["run"] if rs.multi else []) + [KEY_HEADERS[k] for k in keys] + ["n"] + [metric_header(m, units[m].label) for m in metrics]
    rows = []
    for run, c in cases:
        ns = [c.metrics[m].n for m in metrics if m in c.metrics]
        cells = [_spread_cell(c.metrics.get(m), units[m]) for m in metrics]
        rows.append(([run.label] if rs.multi else []) + [_key_cell(c, k) for k in keys] + [str(max(ns, default=0))] + cells)
    n_left = len(headers) - len(metrics) - 1
    align = ["l"] * n_left + ["r"] * (len(metrics) + 1)
    return Table(headers, rows, align=align, note=SPREAD_NOTE)


HEADLINE_NOTE = (
    "The same model, the same transformers modules and kernels, decoded two ways on the same GPU: "
    "generate (what model.generate gives) and graph (the forward captured once in a CUDA graph and "
    "replayed per token). Roofline: decode speed over memory bandwidth / bytes read per token. "
    "GPU busy: GPU kernel time over wall time per decode step; well under 1, the host CPU sets the pace."
)


def decode_headline(rs: RunSet) -> Table | None:
    """generate against graph, per run and per case shape (everything in the key but the decode
    mode and the cache), with roofline and GPU-busy fractions; None unless both were measured."""
    pairs: dict[tuple, dict[str, CaseResult]] = {}
    for run, case in rs.cases("ok"):
        if case.key.decode not in ("generate", "graph") or "decode_tok_s" not in case.metrics:
            continue
        shape = (run.index, case.weights_path, case.key.effort, case.key.mode, case.key.prompt_len,
                 case.key.batch_size, case.key.output_len, case.key.quant, case.key.attn)
        best = pairs.setdefault(shape, {})
        held = best.get(case.key.decode)
        if held is None or (case.median("decode_tok_s") or 0) > (held.median("decode_tok_s") or 0):
            best[case.key.decode] = case  # generate: the faster of its caches
    rows = []
    for shape, by in pairs.items():
        if set(by) != {"generate", "graph"}:
            continue
        gen, graph = by["generate"], by["graph"]
        run = rs.runs[shape[0]]

        def trio(case: CaseResult) -> list[str]:
            return [fmt_value(case.median("decode_tok_s"), "tok/s"), fmt_value(case.median("roofline_frac"), "fraction"),
                    fmt_value(case.median("gpu_busy_frac"), "fraction")]

        speedup = graph.median("decode_tok_s") / gen.median("decode_tok_s")
        rows.append(([run.label] if rs.multi else []) + [cell(shape[1]), f"b{shape[5]}", str(shape[6]),
                                                         f"{gen.key.cache}"] + trio(gen) + trio(graph) + [f"{speedup:.1f}×"])
    if not rows:
        return None
    headers = (["run"] if rs.multi else []) + ["weights", "batch", "out", "generate cache",
                                               "generate tok/s", "roofline", "GPU busy",
                                               "graph tok/s", "roofline", "GPU busy", "graph / generate"]
    n_left = 5 if rs.multi else 4
    return Table(headers, rows, align=["l"] * n_left + ["r"] * (len(headers) - n_left))


def side_by_side_table(rs: RunSet, metric: str) -> Table | None:
    """Cases matched on their key across runs: one column per run, plus the change vs the first."""
    if not rs.multi:
        return None
    by_run = [{c.key: c for c in run.results.cases if c.status == "ok" and _has(c, metric)} for run in rs.runs]
    keys = [k for k in rs.keys() if sum(k in m for m in by_run) >= 2]
    if not keys:
        return None
    cols = key_columns(rs, exclude=("weights_path",))
    values = [m[k].median(metric) for m in by_run for k in keys if k in m]
    unit = metric_unit(metric, values)
    headers = [KEY_HEADERS[k] for k in cols] + [run.label for run in rs.runs]
    headers += [f"{run.label} vs {rs.runs[0].label}" for run in rs.runs[1:]]
    rows = []
    for key in keys:
        sample = next(m[key] for m in by_run if key in m)
        row = [_key_cell(sample, k) for k in cols]
        for m in by_run:
            row.append(_spread_cell(m[key].metrics[metric] if key in m else None, unit))
        base = by_run[0].get(key)
        for m in by_run[1:]:
            if base is None or key not in m or not base.median(metric):
                row.append("—")
            else:
                row.append(f"{(m[key].median(metric) / base.median(metric) - 1) * 100:+.1f}%")
        rows.append(row)
    align = ["l"] * len(cols) + ["r"] * (len(headers) - len(cols))
    title = metric_header(metric, unit.label)
    return Table(headers, rows, align=align, note=f"{title}: median ± stdev; the last columns give the change of the median against the first run.")


def status_table(rs: RunSet) -> Table | None:
    """Cases that produced no numbers (oom, error, skipped) or finished without any metric."""
    keys = key_columns(rs)
    rows, classes = [], []
    for run, c in rs.cases():
        empty = c.status == "ok" and not any(s.median is not None for s in c.metrics.values())
        if c.status == "ok" and not empty:
            continue
        message = c.message if c.status != "ok" else "finished without any measurement"
        rows.append(([run.label] if rs.multi else []) + [_key_cell(c, k) for k in keys] + [c.status, shorten(message)])
        classes.append("bad" if c.status in ("oom", "error") else "warn")
    if not rows:
        return None
    headers = (["run"] if rs.multi else []) + [KEY_HEADERS[k] for k in keys] + ["status", "message"]
    return Table(headers, rows, row_classes=classes, wrap={len(headers) - 1})


SUMMARY_METRICS = ["decode_tok_s", "ttft_s", "itl_p50_s", "e2e_s", "total_tok_s", "request_throughput", "goodput_frac", "peak_alloc_bytes"]


def summary_table(results, *, markdown: bool = True) -> str:
    """A compact case table for the terminal at the end of ``gptoss bench``: every case with its
    status, the varying key columns and the headline metrics (median ± stdev)."""
    runs = [results] if isinstance(results, Results) else list(results)
    rs = build_runset(runs)
    cases = rs.cases()
    if not cases:
        return "No case has a result yet."
    metrics = present_metrics(rs, SUMMARY_METRICS)
    keys = key_columns(rs)
    units = {m: metric_unit(m, [c.median(m) for _, c in cases]) for m in metrics}
    headers = (["run"] if rs.multi else []) + [KEY_HEADERS[k] for k in keys] + ["status"] + [metric_header(m, units[m].label) for m in metrics]
    rows = []
    for run, c in cases:
        cells = [_spread_cell(c.metrics.get(m), units[m]) for m in metrics]
        rows.append(([run.label] if rs.multi else []) + [_key_cell(c, k) for k in keys] + [c.status] + cells)
    align = ["l"] * (len(headers) - len(metrics)) + ["r"] * len(metrics)
    table = Table(headers, rows, align=align)
    return to_markdown(table) if markdown else to_text(table)


def to_text(table: Table) -> str:
    """Plain aligned columns (no Markdown pipes)."""
    widths = [max(len(str(x)) for x in [h] + [r[i] for r in table.rows]) for i, h in enumerate(table.headers)]

    def line(cells):
        return "  ".join(str(c).rjust(w) if a == "r" else str(c).ljust(w) for c, w, a in zip(cells, widths, table.align)).rstrip()

    return "\n".join([line(table.headers), line(["-" * w for w in widths])] + [line(r) for r in table.rows])


def status_summary(rs: RunSet) -> str:
    parts = []
    for run in rs.runs:
        text = _status_counts(run.results.cases)
        parts.append(f"{run.label}: {text}" if rs.multi else text)
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# CSV export
# --------------------------------------------------------------------------------------------

CSV_STATS = ("median", "stdev", "p5", "p95", "n")


def cases_csv(rs: RunSet) -> str:
    """Every case of every run, raw SI values: key, status, then median/stdev/p5/p95/n per metric."""
    metrics = [m for m in CASE_METRICS if any(m in c.metrics for _, c in rs.cases())] + other_metrics(rs)
    metrics = list(dict.fromkeys(metrics))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    key_names = [name for name, _, _ in KEY_FIELDS if name != "weights_path"]
    w.writerow(["run", "run_id", "case"] + key_names + ["weights_path", "status", "message"] + [f"{m}_{s}" for m in metrics for s in CSV_STATS])
    for run, c in rs.cases():
        row = [run.label, run.results.run_id, c.key.id] + [getattr(c.key, k) for k in key_names]
        row += [c.weights_path or "", c.status, c.message or ""]
        for m in metrics:
            s = c.metrics.get(m)
            for stat in CSV_STATS:
                v = getattr(s, stat) if s is not None else None
                row.append("" if v is None else (repr(v) if isinstance(v, float) else v))
        w.writerow(row)
    return out.getvalue()


def write_cases_csv(rs: RunSet, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(cases_csv(rs), encoding="utf-8")
    return path


def warning_lines(rs: RunSet) -> list[str]:
    lines = []
    for run in rs.runs:
        for w in run.results.warnings:
            where = f" (case {w.case})" if w.case else ""
            prefix = f"{run.label}: " if rs.multi else ""
            lines.append(f"{prefix}[{w.code}] {w.message}{where}")
    return lines


__all__ = [
    "Table",
    "to_markdown",
    "runs_table",
    "environment_table",
    "model_table",
    "loads_table",
    "load_timing_table",
    "load_verdict",
    "case_table",
    "side_by_side_table",
    "status_table",
    "status_summary",
    "cases_csv",
    "summary_table",
    "to_text",
    "write_cases_csv",
    "warning_lines",
    "SPEED_METRICS",
    "SERVING_METRICS",
    "MEMORY_METRICS",
    "CHANNEL_METRICS",
    "fmt",
]
