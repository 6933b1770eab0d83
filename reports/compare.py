"""Rendering a comparison of two runs (``gptoss compare``): text, Markdown for a pull-request
comment, and JSON."""

from __future__ import annotations

import json

from bench.results.comparison import (
    EXACT_MAX_N,
    ENV_FIELDS,
    IMPROVEMENT,
    NOW_FAILS,
    NOW_RUNS,
    REGRESSION,
    TEST_NAME,
    CaseComparison,
    Comparison,
    MetricDelta,
)
from reports.markdown_text import md_cell, md_code, md_text
from reports.tables import Table, text_table, to_markdown
from reports.units import fmt_value

def fmt_pct(pct: float | None, delta: float | None) -> str:
    if pct is None:
        return "n/a" if delta else "0.0%"
    return f"{pct:+.1f}%"


def fmt_p(m: MetricDelta) -> str:
    if m.p_value is None:
        return "untested" if m.base is not None and m.current is not None and m.direction != "same" else "-"
    return f"{m.p_value:.3g}"


def method_line(c: Comparison) -> str:
    return (
        f"Verdict rule: a regression is a median change beyond its threshold in the worse direction that a "
        f"{TEST_NAME} (exact with mid-ranks up to {EXACT_MAX_N} samples in all, else normal approximation with "
        f"tie correction) finds significant at alpha={c.alpha:g}; with too few samples for the test "
        f"(smallest attainable p > alpha, i.e. under 3 samples a side), the threshold alone decides. "
        f"Values are medians, with the 95% confidence interval of the median in brackets where a side has 6 or more samples."
    )


def _summary(c: Comparison) -> str:
    n_cases = sum(1 for x in c.cases if x.phase == "case")
    regs = c.regressions
    if regs:
        n_reg_cases = len({x.id for x, _ in regs})
        return f"FAIL: {len(regs)} regression{'s' if len(regs) != 1 else ''} in {n_reg_cases} of {len(c.cases)} compared entries ({n_cases} cases)"
    imp = len(c.improvements)
    extra = f", {imp} improvement{'s' if imp != 1 else ''}" if imp else ""
    return f"PASS: no regression in {len(c.cases)} compared entries ({n_cases} cases){extra}"


def _env_lines(c: Comparison) -> list[str]:
    if not c.env_diff:
        keys = ", ".join(ENV_FIELDS)
        return [f"Environment: identical ({keys}): the change comes from code, configuration or the machine's state."]
    return [f"  {k}: {a if a is not None else '-'} -> {b if b is not None else '-'}" for k, (a, b) in c.env_diff.items()]


def _rows(c: Comparison, everything: bool) -> list[tuple[CaseComparison, MetricDelta | None]]:
    rows: list[tuple[CaseComparison, MetricDelta | None]] = []
    for case in c.cases:
        if case.verdict in (NOW_FAILS, NOW_RUNS) or not case.metrics:
            rows.append((case, None))
            continue
        for m in case.metrics:
            if everything or m.threshold is not None or m.verdict in (REGRESSION, IMPROVEMENT):
                rows.append((case, m))
    return rows


def _row_cells(case: CaseComparison, m: MetricDelta | None) -> list[str]:
    if m is None:
        detail = f"{case.base_status} -> {case.current_status}"
        if case.message:
            detail += f": {case.message}"
        return [case.id, "(case)", case.base_status, case.current_status, "", "", "", case.verdict.upper() if case.verdict == NOW_FAILS else case.verdict, detail]
    verdict = m.verdict.upper() if m.verdict == REGRESSION else m.verdict
    thr = str(m.threshold) if m.threshold else ""
    note = m.note
    if thr and thr not in note:
        note = f"fail-on {thr}" + (f"; {note}" if note else "")
    return [case.id, m.metric, _with_ci(m.base, m.base_ci, m.unit), _with_ci(m.current, m.current_ci, m.unit),
            fmt_pct(m.pct, m.delta), m.direction, fmt_p(m), verdict, note]


def _with_ci(value: float | None, ci: tuple[float, float] | None, unit: str) -> str:
    """The median, and its 95% interval where there were enough samples for one."""
    text = fmt_value(value, unit)
    if ci is None:
        return text
    return f"{text} [{fmt_value(ci[0], unit)}, {fmt_value(ci[1], unit)}]"


def _regression_lines(c: Comparison, quote, text=str) -> list[str]:
    """One line per regression; ``quote`` marks up case ids and thresholds, ``text`` a message."""
    out = []
    for case, m in c.regressions:
        if m is None:
            out.append(f"{quote(case.id)}: now fails ({case.current_status}{': ' + text(case.message) if case.message else ''})")
            continue
        p = f"p={m.p_value:.3g}" if m.p_value is not None else "untested: too few samples"
        out.append(f"{quote(case.id)} {m.metric}: {fmt_value(m.base, m.unit)} -> {fmt_value(m.current, m.unit)} "
                   f"({fmt_pct(m.pct, m.delta)}, beyond {quote(str(m.threshold))}, {p})")
    return out


HEADERS = ["case", "metric", "base", "current", "change", "direction", "p", "verdict", "note"]


def render_text(c: Comparison, everything: bool = True) -> str:
    lines = [_summary(c)]
    lines.append(f"BASE:    {c.base.label} (run {c.base.run_id or '-'}, {c.base.created_at}, {c.base.model}, {c.base.env.get('gpu') or 'CPU'})")
    lines.append(f"CURRENT: {c.current.label} (run {c.current.run_id or '-'}, {c.current.created_at}, {c.current.model}, {c.current.env.get('gpu') or 'CPU'})")
    lines.append(f"Thresholds ({c.thresholds_source}): {', '.join(str(t) for t in c.thresholds.values()) or 'none'}")
    lines.append(method_line(c))
    for mm in c.mismatches:
        lines.append(f"MISMATCH (allowed by --allow-mismatch): {mm}")
    if c.same_run:
        lines.append(f"Note: BASE and CURRENT are the same run ({c.base.run_id}); pass the new results as CURRENT.")
    rows = [_row_cells(case, m) for case, m in _rows(c, everything)]
    if rows:
        lines.append("")
        lines.extend(text_table(HEADERS, rows).splitlines())
    if c.regressions:
        lines.append("")
        lines.append("Regressions:")
        lines.extend("  " + line for line in _regression_lines(c, quote=str))
        lines.append("Environment differences between the runs (possible causes):" if c.env_diff else "")
        lines.extend(_env_lines(c))
    elif c.env_diff:
        lines.append("")
        lines.append("Environment differences between the runs:")
        lines.extend(_env_lines(c))
    if c.untested:
        lines.append("")
        lines.append(f"Note: {len(c.untested)} gated comparison(s) had too few samples for the rank test; the threshold alone decided them.")
    if c.only_in_base:
        lines.append(f"Only in BASE (not compared): {', '.join(c.only_in_base)}")
    if c.only_in_current:
        lines.append(f"Only in CURRENT (not compared): {', '.join(c.only_in_current)}")
    return "\n".join(x for x in lines if x is not None).rstrip() + "\n"


def _md_table(rows: list[list[str]]) -> list[str]:
    return to_markdown(Table(list(HEADERS), rows)).splitlines()


def render_markdown(c: Comparison) -> str:
    """A pull-request comment: a status line, the gated metrics, everything else folded away."""
    lines = [f"### gptoss compare: {_summary(c)}", ""]
    for name, run in (("BASE", c.base), ("CURRENT", c.current)):  # from the results files: made inert
        lines.append(f"- {name}: {md_code(run.label)} (run {md_code(run.run_id or '-')}, {md_text(run.model)}, "
                     f"{md_text(run.env.get('gpu') or 'CPU')})")
    lines.append(f"- Thresholds ({c.thresholds_source}): {', '.join(md_code(t) for t in c.thresholds.values()) or 'none'}")
    for mm in c.mismatches:
        lines.append(f"- MISMATCH (allowed by --allow-mismatch): {md_text(mm)}")
    if c.same_run:
        lines.append(f"- Note: BASE and CURRENT are the same run ({md_code(c.base.run_id)}).")
    lines.append("")
    if c.regressions:
        lines.append("**Regressions**")
        lines.append("")
        lines.extend("- " + line for line in _regression_lines(c, quote=md_code, text=md_text))
        lines.append("")
        if c.env_diff:
            lines.append("**Environment differences** (possible causes)")
            lines.append("")
            lines.append("| field | base | current |")
            lines.append("|---|---|---|")
            for k, (a, b) in c.env_diff.items():
                lines.append(f"| {k} | {md_cell(a if a is not None else '-')} | {md_cell(b if b is not None else '-')} |")
        else:
            lines.append(_env_lines(c)[0])
        lines.append("")
    elif c.env_diff:
        lines.append("Environment differences: " + ", ".join(f"{k} {md_text(a)} -> {md_text(b)}" for k, (a, b) in c.env_diff.items()))
        lines.append("")
    gated = [_row_cells(case, m) for case, m in _rows(c, everything=False)]
    if gated:
        lines.append("**Gated metrics**")
        lines.append("")
        lines.extend(_md_table(gated))
        lines.append("")
    everything = [_row_cells(case, m) for case, m in _rows(c, everything=True)]
    if len(everything) > len(gated):
        lines.append("<details><summary>All metrics</summary>")
        lines.append("")
        lines.extend(_md_table(everything))
        lines.append("")
        lines.append("</details>")
        lines.append("")
    if c.untested:
        lines.append(f"Note: {len(c.untested)} gated comparison(s) had too few samples for the rank test; the threshold alone decided them.")
        lines.append("")
    if c.only_in_base or c.only_in_current:
        if c.only_in_base:
            lines.append(f"Only in BASE (not compared): {', '.join(md_code(x) for x in c.only_in_base)}")
        if c.only_in_current:
            lines.append(f"Only in CURRENT (not compared): {', '.join(md_code(x) for x in c.only_in_current)}")
        lines.append("")
    lines.append(f"<sub>{method_line(c)}</sub>")
    return "\n".join(lines).rstrip() + "\n"


def render_json(c: Comparison) -> str:
    d = c.to_dict()
    d["method"] = method_line(c)
    return json.dumps(d, indent=1, allow_nan=False, default=str) + "\n"


def render(c: Comparison, fmt: str) -> str:
    if fmt == "markdown":
        return render_markdown(c)
    if fmt == "json":
        return render_json(c)
    return render_text(c)
