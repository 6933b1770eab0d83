"""report.md: the document as GitHub-flavoured Markdown, plots linked as PNG files beside it.

Every string of the document is plain text (model ids, GPU names, messages and labels come from
results files): ``md_text`` makes each one inert, as the HTML report escapes it, so a model named
``<img src=http://...>`` shows as that text instead of fetching an image.
"""

from __future__ import annotations

from reports.document import Bullets, Document, Figure, Heading, Text
from reports.markdown_text import md_text
from reports.tables import Table, to_markdown


def render_markdown(doc: Document) -> str:
    out = [f"# {md_text(doc.title)}", "", md_text(doc.subtitle), ""]
    for banner in doc.banners:
        out += [f"> **Partial results.** {md_text(banner)}", ""]
    for section in doc.sections:
        out += [f"## {md_text(section.title)}", ""]
        for block in section.blocks:
            out += [_block(block), ""]
    return "\n".join(out).rstrip() + "\n"


def _block(block) -> str:
    if isinstance(block, Table):
        return to_markdown(block)
    if isinstance(block, Heading):
        return f"### {md_text(block.text)}"
    if isinstance(block, Text):
        return f"_{md_text(block.text)}_" if block.kind == "note" else md_text(block.text)
    if isinstance(block, Bullets):
        return "\n".join(f"- {md_text(item)}" for item in block.items)
    if isinstance(block, Figure):
        p = block.plot
        lines = []
        if p.png is not None:
            lines.append(f"![{md_text(p.title)}]({p.png.name})")
        else:
            lines.append(f"**{md_text(p.title)}** (drawn in report.html; PNG files were not requested)")
        lines += ["", f"_{md_text(p.caption)}_"]
        if p.notes:
            lines += [""] + [f"- not shown: {md_text(n)}" for n in p.notes]
        return "\n".join(lines)
    raise TypeError(f"unknown block {block!r}")
