"""diagnostics.models and diagnostics.gpus: the numbers the checks and the roofline rely on."""

import pytest

from diagnostics.gpus import ALL, known_gpu
from diagnostics.models import GPT_OSS_20B, GPT_OSS_120B, GiB, kv_cache_bytes, spec_for, spec_from_config


def test_parameter_counts_match_the_published_totals():
    assert round(GPT_OSS_20B.params_total / 1e9, 2) == 20.91
    assert round(GPT_OSS_120B.params_total / 1e9, 2) == 116.83
    assert round(GPT_OSS_20B.params_active / 1e9, 2) == 3.61
    assert round(GPT_OSS_120B.params_active / 1e9, 2) == 5.13


def test_checkpoint_bytes_match_the_measured_20b_and_derive_120b():
    assert round(GPT_OSS_20B.checkpoint_bytes / 1e9, 2) == 13.76
    # 120b: same layout with 36 layers x 128 experts; ~65.2 GB
    assert 65.0e9 < GPT_OSS_120B.checkpoint_bytes < 65.5e9
    assert GPT_OSS_120B.checkpoint_bytes > 4 * GPT_OSS_20B.checkpoint_bytes


@pytest.mark.parametrize("spec,mxfp4,bf16", [(GPT_OSS_20B, 3.71, 7.22), (GPT_OSS_120B, 5.00, 10.27)])
def test_bytes_per_token_match_design(spec, mxfp4, bf16):
    assert round(spec.bytes_per_token("mxfp4") / 1e9, 2) == mxfp4
    assert round(spec.bytes_per_token("bf16") / 1e9, 2) == bf16
    with pytest.raises(ValueError):
        spec.bytes_per_token("fp8")


def test_load_bytes_measured_for_20b_and_scaled_for_120b():
    assert GPT_OSS_20B.load_bytes("mxfp4") == round(13.0 * GiB)
    assert GPT_OSS_20B.load_bytes("bf16") == round(39.1 * GiB)
    ratio = GPT_OSS_20B.load_bytes("mxfp4") / GPT_OSS_20B.checkpoint_bytes
    assert GPT_OSS_120B.load_bytes("mxfp4") == round(GPT_OSS_120B.checkpoint_bytes * ratio)
    assert 215 * GiB < GPT_OSS_120B.load_bytes("bf16") < 220 * GiB
    assert GPT_OSS_20B.load_transient_bytes("mxfp4") == round(2.2 * GiB)
    assert GPT_OSS_120B.load_transient_bytes("bf16") == pytest.approx(4 * 3.8 * GiB, rel=1e-6)
    with pytest.raises(ValueError):
        GPT_OSS_20B.load_bytes("int8")
    with pytest.raises(ValueError):
        GPT_OSS_20B.load_transient_bytes("int8")


def test_kv_cache_counts_sliding_layers_at_most_128_tokens():
    per_token_layer = 2 * 8 * 64 * 2  # K and V, 8 heads of 64, bf16
    assert kv_cache_bytes(100) == per_token_layer * 24 * 100  # below the window every layer grows
    assert kv_cache_bytes(4096) == per_token_layer * (12 * 4096 + 12 * 128)
    assert kv_cache_bytes(4096, dtype_bytes=1) == kv_cache_bytes(4096) // 2
    assert kv_cache_bytes(4096, model="gpt-oss-120b") == per_token_layer * (18 * 4096 + 18 * 128)
    assert GPT_OSS_20B.kv_cache_bytes(1000, batch_size=3) == 3 * GPT_OSS_20B.kv_cache_bytes(1000)
    assert kv_cache_bytes(0) == 0
    with pytest.raises(ValueError):
        kv_cache_bytes(-1)
    with pytest.raises(ValueError):
        kv_cache_bytes(10, model="llama")


@pytest.mark.parametrize("name", ["openai/gpt-oss-20b", "synthetic:gpt-oss-20b", "gpt-oss-20b", "OpenAI/GPT-OSS-20B"])
def test_spec_for_recognises_20b_spellings(name):
    assert spec_for(name) is GPT_OSS_20B


@pytest.mark.parametrize("name", ["openai/gpt-oss-120b", "synthetic:gpt-oss-120b", "gpt-oss-120b"])
def test_spec_for_recognises_120b_spellings(name):
    assert spec_for(name) is GPT_OSS_120B


@pytest.mark.parametrize("name", ["", None, "synthetic:tiny", "meta-llama/Llama-3-8B", "someone/gpt-oss-20b", "/tmp/ckpt"])
def test_spec_for_rejects_everything_else(name):
    assert spec_for(name) is None


def test_spec_from_config_reads_local_checkpoints():
    assert spec_from_config({"model_type": "gpt_oss", "num_hidden_layers": 36, "num_local_experts": 128, "hidden_size": 2880}) is GPT_OSS_120B
    assert spec_from_config({"model_type": "gpt_oss", "num_hidden_layers": 2, "num_local_experts": 4, "hidden_size": 64}) is None
    assert spec_from_config({"model_type": "llama"}) is None
    assert spec_from_config("nope") is None


def test_to_dict_has_the_roofline_inputs():
    d = GPT_OSS_20B.to_dict()
    assert d["bytes_per_token"]["mxfp4"] == GPT_OSS_20B.bytes_per_token("mxfp4")
    assert d["hub_id"] == "openai/gpt-oss-20b" and d["params_total"] == GPT_OSS_20B.params_total


@pytest.mark.parametrize(
    "nvml_name,total_gib,expected,bandwidth_gbs,cc",
    [
        ("Tesla T4", 15, "T4", 320, "7.5"),
        ("NVIDIA L4", 22, "L4", 300, "8.9"),
        ("NVIDIA A10G", 22, "A10G", 600, "8.6"),
        ("NVIDIA A10", 22, "A10", 600, "8.6"),
        ("NVIDIA A100-SXM4-40GB", 40, "A100 SXM 40GB", 1555, "8.0"),
        ("NVIDIA A100-SXM4-80GB", 80, "A100 SXM 80GB", 2039, "8.0"),
        ("NVIDIA A100-PCIE-40GB", 40, "A100 PCIe 40GB", 1555, "8.0"),
        ("NVIDIA A100 80GB PCIe", 80, "A100 PCIe 80GB", 1935, "8.0"),
        ("NVIDIA H100 80GB HBM3", 80, "H100 SXM 80GB", 3350, "9.0"),
        ("NVIDIA H100 PCIe", 80, "H100 PCIe 80GB", 2000, "9.0"),
        ("NVIDIA H100 NVL", 94, "H100 NVL 94GB", 3900, "9.0"),
        ("NVIDIA H200", 141, "H200 SXM 141GB", 4800, "9.0"),
        ("NVIDIA B200", 180, "B200 180GB", 8000, "10.0"),
        ("NVIDIA L40S", 45, "L40S", 864, "8.9"),
        ("NVIDIA GeForce RTX 4090", 24, "GeForce RTX 4090", 1008, "8.9"),
        ("NVIDIA GeForce RTX 3090", 24, "GeForce RTX 3090", 936, "8.6"),
        ("Tesla V100-SXM2-16GB", 16, "V100 16GB", 900, "7.0"),
        ("Tesla V100-SXM2-32GB", 32, "V100 32GB", 900, "7.0"),
        ("Tesla P100-PCIE-16GB", 16, "P100 16GB", 732, "6.0"),
    ],
)
def test_known_gpu_matches_nvml_names(nvml_name, total_gib, expected, bandwidth_gbs, cc):
    spec = known_gpu(nvml_name, total_gib * GiB)
    assert spec is not None and spec.name == expected
    assert spec.memory_bandwidth_bytes_s == bandwidth_gbs * 1e9
    assert spec.compute_capability == cc
    assert spec.source.startswith("datasheet")


def test_known_gpu_uses_memory_only_to_disambiguate_and_refuses_to_guess():
    assert known_gpu("NVIDIA A100", 80 * GiB) is None  # 80GB without form factor: 1935 or 2039 GB/s?
    assert known_gpu("NVIDIA A100", 40 * GiB).memory_bandwidth_bytes_s == 1555e9
    assert known_gpu("NVIDIA A100-SXM4", 80 * GiB).name == "A100 SXM 80GB"
    assert known_gpu("NVIDIA A100") is None
    assert known_gpu("NVIDIA H100") is None
    assert known_gpu("NVIDIA GH200 480GB") is None
    assert known_gpu("Some Future GPU") is None
    assert known_gpu("") is None and known_gpu(None) is None


def test_gpu_table_is_consistent():
    names = [g.name for g in ALL]
    assert len(names) == len(set(names))
    for g in ALL:
        assert g.memory_bandwidth_bytes_s > 1e11 and g.cc_tuple >= (6, 0) and g.memory_gb > 0
        assert g.to_dict()["name"] == g.name
