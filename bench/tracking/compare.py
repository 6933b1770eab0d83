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
from dataclasses import dataclass, field
from typing import Any, Sequence

from bench.results.errors import UserError
from bench.results import CASE_METRICS, LOAD_METRICS, METRICS, CaseResult, LoadRecord, Results, env_differences
from bench.results.stats import Stat

ALPHA = 0.05
EXACT_MAX_N = 30
# Environment fields shown beside a regression: the usual suspects when a run gets slower.
ENV_FIELDS = ("gpu", "gpu_count", "cpu", "driver", "cuda", "torch", "triton", "transformers", "kernels", "python")

TEST_NAME = "one-sided Mann-Whitney U rank test"

# What `gptoss compare` gates on when no --fail-on is given: decode speed is the headline
# (-5% is well outside the run-to-run spread of a warm GPU), time to first token and peak memory
# get 10% (TTFT is short and noisier; memory is near-deterministic, so 10% means a real change).
DEFAULT_FAIL_ON = ("decode_tok_s:-5%", "ttft_s:+10%", "peak_alloc_bytes:+10%")

THRESHOLD_FORM = "METRIC:[+|-]PCT% (for example decode_tok_s:-5% or peak_alloc_bytes:+10%)"
_THRESHOLD_RE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*:\s*([+-]?)\s*(\d+(?:\.\d+)?)\s*%\s*$")

# Verdicts
REGRESSION = "regression"  # gated, beyond the threshold in the worse direction, significant
IMPROVEMENT = "improvement"  # gated, beyond the threshold in the better direction, significant
WORSE = "worse"  # significantly worse, but within the threshold (or no threshold on it)
BETTER = "better"
NOT_SIGNIFICANT = "not significant"  # the medians moved beyond the threshold, the samples overlap
UNCHANGED = "unchanged"
NOW_FAILS = "now fails"  # the case ran on BASE and fails on CURRENT
NOW_RUNS = "now runs"
SKIPPED = "not run"  # skipped on one side: not compared


# --------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    metric: str
    pct: float  # magnitude, >= 0

    @property
    def sign(self) -> str:
        return "-" if METRICS[self.metric].higher_is_better else "+"

    def __str__(self) -> str:
        return f"{self.metric}:{self.sign}{self.pct:g}%"


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
    return 1.0 / math.comb(n1 + n2, n1)


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


@dataclass
class MetricDelta:
    metric: str
    unit: str
    higher_is_better: bool
    base: float | None  # median (load phase: the single value)
    current: float | None
    n_base: int
    n_current: int
    delta: float | None  # current - base
    pct: float | None  # 100 * delta / |base|; None when base is 0
    direction: str  # "better" | "worse" | "same"
    threshold: Threshold | None
    p_value: float | None  # one-sided, in the observed direction; None when not tested
    test: str | None  # "exact" | "normal" | None
    verdict: str
    note: str = ""

    @property
    def regression(self) -> bool:
        return self.verdict == REGRESSION

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "base": self.base,
            "current": self.current,
            "n_base": self.n_base,
            "n_current": self.n_current,
            "delta": self.delta,
            "pct": self.pct,
            "direction": self.direction,
            "threshold": str(self.threshold) if self.threshold else None,
            "p_value": self.p_value,
            "test": self.test,
            "verdict": self.verdict,
            "note": self.note,
        }


@dataclass
class CaseComparison:
    id: str  # the case id, or "load/<quant>/<attn>" for a load record
    phase: str  # "case" | "load"
    base_status: str
    current_status: str
    weights_path: tuple[str | None, str | None]
    metrics: list[MetricDelta] = field(default_factory=list)
    verdict: str = UNCHANGED  # the case's own verdict (now fails / now runs), else the worst metric's
    message: str | None = None  # the failure message of CURRENT, if it fails

    @property
    def regressions(self) -> list[MetricDelta]:
        return [m for m in self.metrics if m.regression]

    @property
    def regressed(self) -> bool:
        return self.verdict == NOW_FAILS or bool(self.regressions)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "phase": self.phase,
            "base_status": self.base_status,
            "current_status": self.current_status,
            "weights_path": {"base": self.weights_path[0], "current": self.weights_path[1]},
            "verdict": self.verdict,
            "message": self.message,
            "regressed": self.regressed,
            "metrics": [m.to_dict() for m in self.metrics],
        }


@dataclass
class RunInfo:
    label: str  # the path as given
    run_id: str
    created_at: str
    model: str
    env: dict[str, Any]

    def to_dict(self) -> dict:
        return {"path": self.label, "run_id": self.run_id, "created_at": self.created_at, "model": self.model, "env": self.env}


@dataclass
class Comparison:
    base: RunInfo
    current: RunInfo
    thresholds: dict[str, Threshold]
    thresholds_source: str  # "default" | "--fail-on"
    alpha: float
    cases: list[CaseComparison]
    only_in_base: list[str]
    only_in_current: list[str]
    mismatches: list[str]  # what differs that normally refuses the comparison (allowed here)
    env_diff: dict[str, tuple[Any, Any]]

    @property
    def regressions(self) -> list[tuple[CaseComparison, MetricDelta | None]]:
        out: list[tuple[CaseComparison, MetricDelta | None]] = []
        for c in self.cases:
            if c.verdict == NOW_FAILS:
                out.append((c, None))
            out.extend((c, m) for m in c.regressions)
        return out

    @property
    def improvements(self) -> list[tuple[CaseComparison, MetricDelta | None]]:
        out: list[tuple[CaseComparison, MetricDelta | None]] = []
        for c in self.cases:
            if c.verdict == NOW_RUNS:
                out.append((c, None))
            out.extend((c, m) for m in c.metrics if m.verdict == IMPROVEMENT)
        return out

    @property
    def same_run(self) -> bool:
        return bool(self.base.run_id) and self.base.run_id == self.current.run_id

    @property
    def failed(self) -> bool:
        return bool(self.regressions)

    @property
    def untested(self) -> list[tuple[CaseComparison, MetricDelta]]:
        """Gated metrics decided by the threshold alone (too few samples for the rank test)."""
        return [(c, m) for c in self.cases for m in c.metrics
                if m.threshold and m.test is None and m.base is not None and m.current is not None and m.direction != "same"]

    def to_dict(self) -> dict:
        return {
            "status": "fail" if self.failed else "pass",
            "same_run": self.same_run,
            "test": TEST_NAME,
            "alpha": self.alpha,
            "thresholds": [str(t) for t in self.thresholds.values()],
            "thresholds_source": self.thresholds_source,
            "base": self.base.to_dict(),
            "current": self.current.to_dict(),
            "mismatches": self.mismatches,
            "env_differences": {k: {"base": a, "current": b} for k, (a, b) in self.env_diff.items()},
            "regressions": [{"case": c.id, "metric": m.metric if m else None, "verdict": m.verdict if m else c.verdict} for c, m in self.regressions],
            "improvements": [{"case": c.id, "metric": m.metric if m else None} for c, m in self.improvements],
            "only_in_base": self.only_in_base,
            "only_in_current": self.only_in_current,
            "cases": [c.to_dict() for c in self.cases],
        }


def _direction(delta: float, higher_is_better: bool) -> str:
    if delta == 0:
        return "same"
    return "better" if (delta > 0) == higher_is_better else "worse"


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
    common = dict(metric=name, unit=spec.unit, higher_is_better=spec.higher_is_better, n_base=len(b), n_current=len(c), threshold=threshold)
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


def load_id(rec: LoadRecord) -> str:
    """The id of a load record beside the case ids (compare, history and export use it)."""
    return f"load/{rec.quant}/{rec.attn}"


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
            paths.append(f"{load_id(bl)} loaded {bl.weights_path} on BASE and {cl.weights_path} on CURRENT")
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
        cases.append(_compare_entry(load_id(bl), "load", bl, cl, pairs, thresholds, alpha))

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


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "bytes":
        v = abs(value)
        for div, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if v >= div:
                return f"{value / div:.2f} {suffix}"
        return f"{value:.0f} B"
    if unit == "s":
        if abs(value) < 1:
            return f"{value * 1000:.2f} ms"
        return f"{value:.3f} s"
    if unit == "tok/s":
        return f"{value:.1f} tok/s"
    if unit == "fraction":
        return f"{value * 100:.1f}%"
    return f"{value:g}"


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
        f"(smallest attainable p > alpha, i.e. under 3 samples a side), the threshold alone decides."
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
    return [case.id, m.metric, fmt_value(m.base, m.unit), fmt_value(m.current, m.unit), fmt_pct(m.pct, m.delta),
            m.direction, fmt_p(m), verdict, note]


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
        widths = [max(len(HEADERS[i]), *(len(r[i]) for r in rows)) for i in range(len(HEADERS) - 1)]
        lines.append("")
        lines.append("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)) + "  note")
        for r in rows:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + ("  " + r[-1] if r[-1] else "").rstrip())
    if c.regressions:
        lines.append("")
        lines.append("Regressions:")
        for case, m in c.regressions:
            if m is None:
                lines.append(f"  {case.id}: now fails ({case.current_status}{': ' + case.message if case.message else ''})")
            else:
                lines.append(f"  {case.id} {m.metric}: {fmt_value(m.base, m.unit)} -> {fmt_value(m.current, m.unit)} "
                             f"({fmt_pct(m.pct, m.delta)}, beyond {m.threshold}" + (f", p={m.p_value:.3g})" if m.p_value is not None else ", untested: too few samples)"))
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


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def _md_table(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_md_escape(x) for x in r) + " |")
    return out


def render_markdown(c: Comparison) -> str:
    """A pull-request comment: a status line, the gated metrics, everything else folded away."""
    lines = [f"### gptoss compare: {_summary(c)}", ""]
    lines.append(f"- BASE: `{c.base.label}` (run `{c.base.run_id or '-'}`, {c.base.model}, {c.base.env.get('gpu') or 'CPU'})")
    lines.append(f"- CURRENT: `{c.current.label}` (run `{c.current.run_id or '-'}`, {c.current.model}, {c.current.env.get('gpu') or 'CPU'})")
    lines.append(f"- Thresholds ({c.thresholds_source}): {', '.join('`' + str(t) + '`' for t in c.thresholds.values()) or 'none'}")
    for mm in c.mismatches:
        lines.append(f"- MISMATCH (allowed by --allow-mismatch): {mm}")
    if c.same_run:
        lines.append(f"- Note: BASE and CURRENT are the same run (`{c.base.run_id}`).")
    lines.append("")
    if c.regressions:
        lines.append("**Regressions**")
        lines.append("")
        for case, m in c.regressions:
            if m is None:
                lines.append(f"- `{case.id}`: now fails ({case.current_status}{': ' + case.message if case.message else ''})")
            else:
                p = f"p={m.p_value:.3g}" if m.p_value is not None else "untested: too few samples"
                lines.append(f"- `{case.id}` {m.metric}: {fmt_value(m.base, m.unit)} -> {fmt_value(m.current, m.unit)} "
                             f"({fmt_pct(m.pct, m.delta)}, beyond `{m.threshold}`, {p})")
        lines.append("")
        if c.env_diff:
            lines.append("**Environment differences** (possible causes)")
            lines.append("")
            lines.append("| field | base | current |")
            lines.append("|---|---|---|")
            for k, (a, b) in c.env_diff.items():
                lines.append(f"| {k} | {a if a is not None else '-'} | {b if b is not None else '-'} |")
        else:
            lines.append(_env_lines(c)[0])
        lines.append("")
    elif c.env_diff:
        lines.append("Environment differences: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in c.env_diff.items()))
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
            lines.append(f"Only in BASE (not compared): {', '.join('`' + x + '`' for x in c.only_in_base)}")
        if c.only_in_current:
            lines.append(f"Only in CURRENT (not compared): {', '.join('`' + x + '`' for x in c.only_in_current)}")
        lines.append("")
    lines.append(f"<sub>{method_line(c)}</sub>")
    return "\n".join(lines).rstrip() + "\n"


def render_json(c: Comparison) -> str:
    import json

    d = c.to_dict()
    d["method"] = method_line(c)
    return json.dumps(d, indent=1, allow_nan=False, default=str) + "\n"


def render(c: Comparison, fmt: str) -> str:
    if fmt == "markdown":
        return render_markdown(c)
    if fmt == "json":
        return render_json(c)
    return render_text(c)
