"""How many GPUs each path needs, on each layout: the shares per GPU and the check's verdicts."""

import pytest

from diagnostics import checks as C
from diagnostics import multi_gpu as M
from diagnostics.check_base import CUDA_CONTEXT_BYTES, DEFAULT_CONTEXT_TOKENS
from diagnostics.models import GPT_OSS_20B, GPT_OSS_120B, GiB, spec_for
from diagnostics.testing import make_facts, make_gpu

ARGS = (DEFAULT_CONTEXT_TOKENS, CUDA_CONTEXT_BYTES)


def ctx(model):
    return C.Context(model=model, spec=spec_for(model))


@pytest.mark.parametrize("spec", [GPT_OSS_20B, GPT_OSS_120B])
@pytest.mark.parametrize("path", ["mxfp4", "bf16"])
def test_one_gpu_is_what_the_memory_check_estimates(spec, path):
    one = M.share(spec, path, "single", 1, *ARGS)
    est = C.estimate_memory(make_facts("H100", path=path), C.Context(model=spec.hub_id, spec=spec), path)
    assert one.needed_bytes == pytest.approx(est.needed_bytes, abs=2)
    assert one.load_peak_bytes == pytest.approx(spec.load_bytes(path) + spec.load_transient_bytes(path), abs=2)


def test_each_layout_splits_what_it_splits():
    spec, path = GPT_OSS_120B, "bf16"
    one = M.share(spec, path, "single", 1, *ARGS)
    weights = spec.load_bytes(path)
    pipe = M.share(spec, path, "pipeline", 2, *ARGS)
    assert pipe.needed_bytes == pytest.approx(one.needed_bytes / 2 + CUDA_CONTEXT_BYTES / 2, rel=1e-6)
    ep = M.share(spec, path, "expert-parallel", 2, *ARGS)
    experts = weights * spec.mxfp4_params / spec.params_total  # bf16: the experts' share is their parameter share
    assert ep.needed_bytes == pytest.approx(one.needed_bytes - experts / 2, rel=1e-6)
    assert ep.load_peak_bytes < pipe.load_peak_bytes  # the transient is split too
    tp = M.share(spec, path, "tensor-parallel", 2, *ARGS)
    assert tp.needed_bytes == pytest.approx(one.needed_bytes - spec.embedding_params * 2 / 2, rel=1e-6)
    assert tp.needed_bytes > 0.99 * one.needed_bytes  # nearly everything on every rank
    with pytest.raises(ValueError):
        M.share(spec, path, "sideways", 2, *ARGS)


def test_fewest_gpus():
    h200 = [140 * GiB] * 2
    s, visible = M.gpus_needed(GPT_OSS_120B, "bf16", "pipeline", h200, *ARGS)
    assert (s.gpus, visible) == (2, True) and s.needed_bytes < 140 * GiB
    assert M.gpus_needed(GPT_OSS_120B, "bf16", "single", h200, *ARGS) == (None, False)
    assert M.gpus_needed(GPT_OSS_120B, "mxfp4", "single", h200, *ARGS)[0].gpus == 1
    # expert parallelism needs a count that divides the 128 experts: 3 H100s do not do, 4 do
    s, visible = M.gpus_needed(GPT_OSS_120B, "bf16", "expert-parallel", [79 * GiB] * 3, *ARGS)
    assert (s.gpus, visible) == (4, False)
    # past the visible GPUs, more like the first are assumed; a small GPU runs out of room
    assert M.gpus_needed(GPT_OSS_120B, "bf16", "pipeline", [2 * GiB], *ARGS) == (None, False)
    assert M.gpus_needed(GPT_OSS_120B, "bf16", "pipeline", [], *ARGS) == (None, False)


def _check(model, gpus, path):
    facts = make_facts(gpus=[make_gpu(g, index=i) for i, g in enumerate(gpus)], path=path)
    return C.check_gpu_count(facts, ctx(model))


def test_120b_on_two_h200s():
    mx = _check("openai/gpt-oss-120b", ["H200", "H200"], "mxfp4")
    assert mx.status == "pass" and "MXFP4: 1 GPU (~62.3 GiB)" in mx.message
    assert "bf16 (dequantized): 2 with --devices 0,1" in mx.message and "2 with --ep 2" in mx.message
    assert "--tp splits only the output head" in mx.message
    bf = _check("openai/gpt-oss-120b", ["H200", "H200"], "bf16")
    assert bf.status == "warn" and bf.fix.startswith("gptoss bench --model openai/gpt-oss-120b --devices 0,1")


def test_120b_bf16_on_one_h100_needs_more_gpus_than_there_are():
    r = _check("openai/gpt-oss-120b", ["H100"], "bf16")
    assert r.status == "warn" and "more than the 1 visible" in r.message and "MXFP4 path" in r.fix


def test_20b_fits_one_gpu_everywhere_it_fits_at_all():
    r = _check("openai/gpt-oss-20b", ["T4"], "mxfp4")
    assert r.status == "pass" and r.message.count("1 GPU") == 1  # MXFP4 fits; bf16 would need several T4s


def test_skips():
    assert C.check_gpu_count(make_facts(None), ctx("openai/gpt-oss-120b")).status == "skip"
    assert C.check_gpu_count(make_facts("H100"), C.Context(model="./mine", spec=None)).status == "skip"


def test_the_check_is_in_the_report():
    from diagnostics.report import snapshot

    report = snapshot(facts=make_facts(gpus=[make_gpu("H200", index=0), make_gpu("H200", index=1)]),
                      model="openai/gpt-oss-120b")
    assert report.check("gpu_count").status == "pass"
