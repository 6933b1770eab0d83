"""The sweep runner: cases -> warm-up + repetitions -> statistics -> results file.

Never loses data: the results file is written (atomically) after every case and every load; a
CUDA out-of-memory in a case is recorded as ``oom`` and the sweep goes on; Ctrl-C keeps what is
done; ``--max-time`` stops starting cases that would not fit the budget and records them as
``skipped``; ``--resume`` skips cases already measured.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Callable

from bench import results as R
from bench.backends.base import Backend, CaseExtras
from bench.sweep.config import BenchConfig
from bench.results.errors import UserError
from bench.results.stats import Stat
from bench.backends.timing import case_samples, clock, concurrent_samples

log = logging.getLogger("gptoss.bench")


class Interrupted(Exception):
    """Ctrl-C during a sweep; everything measured so far is saved."""

    def __init__(self, done: int, total: int, path: Path):
        super().__init__(f"interrupted after {done} of {total} cases")
        self.done, self.total, self.path = done, total, path


def is_oom(exc: BaseException) -> bool:
    """True for torch's out-of-memory errors, CUDA or otherwise, without importing torch here."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "OutOfMemoryError" in names:
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def short_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500]


@dataclass
class Progress:
    """Progress with ETA on stderr (tqdm); a no-op when disabled."""

    total: int
    enabled: bool = True
    _bar: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit="case", dynamic_ncols=True, leave=True)

    def status(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(text)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def case_work(key: R.CaseKey) -> int:
    """Tokens a case asks for per run: what its duration scales with (decode dominates)."""
    return key.output_len * key.batch_size * key.concurrency


@dataclass
class Budget:
    """--max-time: stop starting cases that would run past the budget.

    A case's expected duration is the median seconds per token of the cases run so far times the
    tokens it asks for, so a 512-token case is not estimated from 128-token ones.
    """

    seconds: float | None
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    per_token: list[float] = field(default_factory=list)

    def __post_init__(self):
        self.started = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def record(self, key: R.CaseKey, seconds: float) -> None:
        self.per_token.append(seconds / max(case_work(key), 1))

    def estimate(self, key: R.CaseKey) -> float:
        """``key``'s expected duration in seconds (0 before any case ran)."""
        if not self.per_token:
            return 0.0
        ordered = sorted(self.per_token)
        return ordered[len(ordered) // 2] * case_work(key)

    def allows(self, key: R.CaseKey) -> bool:
        if self.seconds is None:
            return True
        return self.elapsed() + self.estimate(key) <= self.seconds


def _measure_case(backend: Backend, key: R.CaseKey, cfg: BenchConfig) -> R.CaseResult:
    backend.prepare(key)
    started = clock()
    for _ in range(cfg.warmup):
        backend.once(key)
    warmup_s = clock() - started
    timings_per_rep = []
    extras = CaseExtras()
    for _ in range(cfg.reps):
        backend.begin_rep()
        timings_per_rep.append(backend.once(key))
        backend.end_rep(extras)
    backend.finish(key, extras)

    samples: dict[str, list[float]] = {}
    for wave in timings_per_rep:
        per = concurrent_samples(wave) if key.concurrency > 1 else case_samples(wave)
        for name, values in per.items():
            samples.setdefault(name, []).extend(values)
    for name, values in extras.samples.items():
        samples.setdefault(name, []).extend(values)
    if cfg.warmup:
        samples["warmup_s"] = [warmup_s]
    return R.CaseResult(
        key=key,
        status="ok",
        metrics={name: Stat.of(values) for name, values in samples.items() if name in R.METRICS},
        weights_path=extras.weights_path,
        info=extras.info,
    )


def add_roofline(case: R.CaseResult, bytes_per_token: float | None, bandwidth: float | None) -> None:
    """roofline_frac = decode steps/s x bytes read per step / memory bandwidth.

    At batch size b one decode step produces b tokens and reads the weights once, so the step
    rate is decode_tok_s / b. KV-cache reads are left out (small next to the weights at these
    context lengths), so the figure is a slight overestimate of the headroom.
    """
    stat = case.metrics.get("decode_tok_s")
    if not stat or not stat.samples or not bytes_per_token or not bandwidth:
        return
    b = case.key.batch_size
    case.metrics["roofline_frac"] = Stat.of([s / b * bytes_per_token / bandwidth for s in stat.samples])


def run_sweep(
    cfg: BenchConfig,
    backend: Backend,
    results: R.Results,
    path: Path,
    *,
    progress: bool = True,
    bandwidth: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> R.Results:
    """Run every case of ``cfg`` not already in ``results`` and save after each one."""
    keys = cfg.cases()
    done = results.done_keys()
    todo = [k for k in keys if k not in done]
    budget = Budget(cfg.max_time_s, clock=clock)
    for c in results.cases:  # on --resume, the cases already measured tell how long the rest take
        if c.status == "ok" and c.duration_s:
            budget.record(c.key, c.duration_s)
    bar = Progress(total=len(todo), enabled=progress)
    results.complete = False
    R.save(results, path)
    try:
        for (quant, attn), group in groupby(todo, key=lambda k: k.load_group()):
            group = list(group)
            if not any(budget.allows(k) for k in group):  # no load for a group none of which fits
                _skip(results, group, "--max-time budget reached before this case started")
                R.save(results, path)
                for _ in group:
                    bar.advance()
                continue
            bar.status(f"loading ({quant}, {attn})")
            record = _load(backend, quant, attn)
            results.backend = backend.describe()  # a server is known only once connected
            results.loads = [x for x in results.loads if (x.quant, x.attn) != (quant, attn)] + [record]
            if record.fallback_reason:
                results.warn(
                    "fallback",
                    f"the MXFP4 experts were dequantized to {record.weights_path} (quant={quant}): {record.fallback_reason}",
                )
            if results.model.parameters is None and record.parameters:
                results.model.parameters = record.parameters
            R.save(results, path)
            if record.status != "ok":
                for key in group:
                    results.add_case(R.CaseResult(key=key, status=record.status, message=f"load failed: {record.message}"))
                    bar.advance()
                R.save(results, path)
                continue
            bytes_per_token = results.model.bytes_per_token.get(record.weights_path or "")
            for key in group:
                if not budget.allows(key):
                    _skip(results, [key], "--max-time budget reached before this case started")
                    R.save(results, path)
                    bar.advance()
                    continue
                bar.status(key.id)
                started = clock()
                case = _run_one(backend, key, cfg)
                case.duration_s = clock() - started
                budget.record(key, case.duration_s)
                add_roofline(case, bytes_per_token, bandwidth)
                results.add_case(case)
                R.save(results, path)
                bar.advance()
            backend.unload()
        results.complete = all(results.case(k) is not None for k in keys)
        results.finished_at = R.now_iso()
        R.save(results, path)
    except KeyboardInterrupt:
        results.warn("interrupted", "the run was interrupted; resume it with the same command and --resume")
        R.save(results, path)
        raise Interrupted(len(results.done_keys()), len(keys), path) from None
    finally:
        bar.close()
    return results


def _skip(results: R.Results, keys: list[R.CaseKey], why: str) -> None:
    for key in keys:
        if results.case(key) is None or results.case(key).status == "skipped":
            results.add_case(R.CaseResult(key=key, status="skipped", message=why))


def _load(backend: Backend, quant: str, attn: str) -> R.LoadRecord:
    try:
        return backend.load(quant, attn)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # an OOM or a failure while loading is a result, not a crash
        status = "oom" if is_oom(exc) else "error"
        log.warning("load (%s, %s) failed: %s", quant, attn, short_message(exc))
        backend.recover()
        return R.LoadRecord(quant=quant, attn=attn, status=status, message=short_message(exc))


def _run_one(backend: Backend, key: R.CaseKey, cfg: BenchConfig) -> R.CaseResult:
    started_at = R.now_iso()
    try:
        case = _measure_case(backend, key, cfg)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:
        status = "oom" if is_oom(exc) else "error"
        if status == "error":
            log.warning("case %s failed: %s", key.id, short_message(exc))
        backend.recover()
        case = R.CaseResult(key=key, status=status, message=short_message(exc))
    case.started_at = started_at
    return case
