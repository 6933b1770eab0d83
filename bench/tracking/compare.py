"""Compare two results files: per case and metric, the change and a noise-aware verdict.

The decision rule (what ``gptoss compare`` exits 1 on):

* Cases are matched on their ``CaseKey`` (the *requested* effort, lengths, batch, mode, cache,
  quantization and attention); load-phase metrics on their load record's (quant, attn).
* For every metric present on both sides the change is the relative difference of the medians,
  ``(current - base) / |base|``; the direction comes from ``METRICS[name].higher_is_better``.
* A metric with a threshold (``--fail-on decode_tok_s:-5%``) is a **regression** only when the
  median moved by more than the threshold in the worse direction AND a one-sided Mann-Whitney U
  rank test says that CURRENT's samples are worse than BASE's (p <= alpha, default 0.05).
* The test is exact (the permutation distribution of the rank sum with mid-ranks, so ties are
  handled exactly) when both sides together hold at most ``EXACT_MAX_N`` samples, otherwise the
  normal approximation with tie and continuity correction.
* With too few samples for the test to mean anything -- the smallest p-value the rank test can
  produce, ``1 / C(n1 + n2, n1)``, is above alpha (with equal sides: fewer than 3 samples each,
  since 2 + 2 samples give at best p = 1/6) -- the test could never confirm anything, so the
  threshold alone decides and the verdict says so. Load-phase metrics are single values and
  always take this path.
* A case that ran on BASE and now fails (``oom``/``error``) is a regression too.

Pure Python on purpose (no numpy/scipy): compare runs in CI jobs that only read JSON.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from bench.results import CASE_METRICS, LOAD_METRICS, METRICS, CaseResult, LoadRecord, Results, Stat, env_differences
from bench.results.comparison import (  # noqa: F401  (the verdict names are part of this module's surface)
    BETTER,
    ENV_FIELDS,
    EXACT_MAX_N,
    IMPROVEMENT,
    NOT_SIGNIFICANT,
    NOW_FAILS,
    NOW_RUNS,
    REGRESSION,
    SKIPPED,
    UNCHANGED,
    WORSE,
    CaseComparison,
    Comparison,
    MetricDelta,
    RunInfo,
    Threshold,
)
from diagnostics.errors import UserError

ALPHA = 0.05

# What `gptoss compare` gates on when no --fail-on is given: decode speed is the headline
# (-5% is well outside the run-to-run spread of a warm GPU), time to first token and peak memory
# get 10% (TTFT is short and noisier; memory is near-deterministic, so 10% means a real change).
DEFAULT_FAIL_ON = ("decode_tok_s:-5%", "ttft_s:+10%", "peak_alloc_bytes:+10%")

THRESHOLD_FORM = "METRIC:[+|-]PCT% (for example decode_tok_s:-5% or peak_alloc_bytes:+10%)"
_THRESHOLD_RE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*:\s*([+-]?)\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_threshold(text: str) -> Threshold:
    """``decode_tok_s:-5%`` -> Threshold("decode_tok_s", 5.0).

    The sign names the worse direction and may be left out; a sign that points the better way
    (``decode_tok_s:+5%``) is refused rather than silently flipped.
    """
    m = _THRESHOLD_RE.match(text or "")
    if not m:
        raise UserError(f"threshold {text!r} is malformed; write it as {THRESHOLD_FORM}.")
    name, sign, number = m.group(1), m.group(2), float(m.group(3))
    if name not in METRICS:
        raise UserError(f"unknown metric {name!r} in threshold {text!r}; valid metrics: {', '.join(METRICS)}.")
    spec = METRICS[name]
    worse = "-" if spec.higher_is_better else "+"
    if sign and sign != worse:
        direction = "falls" if worse == "-" else "grows"
        raise UserError(
            f"threshold {text!r} points the better way: {name} is worse when it {direction}, "
            f"so write {name}:{worse}{number:g}%."
        )
    return Threshold(name, number)


def parse_thresholds(texts: Sequence[str]) -> dict[str, Threshold]:
    """Several thresholds; a metric named twice keeps the last."""
    out: dict[str, Threshold] = {}
    for t in texts:
        th = parse_threshold(t)
        out[th.metric] = th
    return out


# --------------------------------------------------------------------------------------------
# The rank test
# --------------------------------------------------------------------------------------------


@dataclass
class RankTest:
    p_worse: float  # P(rank sum as small as observed) under H0, CURRENT worse than BASE
    p_better: float
    method: str  # "exact" | "normal"
    u: float  # Mann-Whitney U of CURRENT (in the "bigger is better" orientation)


def min_attainable_p(n1: int, n2: int) -> float:
    """The smallest one-sided p-value a rank test on n1 and n2 samples can give."""
    if n1 < 1 or n2 < 1:
        return 1.0
    ways = math.comb(n1 + n2, n1)
    return 1.0 / ways if ways < 1e300 else 0.0  # thousands of samples (one per request): no float holds 1/ways


def can_test(n1: int, n2: int, alpha: float = ALPHA) -> bool:
    return min_attainable_p(n1, n2) <= alpha


def _midranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        rank = (i + j) / 2 + 1  # ranks are 1-based
        for k in range(i, j + 1):
            ranks[order[k]] = rank
        i = j + 1
    return ranks


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def mann_whitney(base: Sequence[float], current: Sequence[float], higher_is_better: bool) -> RankTest:
    """One-sided rank tests of "CURRENT is worse than BASE" and "CURRENT is better".

    Values are oriented so that bigger is better; R is the rank sum of CURRENT among all samples
    (mid-ranks for ties). ``p_worse = P(R <= r)`` and ``p_better = P(R >= r)`` under the null
    hypothesis that both sides come from one distribution.
    """
    sign = 1.0 if higher_is_better else -1.0
    a = [sign * float(x) for x in base]
    b = [sign * float(x) for x in current]
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("rank test needs samples on both sides")
    ranks = _midranks(a + b)
    r_cur = sum(ranks[n1:])
    u = r_cur - n2 * (n2 + 1) / 2
    n = n1 + n2
    if n <= EXACT_MAX_N:
        # Exact conditional distribution: choose n2 of the n (doubled, hence integer) mid-ranks.
        doubled = [int(round(2 * r)) for r in ranks]
        total = sum(doubled)
        counts = [[0] * (total + 1) for _ in range(n2 + 1)]  # counts[k][s]: k chosen, sum s
        counts[0][0] = 1
        for r in doubled:
            for k in range(n2, 0, -1):
                row, prev = counts[k], counts[k - 1]
                for s in range(total, r - 1, -1):
                    if prev[s - r]:
                        row[s] += prev[s - r]
        dist = counts[n2]
        obs = int(round(2 * r_cur))
        all_ = math.comb(n, n2)
        lower = sum(dist[: obs + 1])
        upper = sum(dist[obs:])
        return RankTest(lower / all_, upper / all_, "exact", u)
    # Normal approximation with tie correction and continuity correction.
    ties: dict[float, int] = {}
    for v in a + b:
        ties[v] = ties.get(v, 0) + 1
    tie_term = sum(t**3 - t for t in ties.values()) / (n * (n - 1))
    var = n1 * n2 / 12 * ((n + 1) - tie_term)
    mean = n1 * n2 / 2
    if var <= 0:
        return RankTest(1.0, 1.0, "normal", u)
    sd = math.sqrt(var)
    p_worse = _phi((u - mean + 0.5) / sd)
    p_better = _phi((mean - u + 0.5) / sd)
    return RankTest(min(1.0, p_worse), min(1.0, p_better), "normal", u)




# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


def _direction(delta: float, higher_is_better: bool) -> str:
    if delta == 0:
        return "same"
    return "better" if (delta > 0) == higher_is_better else "worse"


def _ci(stat: Stat) -> tuple[float, float] | None:
    return (stat.ci_low, stat.ci_high) if stat.ci_low is not None and stat.ci_high is not None else None


def compare_metric(
    name: str,
    base: Sequence[float],
    current: Sequence[float],
    threshold: Threshold | None,
    alpha: float = ALPHA,
) -> MetricDelta:
    """Compare one metric's samples (a single value each for load-phase metrics)."""
    spec = METRICS[name]
    bs, cs = Stat.of(base), Stat.of(current)  # drops None and NaN
    b, c, bm, cm = bs.samples, cs.samples, bs.median, cs.median
    common = dict(metric=name, unit=spec.unit, higher_is_better=spec.higher_is_better, n_base=len(b), n_current=len(c),
                  threshold=threshold, base_ci=_ci(bs), current_ci=_ci(cs))
    if bm is None or cm is None:
        side = "BASE" if bm is None else "CURRENT"
        return MetricDelta(**common, base=bm, current=cm, delta=None, pct=None, direction="same", p_value=None, test=None,
                           verdict=UNCHANGED, note=f"no samples in {side}")
    delta = cm - bm
    pct = 100.0 * delta / abs(bm) if bm != 0 else None
    direction = _direction(delta, spec.higher_is_better)

    p = None
    method = None
    note = ""
    if can_test(len(b), len(c), alpha):
        t = mann_whitney(b, c, spec.higher_is_better)
        method = t.method
        p = t.p_worse if direction == "worse" else t.p_better if direction == "better" else min(t.p_worse, t.p_better)
        significant = p <= alpha
    else:
        significant = None
        if direction != "same":
            note = f"too few samples for the rank test (n={len(b)} vs {len(c)}): " + (
                "threshold alone decides" if threshold is not None else "untested"
            )

    if direction == "same":
        verdict = UNCHANGED
    else:
        beyond = threshold is not None and (pct is None or abs(pct) > threshold.pct)
        if beyond:
            if significant is False:
                verdict = NOT_SIGNIFICANT
                note = f"beyond {threshold} but p={p:.3g} > {alpha:g}: within the noise of the samples"
            else:
                verdict = REGRESSION if direction == "worse" else IMPROVEMENT
        elif significant:
            verdict = WORSE if direction == "worse" else BETTER
            if threshold is not None:
                note = f"significant but within {threshold}"
        elif significant is None and threshold is not None:
            verdict = UNCHANGED
            note = f"within {threshold}; " + note
        elif significant is None:
            verdict = WORSE if direction == "worse" else BETTER
        else:
            verdict = UNCHANGED
            note = note or f"not significant (p={p:.3g})"
    return MetricDelta(**common, base=bm, current=cm, delta=delta, pct=pct, direction=direction, p_value=p, test=method,
                       verdict=verdict, note=note)



def _run_info(r: Results, label: str) -> RunInfo:
    return RunInfo(label=label, run_id=r.run_id, created_at=r.created_at, model=r.model.id,
                   env={k: r.env_summary.get(k) for k in ENV_FIELDS})



def mismatches(base: Results, current: Results) -> list[str]:
    """What makes the two runs incomparable: the GPU, the model, the weights path taken."""
    out = []
    bg, cg = base.env_summary.get("gpu"), current.env_summary.get("gpu")
    if bg != cg:
        out.append(f"GPU: BASE ran on {bg or 'no GPU (CPU)'}, CURRENT on {cg or 'no GPU (CPU)'}")
    bn, cn = base.env_summary.get("gpu_count"), current.env_summary.get("gpu_count")
    if bg == cg and bn is not None and cn is not None and bn != cn:
        out.append(f"GPU count: BASE {bn}, CURRENT {cn}")
    if base.model.id != current.model.id:
        out.append(f"model: BASE {base.model.id}, CURRENT {current.model.id}")
    paths = []
    cur_cases = {c.key: c for c in current.cases}
    for bc in base.cases:
        cc = cur_cases.get(bc.key)
        if cc and bc.weights_path and cc.weights_path and bc.weights_path != cc.weights_path:
            paths.append(f"{bc.key.id} ran {bc.weights_path} on BASE and {cc.weights_path} on CURRENT")
    cur_loads = {(x.quant, x.attn): x for x in current.loads}
    for bl in base.loads:
        cl = cur_loads.get((bl.quant, bl.attn))
        if cl and bl.weights_path and cl.weights_path and bl.weights_path != cl.weights_path:
            paths.append(f"{bl.id} loaded {bl.weights_path} on BASE and {cl.weights_path} on CURRENT")
    if paths:
        more = f" (and {len(paths) - 3} more)" if len(paths) > 3 else ""
        out.append("weights path: " + "; ".join(paths[:3]) + more)
    return out


def _compare_entry(
    id: str,
    phase: str,
    b: CaseResult | LoadRecord,
    c: CaseResult | LoadRecord,
    pairs: list[tuple[str, Sequence[float], Sequence[float]]],
    thresholds: dict[str, Threshold],
    alpha: float,
) -> CaseComparison:
    """One case or load record on both sides; ``pairs``: (metric, BASE samples, CURRENT samples)."""
    comp = CaseComparison(id=id, phase=phase, base_status=b.status, current_status=c.status,
                          weights_path=(b.weights_path, c.weights_path))
    if b.status == "ok" and c.status != "ok":
        comp.verdict = NOW_FAILS
        comp.message = c.message
    elif b.status != "ok" and c.status == "ok":
        comp.verdict = NOW_RUNS
    elif b.status == "ok":
        comp.metrics = [compare_metric(name, bs, cs, thresholds.get(name), alpha) for name, bs, cs in pairs]
        comp.verdict = _worst(comp.metrics)
    else:
        comp.verdict = f"{b.status} on both"
    return comp


def compare(
    base: Results,
    current: Results,
    thresholds: dict[str, Threshold] | None = None,
    *,
    alpha: float = ALPHA,
    allow_mismatch: bool = False,
    base_label: str = "BASE",
    current_label: str = "CURRENT",
) -> Comparison:
    """Compare CURRENT against BASE. Raises UserError when they are not comparable."""
    source = "--fail-on"
    if thresholds is None:
        thresholds = parse_thresholds(DEFAULT_FAIL_ON)
        source = "default"
    if not 0 < alpha < 1:
        raise UserError(f"--alpha {alpha} is outside (0, 1); use a significance level such as 0.05.")
    found = mismatches(base, current)
    if found and not allow_mismatch:
        raise UserError(
            "the runs are not comparable (" + "; ".join(found) + "); compare runs of the same GPU, model "
            "and weights path, or pass --allow-mismatch to compare anyway."
        )

    cases: list[CaseComparison] = []
    base_keys = {c.key: c for c in base.cases}
    cur_keys = {c.key: c for c in current.cases}
    for key, bc in base_keys.items():
        cc = cur_keys.get(key)
        if cc is None:
            continue
        if "skipped" in (bc.status, cc.status):
            # Not run (a --max-time budget, an interrupted sweep): nothing to compare, not a failure.
            cases.append(CaseComparison(id=key.id, phase="case", base_status=bc.status, current_status=cc.status,
                                        weights_path=(bc.weights_path, cc.weights_path), verdict=SKIPPED))
            continue
        pairs = []
        for name in CASE_METRICS:
            bs, cs = bc.metrics.get(name), cc.metrics.get(name)
            if bs and cs and bs.samples and cs.samples:
                pairs.append((name, bs.samples, cs.samples))
        cases.append(_compare_entry(key.id, "case", bc, cc, pairs, thresholds, alpha))

    cur_loads = {(x.quant, x.attn): x for x in current.loads}
    for bl in base.loads:
        cl = cur_loads.get((bl.quant, bl.attn))
        if cl is None:
            continue
        pairs = [(name, [bl.metrics[name]], [cl.metrics[name]]) for name in LOAD_METRICS
                 if bl.metrics.get(name) is not None and cl.metrics.get(name) is not None]
        cases.append(_compare_entry(bl.id, "load", bl, cl, pairs, thresholds, alpha))

    only_base = [k.id for k in base_keys if k not in cur_keys]
    only_cur = [k.id for k in cur_keys if k not in base_keys]
    if not any(c.phase == "case" for c in cases) and (base.cases or current.cases):
        raise UserError(
            "the two runs have no case in common (cases are matched on effort, lengths, batch, mode, cache, "
            "quantization and attention); compare runs made with the same sweep configuration."
        )
    return Comparison(
        base=_run_info(base, base_label),
        current=_run_info(current, current_label),
        thresholds=thresholds,
        thresholds_source=source,
        alpha=alpha,
        cases=cases,
        only_in_base=only_base,
        only_in_current=only_cur,
        mismatches=found,
        env_diff=env_differences(base.env_summary, current.env_summary, ENV_FIELDS),
    )


_ORDER = [REGRESSION, WORSE, NOT_SIGNIFICANT, IMPROVEMENT, BETTER, UNCHANGED]


def _worst(metrics: list[MetricDelta]) -> str:
    verdicts = {m.verdict for m in metrics}
    for v in _ORDER:
        if v in verdicts:
            return v
    return UNCHANGED
