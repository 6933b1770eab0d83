"""Strings from results files made inert in Markdown (report.md, the compare PR comment), as
``html.escape`` makes them inert in the HTML report.

A results file is user input: its model id, GPU name, messages and labels must show as text, so
``<img src=http://...>`` is not an image fetched when the report is viewed, and ``![](url)``,
``[x](url)`` or a ``[x]: url`` definition is not a link.
"""

from __future__ import annotations

import re

_MD_INERT = str.maketrans({"\\": "\\\\", "`": "\\`", "&": "&amp;", "<": "&lt;", ">": "&gt;"})
_MD_LINK_END = re.compile(r"\](?=[(\[])")  # the "](" or "][" that makes a link or an image
_MD_LINK_DEFINITION = re.compile(r"(?m)^(\s{0,3}\[[^\]\n]*)\](?=:)")  # "[x]: url" opening a line


def md_text(text: object) -> str:
    """Plain text made inert in Markdown, as ``html.escape`` does for the HTML report: no raw HTML
    (``<img src=...>`` from a model name shows as text), no entity, no link, image or link
    definition and no code span can come from a results file; "[contention]" stays as it is."""
    text = _MD_LINK_END.sub(r"\\]", str(text).translate(_MD_INERT))
    return _MD_LINK_DEFINITION.sub(r"\1\\]", text)


def md_code(text: object) -> str:
    """``text`` as a Markdown code span that no backtick inside it can close early."""
    text = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_cell(text: object) -> str:
    """``md_text`` for a table cell: no pipe or line break either."""
    return md_text(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")
