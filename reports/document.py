"""The report as a format-neutral document: sections of paragraphs, tables, lists and figures.

Built once from the runs and their plots, then written by ``reports.markdown`` and
``reports.html``, so both formats always hold the same content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reports import tables
from reports.plots import Plot
from reports.runs import CONSTANT_TEXT, RunSet
from reports.scaling import memory_table, scaling, speed_table


@dataclass
class Text:
    text: str
    kind: str = "p"  # p | note | banner


@dataclass
class Bullets:
    items: list[str]
    kind: str = ""  # "" | warnings | skipped


@dataclass
class Heading:
    text: str


@dataclass
class Figure:
    plot: Plot


Block = Text | Bullets | Heading | Figure | tables.Table


@dataclass
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    banners: list[str]
    sections: list[Section]


def _constant_line(rs: RunSet) -> str | None:
    parts = [CONSTANT_TEXT[k](v) for k, v in rs.constant.items() if v is not None and k in CONSTANT_TEXT]
    return ("Every case: " + ", ".join(parts) + ".") if parts else None


def scaling_blocks(rs: RunSet) -> list:
    """The scaling tables, when the runs were measured on different numbers of GPUs or layouts."""
    sc = scaling(rs)
    blocks: list = []
    for heading, table in (("Scaling over GPUs: decode speed", speed_table(sc)), ("Scaling over GPUs: memory per GPU", memory_table(sc))):
        if table is not None:
            blocks += [Heading(heading), table]
    return blocks


def build_document(rs: RunSet, plots: list[Plot]) -> Document:
    models = sorted({run.results.model.id for run in rs.runs})
    if rs.multi:
        title = f"gpt-oss benchmark comparison: {len(rs.runs)} runs"
        subtitle = f"{', '.join(models)} · " + " | ".join(run.label for run in rs.runs)
    else:
        r = rs.runs[0].results
        title = f"gpt-oss benchmark report: {r.model.id}"
        bits = [rs.runs[0].label, tables.cell(r.env_summary.get("gpu") or r.env_summary.get("device")), r.created_at]
        subtitle = " · ".join(b for b in bits if b and b != "—")

    banners = []
    partial = [run for run in rs.runs if not run.results.complete]
    for run in partial:
        who = f"Run {run.label} is" if rs.multi else "This run is"
        banners.append(
            f"{who} incomplete (complete=false): it stopped before every planned case had a result, "
            "so what follows is what was measured up to that point."
        )

    sections = []

    # -- runs / model ---------------------------------------------------------------------------
    if rs.multi:
        blocks: list = [tables.runs_table(rs)]
        if rs.differing:
            blocks.append(
                Text(
                    "The runs differ in: " + ", ".join(f.name for f in rs.differing) + ". Each run's label names "
                    "what sets it apart; tables and plots below use these labels.",
                    "note",
                )
            )
        else:
            blocks.append(Text("The runs agree on every recorded field (GPU, versions, weights path, cache); they are labelled by run id.", "note"))
        blocks += [Heading("Model and run"), tables.model_table(rs)]
        sections.append(Section("runs", "Runs compared", blocks))
    else:
        sections.append(Section("run", "Model and run", [tables.model_table(rs)]))

    # -- headline: what generate gives against what the GPU does with the same modules -----------
    headline = tables.decode_headline(rs)
    if headline is not None:
        sections.append(Section("headline", "generate against graph decoding", [Text(tables.HEADLINE_NOTE), headline]))

    # -- warnings -------------------------------------------------------------------------------
    lines = tables.warning_lines(rs)
    sections.append(Section("warnings", "Warnings", [Bullets(lines, "warnings") if lines else Text("No validity warnings were recorded.")]))

    # -- environment ----------------------------------------------------------------------------
    sections.append(Section("environment", "Environment", [tables.environment_table(rs)]))

    # -- weights path ---------------------------------------------------------------------------
    blocks = []
    loads = [(run, x) for run in rs.runs for x in run.results.loads]
    if loads:
        verdicts = [f"{run.label}: {tables.load_verdict(x)}" if rs.multi else f"{x.quant}/{x.attn}: {tables.load_verdict(x)}" for run, x in loads]
        blocks.append(Bullets(verdicts))
        blocks.append(tables.loads_table(rs))
        timing = tables.load_timing_table(rs)
        if len(timing.headers) > (3 if rs.multi else 2):
            blocks += [Heading("Load phases"), timing]
    else:
        blocks.append(Text("No model load was recorded (the run stopped before loading, or it measured a server)."))
    sections.append(Section("weights", "Weights path", blocks))

    # -- results ----------------------------------------------------------------------------------
    blocks = [Text("Cases: " + tables.status_summary(rs) + ".")]
    constant = _constant_line(rs)
    if constant:
        blocks.append(Text(constant, "note"))
    any_table = False
    for heading, metrics in (
        ("Speed", tables.SPEED_METRICS),
        ("Serving load (latency percentiles over requests; rates over the measured period)", tables.SERVING_METRICS),
        ("Memory", tables.MEMORY_METRICS),
        ("Energy", tables.ENERGY_METRICS),
        ("Harmony channels (natural mode)", tables.CHANNEL_METRICS),
        ("Other metrics", tables.other_metrics(rs)),
    ):
        table = tables.case_table(rs, metrics)
        if table is not None:
            blocks += [Heading(heading), table]
            any_table = True
    if not any_table:
        blocks.append(Text("No case has measurements yet."))
    if rs.multi:
        for metric in ("decode_tok_s", "ttft_s"):
            table = tables.side_by_side_table(rs, metric)
            if table is not None:
                blocks += [Heading(f"Side by side: {tables.METRIC_LABELS[metric]}"), table]
        blocks += scaling_blocks(rs)
    sections.append(Section("results", "Results", blocks))

    # -- status -----------------------------------------------------------------------------------
    status = tables.status_table(rs)
    sections.append(
        Section(
            "status",
            "Case status",
            [Text(tables.status_summary(rs) + "."), status] if status else [Text("Every case finished with measurements.")],
        )
    )

    # -- plots ------------------------------------------------------------------------------------
    blocks = [Figure(p) for p in plots if p.drawn]
    skipped = [f"{p.title}: {p.skipped}." for p in plots if not p.drawn and p.skipped]
    if not plots:
        blocks.append(Text("Plots were not requested."))
    elif skipped:
        blocks += [Heading("Not plotted"), Bullets(skipped, "skipped")]
    sections.append(Section("plots", "Plots", blocks))

    return Document(title, subtitle, banners, sections)
