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
