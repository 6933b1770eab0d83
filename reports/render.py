"""Entry points: ``render`` writes the report files, ``show`` displays the report in a notebook."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, Union

from bench.results.errors import UserError, write_failure
from bench.results import Results, ResultsError, load, writable_folder

from reports.document import Document, build_document
from reports.runs import RunSet, build_runset

log = logging.getLogger(__name__)

FORMATS = ("md", "html", "png", "csv")
WRITABLE_FIX = "pass --out a folder you can write to"
DEFAULT_FORMATS = FORMATS

ResultsLike = Union[Results, str, "os.PathLike[str]"]


@dataclass
class ReportFiles:
    """What ``render`` wrote."""

    out_dir: Path
    markdown: Path | None = None
    html: Path | None = None
    csv: Path | None = None
    plots: list[Path] = field(default_factory=list)  # PNG files
    skipped: dict[str, str] = field(default_factory=dict)  # plot name -> why it was not drawn

    def paths(self) -> list[Path]:
        return [p for p in (self.html, self.markdown, self.csv) if p is not None] + list(self.plots)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def resolve_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; a directory means its results.json, or else every ``*/results.json`` in it."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            if (p / "results.json").is_file():
                out.append(p / "results.json")
                continue
            found = sorted(p.glob("*/results.json"))
            if not found:
                raise ResultsError(f"{p} holds no results.json (nor do its sub-folders); pass the results.json that `gptoss bench` wrote or its folder.")
            out.extend(found)
        else:
            out.append(p)
    return out


def load_all(items: ResultsLike | Sequence[ResultsLike]) -> tuple[list[Results], list[str | None]]:
    """Results objects and paths (files or folders) in any mix -> (results, where each came from)."""
    if isinstance(items, (Results, str, os.PathLike)):
        items = [items]
    results: list[Results] = []
    sources: list[str | None] = []
    for item in items:
        if isinstance(item, Results):
            results.append(item)
            sources.append(None)
        elif isinstance(item, (str, os.PathLike)):
            for path in resolve_paths([item]):
                results.append(load(path))
                sources.append(str(path))
        else:
            raise TypeError(f"expected Results or a path, got {type(item).__name__}")
    if not results:
        raise UserError("no results to report on; pass at least one results.json that `gptoss bench` wrote.")
    return results, sources


def _prefix(rs: RunSet) -> str:
    """An id prefix unique to this report, so two reports in one notebook page never share ids."""
    h = hashlib.sha1("|".join(f"{r.results.run_id}/{r.results.created_at}/{r.label}" for r in rs.runs).encode()).hexdigest()
    return f"gr{h[:8]}"


def _plots(rs: RunSet, out_dir: Path | None, png: bool, svg: bool, prefix: str):
    import matplotlib

    from reports import plots, scaling_plot, serving_plots
    from reports.plot_export import export

    made = []
    with matplotlib.rc_context(plots.STYLE):
        for build in plots.BUILDERS + serving_plots.builders_for(rs) + scaling_plot.builders_for(rs):
            try:
                plot = build(rs)
                export(plot, out_dir, png=png, svg=svg, prefix=prefix)
            except OSError as e:  # the folder, not the plot: a full disk is one sentence, not a traceback
                raise write_failure(e, out_dir, WRITABLE_FIX) from None
            except Exception as e:  # a plot must never cost the whole report (bench renders after every run)
                log.warning("plot %s failed: %s", build.__name__, e, exc_info=True)
                plot = plots.Plot(build.__name__.removeprefix("plot_"), build.__name__.removeprefix("plot_").replace("_", " "))
                plot.skipped = f"could not be drawn ({type(e).__name__}: {e}); please report this as a bug"
            plot.figure = None  # exported (or skipped); free the memory
            made.append(plot)
    return made


def _document(results, formats: Sequence[str], out_dir: Path | None) -> tuple[Document, RunSet, list, str]:
    runs, sources = load_all(results)
    rs = build_runset(runs, sources)
    prefix = _prefix(rs)
    want_plots = "png" in formats or "html" in formats
    plots = _plots(rs, out_dir, png="png" in formats, svg="html" in formats, prefix=prefix) if want_plots else []
    return build_document(rs, plots), rs, plots, prefix


def _check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [formats]
    formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UserError(f"unknown report format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}.")
    return formats


# --------------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------------


def render(
    results: ResultsLike | Sequence[ResultsLike],
    out_dir: str | os.PathLike,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> ReportFiles:
    """Write the report of one run (or a comparison of several) into ``out_dir``.

    ``results``: a Results, a path to a results.json or its folder, or a list of those.
    ``formats``: any of md (report.md), html (report.html, self-contained), png (one file per
    plot, linked from report.md) and csv (cases.csv). Robust to partial runs: cases that failed,
    ran out of memory or lack metrics are reported, and plots without data are listed as skipped.
    """
    from reports.html import render_page
    from reports.markdown import render_markdown
    from reports.tables import write_cases_csv

    formats = _check_formats(formats)
    out = writable_folder(out_dir, WRITABLE_FIX)  # before any plot is drawn
    doc, rs, plots, prefix = _document(results, formats, out)
    files = ReportFiles(out_dir=out)
    files.plots = [p.png for p in plots if p.png is not None]
    files.skipped = {p.name: p.skipped for p in plots if p.skipped}
    try:
        if "md" in formats:
            files.markdown = out / "report.md"
            files.markdown.write_text(render_markdown(doc), encoding="utf-8")
        if "html" in formats:
            files.html = out / "report.html"
            files.html.write_text(render_page(doc, prefix), encoding="utf-8")
        if "csv" in formats:
            files.csv = write_cases_csv(rs, out / "cases.csv")
    except OSError as e:
        raise write_failure(e, out, WRITABLE_FIX) from None
    return files


def report_html(results: ResultsLike | Sequence[ResultsLike]) -> str:
    """The report as an HTML fragment (scoped styles, inline SVG), without writing any file."""
    from reports.html import render_fragment

    doc, _, _, prefix = _document(results, ("html",), None)
    return render_fragment(doc, prefix)


def show(results_or_paths: ResultsLike | Sequence[ResultsLike]):
    """Display the report in a notebook (Colab, Jupyter); without IPython, return the HTML.

    In a notebook the report is displayed and None is returned (so it does not show twice when
    the call ends a cell).
    """
    fragment = report_html(results_or_paths)
    try:
        from IPython.display import HTML, display
    except ImportError:
        return fragment
    display(HTML(fragment))
    return None
