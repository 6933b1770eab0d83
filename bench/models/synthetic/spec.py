"""Synthetic model specs: the exact gpt-oss architecture (the real shapes come from
diagnostics.models), its config.json and generation_config.json, and the checkpoint's tensors
in write order."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from bench.models.synthetic.mxfp4 import MXFP4_BLOCK
from diagnostics.errors import UserError
from diagnostics.modelref import SYNTHETIC_NAMES, SYNTHETIC_PREFIX
from diagnostics.models import GPT_OSS_20B, GPT_OSS_120B

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
    init: str = "random"  # random (bf16 bit patterns) | ones | mxfp4
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



assert tuple(SYNTHETIC_MODELS) == SYNTHETIC_NAMES  # the names `--model synthetic:NAME` accepts


def get_spec(name: str) -> SyntheticSpec:
    """``tiny`` or ``synthetic:tiny`` (the prefix is optional here, as `gptoss synthesize` takes it)."""
    key = name.removeprefix(SYNTHETIC_PREFIX)
    if key not in SYNTHETIC_MODELS:
        known = ", ".join(SYNTHETIC_PREFIX + n for n in SYNTHETIC_MODELS)
        raise UserError(f"unknown synthetic model '{name}'; use one of {known}.")
    return SYNTHETIC_MODELS[key]
