"""Reasoning effort: does the model's chat template put ``Reasoning: <effort>`` in the system block?

gpt-oss reads its reasoning effort from the harmony system message. ``apply_chat_template(...,
reasoning_effort="high")`` passes the keyword to the Jinja template; a template that ignores it
(a copied Llama-style template, or one hard-coding "Reasoning: medium") silently runs every effort
at the same level. This renders the template for low, medium and high and reads the system block.

The template comes from ``chat_template.jinja`` or the ``chat_template`` entry of
``tokenizer_config.json`` in a model folder (a local checkpoint, the hub cache, or, with
``--online``, those two small files downloaded alone). It is rendered with jinja2 in a sandbox set
up as transformers sets up its own (trim_blocks, lstrip_blocks, loop controls, ``raise_exception``,
``strftime_now``, a ``tojson`` filter), without importing transformers: importing it here would
leave a stale transformers in a notebook that upgrades it next.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

EFFORTS = ("low", "medium", "high")
TEMPLATE_FILES = ("chat_template.jinja", "tokenizer_config.json")
_SYSTEM_BLOCK = re.compile(r"<\|start\|>system<\|message\|>(.*?)(?:<\|end\|>|$)", re.DOTALL)
_REASONING = re.compile(r"^\s*Reasoning:\s*(\S+)\s*$", re.MULTILINE)


def read_template(folder: str | Path) -> tuple[str | None, str | None]:
    """(template text, the file it came from) of a model folder; (None, None) when it has none."""
    base = Path(folder)
    jinja = base / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8"), str(jinja)
    cfg = base / "tokenizer_config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text(encoding="utf-8"))
        tpl = data.get("chat_template")
        if isinstance(tpl, list):  # named templates: [{"name": "default", "template": ...}, ...]
            named = {t.get("name"): t.get("template") for t in tpl if isinstance(t, dict)}
            tpl = named.get("default") or next(iter(named.values()), None)
        if isinstance(tpl, str) and tpl.strip():
            return tpl, str(cfg)
    return None, None


def _environment():
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        from jinja2.exceptions import TemplateError

        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def render(template: str, effort: str) -> str:
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    return _environment().from_string(template).render(
        messages=messages, add_generation_prompt=True, reasoning_effort=effort,
        bos_token="", eos_token="", tools=None,
    )


def reasoning_line(rendered: str) -> str | None:
    """The ``Reasoning: ...`` line of the harmony system block (of the whole text when it has none)."""
    m = _SYSTEM_BLOCK.search(rendered)
    block = m.group(1) if m else rendered
    r = _REASONING.search(block)
    return r.group(0).strip() if r else None


def check_template(template: str) -> tuple[dict[str, bool], dict[str, str | None]]:
    """For each effort: whether the system block says ``Reasoning: <effort>``, and the line found."""
    ok: dict[str, bool] = {}
    lines: dict[str, str | None] = {}
    for effort in EFFORTS:
        line = reasoning_line(render(template, effort))
        lines[effort] = line
        ok[effort] = line is not None and line.split(":", 1)[1].strip().lower() == effort
    return ok, lines
