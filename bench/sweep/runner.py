"""The sweep runner: cases -> warm-up + tracked repetitions -> statistics -> the journal.

Never loses data: the journal saves the results file after every case and every load; a CUDA
out-of-memory in a case is recorded as ``oom`` and the sweep goes on; Ctrl-C keeps what is done;
``--max-time`` stops starting cases that would not fit the budget and records them as
``skipped``; ``--resume`` skips cases already measured.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Callable, Iterator

from bench.backends.base import Backend
from bench.backends.timing import case_samples, clock, concurrent_samples
from bench.models.ranks import agree
from bench.results import METRICS, CaseKey, CaseResult, LoadRecord, Stat
from bench.results.layout import Layout
from bench.results.serving import Slo, aggregate, load_facts
from bench.sweep.budget import Budget
from bench.sweep.config import BenchConfig
from bench.sweep.journal import Journal
from bench.sweep.gpu_set import trackers_for_layout
from bench.sweep.trackers import Tracker, trackers_for
from diagnostics.errors import UserError, error_line
from diagnostics.meta import now_iso

log = logging.getLogger("gptoss.bench")

TrackerFactory = Callable[[str | None], list[Tracker]]


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

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def add_roofline(case: CaseResult, bytes_per_token: float | None, bandwidth: float | None) -> None:
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
    journal: Journal,
    *,
    progress: bool = True,
    bandwidth: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    trackers: TrackerFactory = trackers_for,
    layout_trackers: Callable[[Layout], list[Tracker]] = trackers_for_layout,
) -> None:
    """Run every case of ``cfg`` not already in the journal's results."""
    results = journal.results
    keys = cfg.cases()
    done = results.done_keys()
    todo = [k for k in keys if k not in done]
    budget = Budget(cfg.max_time_s, clock=clock)
    for c in results.cases:  # on --resume, the cases already measured tell how long the rest take
        if c.status == "ok" and c.duration_s:
            budget.record(c.key, c.duration_s)
    bar = Progress(total=len(todo), enabled=progress)
    journal.start()
    try:
        for (quant, attn), group in groupby(todo, key=lambda k: k.load_group()):
            group = list(group)
            if not agree(any(budget.allows(k) for k in group)):  # no load for a group none of which fits
                journal.skip(group, Budget.REACHED)
                bar.advance(len(group))
                continue
            bar.status(f"loading ({quant}, {attn})")
            record = _load(backend, quant, attn)
            journal.add_load(record, backend.describe())
            if record.status != "ok":
                journal.fail_cases(group, record.status, f"load failed: {record.message}")
                bar.advance(len(group))
                continue
            layout = record.layout
            bytes_per_token = (layout.roofline_bytes_per_token if layout and layout.roofline_bytes_per_token
                               else results.model.bytes_per_token.get(record.weights_path or ""))
            spread = layout is not None and (len(layout.devices) > 1 or layout.concurrent)
            tracked = layout_trackers(layout) if spread else trackers(record.device)
            on_gpu = bool(record.device and record.device.startswith("cuda"))
            for key in group:
                if not agree(budget.allows(key)):  # under torchrun, rank 0's clock decides for all
                    journal.skip([key], Budget.REACHED)
                    bar.advance()
                    continue
                bar.status(key.id)
                started = clock()
                case = run_case(backend, key, cfg, tracked, record.weights_path, profile=on_gpu)
                case.duration_s = clock() - started
                budget.record(key, case.duration_s)
                add_roofline(case, bytes_per_token, bandwidth)
                journal.add_case(case)
                bar.advance()
            backend.unload()
        journal.finish(keys)
    except KeyboardInterrupt:
        journal.warn("interrupted", "the run was interrupted; resume it with the same command and --resume")
        raise Interrupted(len(results.done_keys()), len(keys), journal.path) from None
    finally:
        bar.close()


def _load(backend: Backend, quant: str, attn: str) -> LoadRecord:
    try:
        return backend.load(quant, attn)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # an OOM or a failure while loading is a result, not a crash
        status = "oom" if is_oom(exc) else "error"
        log.warning("load (%s, %s) failed: %s", quant, attn, error_line(exc))
        backend.recover()
        return LoadRecord(quant=quant, attn=attn, status=status, message=error_line(exc))


def run_case(backend: Backend, key: CaseKey, cfg: BenchConfig, trackers: list[Tracker],
             weights_path: str | None, profile: bool = False) -> CaseResult:
    """Measure one case; ``profile``: also one uncounted profiled repetition (``gpu_busy_frac``)."""
    started_at = now_iso()
    try:
        case = _measure(backend, key, cfg, trackers, weights_path, profile)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:
        status = "oom" if is_oom(exc) else "error"
        if status == "error":
            log.warning("case %s failed: %s", key.id, error_line(exc))
        for tracker in trackers:  # forget what the failed case's repetitions saw
            tracker.collect()
        backend.recover()
        case = CaseResult(key=key, status=status, message=error_line(exc))
    case.started_at = started_at
    return case


def _measure(backend: Backend, key: CaseKey, cfg: BenchConfig, trackers: list[Tracker],
             weights_path: str | None, profile: bool) -> CaseResult:
    prepared = backend.prepare(key)
    if key.load != "waves":
        return _measure_load(prepared, key, cfg, trackers, weights_path)
    started = clock()
    for _ in range(cfg.warmup):
        prepared.once(counted=False)
    warmup_s = clock() - started
    samples: dict[str, list[float]] = {}
    rep_tokens: list[int] = []
    counted_s = 0.0
    # under torchrun each rank times its own repetitions: rank 0's decision holds for all
    while (stop := agree(_enough(cfg, samples, len(rep_tokens), counted_s))) is None:
        rep_started = clock()
        with _tracking(trackers):
            rep = prepared.once()
        counted_s += clock() - rep_started
        rep_tokens.append(sum(t.new_tokens * t.batch_size for t in rep.timings))
        per = concurrent_samples(rep.timings) if key.concurrency > 1 else case_samples(rep.timings)
        for name, values in [*per.items(), *((n, [v]) for n, v in rep.samples.items())]:
            samples.setdefault(name, []).extend(values)
    profiled: dict = {"repetitions": {"n": len(rep_tokens), "stopped": stop, "counted_s": counted_s,
                                      "decode_ci_half_width": Stat.of(samples.get("decode_tok_s", [])).ci_half_width}}
    if profile and hasattr(prepared, "profile"):
        _add_gpu_busy(prepared, key, samples, profiled)
    info = {**prepared.info(), **profiled}
    _collect(trackers, info, samples)
    energy = samples.pop("energy_j", None)
    if energy and len(energy) == len(rep_tokens) and all(rep_tokens):
        samples["energy_j_per_tok"] = [j / n for j, n in zip(energy, rep_tokens)]
    if cfg.warmup:
        samples["warmup_s"] = [warmup_s]
    return _measured(key, samples, weights_path, info)


def _measured(key: CaseKey, samples: dict[str, list[float]], weights_path: str | None, info: dict,
              requests=None) -> CaseResult:
    return CaseResult(
        key=key,
        status="ok",
        metrics={name: Stat.of(values) for name, values in samples.items() if name in METRICS},
        weights_path=weights_path,
        info=info,
        requests=requests,
    )


def _enough(cfg: BenchConfig, samples: dict[str, list[float]], n: int, counted_s: float) -> str | None:
    """Why to stop repeating a case, or None to run another repetition.

    At least ``--reps``; then on until the 95% confidence interval of the median decode speed is
    within ``--ci-target`` of the median (the way pytest-benchmark and asv calibrate), but never
    past ``--max-reps`` repetitions or, once the minimum is done, ``--rep-time`` seconds of
    counted repetitions: a slow case stops at its minimum."""
    if n < cfg.reps:
        return None
    if n >= (cfg.max_reps or cfg.reps):
        return "max_reps"
    half = Stat.of(samples.get("decode_tok_s", [])).ci_half_width
    if half is not None and half <= cfg.ci_target:
        return "converged"
    if "decode_tok_s" not in samples:
        return "no_decode_speed"  # single-token cases: nothing to converge on
    if counted_s >= cfg.rep_time_s:
        return "rep_time"
    return None


PROFILE_TOKENS = 32  # new tokens of the profiled repetition: a step's kernel time is nearly constant


def _add_gpu_busy(prepared, key: CaseKey, samples: dict[str, list[float]], info: dict) -> None:
    """gpu_busy_frac: GPU kernel time of a decode step (an uncounted profiled run) over the wall
    time of a step in the counted repetitions (batch size / median decode tok/s)."""
    decode = samples.get("decode_tok_s")
    if not decode:
        return
    wall_per_step = key.batch_size / Stat.of(decode).median
    try:
        measured = prepared.profile(PROFILE_TOKENS)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # the profiler is a nicety: the case's figures stand without it
        log.warning("case %s: profiling failed: %s", key.id, error_line(exc))
        info["profile_error"] = error_line(exc)
        return
    samples["gpu_busy_frac"] = [measured.kernel_s_per_step / wall_per_step]
    info["profile"] = {"kernel_ms_per_step": measured.kernel_s_per_step * 1000, "steps": measured.steps,
                       "wall_ms_per_step": wall_per_step * 1000}


@contextmanager
def _tracking(trackers: list[Tracker]) -> Iterator[None]:
    """Every tracker around one piece of counted work."""
    with ExitStack() as stack:
        for tracker in trackers:
            stack.enter_context(tracker.track())
        yield


def _collect(trackers: list[Tracker], info: dict, samples: dict[str, list[float]]) -> None:
    """What the trackers saw during the counted work, into the case's info and samples."""
    for tracker in trackers:
        tracked = tracker.collect()
        info.update(tracked.info)
        for name, values in tracked.samples.items():
            samples.setdefault(name, []).extend(values)


def _measure_load(prepared, key: CaseKey, cfg: BenchConfig, trackers: list[Tracker],
                  weights_path: str | None) -> CaseResult:
    """A sustained load: one run with its own warm-up; the metrics are computed afterwards from
    its per-request records, which the case keeps."""
    with _tracking(trackers):
        log = prepared.run_load(cfg.load_plan(key))
    slo = Slo.parse(cfg.slo) if cfg.slo else None
    samples = aggregate(log, slo)
    info = prepared.info()
    info["load"] = load_facts(log)
    if slo is not None:
        info["slo"] = slo.text
    _collect(trackers, info, samples)
    return _measured(key, samples, weights_path, info, requests=log)
