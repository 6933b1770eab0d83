"""`gptoss report`: results files -> plots, report.md, a self-contained report.html, cases.csv."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.options import Folder

FORMAT_CHOICES = ("md", "html", "png", "csv")


def default_out(paths: list[Path]) -> Path:
    """One results file: a ``report`` folder beside it. Several: ``./gptoss-report``."""
    if len(paths) == 1:
        return paths[0].parent / "report"
    return Path("gptoss-report")


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    "out_dir",
    type=Folder(path_type=Path),
    default=None,
    help="Folder for the report (created if needed). Default: 'report' beside a single results "
    "file, ./gptoss-report for several.",
)
@click.option(
    "--format",
    "-f",
    "formats",
    type=click.Choice(FORMAT_CHOICES),
    multiple=True,
    help="Write only these (repeatable): md, html, png (one per plot), csv (the case table). Default: all.",
)
def command(results: tuple[Path, ...], out_dir: Path | None, formats: tuple[str, ...]) -> None:
    """Turn results files into plots, a Markdown report and a self-contained HTML report.

    RESULTS are results.json files or folders holding one (a folder without one: every
    */results.json inside it). Several files make a side-by-side comparison, each run labelled
    by what differs (GPU, versions, weights path, cache mode). Older results versions are
    upgraded on load; the paths written are printed, one per line.

    \b
    Example:
      gptoss report gptoss-results/run-1/results.json
      gptoss report h100/results.json t4/results.json --out compare/
      gptoss report gptoss-results/ --format html
    """
    import sys

    from bench.results import writable_folder
    from reports import load_all, render, resolve_paths
    from reports.render import WRITABLE_FIX

    paths = resolve_paths(results)
    runs, _ = load_all(paths)
    out = writable_folder(out_dir if out_dir is not None else default_out(paths), WRITABLE_FIX)
    click.echo(f"writing the report of {len(runs)} run{'s' if len(runs) != 1 else ''} to {out}/", err=True)
    files = render(runs, out, formats=formats or FORMAT_CHOICES)
    for name, why in files.skipped.items():
        click.echo(f"not plotted: {name}: {why}", err=True)
    for path in files.paths():
        click.echo(str(path))
    sys.stdout.flush()
