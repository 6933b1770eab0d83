"""Writing a drawn plot: a PNG file and inline SVG markup safe to embed in the HTML report."""

from __future__ import annotations

import io
import re
from html import escape
from pathlib import Path

from reports.plots import PNG_DPI, STYLE, Plot


_ID = re.compile(r'\bid="([^"]+)"')


def _clean_svg(svg: str, prefix: str, title: str) -> str:
    """Inline-ready SVG: no XML prolog, DOCTYPE or metadata (they name remote URLs), ids unique
    to this figure, no global <style> (it would leak into the page), width from CSS."""
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<style[^>]*>.*?</style>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<defs>\s*</defs>\s*", "", svg)
    ids = set(_ID.findall(svg))
    for old in sorted(ids, key=len, reverse=True):
        new = f"{prefix}-{old}"
        svg = svg.replace(f'id="{old}"', f'id="{new}"').replace(f'"#{old}"', f'"#{new}"').replace(f"url(#{old})", f"url(#{new})")
    m = re.search(r"<svg\b[^>]*>", svg)
    if m:
        tag = m.group(0)
        new_tag = re.sub(r'\s(width|height)="[^"]*"', "", tag)
        new_tag = new_tag[:-1] + (
            f' class="gptoss-plot" role="img" aria-label="{escape(title)}" '
            'preserveAspectRatio="xMidYMid meet" style="stroke-linejoin:round;stroke-linecap:butt">'
        )
        svg = svg.replace(tag, new_tag, 1)
    return svg.strip()


def export(plot: Plot, out_dir: Path | None, *, png: bool = True, svg: bool = True, prefix: str = "g") -> Plot:
    """Write ``<name>.png`` into out_dir and/or keep the inline SVG markup; frees the figure."""
    if plot.figure is None:
        return plot
    import matplotlib

    fig = plot.figure
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": f"{prefix}-{plot.name}"}):
        if png and out_dir is not None:
            path = Path(out_dir) / f"{plot.name}.png"
            fig.savefig(path, format="png", dpi=PNG_DPI, metadata={"Software": None})
            plot.png = path
        if svg:
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
            plot.svg = _clean_svg(buf.getvalue(), f"{prefix}-{plot.name}", plot.title)
    return plot
