"""Synthetic checkpoints: specs, the MXFP4 quantizer, the streaming writer, the cache folder."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import namedtuple
from pathlib import Path

import pytest
import torch

from bench.models import synthetic as syn
from bench.models.synthetic import cache, writer
from bench.results.errors import UserError

DiskUsage = namedtuple("DiskUsage", "total used free")


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("model-*.safetensors"))


@pytest.fixture()
def tiny(tmp_path) -> syn.SyntheticCheckpoint:
    return syn.ensure("tiny", cache_dir=tmp_path, progress=False)


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, layers, experts, params_b, active_b, ckpt_gb",
    [("gpt-oss-20b", 24, 32, 20.91, 3.61, 13.76), ("gpt-oss-120b", 36, 128, 116.83, 5.13, 65.25)],
)
def test_big_specs_match_the_real_checkpoints(name, layers, experts, params_b, active_b, ckpt_gb):
    spec = syn.SYNTHETIC_MODELS[name]
    cfg = spec.config_dict()
    assert cfg["num_hidden_layers"] == layers and cfg["num_local_experts"] == experts
    assert cfg["num_experts_per_tok"] == cfg["experts_per_token"] == 4
    assert (cfg["hidden_size"], cfg["intermediate_size"], cfg["head_dim"]) == (2880, 2880, 64)
    assert (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]) == (64, 8, 201088)
    assert cfg["sliding_window"] == 128 and cfg["tie_word_embeddings"] is False
    assert cfg["layer_types"] == ["sliding_attention", "full_attention"] * (layers // 2)
    assert cfg["rope_theta"] == 150000 and cfg["rope_scaling"]["rope_type"] == "yarn"
    assert cfg["rope_scaling"]["factor"] == 32.0 and cfg["rope_scaling"]["original_max_position_embeddings"] == 4096
    assert cfg["eos_token_id"] == 200002 and cfg["pad_token_id"] == 199999
    assert cfg["quantization_config"] == {
        "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"],
        "quant_method": "mxfp4",
    }
    gen = spec.generation_config_dict()
    assert gen["bos_token_id"] == 199998 and gen["eos_token_id"] == [200002, 199999, 200012]
    assert round(spec.parameter_count() / 1e9, 2) == params_b
    assert round(spec.active_parameter_count() / 1e9, 2) == active_b
    assert round(spec.checkpoint_bytes() / 1e9, 2) == ckpt_gb


def test_transformers_reads_the_configs_as_the_real_architecture():
    from transformers import GptOssConfig

    cfg = GptOssConfig.from_dict(syn.SYNTHETIC_MODELS["gpt-oss-120b"].config_dict())
    default = GptOssConfig()  # transformers' defaults are the 120b shape
    for key in ("num_hidden_layers", "num_local_experts", "hidden_size", "intermediate_size", "head_dim",
                "num_attention_heads", "num_key_value_heads", "vocab_size", "sliding_window", "layer_types"):
        assert getattr(cfg, key) == getattr(default, key), key
    rope = cfg.rope_parameters
    assert rope["rope_type"] == "yarn" and rope["rope_theta"] == 150000 and rope["factor"] == 32.0
    assert cfg.quantization_config["quant_method"] == "mxfp4"
    tiny = GptOssConfig.from_dict(syn.SYNTHETIC_MODELS["tiny"].config_dict())
    assert tiny.layer_types == ["sliding_attention", "full_attention"]


def test_config_names_a_transformers_version_below_5():
    """transformers 5.17 reads a local config without one (or with 5.x and a Mistral type) as a
    Mistral tokenizer's and warns "incorrect regex pattern" on every load; the real checkpoint
    says 4.55.0.dev0, and a gpt_oss config below 5.0 skips that check."""
    from packaging.version import Version

    cfg = syn.SYNTHETIC_MODELS["tiny"].config_dict()
    assert Version(cfg["transformers_version"]) < Version("5.0.0") and cfg["model_type"] == "gpt_oss"


@pytest.mark.parametrize("name", list(syn.SYNTHETIC_MODELS))
def test_tensor_plan_is_exactly_the_models_state_dict(name):
    from transformers import GptOssConfig, GptOssForCausalLM

    spec = syn.SYNTHETIC_MODELS[name]
    with torch.device("meta"):
        model = GptOssForCausalLM(GptOssConfig.from_dict(spec.config_dict()))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    plan = {t.name: t for t in spec.tensors()}
    logical = {n.removesuffix("_blocks").removesuffix("_scales") for n in plan}
    assert logical == set(shapes)
    for t in plan.values():
        if t.init != "mxfp4":
            assert t.shape == shapes[t.name], t.name
        elif t.name.endswith("_blocks"):  # [E, out, in/32, 16] encodes the parameter [E, in, out]
            e, out_dim, g, b = t.shape
            assert (e, g * b * 2, out_dim) == shapes[t.source], t.name
    assert spec.parameter_count() == sum(math.prod(s) for s in shapes.values())


def test_tiny_spec_is_small_and_mxfp4_compatible():
    spec = syn.SYNTHETIC_MODELS["tiny"]
    spec.validate()
    assert spec.hidden_size % 32 == 0 and spec.intermediate_size % 32 == 0
    assert spec.checkpoint_bytes() < 2_000_000
    # the harmony tokens sit at the top of the small vocabulary
    assert spec.token_id("<|endofprompt|>") == spec.vocab_size - 1
    assert spec.config_dict()["eos_token_id"] == spec.token_id("<|return|>")
    bad = syn.SyntheticSpec(**{**spec.__dict__, "hidden_size": 48})
    with pytest.raises(ValueError, match="multiples of 32"):
        bad.validate()


def test_unknown_name_is_a_user_error():
    with pytest.raises(UserError, match="synthetic:tiny"):
        syn.get_spec("synthetic:huge")
    assert syn.get_spec("synthetic:tiny") is syn.get_spec("tiny")


# --------------------------------------------------------------------------------------------
# The MXFP4 quantizer
# --------------------------------------------------------------------------------------------


def test_representable_values_round_trip_exactly():
    vals = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.5, -1, -1.5, -2, -3, -4, -6, 0] * 2)
    for shift in (-10, 0, 3):
        x = torch.ldexp(vals, torch.tensor(float(shift)))[None]
        blocks, scales = syn.quantize_mxfp4(x)
        assert scales.item() == 127 + shift
        assert torch.equal(syn.dequantize_mxfp4(blocks, scales, torch.float32), x)


def test_rounding_is_to_nearest_with_ties_to_the_even_code():
    # block max 6 -> scale 2**0; each tie goes to the code with an even mantissa
    x = torch.tensor([6.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.75, 0.3, 2.9, 5.1] + [0.0] * 20)[None]
    blocks, scales = syn.quantize_mxfp4(x)
    got = syn.dequantize_mxfp4(blocks, scales, torch.float32)[0, :12].tolist()
    assert got == [6.0, 0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, -1.0, 0.5, 3.0, 6.0]


def test_packing_is_low_nibble_first_and_signs_use_bit_3():
    x = torch.zeros(1, 32)
    x[0, 0], x[0, 1] = 0.5, -6.0  # codes 1 and 15 -> byte 0xF1
    blocks, scales = syn.quantize_mxfp4(x)
    assert blocks.shape == (1, 1, 16) and scales.shape == (1, 1)
    assert blocks[0, 0, 0].item() == 0xF1 and scales.item() == 127


def test_random_values_round_to_the_nearest_grid_point_without_saturation():
    x = torch.randn(64, 256, generator=torch.Generator().manual_seed(1)) * 0.02
    blocks, scales = syn.quantize_mxfp4(x)
    deq = syn.dequantize_mxfp4(blocks, scales, torch.float32)
    step = torch.ldexp(torch.ones_like(scales, dtype=torch.float32), scales.float() - 127).repeat_interleave(32, dim=-1)
    q = x.abs() / step
    assert (q <= 6).all()  # the scale leaves room for the block maximum: nothing clips
    grid = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6])
    nearest = (q.unsqueeze(-1) - grid).abs().min(-1).values
    assert torch.allclose((deq.abs() / step - q).abs(), nearest)
    assert torch.equal(torch.signbit(deq) | (deq == 0), torch.signbit(x) | (deq == 0))


def test_zero_block_and_bad_shapes():
    blocks, scales = syn.quantize_mxfp4(torch.zeros(2, 32))
    assert scales.tolist() == [[0], [0]] and blocks.sum().item() == 0
    with pytest.raises(ValueError, match="multiple of 32"):
        syn.quantize_mxfp4(torch.zeros(2, 48))


def test_layout_matches_transformers_dequantizer():
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    w = torch.randn(3, 64, 96, generator=torch.Generator().manual_seed(2)) * 0.02
    blocks, scales = syn.quantize_mxfp4(w)
    assert blocks.shape == (3, 64, 3, 16) and scales.shape == (3, 64, 3)
    ours = syn.dequantize_mxfp4(blocks, scales)  # [E, rows, K]
    theirs = convert_moe_packed_tensors(blocks, scales, dtype=torch.bfloat16)  # [E, K, rows]
    assert torch.equal(ours.transpose(1, 2).view(torch.int16), theirs.view(torch.int16))


@pytest.mark.gpu
def test_quantizer_gives_the_same_bytes_on_cuda():
    w = torch.randn(256, 2880, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16) * 0.02
    cpu = syn.quantize_mxfp4(w)
    gpu = syn.quantize_mxfp4(w.cuda())
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, gpu))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def test_tiny_checkpoint_files_index_and_tensors(tiny):
    from safetensors import safe_open

    folder = tiny.path
    assert tiny.written and tiny.write_s is not None
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", syn.INDEX,
            syn.MANIFEST} <= names
    spec = syn.SYNTHETIC_MODELS["tiny"]
    index = json.loads((folder / syn.INDEX).read_text())
    planned = {t.name: t for t in spec.tensors()}
    assert set(index["weight_map"]) == set(planned)
    assert index["metadata"]["total_size"] == spec.checkpoint_bytes()
    seen = set()
    for shard in _shards(folder):
        with safe_open(str(shard), framework="pt") as f:
            assert f.metadata() == {"format": "pt"}
            for name in f.keys():
                t = f.get_tensor(name)
                assert tuple(t.shape) == planned[name].shape
                assert t.dtype == (torch.bfloat16 if planned[name].dtype == "BF16" else torch.uint8)
                seen.add(name)
    assert seen == set(planned)
    # every tensor holds exactly the bytes its chunks' generators give (tensors.tensor_values)
    for shard in _shards(folder):
        with safe_open(str(shard), framework="pt") as f:
            for name in f.keys():
                assert torch.equal(f.get_tensor(name), syn.tensor_values(spec, planned[name], 0)), name
    norm = syn.tensor_values(spec, planned["model.layers.1.input_layernorm.weight"], 0)
    assert torch.equal(norm, torch.ones_like(norm))
    manifest = tiny.manifest
    assert manifest["complete"] is True and manifest["name"] == "tiny" and manifest["seed"] == 0
    assert manifest["format_version"] == syn.FORMAT_VERSION
    assert manifest["files"]["config.json"]["sha256"] == _sha(folder / "config.json")
    assert manifest["parameters"] == spec.parameter_count()


def test_many_shards_and_determinism(tmp_path):
    a = syn.build("tiny", tmp_path / "a", progress=False, max_shard_bytes=100_000)
    b = syn.build("tiny", tmp_path / "b", progress=False)
    c = syn.build("tiny", tmp_path / "c", seed=1, progress=False)
    shards = _shards(a.path)
    assert len(shards) >= 3 and shards[0].name == f"model-00001-of-{len(shards):05d}.safetensors"
    index = json.loads((a.path / syn.INDEX).read_text())
    assert set(index["weight_map"].values()) == {p.name for p in shards}
    # same seed -> same bytes whatever the sharding; another seed -> other bytes
    from safetensors.torch import load_file

    def tensors(folder):
        out = {}
        for p in _shards(folder):
            out.update(load_file(str(p)))
        return out

    ta, tb, tc = tensors(a.path), tensors(b.path), tensors(c.path)
    assert all(torch.equal(ta[k], tb[k]) for k in ta)
    assert not torch.equal(ta["model.embed_tokens.weight"], tc["model.embed_tokens.weight"])
    assert _sha(_shards(b.path)[0]) == _sha(_shards(syn.build("tiny", tmp_path / "d", progress=False).path)[0])


def test_second_write_is_byte_for_byte_the_same_whatever_the_workers(tmp_path):
    """Small chunks, so every tensor spans several: the bytes depend on (seed, name, chunk) only."""
    spec = syn.SYNTHETIC_MODELS["tiny"]
    shards = syn.plan_shards(spec, max_shard_bytes=300_000)
    digests = []
    for jobs in (1, 3, 8):
        out = tmp_path / f"j{jobs}"
        out.mkdir()
        writer.write_shards(spec, 0, out, shards, jobs=jobs, progress=False, chunk_size=4096)
        digests.append({s.name: _sha(out / s.name) for s in shards})
        with open(out / shards[0].name, "rb") as f:
            f.seek(len(shards[0].header))
            embed = f.read(spec.tensors()[0].nbytes)
        assert embed == syn.tensor_bytes(spec, spec.tensors()[0], 0, chunk_size=4096).tobytes()
    assert digests[0] == digests[1] == digests[2]


def _dequantized(spec, blocks_t, scales_t, seed=0):
    blocks = syn.tensor_values(spec, blocks_t, seed)
    scales = syn.tensor_values(spec, scales_t, seed)
    return blocks, scales, syn.dequantize_mxfp4(blocks, scales, torch.float32)


@pytest.mark.parametrize("name", list(syn.SYNTHETIC_MODELS))
def test_values_are_weights_of_about_the_init_std(name):
    """Dequantized MXFP4 and bf16 bit patterns: finite, centred, about init_std; norms are ones."""
    spec = syn.SYNTHETIC_MODELS[name]
    plan = {t.name: t for t in spec.tensors()}
    x = "model.layers.1.mlp.experts.down_proj"
    blocks_t, scales_t = plan[x + "_blocks"], plan[x + "_scales"]
    if name != "tiny":  # the first expert's rows only: the chunks are generated independently
        e = blocks_t.shape[0]
        blocks_t = syn.TensorSpec(blocks_t.name, "U8", (1, *blocks_t.shape[1:]), "mxfp4", x)
        scales_t = syn.TensorSpec(scales_t.name, "U8", (1, *scales_t.shape[1:]), "mxfp4", x)
        assert e > 1
    _, scales, w = _dequantized(spec, blocks_t, scales_t)
    assert set(scales.unique().tolist()) <= {119, 120}  # 2**-8 and 2**-7 for init_std 0.02
    assert torch.isfinite(w).all() and abs(w.mean().item()) < 0.1 * spec.init_std
    assert 0.75 < w.std().item() / spec.init_std < 1.25
    assert w.std().item() == pytest.approx(syn.expected_std(spec, blocks_t), rel=0.05)
    for tname in ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.router.bias", "lm_head.weight"):
        t = plan[tname]
        if t.nbytes > syn.CHUNK_BYTES:
            t = syn.TensorSpec(t.name, "BF16", (syn.CHUNK_BYTES // 2 // t.shape[-1], t.shape[-1]))
        v = syn.tensor_values(spec, t, 0).float()
        assert torch.isfinite(v).all() and (v != 0).all() and abs(v.mean().item()) < 0.2 * spec.init_std
        assert 0.75 < v.std().item() / spec.init_std < 1.25
        assert v.abs().max().item() < 8 * spec.init_std  # a narrow exponent range: no outliers
    norm = syn.tensor_values(spec, plan["model.norm.weight"], 0)
    assert torch.equal(norm, torch.ones_like(norm))


def test_written_mxfp4_agrees_with_the_reference_quantizer():
    """The quantizer (written from the format's definition) maps the dequantized values back to
    the same bytes for every block that holds a ±6: those have only one valid encoding."""
    spec = syn.SYNTHETIC_MODELS["tiny"]
    plan = {t.name: t for t in spec.tensors()}
    x = "model.layers.0.mlp.experts.gate_up_proj"
    blocks, scales, w = _dequantized(spec, plan[x + "_blocks"], plan[x + "_scales"])
    codes = torch.stack([blocks & 0x0F, blocks >> 4], dim=-1).flatten(-2)
    full = ((codes & 0x7) == 7).any(dim=-1)  # e2m1 code 7 is 6.0
    assert full.float().mean().item() > 0.9
    again_blocks, again_scales = syn.quantize_mxfp4(w)
    assert torch.equal(again_scales[full], scales[full])
    assert torch.equal(again_blocks[full], blocks[full])


def test_bf16_and_scale_patterns_follow_the_init_std():
    from bench.models.synthetic import tensors

    for std in (0.002, 0.02, 0.2):
        spec = syn.SyntheticSpec(**{**syn.SYNTHETIC_MODELS["tiny"].__dict__, "init_std": std})
        t = syn.TensorSpec("w", "BF16", (256, 256))
        v = syn.tensor_values(spec, t, 0).float()
        assert 0.6 < v.std().item() / std < 1.6
        assert v.std().item() == pytest.approx(syn.expected_std(spec, t), rel=0.05)
        b = syn.TensorSpec("x_blocks", "U8", (64, 8, 16), "mxfp4", "x")
        sc = syn.TensorSpec("x_scales", "U8", (64, 8), "mxfp4", "x")
        _, _, w = _dequantized(spec, b, sc)
        assert 0.6 < w.std().item() / std < 1.6
    with pytest.raises(ValueError, match="init std"):
        tensors.bf16_masks(1e-40)


def test_shard_plan_headers_and_pieces_cover_every_byte_once():
    spec = syn.SYNTHETIC_MODELS["tiny"]
    shards = syn.plan_shards(spec, max_shard_bytes=100_000)
    assert len(shards) >= 3 and [t for s in shards for t in s.tensors] == spec.tensors()
    for s in shards:
        n = int.from_bytes(s.header[:8], "little")
        assert len(s.header) == 8 + n and n % 8 == 0
        header = json.loads(s.header[8:])
        assert header.pop("__metadata__") == {"format": "pt"}
        ends = [header[t.name]["data_offsets"] for t in s.tensors]
        assert ends[0][0] == 0 and all(a[1] == b[0] for a, b in zip(ends, ends[1:]))
        assert s.size == len(s.header) + ends[-1][1]
    # the pieces tile every shard's data exactly, each shard in file order, the shards in turn
    chunk = 4096
    spans: dict[int, list[tuple[int, int]]] = {}
    order = []
    for p in writer.pieces(shards, chunk):
        n = min(chunk, p.tensor.nbytes - p.index * chunk)
        spans.setdefault(p.shard, []).append((p.offset, p.offset + n))
        order.append(p.shard)
    for si, s in enumerate(shards):
        got = spans[si]
        assert got == sorted(got) and got[0][0] == len(s.header) and got[-1][1] == s.size
        assert all(a[1] == b[0] for a, b in zip(got, got[1:]))
    assert order[:len(shards)] == list(range(len(shards)))


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    syn.build("tiny", tmp_path / "p", progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "writing synthetic:tiny" in err


# --------------------------------------------------------------------------------------------
# The cache folder
# --------------------------------------------------------------------------------------------


def test_valid_cache_is_reused_without_rewriting(tiny, tmp_path):
    before = _mtimes(tiny.path)
    again = syn.ensure("tiny", cache_dir=tmp_path, progress=False)
    assert again.path == tiny.path and not again.written and again.write_s is None
    assert again.manifest == tiny.manifest
    assert _mtimes(tiny.path) == before


def _damage_truncate(folder: Path):
    shard = _shards(folder)[0]
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size - 10)


def _damage_delete(folder: Path):
    (folder / "tokenizer.json").unlink()


def _damage_manifest(folder: Path):
    (folder / syn.MANIFEST).write_text("{not json")


def _damage_incomplete(folder: Path):
    m = json.loads((folder / syn.MANIFEST).read_text())
    m["complete"] = False
    (folder / syn.MANIFEST).write_text(json.dumps(m))


def _damage_other_seed(folder: Path):
    m = json.loads((folder / syn.MANIFEST).read_text())
    m["seed"] = 7
    (folder / syn.MANIFEST).write_text(json.dumps(m))


def _damage_config_same_size(folder: Path):
    p = folder / "config.json"
    data = bytearray(p.read_bytes())
    data[data.index(b"silu")] = ord("S")
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_delete, _damage_manifest, _damage_incomplete,
                                    _damage_other_seed, _damage_config_same_size])
def test_damaged_cache_is_detected_and_rebuilt(tiny, tmp_path, damage, capsys):
    good = {p.name: _sha(p) for p in tiny.path.iterdir() if p.name != syn.MANIFEST}
    damage(tiny.path)
    assert syn.check_folder(tiny.path, "tiny", 0) is not None
    again = syn.ensure("tiny", cache_dir=tmp_path, progress=False)
    assert again.written
    assert syn.check_folder(again.path, "tiny", 0) is None
    assert {p.name: _sha(p) for p in again.path.iterdir() if p.name != syn.MANIFEST} == good
    assert "rebuilding" in capsys.readouterr().err


def test_leftover_temp_folders(tmp_path):
    parent = syn.cache_path("tiny", 0, tmp_path).parent
    parent.mkdir(parents=True)
    final = syn.cache_path("tiny", 0, tmp_path).name
    dead = parent / f".{final}{cache._TMP_MARK}999999999-abcd"  # no such pid
    alive = parent / f".{final}{cache._TMP_MARK}1-abcd"  # pid 1 is always running
    for d in (dead, alive):
        d.mkdir()
        (d / "model-00001-of-00001.safetensors").write_bytes(b"partial")
    ck = syn.ensure("tiny", cache_dir=tmp_path, progress=False)
    assert ck.written and syn.check_folder(ck.path, "tiny", 0) is None
    assert not dead.exists() and alive.exists()
    assert not any(p.name.startswith(f".{final}") and p != alive for p in parent.iterdir())


def test_interrupted_write_leaves_no_folder(tmp_path, monkeypatch):
    real = writer.chunk_data

    def interrupted(spec, t, seed, index, chunk_size=syn.CHUNK_BYTES):
        if t.name.startswith("model.layers.1."):  # half-way through the shard
            raise KeyboardInterrupt
        return real(spec, t, seed, index, chunk_size)

    monkeypatch.setattr(writer, "chunk_data", interrupted)
    with pytest.raises(KeyboardInterrupt):  # the original exception, not the writer's complaint
        syn.ensure("tiny", cache_dir=tmp_path, progress=False)
    parent = syn.cache_path("tiny", 0, tmp_path).parent
    assert list(parent.iterdir()) == []
    monkeypatch.setattr(writer, "chunk_data", real)
    assert syn.ensure("tiny", cache_dir=tmp_path, progress=False).written


def test_a_disk_that_fills_up_while_writing_is_a_user_error(tmp_path, monkeypatch):
    import errno

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.os, "pwrite", full)
    with pytest.raises(UserError) as e:
        syn.ensure("tiny", cache_dir=tmp_path, progress=False)
    assert "filled up" in str(e.value) and "--cache-dir" in str(e.value) and "\n" not in str(e.value)
    assert list(syn.cache_path("tiny", 0, tmp_path).parent.iterdir()) == []


def test_disk_space_is_checked_before_writing(tmp_path):
    calls = []

    def small_disk(path):
        calls.append(path)
        return DiskUsage(total=100e9, used=95e9, free=5e9)

    with pytest.raises(UserError) as e:
        syn.ensure("gpt-oss-20b", cache_dir=tmp_path, progress=False, disk_usage=small_disk)
    msg = str(e.value)
    assert "13.8 GB" in msg and "5.0 GB" in msg and "--cache-dir" in msg and "\n" not in msg
    assert calls and not any(syn.cache_path("gpt-oss-20b", 0, tmp_path).parent.iterdir())
    with pytest.raises(UserError, match="65.3 GB"):
        syn.ensure("gpt-oss-120b", cache_dir=tmp_path, progress=False, disk_usage=small_disk)
    # enough room: the check passes and returns the need
    need = syn.check_disk(syn.SYNTHETIC_MODELS["tiny"], tmp_path, lambda p: DiskUsage(1e12, 0, 1e12))
    assert need > syn.SYNTHETIC_MODELS["tiny"].checkpoint_bytes()


def test_build_refuses_a_foreign_folder_but_takes_an_empty_one(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a synthetic checkpoint"):
        syn.build("tiny", foreign, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert syn.build("tiny", empty, progress=False).written


def test_force_rewrites_a_valid_folder(tiny, tmp_path):
    again = syn.ensure("tiny", cache_dir=tmp_path, progress=False, force=True)
    assert again.written and syn.check_folder(again.path, "tiny", 0) is None


def test_default_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GPTOSS_CACHE", str(tmp_path / "g"))
    assert syn.cache_path("tiny") == tmp_path / "g" / "synthetic" / f"tiny-seed0-v{syn.FORMAT_VERSION}"
    monkeypatch.delenv("GPTOSS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert syn.cache_path("gpt-oss-20b", 3) == tmp_path / "x" / "gptoss-harness" / "synthetic" / f"gpt-oss-20b-seed3-v{syn.FORMAT_VERSION}"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert syn.default_cache_root() == Path(os.path.expanduser("~")) / ".cache" / "gptoss-harness"
    assert syn.cache_path("tiny", 0, tmp_path / "c").parent == tmp_path / "c" / "synthetic"
