"""The pytest plugin: gptoss_generate under pytest-benchmark, JSON out, compare-fail both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# A stand-in for bench.backends.transformers.loading.LoadedModel: generate() takes a known, small time and returns the
# prompt followed by exactly max_new_tokens tokens, like a real greedy generate call.
FAKE_CONFTEST = '''
import time
from types import SimpleNamespace

import pytest

# bench.tracking.pytest_plugin is loaded through its pytest11 entry point (pyproject.toml).


class FakeTokenizer:
    pad_token_id = 0

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True, reasoning_effort="medium"):
        return f"<|start|>system<|message|>Reasoning: {reasoning_effort}<|end|><|start|>user<|message|>{messages[0]['content']}<|end|><|start|>assistant"

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) % 200 + 1 for c in text]}


class FakeModel:
    def __init__(self):
        self.calls = []
        self.config = SimpleNamespace(_name_or_path="fake/gpt-oss")

    def generate(self, input_ids, attention_mask, **kw):
        import torch

        self.calls.append(kw)
        time.sleep(0.002)
        new = torch.ones((input_ids.shape[0], kw["max_new_tokens"]), dtype=input_ids.dtype)
        return torch.cat([input_ids, new], dim=-1)


@pytest.fixture(scope="session")
def gptoss_model():
    return SimpleNamespace(model=FakeModel(), tokenizer=FakeTokenizer(), device="cpu",
                           record=SimpleNamespace(weights_path="bf16", experts_class="GptOssExperts", attn_implementation="eager"))
'''

PERF_TEST = '''
def test_decode(gptoss_generate, gptoss_model):
    out = gptoss_generate("hello there", new_tokens=4, effort="high", rounds=3, warmup_rounds=1)
    assert out.shape[0] == 1
    kw = gptoss_model.model.calls[-1]
    assert kw["min_new_tokens"] == kw["max_new_tokens"] == 4 and kw["do_sample"] is False and kw["pad_token_id"] == 0
    assert len(gptoss_model.model.calls) == 4  # 1 warm-up + 3 rounds
'''


@pytest.fixture
def perf_project(pytester):
    pytester.makeconftest(FAKE_CONFTEST)
    pytester.makepyfile(test_perf=PERF_TEST)
    return pytester


def _saved(storage: Path) -> list[Path]:
    return sorted(storage.rglob("0001_*.json"))


def test_json_save_and_compare_fail_both_ways(perf_project, capfd):
    storage = perf_project.path / "bench-storage"
    store = f"--benchmark-storage=file://{storage}"

    # 1. Run and save a baseline, with --benchmark-json as well.
    r = perf_project.runpytest_inprocess("--benchmark-json=first.json", store, "--benchmark-save=base", "-q")
    r.assert_outcomes(passed=1)
    doc = json.loads((perf_project.path / "first.json").read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(doc)
    (b,) = doc["benchmarks"]
    assert b["name"] == "test_decode" and b["stats"]["rounds"] == 3 and len(b["stats"]["data"]) == 3
    assert b["stats"]["min"] >= 0.002  # the fake generate sleeps 2 ms per call
    extra = b["extra_info"]
    assert extra["new_tokens"] == 4 and extra["effort"] == "high" and extra["batch_size"] == 1
    assert extra["gptoss_weights_path"] == "bf16" and extra["gptoss_device"] == "cpu"
    assert extra["gptoss_model"] == "fake/gpt-oss" and extra["tok_s"] > 0
    assert extra["prompt_tokens"] > 10
    (saved,) = _saved(storage)

    # 2. Compare against it with a threshold noise cannot reach (the mean would have to grow 1000x).
    r = perf_project.runpytest_inprocess(store, "--benchmark-compare=0001", "--benchmark-compare-fail=mean:100000%", "-q")
    r.assert_outcomes(passed=1)
    assert r.ret == 0  # (the same call exits non-zero when the check trips, as step 3 shows)

    # 3. Make the baseline impossibly fast: the same threshold form must now trip.
    base = json.loads(saved.read_text())
    for bench_ in base["benchmarks"]:
        for field in ("min", "max", "mean", "median", "q1", "q3", "ld15iqr", "hd15iqr"):
            bench_["stats"][field] = 1e-9
        bench_["stats"]["stddev"] = bench_["stats"]["iqr"] = 0.0
    saved.write_text(json.dumps(base))
    # pytest-benchmark ends the session with PerformanceRegression; its report goes to the real stderr.
    capfd.readouterr()
    r = perf_project.runpytest_inprocess(store, "--benchmark-compare=0001", "--benchmark-compare-fail=mean:5%", "-q")
    assert r.ret != 0
    err = capfd.readouterr().err
    assert "Performance has regressed:" in err
    assert "test_decode (0001_base) - Field 'mean' has failed PercentageRegressionCheck" in err


def test_prompt_len_and_batch(perf_project):
    perf_project.makepyfile(test_perf='''
import pytest

def test_batch(gptoss_generate, gptoss_model, monkeypatch):
    import bench.models.prompts

    seen = {}
    def fake_build(tokenizer, effort, prompt_len):
        seen["args"] = (effort, prompt_len)
        return bench.models.prompts.Prompt(ids=[5] * prompt_len, effort=effort, template_tokens=3)
    monkeypatch.setattr(bench.models.prompts, "build_prompt", fake_build)
    out = gptoss_generate(prompt_len=16, new_tokens=3, batch_size=2, rounds=1, warmup_rounds=0, max_new_tokens=5)
    assert seen["args"] == ("low", 16)
    assert tuple(out.shape) == (2, 16 + 5)
    with pytest.raises(ValueError):
        gptoss_generate("x", prompt_len=16)
    with pytest.raises(ValueError):
        gptoss_generate("x", rounds=0)
''')
    r = perf_project.runpytest_inprocess("--benchmark-json=b.json", "-q")
    r.assert_outcomes(passed=1)
    (b,) = json.loads((perf_project.path / "b.json").read_text())["benchmarks"]
    assert b["extra_info"]["new_tokens"] == 5 and b["extra_info"]["batch_size"] == 2 and b["extra_info"]["prompt_tokens"] == 16


def test_without_pytest_benchmark_fails_clearly(perf_project):
    r = perf_project.runpytest_inprocess("-p", "no:benchmark", "-q")
    assert r.ret != 0
    r.stdout.fnmatch_lines(["*gptoss_generate needs pytest-benchmark*"])


def test_options_and_ini(pytester):
    pytester.makeconftest("")  # the plugin comes through its pytest11 entry point
    pytester.makeini("[pytest]\ngptoss_model = ./my-ckpt\n")
    pytester.makepyfile(test_opts='''
from bench.tracking.pytest_plugin import gptoss_options

def test_opts(pytestconfig):
    o = gptoss_options(pytestconfig)
    print("OPTS", o.model, o.device, o.quant, o.attn)
''')
    r = pytester.runpytest_inprocess("-s", "-q")
    r.stdout.fnmatch_lines(["OPTS ./my-ckpt auto auto auto"])
    r = pytester.runpytest_inprocess("-s", "-q", "--gptoss-model", "synthetic:tiny", "--gptoss-device", "cpu",
                                     "--gptoss-quant", "bf16", "--gptoss-attn", "eager")
    r.stdout.fnmatch_lines(["OPTS synthetic:tiny cpu bf16 eager"])
    r = pytester.runpytest_inprocess("--help")
    r.stdout.fnmatch_lines(["*--gptoss-model=GPTOSS_MODEL*"])


def test_a_bad_model_fails_with_one_sentence(pytester):
    pytest.importorskip("bench.backends.transformers.loading", reason="bench.backends.transformers.loading is not written yet")
    pytester.makeconftest("")  # the plugin comes through its pytest11 entry point
    pytester.makepyfile(test_m="def test_m(gptoss_model):\n    pass\n")
    r = pytester.runpytest_inprocess("--gptoss-model", str(pytester.path / "no-such-folder"), "-q")
    assert r.ret != 0
    r.stdout.fnmatch_lines(["*gptoss: the folder*does not exist*"])
    assert "Traceback" not in r.stdout.str()


def test_plugin_import_is_light():
    code = ("import sys, bench.tracking.pytest_plugin; heavy = [m for m in ('torch', 'transformers', 'matplotlib', 'numpy') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_real_synthetic_tiny_model(pytester):
    """The real path: bench.models.sources + bench.backends.transformers.loading load synthetic:tiny on CPU, once per session."""
    pytest.importorskip("bench.backends.transformers.loading", reason="bench.backends.transformers.loading is not written yet")
    pytester.makeconftest("")  # the plugin comes through its pytest11 entry point
    pytester.makepyfile(test_real='''
def test_real(gptoss_generate):
    out = gptoss_generate(new_tokens=4, rounds=2, warmup_rounds=1)
    assert out.shape[-1] > 4

def test_again(gptoss_model, gptoss_generate):
    gptoss_generate("second test, same loaded model", new_tokens=2, rounds=1, warmup_rounds=0)
''')
    r = pytester.runpytest_inprocess("--gptoss-model", "synthetic:tiny", "--gptoss-device", "cpu",
                                      "--benchmark-json=real.json", "-q")
    r.assert_outcomes(passed=2)
    doc = json.loads((pytester.path / "real.json").read_text())
    assert [b["name"] for b in doc["benchmarks"]] == ["test_real", "test_again"]
    assert doc["machine_info"]["gptoss"]["model"] == "synthetic:tiny"
    assert doc["benchmarks"][0]["extra_info"]["new_tokens"] == 4
