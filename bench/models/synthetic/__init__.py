"""Synthetic gpt-oss checkpoints: the exact architecture with deterministic random weights.

``synthetic:tiny``, ``synthetic:gpt-oss-20b`` and ``synthetic:gpt-oss-120b`` are written once,
as a real checkpoint, into a cache folder and then loaded through the same ``from_pretrained``
path as the real weights:

- ``config.json``: the real checkpoint's config (same keys, same MXFP4 ``quantization_config``),
  ``generation_config.json`` like the instruct checkpoint's;
- ``model-0000i-of-0000N.safetensors`` + ``model.safetensors.index.json``: bf16 tensors, and the
  expert weights as real MXFP4 tensors (``*_blocks``/``*_scales``, uint8) produced by our own
  quantizer from random bf16 weights;
- ``tokenizer.json`` + ``tokenizer_config.json`` (bench.models.harmony: harmony special tokens, chat
  template honouring ``reasoning_effort``);
- ``manifest.json``: name, seed, format version, tool version, every file with its size (and
  sha256 for the small ones), ``complete: true``.

Writing streams tensor by tensor (expert by expert for the MoE weights) straight into the
safetensors shards: nothing close to the model's size is ever held in memory. Each tensor draws
from its own ``torch.Generator`` seeded from (seed, tensor name), so the bytes depend only on
the seed and the shapes. A folder is written into a temporary sibling and renamed when
complete; a partial or damaged folder (missing or short file, bad manifest) is rebuilt.

The folder: ``<cache root>/synthetic/<name>-seed<seed>-v<FORMAT_VERSION>``, where the cache root
is the ``cache_dir`` argument, else ``$GPTOSS_CACHE``, else ``$XDG_CACHE_HOME/gptoss-harness``
(``~/.cache/gptoss-harness``).

MXFP4 (OCP microscaling, as gpt-oss stores it): 32 consecutive values along the input dimension
share one e8m0 scale byte (2**(byte - 127)); each value is an e2m1 code (sign, 2 exponent bits,
1 mantissa bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6), two codes per byte, low nibble first. Our
quantizer picks the smallest power-of-two scale that keeps the block's largest magnitude within
6 (so nothing saturates) and rounds to the nearest code, ties to the even code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from bench import __version__
from bench.results.errors import UserError
from diagnostics.models import GPT_OSS_20B, GPT_OSS_120B

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Bump when the bytes written for a (name, seed) change; old cache folders are then ignored.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INDEX = "model.safetensors.index.json"
MAX_SHARD_BYTES = 4_800_000_000
SMALL_FILE_BYTES = 64 * 1024 * 1024  # files below this are hashed in the manifest and on reuse
DEFAULT_SEED = 0
_TMP_MARK = ".tmp-"

MXFP4_BLOCK = 32
E2M1_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # codes 0..7; code | 8 is the negative

QUANTIZATION_CONFIG = {
    "modules_to_not_convert": [
        "model.layers.*.self_attn",
        "model.layers.*.mlp.router",
        "model.embed_tokens",
        "lm_head",
    ],
    "quant_method": "mxfp4",
}

ROPE_SCALING = {
    "beta_fast": 32.0,
    "beta_slow": 1.0,
    "factor": 32.0,
    "original_max_position_embeddings": 4096,
    "rope_type": "yarn",
    "truncate": False,
}


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSpec:
    name: str
    description: str
    num_hidden_layers: int
    num_local_experts: int
    num_experts_per_tok: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    sliding_window: int = 128
    max_position_embeddings: int = 131072
    rope_theta: float = 150000.0
    init_std: float = 0.02

    @property
    def special_base(self) -> int:
        from bench.models.harmony import special_base_for

        return special_base_for(self.vocab_size)

    def token_id(self, token: str) -> int:
        from bench.models.harmony import HARMONY_SPECIAL_TOKENS

        return self.special_base + HARMONY_SPECIAL_TOKENS.index(token)

    @property
    def layer_types(self) -> list[str]:
        return ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(self.num_hidden_layers)]

    def config_dict(self) -> dict[str, Any]:
        """config.json: the real checkpoint's keys (legacy spellings included, as it has them)."""
        return {
            "architectures": ["GptOssForCausalLM"],
            "attention_bias": True,
            "attention_dropout": 0.0,
            "eos_token_id": self.token_id("<|return|>"),
            "experts_per_token": self.num_experts_per_tok,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initial_context_length": 4096,
            "initializer_range": self.init_std,
            "intermediate_size": self.intermediate_size,
            "layer_types": self.layer_types,
            "max_position_embeddings": self.max_position_embeddings,
            "model_type": "gpt_oss",
            "num_attention_heads": self.num_attention_heads,
            "num_experts_per_tok": self.num_experts_per_tok,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "num_local_experts": self.num_local_experts,
            "output_router_logits": False,
            "pad_token_id": self.token_id("<|endoftext|>"),
            "quantization_config": json.loads(json.dumps(QUANTIZATION_CONFIG)),
            "rms_norm_eps": 1e-05,
            "rope_scaling": dict(ROPE_SCALING),
            "rope_theta": self.rope_theta,
            "router_aux_loss_coef": 0.9,
            "sliding_window": self.sliding_window,
            "swiglu_limit": 7.0,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            # As the real checkpoint has it. Without it, transformers 5.17 (not 5.23) takes a
            # local tokenizer for a Mistral one and warns about "an incorrect regex pattern".
            "transformers_version": "4.55.0.dev0",
            "use_cache": True,
            "vocab_size": self.vocab_size,
        }

    def generation_config_dict(self) -> dict[str, Any]:
        """generation_config.json as the instruct checkpoint has it (it samples by default)."""
        return {
            "bos_token_id": self.token_id("<|startoftext|>"),
            "do_sample": True,
            "eos_token_id": [self.token_id("<|return|>"), self.token_id("<|endoftext|>"), self.token_id("<|call|>")],
            "pad_token_id": self.token_id("<|endoftext|>"),
        }

    # --- sizes --------------------------------------------------------------------------------

    def _expert_params(self) -> int:
        h, i = self.hidden_size, self.intermediate_size
        return h * 2 * i + 2 * i + i * h + h

    def parameter_count(self) -> int:
        """Logical parameters (an MXFP4 value counts as one), as the model card counts them."""
        return sum(math.prod(t.logical_shape) for t in self.tensors())

    def active_parameter_count(self) -> int:
        """Per token: all but the unused experts and the embedding table (model-card style)."""
        inactive = self.num_hidden_layers * (self.num_local_experts - self.num_experts_per_tok) * self._expert_params()
        return self.parameter_count() - inactive - self.vocab_size * self.hidden_size

    def checkpoint_bytes(self) -> int:
        """Bytes of tensor data the safetensors shards hold."""
        return sum(t.nbytes for t in self.tensors())

    def tensors(self) -> list["TensorSpec"]:
        return [t for unit in self.units() for t in unit.tensors]

    def units(self) -> list["Unit"]:
        """The checkpoint in write order; a unit (embedding, one layer, head) never spans shards."""
        h, i, e = self.hidden_size, self.intermediate_size, self.num_local_experts
        q, kv = self.num_attention_heads * self.head_dim, self.num_key_value_heads * self.head_dim
        g_h, g_i = h // MXFP4_BLOCK, i // MXFP4_BLOCK
        units = [Unit("embed", [TensorSpec("model.embed_tokens.weight", "BF16", (self.vocab_size, h))])]
        for n in range(self.num_hidden_layers):
            p = f"model.layers.{n}."
            x = p + "mlp.experts."
            units.append(Unit(f"layer {n}", [
                TensorSpec(p + "input_layernorm.weight", "BF16", (h,), init="ones"),
                TensorSpec(p + "self_attn.q_proj.weight", "BF16", (q, h)),
                TensorSpec(p + "self_attn.q_proj.bias", "BF16", (q,)),
                TensorSpec(p + "self_attn.k_proj.weight", "BF16", (kv, h)),
                TensorSpec(p + "self_attn.k_proj.bias", "BF16", (kv,)),
                TensorSpec(p + "self_attn.v_proj.weight", "BF16", (kv, h)),
                TensorSpec(p + "self_attn.v_proj.bias", "BF16", (kv,)),
                TensorSpec(p + "self_attn.o_proj.weight", "BF16", (h, q)),
                TensorSpec(p + "self_attn.o_proj.bias", "BF16", (h,)),
                TensorSpec(p + "self_attn.sinks", "BF16", (self.num_attention_heads,)),
                TensorSpec(p + "post_attention_layernorm.weight", "BF16", (h,), init="ones"),
                TensorSpec(p + "mlp.router.weight", "BF16", (e, h)),
                TensorSpec(p + "mlp.router.bias", "BF16", (e,)),
                TensorSpec(x + "gate_up_proj_blocks", "U8", (e, 2 * i, g_h, 16), init="mxfp4", source=x + "gate_up_proj"),
                TensorSpec(x + "gate_up_proj_scales", "U8", (e, 2 * i, g_h), init="mxfp4", source=x + "gate_up_proj"),
                TensorSpec(x + "gate_up_proj_bias", "BF16", (e, 2 * i)),
                TensorSpec(x + "down_proj_blocks", "U8", (e, h, g_i, 16), init="mxfp4", source=x + "down_proj"),
                TensorSpec(x + "down_proj_scales", "U8", (e, h, g_i), init="mxfp4", source=x + "down_proj"),
                TensorSpec(x + "down_proj_bias", "BF16", (e, h)),
            ]))
        units.append(Unit("head", [
            TensorSpec("model.norm.weight", "BF16", (h,), init="ones"),
            TensorSpec("lm_head.weight", "BF16", (self.vocab_size, h)),
        ]))
        return units

    def validate(self) -> None:
        if self.hidden_size % MXFP4_BLOCK or self.intermediate_size % MXFP4_BLOCK:
            raise ValueError("MXFP4 needs hidden and intermediate sizes that are multiples of 32")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("query heads must be a multiple of the KV heads")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # safetensors dtype: BF16 | U8
    shape: tuple[int, ...]
    init: str = "normal"  # normal | ones | mxfp4
    source: str | None = None  # mxfp4: the logical weight the blocks/scales encode

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * (2 if self.dtype == "BF16" else 1)

    @property
    def logical_shape(self) -> tuple[int, ...]:
        """The shape as parameters: blocks count two values per byte, scales count nothing."""
        if self.name.endswith("_blocks"):
            return (*self.shape[:-2], self.shape[-2] * self.shape[-1] * 2)
        if self.name.endswith("_scales"):
            return (0,)
        return self.shape


@dataclass(frozen=True)
class Unit:
    label: str
    tensors: list[TensorSpec]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


SYNTHETIC_MODELS: dict[str, SyntheticSpec] = {
    "tiny": SyntheticSpec(
        name="tiny",
        description="2 layers (sliding + full), 4 experts top-2, hidden 64: runs anywhere in a second",
        num_hidden_layers=2,
        num_local_experts=4,
        num_experts_per_tok=2,
        hidden_size=64,
        intermediate_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        vocab_size=1024,
        sliding_window=32,
    ),
    **{
        real.name: SyntheticSpec(
            name=real.name,
            description=(
                f"the shapes of {real.hub_id} ({real.num_layers} layers, {real.num_experts} experts "
                f"top-{real.experts_per_token}), random weights"
            ),
            num_hidden_layers=real.num_layers,
            num_local_experts=real.num_experts,
            num_experts_per_tok=real.experts_per_token,
            hidden_size=real.hidden_size,
            intermediate_size=real.intermediate_size,
            num_attention_heads=real.num_attention_heads,
            num_key_value_heads=real.num_key_value_heads,
            head_dim=real.head_dim,
            vocab_size=real.vocab_size,
            sliding_window=real.sliding_window,
        )
        # The shapes of the real checkpoints live in one place: diagnostics.models.
        for real in (GPT_OSS_20B, GPT_OSS_120B)
    },
}


def get_spec(name: str) -> SyntheticSpec:
    key = name.removeprefix("synthetic:")
    if key not in SYNTHETIC_MODELS:
        known = ", ".join(f"synthetic:{n}" for n in SYNTHETIC_MODELS)
        raise UserError(f"unknown synthetic model '{name}'; use one of {known}.")
    return SYNTHETIC_MODELS[key]


# --------------------------------------------------------------------------------------------
# MXFP4 quantizer (our own, from the format definition)
# --------------------------------------------------------------------------------------------


def _boundaries(device) -> "torch.Tensor":
    import torch

    b = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0], dtype=torch.float32)
    b[1::2] = torch.nextafter(b[1::2], torch.zeros_like(b[1::2]))
    return b.to(device)


def quantize_mxfp4(w: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """``w [..., K]`` (K a multiple of 32) -> ``blocks uint8 [..., K/32, 16]``, ``scales uint8
    [..., K/32]``. Exact: the scale is a power of two chosen from the block maximum with frexp,
    and each value is rounded to the nearest e2m1 value, ties to the even code."""
    import torch

    *lead, k = w.shape
    if k % MXFP4_BLOCK:
        raise ValueError(f"the last dimension ({k}) must be a multiple of {MXFP4_BLOCK}")
    x = w.detach().to(torch.float32).reshape(*lead, k // MXFP4_BLOCK, MXFP4_BLOCK)
    amax = x.abs().amax(dim=-1)
    mant, exp = torch.frexp(amax)  # amax = mant * 2**exp, mant in [0.5, 1)
    # smallest X with amax <= 6 * 2**X: X = exp - 3 when mant <= 0.75, else exp - 2
    scale_exp = torch.where(mant <= 0.75, exp - 3, exp - 2)
    scale_exp = torch.where(amax > 0, scale_exp, torch.full_like(scale_exp, -127)).clamp(-127, 127)
    # |x| / 2**X, in [0, 6]; the per-block factor is a power of two, so this is exact
    factor = torch.ldexp(torch.ones(amax.shape, device=w.device), (-scale_exp).to(torch.float32))
    q = x.abs().mul_(factor.unsqueeze(-1))
    # the code is the number of rounding boundaries below q: the midpoints between e2m1 values;
    # a tie rounds to the even code, so the midpoints where that is the upper value (0.75, 1.75,
    # 3.5) move down by one ulp and a value exactly on them counts as above
    code = torch.bucketize(q, _boundaries(w.device), out_int32=True).to(torch.uint8)
    code |= torch.signbit(x).to(torch.uint8) << 3
    blocks = code[..., 0::2] | (code[..., 1::2] << 4)
    scales = (scale_exp + 127).to(torch.uint8)
    return blocks.contiguous(), scales.contiguous()


def dequantize_mxfp4(blocks: "torch.Tensor", scales: "torch.Tensor", dtype=None) -> "torch.Tensor":
    """The reference: ``blocks [..., G, 16]``, ``scales [..., G]`` -> values ``[..., G*32]``."""
    import torch

    dtype = dtype or torch.bfloat16
    lut = torch.tensor([*E2M1_VALUES, *(-v for v in E2M1_VALUES)], dtype=torch.float32, device=blocks.device)
    lo = lut[(blocks & 0x0F).long()]
    hi = lut[(blocks >> 4).long()]
    vals = torch.stack([lo, hi], dim=-1).reshape(*blocks.shape[:-1], blocks.shape[-1] * 2)
    vals = torch.ldexp(vals, (scales.to(torch.int32) - 127).unsqueeze(-1).to(torch.float32))
    return vals.reshape(*blocks.shape[:-2], -1).to(dtype)


# --------------------------------------------------------------------------------------------
# Deterministic tensor data
# --------------------------------------------------------------------------------------------

_ROWS_PER_CHUNK_ELEMS = 16 * 1024 * 1024


def _generator(seed: int, name: str):
    import torch

    digest = hashlib.sha256(f"gptoss-synthetic:{seed}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def _normal_chunks(spec: SyntheticSpec, t: TensorSpec, seed: int) -> Iterator["torch.Tensor"]:
    import torch

    if t.init == "ones":
        yield torch.ones(t.shape, dtype=torch.bfloat16)
        return
    gen = _generator(seed, t.name)
    rows = t.shape[0]
    row_elems = math.prod(t.shape[1:]) if len(t.shape) > 1 else 1
    step = max(1, _ROWS_PER_CHUNK_ELEMS // row_elems) if len(t.shape) > 1 else rows
    for r0 in range(0, rows, step):
        n = min(step, rows - r0)
        shape = (n, *t.shape[1:])
        yield (torch.randn(shape, generator=gen, dtype=torch.float32) * spec.init_std).to(torch.bfloat16)


def expert_weights(spec: SyntheticSpec, seed: int, source: str, device: str = "cpu",
                   ) -> Iterator[tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]]:
    """Per expert: (random bf16 weight ``[rows, K]``, its MXFP4 blocks, its scales), for the
    logical weight ``source`` (``model.layers.N.mlp.experts.gate_up_proj`` or ``down_proj``).
    The writer uses this; tests call it again to get the intended values. The random numbers
    always come from a CPU generator; ``device`` only runs the (exact) quantizer, so the bytes
    are the same on every device."""
    import torch

    h, i = spec.hidden_size, spec.intermediate_size
    rows, k = (2 * i, h) if source.endswith("gate_up_proj") else (h, i)
    gen = _generator(seed, source)
    for _ in range(spec.num_local_experts):
        w = (torch.randn((rows, k), generator=gen, dtype=torch.float32) * spec.init_std).to(torch.bfloat16)
        if device == "cpu":
            blocks, scales = quantize_mxfp4(w)
        else:
            blocks, scales = (t.cpu() for t in quantize_mxfp4(w.to(device, non_blocking=True)))
        yield w, blocks, scales


def _unit_chunks(spec: SyntheticSpec, unit: Unit, seed: int, device: str = "cpu",
                 ) -> Iterator[tuple[str, "torch.Tensor"]]:
    """(tensor name, data) in the unit's order; MXFP4 blocks stream expert by expert, their
    scales (1/16 of the size) follow once the blocks are written."""
    import torch

    pending_scales: dict[str, torch.Tensor] = {}
    for t in unit.tensors:
        if t.init == "mxfp4" and t.name.endswith("_blocks"):
            scales = []
            for _, blocks, sc in expert_weights(spec, seed, t.source, device):
                yield t.name, blocks
                scales.append(sc)
            pending_scales[t.source] = torch.stack(scales)
        elif t.init == "mxfp4":
            yield t.name, pending_scales.pop(t.source)
        else:
            for chunk in _normal_chunks(spec, t, seed):
                yield t.name, chunk


# --------------------------------------------------------------------------------------------
# A streaming safetensors writer: header from the plan, then the data as it is generated
# --------------------------------------------------------------------------------------------


class StreamingSafetensorsWriter:
    """Writes a safetensors file whose header is known up front (names, dtypes, shapes), then
    accepts the tensors' bytes in order, in as many pieces as convenient."""

    def __init__(self, path: Path, tensors: list[TensorSpec], metadata: dict[str, str] | None = None):
        header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
        offset = 0
        for t in tensors:
            header[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
            offset += t.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        self.path = path
        self._order = [(t.name, t.nbytes) for t in tensors]
        self._pos = 0  # index into _order
        self._written = 0  # bytes of the current tensor
        self._f = open(path, "wb")
        self._f.write(struct.pack("<Q", len(raw)))
        self._f.write(raw)
        self.size = 8 + len(raw) + offset

    def write(self, name: str, data: "torch.Tensor") -> int:
        if self._pos >= len(self._order):
            raise AssertionError(f"{name}: the shard is already complete")
        expected, nbytes = self._order[self._pos]
        if name != expected:
            raise AssertionError(f"tensor {name} written where {expected} was planned")
        import torch

        buf = data.contiguous().view(-1).view(torch.uint8).numpy()
        if self._written + buf.nbytes > nbytes:
            raise AssertionError(f"{name}: more bytes than its shape holds")
        self._f.write(buf.data)
        self._written += buf.nbytes
        if self._written == nbytes:
            self._pos += 1
            self._written = 0
        return buf.nbytes

    def close(self) -> None:
        complete = self._pos == len(self._order)
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        if not complete:
            raise AssertionError(f"{self.path.name}: closed before every tensor was written")

    def abort(self) -> None:
        """Close after a failure (the caller removes the partial file's folder)."""
        self._f.close()


def plan_shards(spec: SyntheticSpec, max_shard_bytes: int = MAX_SHARD_BYTES) -> list[list[Unit]]:
    shards: list[list[Unit]] = [[]]
    size = 0
    for unit in spec.units():
        if shards[-1] and size + unit.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(unit)
        size += unit.nbytes
    return shards


def shard_name(i: int, n: int) -> str:
    return f"model-{i + 1:05d}-of-{n:05d}.safetensors"


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)


def quantize_device(device: str | None = None) -> str:
    """Where the quantizer runs: a CUDA GPU when one is visible (the bytes do not change)."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def write_checkpoint(spec: SyntheticSpec, seed: int, out_dir: str | Path, progress: bool = True,
                     max_shard_bytes: int = MAX_SHARD_BYTES, device: str | None = None) -> dict[str, Any]:
    """Write the whole checkpoint into ``out_dir`` (no manifest, no atomic rename: see ``ensure``).
    Returns the manifest's ``files`` entry."""
    from bench.models.harmony import write_tokenizer

    spec.validate()
    device = quantize_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(spec.config_dict(), indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(spec.generation_config_dict(), indent=2) + "\n")
    write_tokenizer(out, spec.vocab_size, model_max_length=spec.max_position_embeddings)

    shards = plan_shards(spec, max_shard_bytes)
    weight_map: dict[str, str] = {}
    total = spec.checkpoint_bytes()
    with _progress(total, f"writing synthetic:{spec.name}", progress) as bar:
        for si, units in enumerate(shards):
            fname = shard_name(si, len(shards))
            tensors = [t for u in units for t in u.tensors]
            writer = StreamingSafetensorsWriter(out / fname, tensors)
            try:
                for unit in units:
                    for name, data in _unit_chunks(spec, unit, seed, device):
                        bar.update(writer.write(name, data))
            except BaseException:
                writer.abort()
                raise
            writer.close()
            weight_map.update({t.name: fname for t in tensors})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return _describe_files(out)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _describe_files(folder: Path) -> dict[str, Any]:
    files = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name != MANIFEST:
            size = p.stat().st_size
            entry: dict[str, Any] = {"size": size}
            if size < SMALL_FILE_BYTES:
                entry["sha256"] = _sha256(p)
            files[p.name] = entry
    return files


# --------------------------------------------------------------------------------------------
# Cache folder: manifest, validation, atomic build
# --------------------------------------------------------------------------------------------


def default_cache_root() -> Path:
    env = os.environ.get("GPTOSS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gptoss-harness"


def cache_path(name: str, seed: int = DEFAULT_SEED, cache_dir: str | Path | None = None) -> Path:
    spec = get_spec(name)
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_root()
    return root / "synthetic" / f"{spec.name}-seed{seed}-v{FORMAT_VERSION}"


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_folder(folder: str | Path, name: str, seed: int) -> str | None:
    """Why ``folder`` is not a complete synthetic checkpoint of (name, seed), or None when it
    is. Fast: sizes of every file, sha256 of the small ones; the shards are not re-hashed."""
    folder = Path(folder)
    if not folder.is_dir():
        return "missing"
    m = read_manifest(folder)
    if m is None:
        return "no readable manifest"
    if m.get("format_version") != FORMAT_VERSION:
        return f"format version {m.get('format_version')!r}, expected {FORMAT_VERSION}"
    if m.get("name") != name or m.get("seed") != seed:
        return f"holds {m.get('name')!r} seed {m.get('seed')!r}"
    if m.get("complete") is not True:
        return "incomplete"
    files = m.get("files")
    if not isinstance(files, dict) or not files:
        return "manifest lists no files"
    for required in ("config.json", INDEX, "tokenizer.json", "tokenizer_config.json"):
        if required not in files:
            return f"manifest lacks {required}"
    for fname, entry in files.items():
        p = folder / fname
        try:
            size = p.stat().st_size
        except OSError:
            return f"{fname} is missing"
        if not isinstance(entry, dict) or size != entry.get("size"):
            return f"{fname} has {size} bytes, expected {entry.get('size') if isinstance(entry, dict) else '?'}"
        if "sha256" in entry and _sha256(p) != entry["sha256"]:
            return f"{fname} does not match its checksum"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_temps(parent: Path, final_name: str) -> None:
    """Remove temporary folders of ``final_name`` left by writers that are no longer running."""
    prefix = f".{final_name}{_TMP_MARK}"
    if not parent.is_dir():
        return
    for p in parent.iterdir():
        if not p.name.startswith(prefix):
            continue
        try:
            pid = int(p.name[len(prefix):].split("-")[0])
        except ValueError:
            pid = -1
        if pid != os.getpid() and pid > 0 and _pid_alive(pid):
            continue
        shutil.rmtree(p, ignore_errors=True)


def _fmt_gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_disk(spec: SyntheticSpec, folder: Path, disk_usage: Callable = shutil.disk_usage) -> int:
    """Raise UserError when the disk under ``folder`` cannot hold the checkpoint; returns the need."""
    need = spec.checkpoint_bytes() + 64 * 1024 * 1024  # tokenizer, configs and headers: a few MB
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = disk_usage(str(probe)).free
    if free < need:
        raise UserError(
            f"writing synthetic:{spec.name} needs {_fmt_gb(need)} free under {folder} but only "
            f"{_fmt_gb(free)} is free; free some space or pass --cache-dir on a larger disk."
        )
    return need


@dataclass
class SyntheticCheckpoint:
    path: Path
    name: str
    seed: int
    written: bool  # False when a valid folder was reused
    write_s: float | None  # seconds spent writing (None when reused)
    manifest: dict[str, Any] = field(default_factory=dict)


def build(name: str, folder: str | Path, seed: int = DEFAULT_SEED, progress: bool = True, force: bool = False,
          disk_usage: Callable = shutil.disk_usage, log: Callable[[str], None] | None = None,
          max_shard_bytes: int = MAX_SHARD_BYTES, device: str | None = None) -> SyntheticCheckpoint:
    """Make ``folder`` a complete synthetic checkpoint of (name, seed): reuse it when valid,
    else write it into a temporary sibling and rename that into place."""
    spec = get_spec(name)
    folder = Path(folder).expanduser().absolute()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_temps(parent, folder.name)

    problem = check_folder(folder, spec.name, seed)
    if problem is None and not force:
        return SyntheticCheckpoint(folder, spec.name, seed, False, None, read_manifest(folder) or {})
    if folder.exists():
        ours = (folder / MANIFEST).exists() or (folder.is_dir() and not any(folder.iterdir()))
        if not folder.is_dir() or not ours:
            raise UserError(
                f"{folder} exists and is not a synthetic checkpoint; pick an empty or new folder."
            )
        if problem not in (None, "missing"):
            log(f"synthetic:{spec.name}: rebuilding {folder} ({problem})")
        shutil.rmtree(folder)

    check_disk(spec, parent, disk_usage)
    tmp = parent / f".{folder.name}{_TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    t0 = time.perf_counter()
    try:
        files = write_checkpoint(spec, seed, tmp, progress=progress, max_shard_bytes=max_shard_bytes, device=device)
        manifest = {
            "kind": "gptoss-harness/synthetic-checkpoint",
            "name": spec.name,
            "seed": seed,
            "format_version": FORMAT_VERSION,
            "tool_version": __version__,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "parameters": spec.parameter_count(),
            "active_parameters": spec.active_parameter_count(),
            "total_bytes": sum(f["size"] for f in files.values()),
            "files": files,
            "complete": True,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        write_s = time.perf_counter() - t0
        try:
            os.rename(tmp, folder)
        except OSError:
            # another writer finished first: keep theirs when it is valid
            if check_folder(folder, spec.name, seed) is not None:
                shutil.rmtree(folder, ignore_errors=True)
                os.rename(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return SyntheticCheckpoint(folder, spec.name, seed, True, write_s, read_manifest(folder) or {})


def ensure(name: str, seed: int = DEFAULT_SEED, cache_dir: str | Path | None = None, progress: bool = True,
           disk_usage: Callable = shutil.disk_usage, force: bool = False,
           device: str | None = None) -> SyntheticCheckpoint:
    """The cached synthetic checkpoint of (name, seed), written first when needed."""
    return build(name, cache_path(name, seed, cache_dir), seed=seed, progress=progress, force=force,
                 disk_usage=disk_usage, device=device)
