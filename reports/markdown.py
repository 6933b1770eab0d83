"""report.md: the document as GitHub-flavoured Markdown, plots linked as PNG files beside it."""

from __future__ import annotations

from reports.document import Bullets, Document, Figure, Heading, Text
from reports.tables import Table, to_markdown


def render_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", "", doc.subtitle, ""]
    for banner in doc.banners:
        out += [f"> **Partial results.** {banner}", ""]
    for section in doc.sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            out += [_block(block), ""]
    return "\n".join(out).rstrip() + "\n"


def _block(block) -> str:
    if isinstance(block, Table):
        return to_markdown(block)
    if isinstance(block, Heading):
        return f"### {block.text}"
    if isinstance(block, Text):
        return f"_{block.text}_" if block.kind == "note" else block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Figure):
        p = block.plot
        lines = []
        if p.png is not None:
            lines.append(f"![{p.title}]({p.png.name})")
        else:
            lines.append(f"**{p.title}** (drawn in report.html; PNG files were not requested)")
        lines += ["", f"_{p.caption}_"]
        if p.notes:
            lines += [""] + [f"- not shown: {n}" for n in p.notes]
        return "\n".join(lines)
    raise TypeError(f"unknown block {block!r}")
