import pytest

from bench.sweep.config import BenchConfig, default_lengths, parse_duration, parse_int_list, parse_list, validate
from bench.results.errors import UserError
from diagnostics.modelref import ModelRef


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("15m", 900), ("1.5h", 5400), (" 2 min ", 120)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5m", "5d", ""])
def test_bad_durations(text):
    with pytest.raises(UserError, match="--max-time"):
        parse_duration(text)


def test_lists_dedupe_and_validate():
    assert parse_list("low, high,low", "--efforts", ("low", "medium", "high")) == ["low", "high"]
    assert parse_int_list("128,512", "--lengths") == [128, 512]
    with pytest.raises(UserError, match="use one or more of"):
        parse_list("low,extreme", "--efforts", ("low", "medium", "high"))
    with pytest.raises(UserError, match="empty"):
        parse_list(" , ", "--efforts")
    with pytest.raises(UserError, match="at least 0"):
        parse_int_list("-1", "--prompt-lengths", minimum=0)


def test_default_lengths():
    assert default_lengths(ModelRef.parse(" synthetic:tiny")) == [32, 64]
    assert default_lengths(ModelRef.parse("openai/gpt-oss-20b")) == [128, 512]
    assert default_lengths(ModelRef.parse("synthetic:gpt-oss-20b")) == [128, 512]


def test_server_cases_use_concurrency_and_no_load_axes():
    cfg = BenchConfig(backend="openai", base_url="http://127.0.0.1:1/v1", efforts=["low"], lengths=[8],
                      concurrency=[1, 4], quants=["mxfp4", "bf16"])
    keys = cfg.cases()
    assert [(k.quant, k.cache, k.attn, k.concurrency) for k in keys] == [("server", "server", "server", 1),
                                                                      ("server", "server", "server", 4)]


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(reps=0), "--reps"),
        (dict(warmup=-1), "--warmup"),
        (dict(backend="openai"), "--base-url"),
        (dict(backend="openai", base_url="http://x/v1", batch_sizes=[2]), "--concurrency"),
        (dict(concurrency=[2]), "--backend openai"),
    ],
)
def test_validate(kw, fragment):
    with pytest.raises(UserError, match=fragment):
        validate(BenchConfig(**kw))


# ---- the default plan (what each effort is run for) -------------------------------------------

from bench.sweep.config import THROUGHPUT_EFFORT, plan_efforts, plan_generate_lengths  # noqa: E402


def test_default_plan_on_real_weights_runs_every_effort_in_natural_mode():
    plan = plan_efforts("auto", None, synthetic=False)
    assert plan.efforts == [THROUGHPUT_EFFORT] and plan.natural_efforts == ["low", "medium", "high"] and not plan.notes
    cfg = BenchConfig(mode="auto", efforts=plan.efforts, natural_efforts=plan.natural_efforts, lengths=[128, 512],
                      decodes=["generate", "graph"])
    keys = cfg.cases()
    fixed = [k for k in keys if k.mode == "fixed"]
    natural = [k for k in keys if k.mode == "natural"]
    # throughput once, at one effort, on both decodes and lengths; every effort once in natural mode,
    # capped at the longest length, on the first decode mode
    assert {(k.effort, k.output_len, k.decode) for k in fixed} == {
        ("low", 128, "generate"), ("low", 512, "generate"), ("low", 128, "graph"), ("low", 512, "graph")}
    assert sorted((k.effort, k.output_len, k.decode) for k in natural) == [
        ("high", 512, "generate"), ("low", 512, "generate"), ("medium", 512, "generate")]


def test_default_plan_on_a_gpu_runs_generate_at_the_shortest_length_and_says_why():
    lengths, [note] = plan_generate_lengths([512, 128], ["generate", "graph"], given=False)
    assert lengths == [128] and note.code == "generate_one_length"
    assert "128 new tokens" in note.message and "--lengths" in note.message
    cfg = BenchConfig(mode="auto", efforts=["low"], natural_efforts=["low", "high"], lengths=[128, 512],
                      generate_lengths=lengths, decodes=["generate", "graph"])
    keys = cfg.cases()
    assert [(k.mode, k.decode, k.output_len) for k in keys] == [
        ("fixed", "generate", 128), ("natural", "generate", 512), ("natural", "generate", 512),
        ("fixed", "graph", 128), ("fixed", "graph", 512)]  # natural mode keeps its cap, the longest length
    # lengths the user gives, one decode, or one length: every length on every decode, no note
    assert plan_generate_lengths([128, 512], ["generate", "graph"], given=True) == (None, [])
    assert plan_generate_lengths([128, 512], ["generate"], given=False) == (None, [])
    assert plan_generate_lengths([256], ["generate", "graph"], given=False) == (None, [])


def test_default_plan_on_synthetic_weights_collapses_the_effort_axis_and_says_why():
    plan = plan_efforts("auto", None, synthetic=True)
    assert plan.efforts == [THROUGHPUT_EFFORT] and plan.natural_efforts == []
    [note] = plan.notes
    assert note.code == "one_effort" and "synthetic weights" in note.message and "natural mode" in note.message


def test_explicit_efforts_are_respected_with_a_note_when_they_measure_nothing_new():
    for mode, synthetic in (("fixed", False), ("auto", True)):
        plan = plan_efforts(mode, ["low", "high"], synthetic)
        assert plan.efforts == ["low", "high"]
        assert [n.code for n in plan.notes] == ["efforts_fixed"] and "same speed" in plan.notes[0].message
    assert plan_efforts("fixed", ["medium"], synthetic=False).notes == []
    real = plan_efforts("auto", ["high", "low"], synthetic=False)
    assert real.efforts == ["high"] and real.natural_efforts == ["high", "low"]


def test_natural_mode_on_synthetic_weights_runs_with_a_warning():
    plan = plan_efforts("natural", None, synthetic=True)
    assert plan.efforts == [] and plan.natural_efforts == ["low", "medium", "high"]
    assert [n.code for n in plan.notes] == ["natural_synthetic"] and "mean nothing" in plan.notes[0].message
    assert plan_efforts("natural", ["low"], synthetic=False).notes == []
    keys = BenchConfig(mode="natural", efforts=[], natural_efforts=["low"], lengths=[64, 128]).cases()
    assert [(k.mode, k.output_len) for k in keys] == [("natural", 64), ("natural", 128)]  # explicit: every length


def test_repetition_limits_are_checked():
    with pytest.raises(UserError, match="--max-reps 2 is below --reps 3"):
        validate(BenchConfig(reps=3, max_reps=2))
    with pytest.raises(UserError, match="--ci-target"):
        validate(BenchConfig(ci_target=0))
