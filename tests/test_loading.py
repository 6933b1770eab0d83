"""Loading through transformers: the MXFP4 round trip, the recorded path, the errors; the
`gptoss synthesize` command."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench.backends.transformers import loading
from bench.models import sources
from bench.models import synthetic
from bench.results.errors import UserError

SPEC = synthetic.SYNTHETIC_MODELS["tiny"]


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    return sources.resolve("synthetic:tiny", cache_dir=tmp_path_factory.mktemp("load"), progress=False)


@pytest.fixture(scope="module")
def bf16(resolved):
    return loading.load_model(resolved, device="cpu", quant="bf16")


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view(torch.int16)


# --------------------------------------------------------------------------------------------
# The MXFP4 round trip through transformers
# --------------------------------------------------------------------------------------------


def test_mxfp4_tensors_dequantize_through_transformers_to_the_intended_values(bf16):
    layers = bf16.model.model.layers
    assert len(layers) == SPEC.num_hidden_layers
    plan = {t.name: t for t in SPEC.tensors()}
    for n, layer in enumerate(layers):
        experts = layer.mlp.experts
        assert type(experts).__name__ == "GptOssExperts"
        for proj in ("gate_up_proj", "down_proj"):
            src = f"model.layers.{n}.mlp.experts.{proj}"
            blocks = synthetic.tensor_values(SPEC, plan[src + "_blocks"], 0)
            scales = synthetic.tensor_values(SPEC, plan[src + "_scales"], 0)
            # ours: [E, out, in]; transformers keeps [E, in, out] (x @ W)
            want = synthetic.dequantize_mxfp4(blocks, scales, torch.bfloat16).transpose(1, 2)
            got = getattr(experts, proj)
            assert got.dtype == torch.bfloat16 and tuple(got.shape) == tuple(want.shape)
            assert torch.equal(_bits(got), _bits(want)), f"{src} differs"
            # and they are weights of about the init std, not zeros or garbage
            assert torch.isfinite(got).all()
            assert 0.5 < got.float().std().item() / SPEC.init_std < 2


def test_transformers_finds_every_tensor_and_nothing_else(resolved):
    from transformers import AutoModelForCausalLM, Mxfp4Config

    _, info = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=torch.bfloat16, output_loading_info=True,
                                                   quantization_config=Mxfp4Config(dequantize=True))
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


def test_bf16_load_record(bf16):
    rec = bf16.record
    assert (rec.quant, rec.attn, rec.weights_path, rec.experts_class) == ("bf16", "auto", "bf16", "GptOssExperts")
    assert rec.fallback_reason is None and rec.attn_implementation == "eager" and rec.dtype == "bfloat16"
    assert rec.device == "cpu" and bf16.device == "cpu"
    assert rec.parameters == SPEC.parameter_count()
    assert rec.metrics["load_s"] > 0 and rec.metrics["download_s"] is None
    assert rec.metrics["load_alloc_bytes"] is None and rec.metrics["load_peak_bytes"] is None  # CPU: see module doc
    assert set(rec.metrics) <= {"download_s", "load_s", "load_alloc_bytes", "load_peak_bytes"}
    assert bf16.tokenizer.convert_tokens_to_ids("<|return|>") == SPEC.token_id("<|return|>")


def test_generation_runs(bf16):
    tok = bf16.tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True,
                                     reasoning_effort="low", return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = bf16.model.generate(**prompt, max_new_tokens=8, min_new_tokens=8, do_sample=False,
                                  pad_token_id=tok.pad_token_id)
    new = out[0, prompt["input_ids"].shape[1]:]
    assert len(new) == 8 and int(new.max()) < SPEC.vocab_size
    logits = bf16.model(**prompt).logits
    assert torch.isfinite(logits).all()


# --------------------------------------------------------------------------------------------
# Which path ran, and why
# --------------------------------------------------------------------------------------------


def test_mxfp4_asked_on_cpu_falls_back_loudly_with_transformers_reason(resolved, caplog):
    caplog.set_level(logging.WARNING, logger="gptoss.loading")
    for _ in range(2):  # transformers logs its reason once per process: both loads must have it
        caplog.clear()
        loaded = loading.load_model(resolved, device="cpu", quant="mxfp4")
        rec = loaded.record
        assert rec.weights_path == "bf16" and rec.experts_class == "GptOssExperts"
        assert rec.fallback_reason and "dequantiz" in rec.fallback_reason.lower()
        loud = [r for r in caplog.records if r.name == "gptoss.loading" and r.levelno == logging.WARNING]
        assert loud and "MXFP4 was wanted" in loud[0].getMessage() and rec.fallback_reason in loud[0].getMessage()
        loading.unload(loaded)
        assert loaded.model is None


def test_mxfp4_reason_is_captured_even_when_transformers_is_quiet(resolved, monkeypatch):
    from transformers.utils import logging as tlog

    old = tlog.get_verbosity()
    tlog.set_verbosity_error()
    try:
        rec = loading.load_model(resolved, device="cpu", quant="auto").record
    finally:
        tlog.set_verbosity(old)
    assert rec.weights_path == "bf16" and "dequantiz" in (rec.fallback_reason or "").lower()


def test_auto_on_cpu_records_the_reason_without_a_loud_warning(resolved, caplog):
    caplog.set_level(logging.WARNING, logger="gptoss.loading")
    rec = loading.load_model(resolved, device="auto" if not torch.cuda.is_available() else "cpu").record
    assert rec.quant == "auto" and rec.weights_path == "bf16" and rec.fallback_reason
    assert not [r for r in caplog.records if r.name == "gptoss.loading"]


def test_broken_kernel_path_auto_falls_back_and_mxfp4_is_a_user_error(resolved, monkeypatch):
    real = loading._from_pretrained

    def flaky(path, kwargs):
        if "quantization_config" not in kwargs:  # the MXFP4 attempt
            raise RuntimeError("could not fetch kernels-community/gpt-oss-triton-kernels")
        return real(path, kwargs)

    monkeypatch.setattr(loading, "_from_pretrained", flaky)
    rec = loading.load_model(resolved, device="cpu", quant="auto").record
    assert rec.weights_path == "bf16" and "could not fetch" in rec.fallback_reason
    with pytest.raises(UserError, match="--quant bf16"):
        loading.load_model(resolved, device="cpu", quant="mxfp4")


def test_non_mxfp4_checkpoint(tmp_path, resolved):
    from transformers import GptOssConfig, GptOssForCausalLM

    cfg = SPEC.config_dict()
    cfg.pop("quantization_config")
    model = GptOssForCausalLM(GptOssConfig.from_dict(cfg)).to(torch.bfloat16)
    model.save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((Path(resolved.path) / name).read_bytes())
    plain = sources.resolve(str(tmp_path))
    rec = loading.load_model(plain, device="cpu", quant="mxfp4").record
    assert rec.weights_path == "bf16" and "not MXFP4-quantized" in rec.fallback_reason
    rec = loading.load_model(plain, device="cpu", quant="bf16").record
    assert rec.weights_path == "bf16" and rec.fallback_reason is None
    (tmp_path / "tokenizer.json").unlink()
    (tmp_path / "tokenizer_config.json").unlink()
    with pytest.raises(UserError, match="tokenizer"):
        loading.load_model(plain, device="cpu", quant="bf16")


@pytest.mark.parametrize("kwargs, match", [
    ({"quant": "int8"}, "quantization"),
    ({"device": "tpu"}, "unknown device"),
    ({"dtype": "float8"}, "dtype"),
    ({"attn": "sdpa", "device": "cpu"}, "--attn eager"),
])
def test_bad_arguments_are_user_errors(resolved, kwargs, match):
    with pytest.raises(UserError, match=match) as e:
        loading.load_model(resolved, **kwargs)
    assert "\n" not in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(resolved):
    with pytest.raises(UserError, match="no CUDA GPU"):
        loading.load_model(resolved, device="cuda")
    with pytest.raises(UserError, match="no CUDA GPU"):
        loading.resolve_device("cuda:1")
    assert loading.resolve_device("auto") == "cpu"


def test_dtype_names_and_float32(resolved):
    assert loading._resolve_dtype("fp16") is torch.float16 and loading._resolve_dtype(torch.float32) is torch.float32
    rec = loading.load_model(resolved, device="cpu", quant="bf16", dtype="float32").record
    assert rec.dtype == "float32"


def test_experts_info_and_logical_parameter_count():
    class Mxfp4GptOssExperts(torch.nn.Module):  # the name transformers' kernel path uses
        def __init__(self):
            super().__init__()
            self.num_experts, self.hidden_size, self.intermediate_size = 2, 64, 32
            self.gate_up_proj = torch.nn.Parameter(torch.zeros(2, 64, 32, dtype=torch.uint8), requires_grad=False)
            self.down_proj = torch.nn.Parameter(torch.zeros(2, 64, 16, dtype=torch.uint8), requires_grad=False)
            self.gate_up_proj_bias = torch.nn.Parameter(torch.zeros(2, 64))
            self.down_proj_bias = torch.nn.Parameter(torch.zeros(2, 64))

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), Mxfp4GptOssExperts())
    assert loading.experts_info(model) == ("Mxfp4GptOssExperts", "mxfp4")
    assert loading.count_parameters(model) == 20 + 2 * 64 * 64 + 2 * 32 * 64 + 2 * 64 + 2 * 64
    assert loading.experts_info(torch.nn.Linear(2, 2)) == (None, None)


def test_unload_accepts_none():
    loading.unload(None)


# --------------------------------------------------------------------------------------------
# gptoss synthesize
# --------------------------------------------------------------------------------------------


def test_synthesize_command_then_load_and_generate(tmp_path):
    from bench.cli import main

    out = tmp_path / "tiny-gptoss"
    runner = CliRunner()
    res = runner.invoke(main, ["synthesize", "tiny", "--out", str(out), "--quiet", "--jobs", "3"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out.resolve())
    assert "wrote synthetic:tiny" in res.stderr and "with 3 thread(s)" in res.stderr
    again = runner.invoke(main, ["synthesize", "synthetic:tiny", "--out", str(out), "-q"])
    assert again.exit_code == 0 and "reused" in again.stderr

    loaded = loading.load_model(sources.resolve(str(out)), device="cpu")
    assert loaded.record.weights_path == "bf16"
    ids = loaded.tokenizer.apply_chat_template([{"role": "user", "content": "Hello"}], add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
    gen = loaded.model.generate(**ids, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                                pad_token_id=loaded.tokenizer.pad_token_id)
    assert gen.shape[1] == ids["input_ids"].shape[1] + 4


def test_synthesize_command_errors_and_cache(tmp_path):
    from bench.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["synthesize", "huge", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and res.stderr.startswith("error: unknown synthetic model")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a.txt").write_text("mine")
    res = runner.invoke(main, ["synthesize", "tiny", "--out", str(foreign)])
    assert res.exit_code == 2 and "not a synthetic checkpoint" in res.stderr
    res = runner.invoke(main, ["synthesize", "tiny", "--cache-dir", str(tmp_path / "cache"), "-q", "--seed", "2"])
    assert res.exit_code == 0 and res.stdout.strip() == str(synthetic.cache_path("tiny", 2, tmp_path / "cache"))
    assert "Example" in runner.invoke(main, ["synthesize", "--help"]).output


# --------------------------------------------------------------------------------------------
# bench.gpu_load_check, its CPU-safe parts
# --------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("quant", ["bf16", "mxfp4"])
def test_gpu_load_records_memory_and_the_path_that_ran(resolved, quant):
    """On a GPU: each weights path loads, its memory is recorded (peak at least what stays
    allocated), the experts class names the path, and the model generates exactly N tokens."""
    loaded = loading.load_model(resolved, device="cuda", quant=quant)
    try:
        rec = loaded.record
        assert rec.status == "ok" and rec.device.startswith("cuda")
        assert rec.experts_class == {"mxfp4": "Mxfp4GptOssExperts", "bf16": "GptOssExperts"}[rec.weights_path]
        if quant == "bf16":
            assert rec.weights_path == "bf16" and rec.fallback_reason is None
        elif rec.weights_path == "bf16":  # no kernels here: the reason is recorded
            assert rec.fallback_reason
        m = rec.metrics
        assert m["load_s"] > 0 and 0 < m["load_alloc_bytes"] <= m["load_peak_bytes"]
        tok = loaded.tokenizer
        ids = tok.apply_chat_template([{"role": "user", "content": "Say hello."}], add_generation_prompt=True,
                                      reasoning_effort="low", return_tensors="pt", return_dict=True)
        ids = {k: v.to(loaded.device) for k, v in ids.items()}
        with torch.inference_mode():
            out = loaded.model.generate(**ids, max_new_tokens=8, min_new_tokens=8, do_sample=False,
                                        pad_token_id=tok.pad_token_id)
        assert out.shape[1] - ids["input_ids"].shape[1] == 8
    finally:
        loading.unload(loaded)
