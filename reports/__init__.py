"""Renderers of results files: tables, plots, Markdown and a self-contained HTML report.

``render(results, out_dir)`` writes report.md, report.html, one PNG per plot and cases.csv;
``show(results)`` displays the report in a notebook. Inputs are ``bench.results.Results``
objects or paths to results files (validated, older schema versions upgraded on load). This
package only reads results: it never runs a model, and matplotlib is imported only when a plot
is drawn.
"""

from reports.render import FORMATS, ReportFiles, load_all, render, report_html, resolve_paths, show

__all__ = ["FORMATS", "ReportFiles", "load_all", "render", "report_html", "resolve_paths", "show"]
