"""Plots of a report, drawn with matplotlib's Agg canvas: PNG files and inline SVG.

No pyplot: each figure is a ``matplotlib.figure.Figure`` attached to ``FigureCanvasAgg``
explicitly, so nothing here selects a GUI backend or changes the backend of a notebook the
report is shown in, and no global rcParams are touched (styles apply through ``rc_context``).

Every builder returns a :class:`Plot`; when the data for it is absent (a CPU run has no NVML
and no roofline, a fixed-mode run has no harmony channels), the plot carries the reason it was
skipped instead of a figure, and the report says so.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.results import EFFORTS, CaseResult, Results
from bench.results.stats import Stat
from reports.runs import Run, RunSet, load_for
from reports.units import display_unit, fmt, fmt_bandwidth, metric_unit

STYLE = {
    # Sizes chosen so the inline SVG, scaled down to a phone's width, keeps legible text.
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "path",  # text as shapes: the SVG looks the same without the font installed
    "figure.dpi": 100,
}
PNG_DPI = 120
WIDTH, HEIGHT = 5.6, 3.6

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
EFFORT_COLORS = {"low": "#009E73", "medium": "#E69F00", "high": "#D55E00"}
EFFORT_STYLE = {"low": ("-", "o"), "medium": ("--", "s"), "high": (":", "^")}


@dataclass
class Plot:
    name: str  # file stem: decode_speed -> decode_speed.png
    title: str
    caption: str = ""
    figure: object | None = None  # matplotlib Figure; None when skipped
    skipped: str | None = None  # why there is no figure
    png: Path | None = None
    svg: str | None = None  # inline SVG markup once exported
    notes: list[str] = field(default_factory=list)  # parts of the plot left out, and why

    @property
    def drawn(self) -> bool:
        return self.figure is not None or self.svg is not None or self.png is not None


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _figure(width: float = WIDTH, height: float = HEIGHT):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _stat_ok(case: CaseResult, metric: str) -> Stat | None:
    s = case.metrics.get(metric)
    return s if s is not None and s.median is not None else None


def _spread(s: Stat) -> tuple[float, float]:
    """(low, high) around the median: p5..p95 when known, else ± stdev, else none."""
    if s.p5 is not None and s.p95 is not None and s.n > 1:
        return s.p5, s.p95
    if s.stdev is not None and s.n > 1:
        return s.median - s.stdev, s.median + s.stdev
    return s.median, s.median


def _pooled(stats: list[Stat]) -> Stat:
    """Samples of several cases as one: TTFT of one effort over its output lengths."""
    samples = [x for s in stats for x in s.samples]
    if samples:
        return Stat.of(samples)
    return Stat.of([s.median for s in stats if s.median is not None])


def _median_of(stats: list[Stat]) -> float:
    return (_pooled(stats).median or 0.0) if stats else 0.0


def _wrap(text: str, width: int = 26) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""])


class _Series:
    """Colours and line styles: effort -> line style and marker; run (and the other varying
    fields) -> colour, or effort -> colour when there is only one run and nothing else varies."""

    def __init__(self, groups: list[tuple[int, str]]):
        self.groups = list(dict.fromkeys(groups))  # (run index, other-fields label)

    def color(self, group: tuple[int, str], effort: str) -> str:
        if len(self.groups) <= 1:
            return EFFORT_COLORS.get(effort, PALETTE[0])
        return PALETTE[self.groups.index(group) % len(PALETTE)]


def _group_label(rs: RunSet, run: Run, other: str) -> str:
    parts = ([run.label] if rs.multi else []) + ([other] if other else [])
    return " · ".join(parts)


def _title(fig, text: str) -> None:
    fig.suptitle(text, fontsize=12, fontweight="bold")


def _per_effort(plot: "Plot", fig, ax, efforts, ylabel: str) -> "Plot":
    """Finish a plot whose x axis is the reasoning effort."""
    ax.set_xticks(range(len(efforts)), efforts)
    ax.set_xlabel("reasoning effort")
    ax.set_ylabel(ylabel)
    _title(fig, plot.title)
    _legend(fig, ax, inside_max=0)
    plot.figure = fig
    return plot


def _legend(fig, ax, *, inside_max: int = 4, always: bool = False) -> None:
    """Few short entries: inside the axes. Otherwise below the plot, in as many columns as fit,
    the figure growing to make room (constrained layout keeps the axes their size)."""
    handles, labels = ax.get_legend_handles_labels()
    if not labels or (len(labels) == 1 and not always):
        return
    longest = max(len(x) for x in labels)
    if len(labels) <= inside_max and longest <= 28:
        ax.legend(loc="best", frameon=False)
        return
    ncol = 1 if longest > 34 else (2 if longest > 18 else 3)
    rows = -(-len(labels) // ncol)
    w, h = fig.get_size_inches()
    fig.set_size_inches(w, h + 0.2 * rows + 0.15)
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)


def _case_rows(rs: RunSet, cases: list[tuple[Run, CaseResult]]) -> list[str]:
    """Y-axis labels of per-case plots: the varying fields (and the run), wrapped."""
    labels = []
    for run, case in cases:
        label = _wrap(rs.case_label(case) or case.key.effort)
        labels.append(f"{_wrap(run.label)}\n{label}" if rs.multi else label)
    return labels


def _hfigure(labels: list[str], per_row: float = 0.34, base: float = 1.3):
    """A figure for horizontal categories: its height grows with the number of label lines."""
    lines = sum(max(1, label.count("\n") + 1) for label in labels)
    height = base + max(per_row * len(labels), 0.19 * lines)
    return _figure(WIDTH, min(max(height, 2.6), 30))


# --------------------------------------------------------------------------------------------
# The plots
# --------------------------------------------------------------------------------------------


X_FIELDS = [
    ("output_len", "output length", "output length (new tokens)"),
    ("batch_size", "batch size", "batch size (sequences)"),
    ("prompt_len", "prompt length", "prompt length (tokens)"),
    ("concurrency", "concurrency", "concurrent requests"),
]


def plot_decode_speed(rs: RunSet) -> Plot:
    """Decode tok/s against output length, one line per effort with its spread. When the output
    length is the same everywhere and a sweep varies batch size (or prompt length, concurrency)
    instead, that field is the x axis."""
    fields_ = rs.within if rs.multi else rs.varying
    xname, xtitle, xlabel = next((f for f in X_FIELDS if f[0] in fields_), X_FIELDS[0])
    plot = Plot(
        "decode_speed",
        f"Decode speed against {xtitle}",
        "One line per reasoning effort (and run or configuration); the line is the median over "
        "repetitions, the band (or whiskers, at a single point) spans p5 to p95.",
    )
    groups: dict[tuple[int, str, str], list[tuple[int, Stat]]] = defaultdict(list)
    for run, case in rs.cases("ok"):
        s = _stat_ok(case, "decode_tok_s")
        if s:
            other = rs.case_label(case, exclude=(xname, "effort"))
            groups[(run.index, other, case.key.effort)].append((getattr(case.key, xname), s))
    if not groups:
        plot.skipped = "no finished case has a decode speed (decode_tok_s)"
        return plot
    series = _Series([(g[0], g[1]) for g in groups])
    fig = _figure()
    ax = fig.add_subplot()
    xs_all = sorted({x for pts in groups.values() for x, _ in pts})
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], EFFORTS.index(kv[0][2]) if kv[0][2] in EFFORTS else 9))
    for (ri, other, effort), pts in ordered:
        pts.sort(key=lambda p: p[0])
        xs = [x for x, _ in pts]
        ys = [s.median for _, s in pts]
        lo = [_spread(s)[0] for _, s in pts]
        hi = [_spread(s)[1] for _, s in pts]
        color = series.color((ri, other), effort)
        ls, marker = EFFORT_STYLE.get(effort, ("-", "o"))
        label = " · ".join(x for x in (_group_label(rs, rs.runs[ri], other), effort) if x)
        ax.plot(xs, ys, linestyle=ls, marker=marker, color=color, label=label)
        if len(xs) > 1:
            ax.fill_between(xs, lo, hi, color=color, alpha=0.18, linewidth=0)
        else:
            ax.errorbar(xs, ys, yerr=[[y - l for y, l in zip(ys, lo)], [h - y for y, h in zip(ys, hi)]], fmt="none", ecolor=color, capsize=4)
    if len(xs_all) > 1 and xs_all[-1] / max(xs_all[0], 1) >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(xs_all, [str(x) for x in xs_all])
    ax.minorticks_off()
    ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
    ax.set_xlabel(xlabel)
    # decode_tok_s counts the tokens of every sequence of the batch (bench.backends.timing).
    batched = any(c.key.batch_size > 1 for _, c in rs.cases("ok"))
    ax.set_ylabel("decode speed, all sequences (tok/s)" if batched else "decode speed (tok/s)")
    _title(fig, plot.title)
    _legend(fig, ax)
    plot.figure = fig
    return plot


def _per_effort_bars(rs: RunSet, metric: str, plot: Plot, ylabel: str, missing: str) -> Plot:
    """Bars per effort (pooled over output lengths), one bar per run/other-fields group; skipped
    with the reason ``missing`` when no finished case has the metric."""
    if not any(_stat_ok(c, metric) for _, c in rs.cases("ok")):
        plot.skipped = missing
        return plot
    pooled: dict[tuple[int, str], dict[str, list[Stat]]] = defaultdict(lambda: defaultdict(list))
    for run, case in rs.cases("ok"):
        s = _stat_ok(case, metric)
        if s:
            other = rs.case_label(case, exclude=("output_len", "effort"))
            pooled[(run.index, other)][case.key.effort].append(s)
    efforts = [e for e in EFFORTS if any(e in d for d in pooled.values())]
    efforts += sorted({e for d in pooled.values() for e in d} - set(efforts))
    stats = {g: {e: _pooled(v) for e, v in d.items()} for g, d in pooled.items()}
    unit = metric_unit(metric, [s.median for d in stats.values() for s in d.values()])
    fig = _figure()
    ax = fig.add_subplot()
    groups = list(stats)
    width = 0.8 / max(len(groups), 1)
    for gi, group in enumerate(groups):
        xs, ys, lo, hi, colors = [], [], [], [], []
        for ei, effort in enumerate(efforts):
            s = stats[group].get(effort)
            if s is None:
                continue
            low, high = _spread(s)
            xs.append(ei + (gi - (len(groups) - 1) / 2) * width)
            ys.append(unit(s.median))
            lo.append(unit(s.median) - unit(low))
            hi.append(unit(high) - unit(s.median))
            colors.append(EFFORT_COLORS.get(effort, PALETTE[0]) if len(groups) == 1 else PALETTE[gi % len(PALETTE)])
        label = _group_label(rs, rs.runs[group[0]], group[1]) or None
        ax.bar(xs, ys, width=width * 0.92, color=colors, label=label)
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="none", ecolor="#333333", capsize=3, linewidth=1)
    return _per_effort(plot, fig, ax, efforts, f"{ylabel} ({unit.label})")


def plot_ttft(rs: RunSet) -> Plot:
    plot = Plot(
        "ttft_per_effort",
        "Time to first token per reasoning effort",
        "Bars: median over every repetition of the effort (output lengths pooled, the prompt is the same); "
        "whiskers: p5 to p95.",
    )
    return _per_effort_bars(rs, "ttft_s", plot, "time to first token", "no finished case has a time to first token (ttft_s)")


def plot_itl(rs: RunSet) -> Plot:
    plot = Plot(
        "itl_distribution",
        "Inter-token latency distribution per case",
        "For each case: p50, p90 and p99 of the gaps between consecutive tokens (the median of each "
        "percentile over the repetitions); the line spans p50 to p99.",
    )
    metrics = ["itl_p50_s", "itl_p90_s", "itl_p99_s"]
    cases = [(run, c) for run, c in rs.cases("ok") if any(_stat_ok(c, m) for m in metrics)]
    if not cases:
        plot.skipped = "no finished case has inter-token latency percentiles (itl_p50_s, itl_p90_s, itl_p99_s)"
        return plot
    unit = metric_unit("itl_p50_s", [c.median(m) for _, c in cases for m in metrics])
    labels = _case_rows(rs, cases)
    fig = _hfigure(labels)
    ax = fig.add_subplot()
    markers = {"itl_p50_s": ("o", "p50", PALETTE[0]), "itl_p90_s": ("s", "p90", PALETTE[1]), "itl_p99_s": ("^", "p99", PALETTE[5])}
    for i, (_, case) in enumerate(cases):
        present = [case.median(m) for m in metrics if case.median(m) is not None]
        if len(present) > 1:
            ax.plot([unit(min(present)), unit(max(present))], [i, i], color="#999999", linewidth=2, zorder=1)
    for m in metrics:
        ys = [i for i, (_, c) in enumerate(cases) if c.median(m) is not None]
        xs = [unit(cases[i][1].median(m)) for i in ys]
        if ys:
            marker, label, color = markers[m]
            ax.scatter(xs, ys, marker=marker, color=color, label=label, zorder=2, s=36)
    ax.set_yticks(range(len(cases)), labels)
    ax.invert_yaxis()
    ax.set_xlim(left=0, right=ax.get_xlim()[1] * 1.05)
    ax.set_xlabel(f"inter-token latency ({unit.label})")
    ax.set_ylabel("case")
    _title(fig, plot.title)
    _legend(fig, ax, inside_max=0, always=True)
    plot.figure = fig
    return plot


MEMORY_BARS = [
    ("weights", "weights (allocated after load)", PALETTE[0]),
    ("kv_cache_bytes", "KV cache", PALETTE[4]),
    ("peak_alloc_bytes", "peak torch allocated", PALETTE[1]),
    ("nvml_used_bytes", "NVML used (whole device)", "#888888"),
]


def plot_memory(rs: RunSet) -> Plot:
    plot = Plot(
        "memory",
        "Memory per case",
        "Weights: torch allocation right after loading; KV cache: size at the end of generation; "
        "peak torch allocated: the allocator's high-water mark during the case; NVML used: the "
        "device's memory in use as the driver sees it (all processes, allocator cache included). "
        "Median over repetitions.",
    )
    cases, rows = [], []
    for run, case in rs.cases("ok"):
        load = load_for(run, case)
        values = {"weights": load.metrics.get("load_alloc_bytes") if load else None}
        for m in ("kv_cache_bytes", "peak_alloc_bytes", "nvml_used_bytes"):
            values[m] = case.median(m)
        if any(v is not None for k, v in values.items() if k != "weights"):
            cases.append((run, case))
            rows.append(values)
    if not rows:
        plot.skipped = "no finished case recorded memory (kv_cache_bytes, peak_alloc_bytes, nvml_used_bytes)"
        return plot
    bars = [b for b in MEMORY_BARS if any(v[b[0]] is not None for v in rows)]
    for key, label, _ in MEMORY_BARS:
        if any(b[0] == key for b in bars):
            continue
        cpu = all((run.results.env_summary.get("device") or "") == "cpu" for run in rs.runs)
        why = {
            "nvml_used_bytes": "no NVML reading (CPU run, or no NVIDIA driver library)",
            "weights": "not recorded (torch's allocator statistics cover GPU memory only)" if cpu else "no load record with load_alloc_bytes",
            "peak_alloc_bytes": "not recorded (torch's allocator statistics cover GPU memory only)" if cpu else "not recorded",
        }.get(key, "not recorded")
        plot.notes.append(f"{label}: {why}")
    biggest = max(v[k] for v in rows for k, _, _ in bars if v[k] is not None)
    unit = display_unit("bytes", [biggest])
    labels = _case_rows(rs, cases)
    fig = _hfigure(labels, per_row=0.16 * len(bars) + 0.12)
    ax = fig.add_subplot()
    height = 0.8 / len(bars)
    for bi, (key, label, color) in enumerate(bars):
        ys = [i + (bi - (len(bars) - 1) / 2) * height for i, v in enumerate(rows) if v[key] is not None]
        xs = [unit(v[key]) for v in rows if v[key] is not None]
        ax.barh(ys, xs, height=height * 0.9, color=color, label=label)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"memory ({unit.label})")
    ax.set_ylabel("case")
    _title(fig, plot.title)
    _legend(fig, ax, inside_max=0, always=True)
    plot.figure = fig
    return plot


LOAD_SEGMENTS = [
    ("download_s", "download", PALETTE[4]),
    ("load_s", "load (from_pretrained)", PALETTE[0]),
    ("first_token_cold_s", "first token, cold (compilation included)", PALETTE[1]),
]


def plot_load(rs: RunSet) -> Plot:
    plot = Plot(
        "load_breakdown",
        "Load time breakdown",
        "Per model load: checkpoint download, from_pretrained, then the first generated token "
        "(kernel compilation and warm-up included). A missing segment was not measured.",
    )
    loads, labels = [], []
    for run in rs.runs:
        for x in run.results.loads:
            if any(isinstance(x.metrics.get(m), (int, float)) for m, _, _ in LOAD_SEGMENTS):
                label = f"{x.quant}/{x.attn} → {x.weights_path or '?'}"
                loads.append(x)
                labels.append(f"{_wrap(run.label)}\n{label}" if rs.multi else label)
    if not loads:
        plot.skipped = "no model load recorded its timings (download_s, load_s, first_token_cold_s)"
        return plot
    for seg, label, _ in LOAD_SEGMENTS:
        if not any(isinstance(x.metrics.get(seg), (int, float)) for x in loads):
            plot.notes.append(f"{label}: not measured")
    fig = _hfigure(labels, per_row=0.45, base=1.2)
    ax = fig.add_subplot()
    left = [0.0] * len(loads)
    for seg, label, color in LOAD_SEGMENTS:
        widths = [float(x.metrics.get(seg) or 0.0) for x in loads]
        if any(widths):
            ax.barh(range(len(loads)), widths, left=left, color=color, label=label, height=0.6)
            left = [a + b for a, b in zip(left, widths)]
    for i, total in enumerate(left):
        ax.text(total, i, f" {fmt(total)} s", va="center", fontsize=9)
    ax.set_xlim(0, max(left) * 1.2 if max(left) > 0 else 1)
    ax.set_yticks(range(len(loads)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_ylabel("model load")
    _title(fig, plot.title)
    _legend(fig, ax, inside_max=0, always=True)
    plot.figure = fig
    return plot


def roofline_tok_s(results: Results, weights_path: str | None, batch_size: int = 1) -> float | None:
    """Memory bandwidth / bytes read per decoded token for that weights path, times the batch size.

    One decode step reads the weights once and yields one token per sequence, and decode_tok_s
    counts the tokens of every sequence (bench.backends.timing), so at batch b the roofline is b steps'
    worth of tokens: the same definition as bench.sweep.runner.add_roofline's roofline_frac.
    """
    bw = results.gpu.get("memory_bandwidth_bytes_s")
    bpt = results.model.bytes_per_token.get(weights_path or "") if results.model.bytes_per_token else None
    if isinstance(bw, (int, float)) and bw > 0 and bpt:
        return float(bw) / float(bpt) * batch_size
    return None


def plot_roofline(rs: RunSet) -> Plot:
    plot = Plot(
        "roofline",
        "Decode speed against the memory-bandwidth roofline",
        "Bars: achieved decode speed (median). Black ticks: the roofline, memory bandwidth divided by "
        "the bytes read per decoded token on the weights path that ran; the label gives the fraction "
        "reached. Logarithmic scale.",
    )
    cases, rows = [], []
    for run, case in rs.cases("ok"):
        decode = case.median("decode_tok_s")
        if decode is None:
            continue
        load = load_for(run, case)
        path = case.weights_path or (load.weights_path if load else None)
        roof = roofline_tok_s(run.results, path, case.key.batch_size)
        frac = case.median("roofline_frac")
        if roof is None and frac:
            roof = decode / frac
        if frac is None and roof:
            frac = decode / roof
        if roof is None:
            continue
        cases.append((run, case))
        rows.append((decode, roof, frac))
    if not rows:
        if all((run.results.env_summary.get("device") or "") == "cpu" for run in rs.runs):
            plot.skipped = "a CPU run has no GPU memory-bandwidth roofline"
        else:
            plot.skipped = (
                "the roofline needs the GPU memory bandwidth (gpu.memory_bandwidth_bytes_s) and the bytes "
                "read per token of the weights path (model.bytes_per_token), or a roofline_frac metric"
            )
        return plot
    bws = {fmt_bandwidth(run.results.gpu.get("memory_bandwidth_bytes_s")) for run, _ in cases if run.results.gpu.get("memory_bandwidth_bytes_s")}
    if bws:
        plot.caption += f" Memory bandwidth: {', '.join(sorted(bws))}."
    labels = _case_rows(rs, cases)
    fig = _hfigure(labels)
    ax = fig.add_subplot()
    ys = list(range(len(rows)))
    ax.barh(ys, [d for d, _, _ in rows], color=PALETTE[0], height=0.6, label="achieved decode")
    ax.scatter([r for _, r, _ in rows], ys, marker="|", s=260, color="black", linewidths=2.5, label="roofline", zorder=3)
    for y, (d, r, f) in zip(ys, rows):
        ax.text(d * 1.08, y, f"{f * 100:.1f}%" if f is not None else "", va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(min(d for d, _, _ in rows) / 2, max(r for _, r, _ in rows) * 2.5)
    ax.set_yticks(ys, labels)
    ax.invert_yaxis()
    ax.set_xlabel("decode speed (tok/s, log scale)")
    ax.set_ylabel("case")
    _title(fig, plot.title)
    _legend(fig, ax, inside_max=0, always=True)
    plot.figure = fig
    return plot


def plot_channels(rs: RunSet) -> Plot:
    plot = Plot(
        "harmony_channels",
        "Tokens per harmony channel (natural mode)",
        "Natural mode lets the model stop on its own: tokens spent reasoning on the analysis channel "
        "against tokens of the answer on the final channel, median per effort.",
    )
    pooled: dict[tuple[int, str], dict[str, dict[str, list[Stat]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run, case in rs.cases("ok"):
        for m in ("analysis_tokens", "final_tokens"):
            s = _stat_ok(case, m)
            if s:
                other = rs.case_label(case, exclude=("output_len", "effort", "mode"))
                pooled[(run.index, other)][case.key.effort][m].append(s)
    if not pooled:
        plot.skipped = "no natural-mode case counted harmony channel tokens (fixed mode generates exactly N tokens, unsplit)"
        return plot
    efforts = [e for e in EFFORTS if any(e in d for d in pooled.values())]
    groups = list(pooled)
    fig = _figure()
    ax = fig.add_subplot()
    width = 0.8 / len(groups)
    for gi, group in enumerate(groups):
        color = PALETTE[gi % len(PALETTE)]
        xs, analysis, final = [], [], []
        for ei, effort in enumerate(efforts):
            d = pooled[group].get(effort)
            if not d:
                continue
            xs.append(ei + (gi - (len(groups) - 1) / 2) * width)
            analysis.append(_median_of(d.get("analysis_tokens", [])))
            final.append(_median_of(d.get("final_tokens", [])))
        name = _group_label(rs, rs.runs[group[0]], group[1])
        prefix = f"{name}: " if name and len(groups) > 1 else ""
        ax.bar(xs, analysis, width=width * 0.92, color=color, label=f"{prefix}analysis")
        ax.bar(xs, final, width=width * 0.92, bottom=analysis, color=color, alpha=0.45, hatch="//", edgecolor="white", label=f"{prefix}final")
    return _per_effort(plot, fig, ax, efforts, "tokens (median)")


def plot_time_to_final(rs: RunSet) -> Plot:
    plot = Plot(
        "time_to_final",
        "Time to the final answer per effort (natural mode)",
        "Time from the request to the first token on the final channel: what a user waits before "
        "the answer starts. Bars: median; whiskers: p5 to p95.",
    )
    return _per_effort_bars(
        rs, "time_to_final_s", plot, "time to final answer",
        "no natural-mode case measured the time to the final channel (time_to_final_s)",
    )


BUILDERS = [plot_decode_speed, plot_ttft, plot_itl, plot_memory, plot_load, plot_roofline, plot_channels, plot_time_to_final]
