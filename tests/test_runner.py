"""The sweep runner against a scripted backend: ordering, resume, OOM, errors, Ctrl-C, --max-time."""

import pytest
import torch

from contextlib import contextmanager

from bench import results as R
from bench.backends.base import Repetition
from bench.backends.timing import GenerationTiming
from bench.results.stats import Stat
from bench.sweep import runner
from bench.sweep.budget import Budget
from bench.sweep.config import BenchConfig
from bench.sweep.journal import Journal
from bench.sweep.runner import Interrupted, add_roofline, is_oom
from bench.sweep.trackers import Tracked


class FakePeakMemory:
    """A tracker that records 1000 bytes of peak memory per repetition."""

    def __init__(self):
        self.tracked = Tracked()

    @contextmanager
    def track(self):
        yield
        self.tracked.samples.setdefault("peak_alloc_bytes", []).append(1000.0)

    def collect(self):
        out, self.tracked = self.tracked, Tracked()
        return out


def run_sweep(cfg, backend, results, path, **kw):
    """The runner with a journal on ``path`` and a fake memory tracker; returns the results."""
    kw.setdefault("trackers", lambda device: [FakePeakMemory()])
    runner.run_sweep(cfg, backend, Journal(results, path), **kw)
    return results


class FakeCase:
    def __init__(self, backend, key):
        self.backend, self.key = backend, key

    def once(self, counted=True):
        return Repetition(self.backend.once(self.key))

    def info(self):
        return {}


class FakeBackend:
    """Generates clocks without a model; `fail` maps an effort to an exception to raise."""

    def __init__(self, fail=None, tick=0.01):
        self.fail = fail or {}
        self.tick = tick
        self.loads = []
        self.calls = []
        self.recovered = 0
        self.unloaded = 0

    def describe(self):
        return {"kind": "transformers"}

    def model_info(self):
        return R.ModelInfo(id="fake", source="synthetic", synthetic=True)

    def load(self, quant, attn):
        self.loads.append((quant, attn))
        return R.LoadRecord(quant=quant, attn=attn, weights_path="bf16", metrics={"load_s": 0.1})

    def prepare(self, key):
        return FakeCase(self, key)

    def once(self, key):
        self.calls.append(key)
        exc = self.fail.get(key.effort)
        if exc is not None:
            raise exc
        t = GenerationTiming(start=0.0, prompt_tokens=key.prompt_len)
        for i in range(key.output_len):
            t.arrive(1, at=0.1 + i * self.tick)
        t.end = t.arrivals[-1]
        return [t]

    def recover(self):
        self.recovered += 1

    def unload(self):
        self.unloaded += 1


def _cfg(**kw):
    base = dict(model="fake", efforts=["low", "high"], lengths=[4, 8], prompt_lengths=[16], reps=3, warmup=1,
                quants=["mxfp4", "bf16"])
    base.update(kw)
    return BenchConfig(**base)


def _new():
    return R.Results(model=R.ModelInfo(id="fake", source="synthetic", synthetic=True), run_id="r")


def test_cases_grouped_by_load_and_one_load_per_group(tmp_path):
    cfg = _cfg()
    keys = cfg.cases()
    assert len(keys) == 2 * 2 * 2
    groups = [k.load_group() for k in keys]
    assert groups == sorted(groups, key=groups.index)  # contiguous groups
    backend = FakeBackend()
    res = run_sweep(cfg, backend, _new(), tmp_path / "results.json", progress=False)
    assert backend.loads == [("mxfp4", "auto"), ("bf16", "auto")]
    assert backend.unloaded == 2
    assert len(res.cases) == 8 and all(c.status == "ok" for c in res.cases)
    assert res.complete and res.finished_at
    # warm-up + reps calls per case
    assert len(backend.calls) == 8 * (1 + 3)
    case = res.case(R.CaseKey("low", 8, 16, quant="bf16"))
    assert case.metrics["new_tokens"].samples == [8.0, 8.0, 8.0]
    assert case.metrics["peak_alloc_bytes"].n == 3
    assert case.weights_path == "bf16"
    R.load(tmp_path / "results.json")  # valid on disk


def test_oom_is_recorded_and_sweep_goes_on(tmp_path):
    backend = FakeBackend(fail={"high": torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")})
    res = run_sweep(_cfg(quants=["auto"]), backend, _new(), tmp_path / "r.json", progress=False)
    statuses = {c.key.effort: c.status for c in res.cases}
    assert statuses == {"low": "ok", "high": "oom"}
    oom = [c for c in res.cases if c.status == "oom"][0]
    assert "out of memory" in oom.message
    assert backend.recovered == 2  # memory freed after each failed case
    assert len(res.cases) == 4


def test_other_errors_are_recorded(tmp_path):
    backend = FakeBackend(fail={"low": ValueError("boom")})
    res = run_sweep(_cfg(quants=["auto"]), backend, _new(), tmp_path / "r.json", progress=False)
    errors = [c for c in res.cases if c.status == "error"]
    assert len(errors) == 2 and errors[0].message == "ValueError: boom"


def test_interrupt_keeps_done_cases_and_resume_finishes(tmp_path):
    path = tmp_path / "results.json"
    backend = FakeBackend(fail={"high": KeyboardInterrupt()})
    with pytest.raises(Interrupted) as e:
        run_sweep(_cfg(quants=["auto"]), backend, _new(), path, progress=False)
    assert e.value.done == 1 and e.value.total == 4
    saved = R.load(path)
    assert [c.key.effort for c in saved.cases] == ["low"]
    assert not saved.complete
    assert any(w.code == "interrupted" for w in saved.warnings)

    backend2 = FakeBackend()
    res = run_sweep(_cfg(quants=["auto"]), backend2, saved, path, progress=False)
    assert res.complete and len(res.cases) == 4
    # the case measured before the interruption was not run again
    assert R.CaseKey("low", 4, 16, quant="auto") not in backend2.calls


def test_resume_reruns_errors_but_not_oom(tmp_path):
    path = tmp_path / "r.json"
    first = run_sweep(_cfg(quants=["auto"], efforts=["low", "medium", "high"], lengths=[4]),
                      FakeBackend(fail={"low": ValueError("x"), "high": torch.OutOfMemoryError("out of memory")}),
                      _new(), path, progress=False)
    assert sorted(c.status for c in first.cases) == ["error", "ok", "oom"]
    backend = FakeBackend()
    run_sweep(_cfg(quants=["auto"], efforts=["low", "medium", "high"], lengths=[4]), backend, R.load(path), path, progress=False)
    assert {k.effort for k in backend.calls} == {"low"}


def test_max_time_skips_the_rest(tmp_path):
    now = [0.0]

    def clock():
        return now[0]

    class SlowBackend(FakeBackend):
        def once(self, key):
            now[0] += 10.0  # every repetition "takes" 10 s
            return super().once(key)

    # 4 calls per case = 40 s a case; a 100 s budget fits two cases, not a third
    res = run_sweep(_cfg(quants=["auto"], max_time_s=100), SlowBackend(), _new(), tmp_path / "r.json",
                    progress=False, clock=clock)
    statuses = [c.status for c in res.cases]
    assert statuses.count("ok") == 2 and statuses.count("skipped") == 2
    assert all("--max-time" in c.message for c in res.cases if c.status == "skipped")
    assert res.complete  # every case has a result, skipped included


def test_max_time_estimates_by_length(tmp_path):
    """A long case is not started on the strength of a short one's duration."""
    now = [0.0]

    class PerToken(FakeBackend):
        def once(self, key):
            now[0] += 0.5 * key.output_len  # 0.5 s a token
            return super().once(key)

    # low/4 takes 4 runs x 2 s = 8 s; low/40 would take 80 s, past a 50 s budget; high/4 fits
    cfg = _cfg(quants=["auto"], efforts=["low", "high"], lengths=[4, 40], max_time_s=50)
    res = run_sweep(cfg, PerToken(), _new(), tmp_path / "r.json", progress=False, clock=lambda: now[0])
    status = {(c.key.effort, c.key.output_len): c.status for c in res.cases}
    assert status == {("low", 4): "ok", ("low", 40): "skipped", ("high", 4): "ok", ("high", 40): "skipped"}
    assert now[0] == 16.0


def test_resume_estimates_from_the_cases_already_measured(tmp_path):
    """A resumed sweep does not start a long case blind: the first run's durations are known."""
    now = [0.0]

    class PerToken(FakeBackend):
        def once(self, key):
            now[0] += 0.5 * key.output_len
            return super().once(key)

    path = tmp_path / "r.json"
    cfg = _cfg(quants=["auto"], efforts=["low"], lengths=[4, 40])
    first = run_sweep(_cfg(quants=["auto"], efforts=["low"], lengths=[4]), PerToken(), _new(), path,
                      progress=False, clock=lambda: now[0])
    assert first.case(R.CaseKey("low", 4, 16)).duration_s == 8.0
    cfg.max_time_s = 50  # low/40 would take 80 s
    backend = PerToken()
    res = run_sweep(cfg, backend, R.load(path), path, progress=False, clock=lambda: now[0])
    assert backend.calls == [] and res.case(R.CaseKey("low", 40, 16)).status == "skipped"


def test_budget_estimate_scales_with_tokens():
    b = Budget(100, clock=lambda: 0.0)
    short, long = R.CaseKey("low", 128, 128), R.CaseKey("low", 512, 128)
    assert b.estimate(long) == 0.0 and b.allows(long)
    b.record(short, 64.0)  # 0.5 s a token
    assert b.estimate(long) == 256.0 and not b.allows(long) and b.allows(short)
    batched = R.CaseKey("low", 128, 128, batch_size=4)
    assert b.estimate(batched) == 256.0


def test_load_failure_marks_its_cases(tmp_path):
    class BadLoad(FakeBackend):
        def load(self, quant, attn):
            if quant == "bf16":
                raise torch.OutOfMemoryError("CUDA out of memory while loading")
            return super().load(quant, attn)

    res = run_sweep(_cfg(), BadLoad(), _new(), tmp_path / "r.json", progress=False)
    bf16 = [c for c in res.cases if c.key.quant == "bf16"]
    assert all(c.status == "oom" and c.message.startswith("load failed") for c in bf16)
    assert [ld.status for ld in res.loads] == ["ok", "oom"]


def test_results_file_is_written_after_every_case(tmp_path):
    path = tmp_path / "r.json"
    seen = []

    class Watching(FakeBackend):
        def prepare(self, key):
            if path.exists():
                seen.append(len(R.load(path).cases))
            return super().prepare(key)

    run_sweep(_cfg(quants=["auto"]), Watching(), _new(), path, progress=False)
    assert seen == [0, 1, 2, 3]


def test_is_oom():
    assert is_oom(torch.OutOfMemoryError("x"))
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert not is_oom(RuntimeError("shape mismatch"))


def test_roofline_fraction():
    case = R.CaseResult(key=R.CaseKey("low", 8, 8, batch_size=2), metrics={"decode_tok_s": Stat.of([100.0, 200.0])})
    add_roofline(case, bytes_per_token=1e9, bandwidth=1e12)
    # 100 tok/s at batch 2 = 50 steps/s x 1 GB = 50 GB/s of 1000 GB/s
    assert case.metrics["roofline_frac"].samples == [pytest.approx(0.05), pytest.approx(0.1)]
    bare = R.CaseResult(key=R.CaseKey("low", 8, 8), metrics={"decode_tok_s": Stat.of([1.0])})
    add_roofline(bare, None, 1e12)
    assert "roofline_frac" not in bare.metrics


def test_warmup_time_is_recorded_apart_from_the_counted_runs(tmp_path):
    """The warm-up pays compilation; its wall time is its own metric, never a repetition."""
    import time

    class CompilesOnce(FakeBackend):
        def once(self, key):
            if not self.calls:
                time.sleep(0.05)  # the first call "compiles"
            return super().once(key)

    res = run_sweep(_cfg(quants=["auto"], efforts=["low"], lengths=[4], warmup=1), CompilesOnce(), _new(),
                    tmp_path / "r.json", progress=False)
    [case] = res.cases
    assert case.metrics["warmup_s"].n == 1 and case.metrics["warmup_s"].median >= 0.05
    assert case.metrics["decode_tok_s"].n == 3
    cold = run_sweep(_cfg(quants=["auto"], efforts=["low"], lengths=[4], warmup=0), FakeBackend(), _new(),
                     tmp_path / "r0.json", progress=False)
    assert "warmup_s" not in cold.cases[0].metrics
    R.load(tmp_path / "r.json")  # validates against the schema


# ---- GPU-busy time and energy per case ---------------------------------------------------------


class FakeEnergy:
    """Two joules per repetition over 0.5 s, as EnergyTracker reports them."""

    def __init__(self):
        self.tracked = Tracked()

    @contextmanager
    def track(self):
        yield
        self.tracked.samples.setdefault("energy_j", []).append(2.0)
        self.tracked.samples.setdefault("avg_power_w", []).append(4.0)

    def collect(self):
        out, self.tracked = self.tracked, Tracked()
        return out


class ProfiledCase(FakeCase):
    """A case that says its decode steps keep the GPU busy 2 ms each, or fails to profile."""

    def __init__(self, backend, key, fail=False):
        super().__init__(backend, key)
        self.fail = fail

    def profile(self, max_tokens):
        from bench.backends.base import DecodeProfile

        if self.fail:
            raise RuntimeError("CUPTI_ERROR_NOT_INITIALIZED")
        return DecodeProfile(kernel_s_per_step=0.002, steps=min(max_tokens, self.key.output_len) - 1)


def test_energy_per_token_and_gpu_busy_fraction():
    backend = FakeBackend(tick=0.01)  # 100 tok/s: 10 ms per decode step
    key = R.CaseKey("low", 8, 16)
    backend.prepare = lambda k: ProfiledCase(backend, k)
    case = runner.run_case(backend, key, _cfg(reps=2), [FakeEnergy()], "bf16", profile=True)
    assert case.status == "ok"
    assert case.metrics["energy_j_per_tok"].samples == [pytest.approx(2.0 / 8)] * 2
    assert case.metrics["avg_power_w"].median == 4.0 and "energy_j" not in case.metrics
    assert case.metrics["gpu_busy_frac"].median == pytest.approx(0.2)
    assert case.info["profile"]["steps"] == 7 and case.info["profile"]["wall_ms_per_step"] == pytest.approx(10.0)
    # no profile where the runner was not asked (a CPU run)
    plain = runner.run_case(backend, key, _cfg(reps=1), [], "bf16")
    assert "gpu_busy_frac" not in plain.metrics and "energy_j_per_tok" not in plain.metrics


def test_a_failed_profile_keeps_the_case():
    backend = FakeBackend()
    backend.prepare = lambda k: ProfiledCase(backend, k, fail=True)
    case = runner.run_case(backend, R.CaseKey("low", 8, 16), _cfg(reps=1), [], "bf16", profile=True)
    assert case.status == "ok" and "gpu_busy_frac" not in case.metrics
    assert "CUPTI_ERROR_NOT_INITIALIZED" in case.info["profile_error"]


def test_host_bound_cases_are_flagged():
    from bench.sweep.session import _validity_warnings

    res = _new()
    busy = R.CaseResult(R.CaseKey("low", 8, 16), metrics={"gpu_busy_frac": Stat.of([0.9])})
    idle = R.CaseResult(R.CaseKey("high", 8, 16), metrics={"gpu_busy_frac": Stat.of([0.08])})
    res.cases = [busy, idle]
    _validity_warnings(res)
    flagged = [w for w in res.warnings if w.code == "host_bound"]
    assert [w.case for w in flagged] == [idle.key.id] and "8%" in flagged[0].message


# ---- adaptive repetitions ----------------------------------------------------------------------


def test_stopping_rule_on_known_samples():
    from bench.sweep.runner import _enough

    cfg = _cfg(reps=3, max_reps=10, rep_time_s=20.0, ci_target=0.01)
    steady = {"decode_tok_s": [100.0, 100.2, 99.9, 100.1, 99.8, 100.3]}
    noisy = {"decode_tok_s": [100.0, 110.0, 92.0, 105.0, 95.0, 101.0]}
    assert _enough(cfg, {"decode_tok_s": [100.0, 100.0]}, 2, 1.0) is None  # below --reps
    assert _enough(cfg, {"decode_tok_s": steady["decode_tok_s"][:5]}, 5, 1.0) is None  # 5 samples: no 95% interval yet
    assert _enough(cfg, steady, 6, 1.0) == "converged"  # [99.8, 100.3] is within ±1% of 100.05
    assert _enough(cfg, noisy, 6, 1.0) is None
    assert _enough(cfg, noisy, 6, 25.0) == "rep_time"
    assert _enough(cfg, {"decode_tok_s": noisy["decode_tok_s"] * 2}, 10, 1.0) == "max_reps"
    assert _enough(cfg, {"ttft_s": [0.1] * 3}, 3, 1.0) == "no_decode_speed"
    assert _enough(_cfg(reps=3), noisy, 3, 1.0) == "max_reps"  # max_reps unset: exactly --reps


def test_adaptive_case_repeats_until_the_interval_is_tight(tmp_path):
    class Jittery(FakeBackend):
        """Decode speeds that settle: the first repetitions are noisy, the later ones steady."""

        def once(self, key):
            n = len(self.calls)
            self.calls.append(key)
            tick = [0.012, 0.008, 0.0101, 0.0100, 0.0100, 0.0100, 0.0100, 0.0100, 0.0100, 0.0100][min(n, 9)]
            t = GenerationTiming(start=0.0, prompt_tokens=key.prompt_len)
            for i in range(key.output_len):
                t.arrive(1, at=0.1 + i * tick)
            t.end = t.arrivals[-1]
            return [t]

    backend = Jittery()
    case = runner.run_case(backend, R.CaseKey("low", 8, 16), _cfg(reps=3, warmup=0, max_reps=10), [], "bf16")
    reps = case.info["repetitions"]
    assert reps["stopped"] == "converged" and 6 <= reps["n"] < 10 and reps["decode_ci_half_width"] <= 0.01
    stat = case.metrics["decode_tok_s"]
    assert stat.n == reps["n"] and stat.ci_low <= stat.median <= stat.ci_high
