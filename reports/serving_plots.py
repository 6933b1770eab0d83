"""The serving plot: latency against throughput across a sweep of load levels, knee marked.

One series per sweep of a load model (the cases that differ only in their concurrency or request
rate), its points in the order of the offered load: x is the request throughput the server
achieved, y the time to first token and the time per output token (p50 solid, p99 dashed). The
knee (ringed) is the load level after which latency climbs for little more throughput, found on
the median end-to-end curve (``bench.results.serving.knee``).
"""

from __future__ import annotations

import textwrap
from collections import defaultdict

from bench.results import CaseResult
from bench.results.serving import knee
from reports.plots import PALETTE, Plot
from reports.runs import RunSet
from reports.units import display_unit, fmt

PANELS = (("ttft", "time to first token"), ("tpot", "time per output token"))


def _offered(case: CaseResult) -> float:
    """Where a case sits on its sweep: the request rate (inf last), else the concurrency."""
    key = case.key
    if key.open_loop:
        return float("inf") if key.request_rate is None else key.request_rate
    return float(key.concurrency)


def _series(rs: RunSet) -> dict[tuple, list[CaseResult]]:
    groups: dict[tuple, list[CaseResult]] = defaultdict(list)
    for run, case in rs.cases("ok"):
        if case.key.load == "waves" or case.median("request_throughput") is None:
            continue
        k = case.key
        axis = ("request_rate",) if k.open_loop else ("concurrency",)
        rest = tuple((f, getattr(k, f)) for f in ("effort", "output_len", "prompt_len", "mode", "load", "burstiness",
                                                 "dataset", "concurrency", "request_rate") if f not in axis)
        groups[(run.index, run.label) + rest].append(case)
    return {g: sorted(cases, key=_offered) for g, cases in groups.items()}


def _label(rs: RunSet, group: tuple, many: bool) -> str:
    _, run_label, *rest = group
    fields = dict(rest)
    parts = [run_label] if rs.multi else []
    parts.append(fields["load"] + (f" c{fields['concurrency']}" if fields.get("load") in ("poisson", "gamma")
                                   and fields.get("concurrency") else ""))
    if many:
        parts += [str(fields.get("effort")), f"out {fields.get('output_len')}"]
        if fields.get("dataset"):
            parts.append(str(fields["dataset"]))
    return ", ".join(parts)


def plot_latency_throughput(rs: RunSet) -> Plot:
    plot = Plot(
        "latency_throughput",
        "Latency against throughput (sustained load)",
        "Each point is one load level of a sweep (a concurrency or a request rate), at the request "
        "throughput the server achieved. Solid: median over requests; dashed: p99. Ringed: the knee, "
        "the last level before the median end-to-end time climbs steeply for little more throughput.",
    )
    series = _series(rs)
    if not series:
        plot.skipped = "no sustained-load case (gptoss bench --backend openai --load closed|poisson|gamma)"
        return plot
    panels = [(m, name) for m, name in PANELS if any(c.median(f"{m}_p50_s") is not None for cs in series.values() for c in cs)]
    units = {m: display_unit("s", [v for cases in series.values() for c in cases for q in (50, 99)
                                   if (v := c.median(f"{m}_p{q}_s")) is not None]) for m, _ in panels}
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = 5.0 * len(panels) + 0.6
    fig = Figure(figsize=(width, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(1, len(panels), squeeze=False)[0])
    many = len({g[2:] for g in series}) > 1
    knees = []
    for n, (group, cases) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        xs = [c.median("request_throughput") for c in cases]
        k = knee(xs, [c.median("e2e_p50_s") for c in cases])
        label = _label(rs, group, many)
        for ax, (metric, _) in zip(axes, panels):
            unit = units[metric]
            for q, style in ((50, "-"), (99, "--")):
                pts = [(x, c.median(f"{metric}_p{q}_s")) for x, c in zip(xs, cases) if c.median(f"{metric}_p{q}_s") is not None]
                if pts:
                    ax.plot([p[0] for p in pts], [unit(p[1]) for p in pts], style, marker="o", markersize=4, color=color,
                            label=label if q == 50 else None)
            for x, c in zip(xs, cases):  # each point's load level, beside its median
                y50 = c.median(f"{metric}_p50_s")
                if y50 is not None and metric == panels[0][0]:
                    ax.annotate(_level(c, short=True), (x, unit(y50)), textcoords="offset points", xytext=(4, -10),
                                fontsize=8, color=color)
            y = cases[k].median(f"{metric}_p50_s") if k is not None else None
            if y is not None:
                ax.plot([xs[k]], [unit(y)], "o", markersize=13, markerfacecolor="none", markeredgecolor=color, markeredgewidth=2)
        if k is not None:
            knees.append(f"{label}: knee at {fmt(xs[k])} req/s ({_level(cases[k])})")
    for ax, (metric, name) in zip(axes, panels):
        ax.set_xlabel("request throughput (req/s)")
        ax.set_ylabel(f"{name} ({units[metric].label})")
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
    handles, labels = axes[0].get_legend_handles_labels()
    if len(labels) > 1:
        fig.set_size_inches(width, 4.2 + 0.25 * len(labels))
        fig.legend(handles, ["\n".join(textwrap.wrap(x, 60)) for x in labels], loc="outside lower center",
                   ncol=2 if len(labels) > 3 else 1, frameon=False)
    fig.suptitle(plot.title, fontsize=12, fontweight="bold")
    plot.figure = fig
    plot.caption += " " + ("; ".join(knees) + "." if knees else
                           "No knee: the latency did not bend upward across the load levels (or there were fewer than three).")
    return plot


def _level(case: CaseResult, short: bool = False) -> str:
    key = case.key
    if key.open_loop:
        rate = "inf" if key.request_rate is None else f"{key.request_rate:g}/s"
        return rate if short else f"rate {rate}"
    return f"c{key.concurrency}" if short else f"concurrency {key.concurrency}"


BUILDERS = [plot_latency_throughput]


def builders_for(rs: RunSet) -> list:
    """The serving plots, for reports that hold a sustained-load case (others never mention them)."""
    return BUILDERS if any(c.key.load != "waves" for _, c in rs.cases()) else []
