"""Renderers: the report's (already redacted) JSON dict -> a text table or self-contained HTML.

Both read only ``CheckReport.to_dict()``, so whatever the JSON hides (secrets) they cannot show.
"""

from __future__ import annotations

import html
import json
import textwrap

from diagnostics.checks import first_sentence
from diagnostics.models import gib

STATUS_LABEL = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "SKIP"}
ANSI = {"pass": "\033[32m", "warn": "\033[33m", "fail": "\033[31;1m", "skip": "\033[2m"}
RESET = "\033[0m"
HTML_COLOR = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "skip": "#6e7781"}
HTML_BG = {"pass": "#dafbe1", "warn": "#fff8c5", "fail": "#ffebe9", "skip": "#f6f8fa"}

SUMMARY_PACKAGES = ("torch", "triton", "transformers", "accelerate", "kernels", "torchvision", "torchaudio",
                    "nvidia-ml-py", "huggingface-hub")


def _package_line(doc: dict) -> str:
    pkgs = doc.get("facts", {}).get("packages", {})
    parts = []
    for name in SUMMARY_PACKAGES:
        p = pkgs.get(name) or {}
        parts.append(f"{name} {p.get('version') or '-'}")
    return " · ".join(parts)


def what_if_line(doc: dict) -> str | None:
    """The banner of a what-if report: installed packages, another GPU."""
    t = doc.get("target")
    if not t:
        return None
    mem = gib(t["memory_total_bytes"]) if t.get("memory_total_bytes") else "memory ?"
    drv = f"driver {t['driver']} (CUDA {t.get('driver_cuda') or '?'})" if t.get("driver") else "this machine's driver"
    gpu = t.get("gpu") or "this machine's GPU"
    return (f"WHAT-IF {t.get('label') or ''}: this environment's installed packages on {gpu}, {mem}, compute capability "
            f"{t.get('compute_capability') or '?'}, {drv}; transformers' MXFP4 decision is predicted, not asked.")


def facts_summary(doc: dict) -> list[tuple[str, str]]:
    """(label, value) lines describing the machine, for both renderers."""
    f = doc.get("facts", {})
    p = f.get("platform", {})
    where = ("Colab" + (f" {p['colab_release']}" if p.get("colab_release") else "")) if p.get("colab") else (
        "Kaggle" if p.get("kaggle") else "not Colab")
    rows = [("Machine", f"{p.get('system', '?')} {p.get('release', '')} {p.get('machine', '')} · Python {p.get('python', '?')} · {where}")]
    if p.get("cpu"):
        rows.append(("CPU", p["cpu"] + (f" · {p['cpu_count']} logical cores" if p.get("cpu_count") else "")))
    gpus = f.get("gpus") or []
    if gpus:
        rows.append(("GPU", "; ".join(
            f"[{g.get('index')}] {g.get('name')} · {gib(g.get('memory_free_bytes'))} free of {gib(g.get('memory_total_bytes'))} · "
            f"cc {g.get('compute_capability') or '?'}" + ("" if g.get("visible", True) else " (hidden by CUDA_VISIBLE_DEVICES)")
            for g in gpus)))
    else:
        nvml_error = (f.get("nvml") or {}).get("error")
        rows.append(("GPU", "none" + (f" ({nvml_error})" if nvml_error else "")))
    d = f.get("driver") or {}
    rows.append(("Driver", f"{d.get('version')} (CUDA {d.get('cuda_version') or '?'})" if d.get("version") else "-"))
    t = f.get("torch") or {}
    if t.get("installed"):
        build = f"CUDA {t['cuda_build']}" if t.get("cuda_build") else "CPU build"
        rows.append(("torch", f"{t.get('version')} ({build}); CUDA usable: {'yes' if t.get('cuda_available') else 'no'}"))
    rows.append(("Packages", _package_line(doc)))
    m = f.get("mxfp4") or {}
    reason = first_sentence(m["reason"]) if m.get("reason") else ""
    rows.append(("transformers says", f"{m.get('path', 'unknown')}" + (f": {reason}" if reason else "")))
    return rows


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def render_text(doc: dict, color: bool = False, width: int = 100) -> str:
    width = max(60, width)
    title_w = 28
    msg_w = width - (2 + 4 + 2 + title_w + 2)

    def tag(status: str) -> str:
        label = STATUS_LABEL.get(status, status.upper())
        return f"{ANSI[status]}{label}{RESET}" if color and status in ANSI else label

    lines = [f"gptoss check · {doc.get('model')} · gptoss-harness {doc.get('tool_version')} · {doc.get('created_at')}"]
    banner = what_if_line(doc)
    if banner:
        lines += textwrap.wrap(banner, width, break_on_hyphens=False)
    lines.append("")
    for c in doc.get("checks", []):
        title_lines = textwrap.wrap(c["title"], title_w, break_on_hyphens=False) or [""]
        body = textwrap.wrap(c["message"], msg_w, break_on_hyphens=False) or [""]
        if c.get("fix"):
            body += textwrap.wrap("fix: " + c["fix"], msg_w, subsequent_indent="     ", break_on_hyphens=False)
        for i in range(max(len(title_lines), len(body))):
            t = title_lines[i] if i < len(title_lines) else ""
            b = body[i] if i < len(body) else ""
            head = f"  {tag(c['status'])}  " if i == 0 else " " * 8
            lines.append(f"{head}{t:<{title_w}}  {b}".rstrip())
    lines.append("")
    label_w = 18
    for label, value in facts_summary(doc):
        wrapped = textwrap.wrap(value, width - label_w - 2, break_on_hyphens=False) or [""]
        lines.append(f"{label:<{label_w}}  {wrapped[0]}")
        lines += [" " * (label_w + 2) + w for w in wrapped[1:]]
    v = doc.get("verdict", {})
    lines.append("")
    lines.append(f"{'Verdict':<{label_w}}  {tag(v.get('status', 'fail'))} · path: {v.get('path')}")
    for text in (v.get("reason", ""), v.get("summary", "")):
        for w in textwrap.wrap(text, width - label_w - 2, break_on_hyphens=False):
            lines.append(" " * (label_w + 2) + w)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


def _badge(status: str) -> str:
    return (
        f'<span style="display:inline-block;min-width:3.2em;text-align:center;padding:1px 6px;border-radius:4px;'
        f'font-weight:600;font-size:0.85em;color:{HTML_COLOR.get(status, "#000")};background:{HTML_BG.get(status, "#fff")};'
        f'border:1px solid {HTML_COLOR.get(status, "#000")}">{html.escape(STATUS_LABEL.get(status, status))}</span>'
    )


def render_html(doc: dict) -> str:
    e = html.escape
    v = doc.get("verdict", {})
    status = v.get("status", "fail")
    rows = []
    for c in doc.get("checks", []):
        fix = (f'<div style="margin-top:4px">fix: <code style="background:#f6f8fa;padding:1px 4px;border-radius:3px;'
               f'white-space:pre-wrap">{e(c["fix"])}</code></div>') if c.get("fix") else ""
        rows.append(
            f'<tr style="background:{HTML_BG.get(c["status"], "#fff") if c["status"] in ("fail", "warn") else "transparent"}">'
            f'<td style="padding:4px 8px;vertical-align:top">{_badge(c["status"])}</td>'
            f'<td style="padding:4px 8px;vertical-align:top;font-weight:600;white-space:nowrap">{e(c["title"])}</td>'
            f'<td style="padding:4px 8px;vertical-align:top">{e(c["message"])}{fix}</td></tr>'
        )
    summary = "".join(
        f'<tr><td style="padding:2px 8px;color:#57606a;white-space:nowrap">{e(label)}</td><td style="padding:2px 8px">{e(value)}</td></tr>'
        for label, value in facts_summary(doc)
    )
    facts_json = e(json.dumps(doc.get("facts", {}), indent=1))
    return (
        '<div style="font-family:system-ui,-apple-system,Segoe UI,sans-serif;font-size:14px;line-height:1.4;max-width:1100px">'
        f'<div style="padding:10px 12px;border-radius:6px;border:1px solid {HTML_COLOR.get(status)};background:{HTML_BG.get(status)}">'
        f'<div style="font-size:1.1em">{_badge(status)} <b>gptoss check</b> · {e(str(doc.get("model")))} · path: '
        f'<b>{e(str(v.get("path")))}</b></div>'
        + (f'<div style="margin-top:4px;font-weight:600">{e(what_if_line(doc) or "")}</div>' if doc.get("target") else "")
        + f'<div style="margin-top:4px">{e(v.get("reason", ""))}</div>'
        f'<div style="margin-top:2px;color:#57606a">{e(v.get("summary", ""))}</div></div>'
        f'<table style="border-collapse:collapse;margin-top:8px;width:100%">{"".join(rows)}</table>'
        f'<table style="border-collapse:collapse;margin-top:8px">{summary}</table>'
        f'<details style="margin-top:6px"><summary>all facts (JSON)</summary><pre style="font-size:12px">{facts_json}</pre></details>'
        f'<div style="color:#8c959f;font-size:0.8em;margin-top:4px">gptoss-harness {e(str(doc.get("tool_version")))} · '
        f'{e(str(doc.get("created_at")))} · schema {e(str(doc.get("schema")))}</div>'
        '</div>'
    )
