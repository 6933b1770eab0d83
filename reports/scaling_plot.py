"""The scaling plot: decode speed and memory per GPU against the number of GPUs, ideal drawn.

Left panel: decode tok/s, one line per layout, weights path, decode mode and batch size (and any
other field that tells the families apart), on log axes once the speeds span more than 8x; right
panel: the busiest GPU's memory after the load (solid) and at its peak in a case (dash-dot), one
line per layout and weights path. Colour says the layout, the line style the decode mode, the
marker the batch size, a hollow marker bf16 weights, and the legend names these encodings (one
entry per series only when something else tells series apart). Grey dotted lines: the ideal from
each family's point on the fewest GPUs (linear for speed, 1/N for memory). The points come from
``reports.scaling``.
"""

from __future__ import annotations

import textwrap

from reports.plots import PALETTE, Plot, _figure, _spread, _title
from reports.runs import RunSet
from reports.scaling import MEMORY, SPEED, Scaling, Series, scaling
from reports.units import display_unit

LAYOUT_COLORS = {"single": "#000000", "pipeline": PALETTE[1], "tensor-parallel": PALETTE[0], "expert-parallel": PALETTE[2]}
DECODE_STYLES = {"generate": "-", "graph": "--"}
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
IDEAL = {"color": "#888888", "linestyle": ":", "linewidth": 1.6}
PEAK_STYLE = "-."
ENCODED = {"weights_path", "decode", "batch_size"}  # what the styles say, so a short legend can name them

CAPTION = (
    "Left: decode speed (median; whiskers p5 to p95) against the GPUs a layout spread the model over. "
    "Right: memory of the busiest GPU, right after the load (solid) and at its peak during a case (dash-dot). "
    "Grey dotted: the ideal from the point on the fewest GPUs of the same weights path, decode mode and batch "
    "size (one GPU where it was measured): linear speed-up, 1/N of the memory. A pipeline runs one GPU at a "
    "time, so its speed is not expected to scale; expert and tensor parallel keep a copy of the unsplit parts "
    "on every GPU, so their memory stays above 1/N."
)


class _Styles:
    """Colour by layout, line style by decode mode, marker by batch size, hollow for bf16; a
    second series that would look the same gets the next free colour."""

    def __init__(self, sc: Scaling):
        self.batches = sorted({s.family.batch_size for s in sc.speed if s.family.batch_size is not None})
        self.taken: dict[tuple, dict[str, Series]] = {}
        self.recoloured = False  # then colour no longer says the layout alone

    def __call__(self, series: Series, kind: str) -> dict:
        f = series.family
        marker = MARKERS[self.batches.index(f.batch_size) % len(MARKERS)] if f.batch_size in self.batches else "o"
        hollow = f.weights_path == "bf16"
        color = LAYOUT_COLORS.get(series.layout, PALETTE[4])
        shape = (kind, DECODE_STYLES.get(f.decode or "", "-"), marker, hollow)
        used = self.taken.setdefault(shape, {})  # colour -> the series that has it
        if used.get(color, series) is not series:
            color = next((c for c in PALETTE if c not in used), color)
            self.recoloured = True
        used[color] = series
        return {"color": color, "marker": marker, "linestyle": shape[1], "markerfacecolor": "white" if hollow else color}


def _ideal_lines(ax, sc: Scaling, kind: str, scale=lambda v: v) -> None:
    """One grey dotted line per family measured on more than one GPU count, from its reference
    point to its most GPUs (a curve of 33 points: 1/N bends on a linear axis)."""
    label = "ideal: linear" if kind == SPEED else "ideal: 1/N"
    for family in sc.families(kind):
        ref = sc.reference(kind, family)
        if ref is None:
            continue
        top = max(p.gpus for p in sc.points(kind, family))
        xs = [ref.gpus * (top / ref.gpus) ** (i / 32) for i in range(33)]
        ax.plot(xs, [scale(sc.ideal_at(kind, family, x)) for x in xs], label=label, zorder=1, **IDEAL)
        label = None


def _speed_panel(ax, sc: Scaling, styles: _Styles) -> None:
    for series in sc.speed:
        style = styles(series, SPEED)
        xs = [p.gpus for p in series.points]
        ys = [p.value for p in series.points]
        lo = [p.value - _spread(p.stat)[0] for p in series.points]
        hi = [_spread(p.stat)[1] - p.value for p in series.points]
        ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, label=sc.label(SPEED, series), zorder=3, **style)
    _ideal_lines(ax, sc, SPEED)
    values = [p.value for p in sc.points(SPEED) if p.value > 0]
    if values and max(values) / min(values) > 8:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    batched = any((s.family.batch_size or 1) > 1 for s in sc.speed)
    ax.set_ylabel("decode speed, all sequences (tok/s)" if batched else "decode speed (tok/s)")
    ax.set_title("Decode speed", fontsize=11)


def _memory_panel(ax, sc: Scaling, styles: _Styles) -> None:
    unit = display_unit("bytes", [v for p in sc.points(MEMORY) for v in (p.value, p.peak) if v is not None])
    for series in sc.memory:
        style = styles(series, MEMORY)
        style["linestyle"] = "-"
        xs = [p.gpus for p in series.points]
        ax.plot(xs, [unit(p.value) for p in series.points], label=sc.label(MEMORY, series), zorder=3, **style)
        peaks = [(p.gpus, unit(p.peak)) for p in series.points if p.peak is not None]
        if peaks:
            ax.plot([x for x, _ in peaks], [y for _, y in peaks], **{**style, "linestyle": PEAK_STYLE, "alpha": 0.6})
    _ideal_lines(ax, sc, MEMORY, unit)
    ax.set_ylabel(f"memory per GPU, busiest ({unit.label})")
    ax.set_title("Memory per GPU", fontsize=11)


def plot_scaling(rs: RunSet) -> Plot:
    plot = Plot("scaling", "Scaling over GPUs", CAPTION)
    sc = scaling(rs)
    if sc.skipped:
        plot.skipped = sc.skipped
        return plot
    plot.notes += sc.notes
    panels = [(kind, draw) for kind, draw in ((SPEED, _speed_panel), (MEMORY, _memory_panel)) if sc.series(kind)]
    fig = _figure(5.2 * len(panels) + 0.4, 4.0)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    styles = _Styles(sc)
    counts = sorted({p.gpus for kind, _ in panels for p in sc.points(kind)})
    for ax, (kind, draw) in zip(axes, panels):
        draw(ax, sc, styles)
        ax.set_xscale("log", base=2)
        ax.set_xticks(counts, [str(n) for n in counts])
        ax.minorticks_off()
        ax.set_xlim(counts[0] / 1.4, counts[-1] * 1.4)
        if ax.get_yscale() == "linear":
            ax.set_ylim(bottom=0)
        ax.set_xlabel("GPUs")
    if styles.recoloured or (set(sc.varying(SPEED)) | set(sc.varying(MEMORY))) - ENCODED:
        handles, labels = _series_legend(axes)
    else:
        handles, labels = _encoding_legend(sc, [kind for kind, _ in panels], styles)
    ncol = 1 if len(labels) <= 3 else (2 if max(len(x) for x in labels) > 30 else 3)
    w, h = fig.get_size_inches()
    fig.set_size_inches(w, h + 0.22 * -(-len(labels) // ncol) + 0.2)
    fig.legend(handles, ["\n".join(textwrap.wrap(x, 60)) for x in labels], loc="outside lower center", ncol=ncol, frameon=False)
    _title(fig, plot.title)
    plot.figure = fig
    return plot


def _series_legend(axes) -> tuple[list, list[str]]:
    """One entry per series (and per ideal), as the axes labelled them."""
    handles, labels = [], []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    return handles, labels


def _encoding_legend(sc: Scaling, kinds: list[str], styles: _Styles) -> tuple[list, list[str]]:
    """What each colour, line style, marker and fill says: a dozen entries for any number of series."""
    from matplotlib.lines import Line2D

    grey = "#444444"
    series = [s for kind in kinds for s in sc.series(kind)]
    entries = [(Line2D([], [], color=LAYOUT_COLORS.get(k, PALETTE[4]), marker="o", linewidth=2), k)
               for k in dict.fromkeys(s.layout for s in series)]
    if SPEED in kinds:
        decodes = sorted({s.family.decode for s in sc.speed if s.family.decode})
        entries += [(Line2D([], [], color=grey, linestyle=DECODE_STYLES.get(d, "-")), f"{d} (speed)") for d in decodes]
        entries += [(Line2D([], [], color=grey, marker=MARKERS[i % len(MARKERS)], linestyle="none"), f"batch {b}")
                    for i, b in enumerate(styles.batches)]
    for path in sorted({s.family.weights_path for s in series if s.family.weights_path}):
        hollow = path == "bf16"
        entries.append((Line2D([], [], color=grey, marker="o", linestyle="none", markerfacecolor="white" if hollow else grey),
                        f"{path} weights"))
    if MEMORY in kinds:
        entries += [(Line2D([], [], color=grey, linestyle="-"), "after the load (memory)"),
                    (Line2D([], [], color=grey, linestyle=PEAK_STYLE, alpha=0.6), "peak in a case (memory)")]
    entries.append((Line2D([], [], **IDEAL), "ideal: linear (speed), 1/N (memory)"))
    return [h for h, _ in entries], [label for _, label in entries]


def builders_for(rs: RunSet) -> list:
    """The scaling plot, for comparisons of runs whose loads record their layouts (others never
    mention it); it says why it was skipped when the runs share one layout and GPU count."""
    laid = any(x.layout is not None for run in rs.runs for x in run.results.loads)
    return [plot_scaling] if rs.multi and laid else []
