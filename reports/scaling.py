"""Scaling over GPUs: decode speed and memory per GPU against the number of GPUs of a layout.

Runs of one model measured on different numbers of GPUs or layouts (``--devices 0,1``, ``--ep N``,
``--tp N``; each load records its layout, ``loads[].layout``) become points: a layout kind, its
GPU count, a value, and the family of the point, which is everything else that sets a figure
(model, GPU, weights path, decode mode, batch size and the rest of the case key but the cache).
A family's points are held against the ideal drawn from its point on the fewest GPUs (one GPU
where it was measured): N/N0 times the speed, N0/N times the memory per GPU.

``scaling`` gathers the points or says why there is nothing to compare; ``speed_table`` and
``memory_table`` write them as tables; ``reports.scaling_plot`` draws them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, fields

from bench.results import CaseResult, LoadRecord, Results
from bench.results.layout import LAYOUT_KINDS
from bench.results.stats import Stat
from reports.runs import CONSTANT_TEXT, KEY_FIELDS, KEY_HEADERS, Run, RunSet, layout_gpus, layout_text, load_for
from reports.tables import Table, cell
from reports.units import display_unit, fmt, fmt_spread

SPEED, MEMORY = "speed", "memory"


@dataclass(frozen=True)
class Family:
    """What a point is held against at other GPU counts: everything but the layout. Memory points
    (one per load) leave the case fields empty."""

    model: str
    gpu: str | None
    weights_path: str | None
    decode: str | None = None
    batch_size: int | None = None
    effort: str | None = None
    mode: str | None = None
    prompt_len: int | None = None
    output_len: int | None = None
    attn: str | None = None


FAMILY_FIELDS = [f.name for f in fields(Family)]
_KEY_TEXT = {name: fmt_ for name, _, fmt_ in KEY_FIELDS}
HEADERS = {"model": "model", "gpu": "GPU", **KEY_HEADERS}


def field_text(name: str, value) -> str:
    return _KEY_TEXT.get(name, str)(value)


@dataclass
class Point:
    layout: str  # one of LAYOUT_KINDS
    gpus: int
    family: Family
    value: float  # decode tok/s (median), or the bytes the busiest GPU held after the load
    run: Run
    stat: Stat | None = None  # speed: the samples' spread
    peak: float | None = None  # memory: the busiest GPU's peak during the load's cases


@dataclass
class Series:
    layout: str
    family: Family
    points: list[Point] = field(default_factory=list)  # by GPU count


@dataclass
class Scaling:
    speed: list[Series] = field(default_factory=list)
    memory: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was left out, and why
    skipped: str | None = None  # why there is nothing to compare

    def series(self, kind: str) -> list[Series]:
        return self.speed if kind == SPEED else self.memory

    def points(self, kind: str, family: Family | None = None) -> list[Point]:
        return [p for s in self.series(kind) if family is None or s.family == family for p in s.points]

    def reference(self, kind: str, family: Family) -> Point | None:
        """The family's point on the fewest GPUs (single before the other layouts), if it was
        measured on more than one GPU count."""
        points = self.points(kind, family)
        if len({p.gpus for p in points}) < 2:
            return None
        return min(points, key=lambda p: (p.gpus, _layout_order(p.layout)))

    def ideal(self, kind: str, point: Point) -> float | None:
        return self.ideal_at(kind, point.family, point.gpus)

    def ideal_at(self, kind: str, family: Family, gpus: float) -> float | None:
        """Linear speed-up (speed) or 1/N per GPU (memory) from the family's reference point."""
        ref = self.reference(kind, family)
        if ref is None:
            return None
        return ref.value * gpus / ref.gpus if kind == SPEED else ref.value * ref.gpus / gpus

    def families(self, kind: str) -> list[Family]:
        return list(dict.fromkeys(s.family for s in self.series(kind)))

    def varying(self, kind: str) -> list[str]:
        """Family fields that differ between the series: what labels and columns name."""
        families = self.families(kind)
        return [n for n in FAMILY_FIELDS if len({getattr(f, n) for f in families}) > 1]

    def constant(self, kind: str) -> list[str]:
        """The family fields every series shares, as text (``weights path mxfp4``, ``batch 1``)."""
        families = self.families(kind)
        return [CONSTANT_TEXT.get(n, str)(getattr(families[0], n)) for n in FAMILY_FIELDS
                if families and n not in self.varying(kind) and getattr(families[0], n) is not None]

    def label(self, kind: str, series: Series) -> str:
        parts = [series.layout] + [field_text(n, v) for n in self.varying(kind) if (v := getattr(series.family, n)) is not None]
        return " · ".join(parts)

    def family_label(self, kind: str, family: Family) -> str:
        parts = [field_text(n, v) for n in self.varying(kind) if (v := getattr(family, n)) is not None]
        return " · ".join(parts) or ", ".join(self.constant(kind)) or "every point"


def _layout_order(kind: str) -> int:
    return LAYOUT_KINDS.index(kind) if kind in LAYOUT_KINDS else len(LAYOUT_KINDS)


def _gpu_name(r: Results) -> str | None:
    name = r.gpu.get("name") or r.env_summary.get("gpu")
    return str(name) if name else None


def busiest_after_load(load: LoadRecord) -> float | None:
    """The most any GPU of the layout held right after the load (torch's allocated bytes)."""
    values = [d.load_alloc_bytes for d in load.layout.devices if not d.device.startswith("cpu") and _number(d.load_alloc_bytes)]
    if values:
        return float(max(values))
    whole = load.metrics.get("load_alloc_bytes")
    return float(whole) if layout_gpus(load.layout) == 1 and _number(whole) else None


def busiest_peak(case: CaseResult, gpus: int) -> float | None:
    """The highest peak of any one GPU during a case (median over repetitions): from the per-GPU
    figures (``info.gpus``) where recorded; on one GPU the case's own peak is that GPU's."""
    per_gpu = case.info.get("gpus")
    values = []
    if isinstance(per_gpu, dict):
        for figures in per_gpu.values():
            samples = figures.get("peak_alloc_bytes") if isinstance(figures, dict) else None
            if isinstance(samples, list) and (kept := [float(x) for x in samples if _number(x)]):
                values.append(Stat.of(kept).median)
    if values:
        return max(values)
    return case.median("peak_alloc_bytes") if gpus == 1 else None


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _case_family(run: Run, case: CaseResult, load: LoadRecord) -> Family:
    k = case.key
    return Family(run.results.model.id, _gpu_name(run.results), case.weights_path or load.weights_path, k.decode,
                  k.batch_size, k.effort, k.mode, k.prompt_len, k.output_len, k.attn)


def _gpu_loads(run: Run) -> list[LoadRecord]:
    return [x for x in run.results.loads if x.status == "ok" and x.layout is not None and layout_gpus(x.layout)]


def _skip_reason(rs: RunSet) -> str | None:
    if not rs.multi:
        return ("one run: the scaling plot sets runs of one model measured on different numbers of GPUs or "
                "layouts side by side (gptoss report a.json b.json ...)")
    laid = [x for run in rs.runs for x in run.results.loads if x.layout is not None]
    if not laid:
        return ("no run records the layout of its load (loads[].layout): results written before several GPUs "
                "were supported, or of a server")
    on_gpus = [x for run in rs.runs for x in _gpu_loads(run)]
    if not on_gpus:
        return "no load ran on GPUs with a recorded layout (CPU runs, or loads that failed); the scaling plot counts GPUs"
    shapes = {layout_text(x.layout) for x in on_gpus}
    if len(shapes) == 1:
        return (f"every run used the same layout ({shapes.pop()}); the scaling plot needs runs on different "
                "numbers of GPUs or layouts")
    return None


def scaling(rs: RunSet) -> Scaling:
    """The speed and memory points of the runs, grouped into series, or the reason to skip."""
    why = _skip_reason(rs)
    if why:
        return Scaling(skipped=why)
    sc = Scaling()
    speed: dict[tuple, Point] = {}
    for run, case in rs.cases("ok"):
        s = case.metrics.get("decode_tok_s")
        load = load_for(run, case)
        if s is None or s.median is None or load is None or load not in _gpu_loads(run):
            continue
        point = Point(load.layout.kind, layout_gpus(load.layout), _case_family(run, case, load), s.median, run, stat=s)
        slot = (point.layout, point.gpus, point.family)
        if slot not in speed or speed[slot].value < point.value:  # two caches, or two runs: the faster
            speed[slot] = point
    memory: dict[tuple, Point] = {}
    for run in rs.runs:
        loads = _gpu_loads(run)
        if not loads:
            sc.notes.append(f"{run.label}: no load on GPUs with a recorded layout")
        for x in run.results.loads:
            if x.status != "ok":  # e.g. bf16 gpt-oss-120b on one GPU: why that point is missing
                sc.notes.append(f"{run.label}, quant {x.quant}: the load ended {x.status}")
        for load in loads:
            value = busiest_after_load(load)
            if value is None:
                continue
            gpus = layout_gpus(load.layout)
            peaks = [busiest_peak(c, gpus) for r, c in rs.cases("ok") if r is run and load_for(r, c) is load]
            peak = max((p for p in peaks if p is not None), default=None)
            family = Family(run.results.model.id, _gpu_name(run.results), load.weights_path)
            memory.setdefault((load.layout.kind, gpus, family), Point(load.layout.kind, gpus, family, value, run, peak=peak))
    sc.speed, sc.memory = _series(speed.values()), _series(memory.values())
    if not sc.speed and not sc.memory:
        sc.skipped = ("no run with a GPU layout measured a decode speed (decode_tok_s) or the memory of its GPUs "
                      "after the load (load_alloc_bytes)")
        return sc
    for run in rs.runs:
        if _gpu_loads(run) and not any(p.run is run for p in sc.points(SPEED)):
            sc.notes.append(f"{run.label}: decode speed (no finished case measured it)")
    for kind, what in ((SPEED, "decode speed"), (MEMORY, "memory per GPU")):
        alone = []
        for family in sc.families(kind):
            counts = {p.gpus for p in sc.points(kind, family)}
            if len(counts) == 1:
                n = counts.pop()
                alone.append(f"{sc.family_label(kind, family)} ({n} GPU{'s' if n > 1 else ''})")
        if alone:
            sc.notes.append(f"the ideal {what} where one GPU count was measured: {'; '.join(alone)}")
    return sc


def _series(points) -> list[Series]:
    grouped: dict[tuple[str, Family], list[Point]] = defaultdict(list)
    for p in points:
        grouped[(p.layout, p.family)].append(p)
    out = [Series(layout, family, sorted(pts, key=lambda p: p.gpus)) for (layout, family), pts in grouped.items()]
    return sorted(out, key=lambda s: (_layout_order(s.layout), tuple(_sortable(getattr(s.family, n)) for n in FAMILY_FIELDS)))


def _sortable(value) -> tuple:
    return (value is None, "" if isinstance(value, (int, float)) else str(value), value if isinstance(value, (int, float)) else 0)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

IDEAL_NOTE = ("Ideal: {what} from the point on the fewest GPUs of the same {family} (one GPU where it was "
              "measured); where two cases give one point (the two generate caches, or two runs), the faster is kept.")


def _every_point(sc: Scaling, kind: str) -> str:
    shared = sc.constant(kind)
    return f" Every point: {', '.join(shared)}." if shared else ""


def speed_table(sc: Scaling) -> Table | None:
    """One row per layout and GPU count of each family: decode speed, its ideal and the share of it."""
    if not sc.speed:
        return None
    cols, points = sc.varying(SPEED), sc.points(SPEED)
    headers = ["layout", "GPUs"] + [HEADERS[n] for n in cols] + ["decode (tok/s)", "ideal (tok/s)", "of ideal"]
    rows = []
    for p in points:
        ideal = sc.ideal(SPEED, p)
        share = f"{p.value / ideal * 100:.0f}%" if ideal else "—"
        rows.append([p.layout, str(p.gpus)] + [cell(getattr(p.family, n)) for n in cols]
                    + [fmt_spread(p.stat.median, p.stat.stdev, p.stat.n), fmt(ideal), share])
    note = IDEAL_NOTE.format(what="linear speed-up", family="weights path, decode mode, batch size and case") + _every_point(sc, SPEED)
    return Table(headers, rows, align=["l"] * (2 + len(cols)) + ["r"] * 3, note=note)


def memory_table(sc: Scaling) -> Table | None:
    """One row per load: the busiest GPU's bytes after the load, the 1/N ideal, its peak in a case."""
    if not sc.memory:
        return None
    cols, points = sc.varying(MEMORY), sc.points(MEMORY)
    unit = display_unit("bytes", [v for p in points for v in (p.value, p.peak) if v is not None])
    headers = (["layout", "GPUs"] + [HEADERS[n] for n in cols]
               + [f"weights per GPU ({unit.label})", f"ideal ({unit.label})", f"peak per GPU ({unit.label})"])
    rows = []
    for p in points:
        ideal = sc.ideal(MEMORY, p)
        rows.append([p.layout, str(p.gpus)] + [cell(getattr(p.family, n)) for n in cols]
                    + [fmt(unit(p.value)), fmt(None if ideal is None else unit(ideal)), fmt(None if p.peak is None else unit(p.peak))])
    note = ("Per GPU: the busiest GPU, after the load (torch allocated) and at its peak during a case. "
            + IDEAL_NOTE.format(what="1/N of the memory", family="weights path").split("; ")[0] + "." + _every_point(sc, MEMORY))
    return Table(headers, rows, align=["l"] * (2 + len(cols)) + ["r"] * 3, note=note)
