"""report.html: one self-contained file, readable on a phone and inside a notebook output cell.

Self-contained: plots are inline SVG, the CSS is inline, nothing is fetched (no script, no web
font, no image URL). Every style is scoped under the ``.gptoss-report`` wrapper so that, shown
in Colab or Jupyter, nothing leaks into the notebook's own page; ids carry a per-report prefix.
Tables sit in horizontally scrolling boxes, so a wide case table never widens the page.
"""

from __future__ import annotations

import re
from html import escape

from reports.document import Bullets, Document, Figure, Heading, Text
from reports.tables import Table

WRAPPER = "gptoss-report"

CSS = """
.gptoss-report{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--head:#f6f8fa;--warn:#fff8c5;--bad:#ffebe9;
 color-scheme:light;color:var(--fg);background:#fff;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
 "Helvetica Neue",Arial,sans-serif;max-width:1100px;margin:0 auto;padding:12px 16px;text-align:left;
 -webkit-text-size-adjust:100%;text-size-adjust:100%;overflow-wrap:break-word}
.gptoss-report *{box-sizing:border-box}
.gptoss-report h1{font-size:1.45em;line-height:1.25;margin:.2em 0 .3em}
.gptoss-report h2{font-size:1.2em;margin:1.6em 0 .5em;padding-bottom:.2em;border-bottom:1px solid var(--line)}
.gptoss-report h3{font-size:1.02em;margin:1.2em 0 .4em}
.gptoss-report p{margin:.5em 0}
.gptoss-report .sub{color:var(--muted);margin-top:0}
.gptoss-report .note{color:var(--muted);font-size:.9em}
.gptoss-report .banner{border-left:4px solid #9a6700;background:var(--warn);padding:8px 12px;margin:10px 0;border-radius:4px}
.gptoss-report nav{font-size:.9em;margin:.6em 0 0;display:flex;flex-wrap:wrap;gap:4px 14px}
.gptoss-report nav a{color:#0969da;text-decoration:none}
.gptoss-report nav a:hover{text-decoration:underline}
.gptoss-report ul{margin:.4em 0;padding-left:1.3em}
.gptoss-report li{margin:.2em 0}
.gptoss-report ul.warnings li{color:#7d4e00}
.gptoss-report .scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%;margin:.4em 0}
.gptoss-report table{border-collapse:collapse;font-size:.86em;font-variant-numeric:tabular-nums;margin:0}
.gptoss-report th,.gptoss-report td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top;white-space:nowrap}
.gptoss-report th{background:var(--head);white-space:nowrap;font-weight:600}
.gptoss-report td.r,.gptoss-report th.r{text-align:right;white-space:nowrap}
.gptoss-report td.w{white-space:normal;min-width:16em;max-width:48em}
.gptoss-report tr.em td{font-weight:600;background:var(--warn)}
.gptoss-report tr.warn td{background:var(--warn)}
.gptoss-report tr.bad td{background:var(--bad)}
.gptoss-report .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,500px),1fr));gap:8px 28px}
.gptoss-report figure{margin:1.2em 0;padding:0;min-width:0}
.gptoss-report .plot{max-width:100%;overflow-x:auto}
.gptoss-report svg.gptoss-plot{display:block;width:100%;height:auto;background:#fff}
.gptoss-report figcaption{color:var(--muted);font-size:.88em;margin-top:.3em}
.gptoss-report figcaption ul{margin:.2em 0}
@media (max-width:600px){.gptoss-report{font-size:14px;padding:8px 10px}
 .gptoss-report th,.gptoss-report td{padding:3px 6px}}
""".strip()

PAGE_CSS = "html,body{margin:0;padding:0;background:#fff}"

_VIEWBOX = re.compile(r'viewBox="[\d.\-]+ [\d.\-]+ ([\d.]+) ([\d.]+)"')


R_CELL = '<td class="r">'
R_HEAD = '<th class="r">'
W_CELL = '<td class="w">'


def _table(t: Table) -> str:
    head = "".join((R_HEAD if a == "r" else "<th>") + escape(h) + "</th>" for h, a in zip(t.headers, t.align))
    rows = []
    for i, row in enumerate(t.rows):
        classes = []
        if i in t.emphasis:
            classes.append("em")
        if i < len(t.row_classes) and t.row_classes[i]:
            classes.append(t.row_classes[i])
        cls = f' class="{" ".join(classes)}"' if classes else ""
        cells = "".join(
            (R_CELL if a == "r" else (W_CELL if j in t.wrap else "<td>")) + escape(str(c)) + "</td>"
            for j, (c, a) in enumerate(zip(row, t.align))
        )
        rows.append(f"<tr{cls}>{cells}</tr>")
    html = f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    if t.note:
        html += f'<p class="note">{escape(t.note)}</p>'
    return html


def _figure(block: Figure, prefix: str) -> str:
    p = block.plot
    svg = p.svg or ""
    style = ""
    m = _VIEWBOX.search(svg)
    if m:
        # Natural size in CSS px (the viewBox is in points). Wide figures keep a minimum width and
        # scroll sideways on a phone instead of shrinking their text below legibility.
        width_px = float(m.group(1)) * 96 / 72
        style = f' style="max-width:{width_px * 1.25:.0f}px;min-width:{min(width_px * 0.62, 420):.0f}px"'
    notes = "".join(f"<li>not shown: {escape(n)}</li>" for n in p.notes)
    notes = f"<ul>{notes}</ul>" if notes else ""
    return (
        f'<figure id="{prefix}-{escape(p.name)}"><div class="plot"><div{style}>{svg}</div></div>'
        f"<figcaption><strong>{escape(p.title)}.</strong> {escape(p.caption)}{notes}</figcaption></figure>"
    )


def _block(block, prefix: str) -> str:
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Heading):
        return f"<h3>{escape(block.text)}</h3>"
    if isinstance(block, Text):
        cls = {"note": ' class="note"', "banner": ' class="banner"'}.get(block.kind, "")
        return f"<p{cls}>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        cls = f' class="{block.kind}"' if block.kind else ""
        return f"<ul{cls}>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Figure):
        return _figure(block, prefix)
    raise TypeError(f"unknown block {block!r}")


def _blocks(blocks: list, prefix: str) -> str:
    """Blocks in order; consecutive figures share a grid (two columns on a wide screen)."""
    out, figures = [], []
    for b in blocks + [None]:
        if isinstance(b, Figure):
            figures.append(_figure(b, prefix))
            continue
        if figures:
            out.append('<div class="grid">' + "".join(figures) + "</div>")
            figures = []
        if b is not None:
            out.append(_block(b, prefix))
    return "".join(out)


def render_fragment(doc: Document, prefix: str = "gr") -> str:
    """The report as one ``<div class="gptoss-report">`` with its scoped ``<style>``: what a
    notebook displays and what the full page wraps."""
    parts = [f'<div class="{WRAPPER}" id="{prefix}">', f"<style>{CSS}</style>"]
    parts.append(f"<header><h1>{escape(doc.title)}</h1><p class=\"sub\">{escape(doc.subtitle)}</p>")
    links = " ".join(f'<a href="#{prefix}-{s.id}">{escape(s.title)}</a>' for s in doc.sections)
    parts.append(f"<nav>{links}</nav></header>")
    for banner in doc.banners:
        parts.append(f'<p class="banner"><strong>Partial results.</strong> {escape(banner)}</p>')
    for s in doc.sections:
        body = _blocks(s.blocks, prefix)
        parts.append(f'<section id="{prefix}-{s.id}"><h2>{escape(s.title)}</h2>{body}</section>')
    parts.append("</div>")
    return "\n".join(parts)


def render_page(doc: Document, prefix: str = "gr") -> str:
    """A complete HTML5 page (viewport meta for phones) around the fragment."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(doc.title)}</title>\n"
        f"<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
        f"{render_fragment(doc, prefix)}\n"
        "</body>\n</html>\n"
    )
