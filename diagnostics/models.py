"""The two gpt-oss models as numbers: shapes, parameter counts, bytes on disk, in memory and per token.

Everything the memory-fit check and the bench's roofline need, computed from the architecture
(the design notes, "Facts measured here") rather than typed in, with the few measured
figures kept apart and labelled as measurements:

* ``openai/gpt-oss-20b``: 24 layers, 32 experts (top-4), hidden 2880, expert intermediate 2880,
  64 query heads / 8 KV heads of dim 64, vocab 201088, sliding window 128 on every other layer.
* ``openai/gpt-oss-120b``: the same with 36 layers and 128 experts.

Parameter counts follow the module list of ``GptOssForCausalLM`` (attention q/k/v/o with biases and
one sink per head, a router with bias, experts ``gate_up_proj [E, H, 2I]`` + bias and
``down_proj [E, I, H]`` + bias, two RMSNorms per layer, embedding, final norm, untied lm_head).
They reproduce the published 20.91B / 116.83B total and 3.61B / 5.13B active parameters.

MXFP4 storage: expert weights (not their biases) hold 4-bit e2m1 values, two per byte, plus one
e8m0 scale byte per 32 values: 4.25 bits = 0.53125 bytes per parameter; everything else is bf16.
That gives 13.76 GB for the 20b checkpoint (measured: 13.76 GB) and 65.25 GB for 120b.

Memory after load: measured for 20b on an H100 (13.0 GiB MXFP4, 39.1 GiB bf16); for 120b scaled
from the computed weight bytes by the same measured-over-computed ratio (an estimate, marked so).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

GiB = 1024**3


def gib(n: int | float | None) -> str:
    """Memory, in GiB (what torch and NVML report): ``13.0 GiB``."""
    return "?" if n is None else f"{n / GiB:.1f} GiB"


def gb(n: int | float | None) -> str:
    """A size on disk, in decimal units (how checkpoints are quoted): ``13.8 GB``, ``42.1 MB``."""
    if n is None:
        return "?"
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"

MXFP4_BYTES_PER_PARAM = 0.53125  # 4-bit value + 1 byte scale per 32 values = 4.25 bits
BF16_BYTES = 2


@dataclass(frozen=True)
class ModelSpec:
    """One gpt-oss model's architecture and the sizes derived from it."""

    name: str  # "gpt-oss-20b"
    hub_id: str  # "openai/gpt-oss-20b"
    num_layers: int
    num_experts: int
    experts_per_token: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    sliding_window: int
    # Measured (DESIGN.md) where available, else None and derived below.
    measured_load_bytes_mxfp4: int | None = None
    measured_load_bytes_bf16: int | None = None
    measured_load_peak_bytes_mxfp4: int | None = None
    measured_load_peak_bytes_bf16: int | None = None

    # ---- parameter counts ----------------------------------------------------------------------

    @property
    def attention_params_per_layer(self) -> int:
        h, q, kv = self.hidden_size, self.num_attention_heads * self.head_dim, self.num_key_value_heads * self.head_dim
        # q, k, v, o projections with biases, plus one learned sink per head
        return (h * q + q) + 2 * (h * kv + kv) + (q * h + h) + self.num_attention_heads

    @property
    def router_params_per_layer(self) -> int:
        return self.hidden_size * self.num_experts + self.num_experts

    @property
    def expert_weight_params(self) -> int:
        """Weights (no biases) of ONE expert: the part stored as MXFP4."""
        h, i = self.hidden_size, self.intermediate_size
        return h * 2 * i + i * h

    @property
    def expert_bias_params(self) -> int:
        return 2 * self.intermediate_size + self.hidden_size

    @property
    def norm_params_per_layer(self) -> int:
        return 2 * self.hidden_size

    @property
    def params_per_layer(self) -> int:
        return (
            self.attention_params_per_layer
            + self.router_params_per_layer
            + self.num_experts * (self.expert_weight_params + self.expert_bias_params)
            + self.norm_params_per_layer
        )

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def params_total(self) -> int:
        # embedding + layers + final norm + untied lm_head
        return self.embedding_params + self.num_layers * self.params_per_layer + self.hidden_size + self.embedding_params

    @property
    def params_active(self) -> int:
        """Parameters used per token: all but the inactive experts and the embedding table
        (one row of it is read; the lm_head is read whole)."""
        per_layer = (
            self.attention_params_per_layer
            + self.router_params_per_layer
            + self.experts_per_token * (self.expert_weight_params + self.expert_bias_params)
            + self.norm_params_per_layer
        )
        return self.num_layers * per_layer + self.hidden_size + self.embedding_params

    @property
    def mxfp4_params(self) -> int:
        """Parameters stored as MXFP4 in the checkpoint (all expert weights)."""
        return self.num_layers * self.num_experts * self.expert_weight_params

    # ---- bytes -----------------------------------------------------------------------------------

    @property
    def checkpoint_bytes(self) -> int:
        """Size of the MXFP4 safetensors checkpoint (weights only; 20b: 13.76 GB)."""
        rest = self.params_total - self.mxfp4_params
        return round(self.mxfp4_params * MXFP4_BYTES_PER_PARAM + rest * BF16_BYTES)

    @property
    def bf16_bytes(self) -> int:
        """All weights in bf16, as after a silent dequantization."""
        return self.params_total * BF16_BYTES

    def bytes_per_token(self, path: str) -> int:
        """Weight bytes read to decode one token at batch 1 on ``path`` ("mxfp4" or "bf16").

        Attention, router, norms, the active experts and the whole lm_head; one embedding row
        (negligible, ignored). 20b: 3.71 GB / 7.22 GB; 120b: 5.00 / 10.27 GB (DESIGN.md)."""
        expert_w = self.num_layers * self.experts_per_token * self.expert_weight_params
        rest = self.params_active - expert_w
        per_param = MXFP4_BYTES_PER_PARAM if path == "mxfp4" else BF16_BYTES
        if path not in ("mxfp4", "bf16"):
            raise ValueError(f"unknown weights path {path!r}; use 'mxfp4' or 'bf16'")
        return round(expert_w * per_param + rest * BF16_BYTES)

    def load_bytes(self, path: str) -> int:
        """GPU memory allocated by torch after ``from_pretrained`` on ``path``.

        Measured for 20b (H100, transformers 5.17); otherwise the computed weight bytes times the
        20b ratio measured/computed (MXFP4 1.014: swizzled layout padding; bf16 1.004)."""
        if path == "mxfp4":
            if self.measured_load_bytes_mxfp4:
                return self.measured_load_bytes_mxfp4
            return round(self.checkpoint_bytes * _LOAD_RATIO_MXFP4)
        if path == "bf16":
            if self.measured_load_bytes_bf16:
                return self.measured_load_bytes_bf16
            return round(self.bf16_bytes * _LOAD_RATIO_BF16)
        raise ValueError(f"unknown weights path {path!r}; use 'mxfp4' or 'bf16'")

    def load_transient_bytes(self, path: str) -> int:
        """Extra memory at the peak of loading, above what stays allocated (see ``load_bytes``).

        Measured for 20b: 2.2 GiB MXFP4 (15.2 peak - 13.0), 3.8 GiB bf16 (42.9 - 39.1). The
        transient comes from converting expert tensors layer by layer, so for 120b it is scaled
        by the size of one layer's experts (x4: 128 vs 32 experts). An estimate, unmeasured."""
        base = GPT_OSS_20B
        if path == "mxfp4":
            measured = base.measured_load_peak_bytes_mxfp4 - base.measured_load_bytes_mxfp4
        elif path == "bf16":
            measured = base.measured_load_peak_bytes_bf16 - base.measured_load_bytes_bf16
        else:
            raise ValueError(f"unknown weights path {path!r}; use 'mxfp4' or 'bf16'")
        scale = (self.num_experts * self.expert_weight_params) / (base.num_experts * base.expert_weight_params)
        return round(measured * scale)

    # ---- KV cache ----------------------------------------------------------------------------

    @property
    def num_sliding_layers(self) -> int:
        # layer_types alternate sliding_attention / full_attention, starting with sliding
        return (self.num_layers + 1) // 2

    @property
    def num_full_layers(self) -> int:
        return self.num_layers - self.num_sliding_layers

    def kv_cache_bytes(self, context_tokens: int, dtype_bytes: int = BF16_BYTES, batch_size: int = 1) -> int:
        """Bytes of K and V for ``context_tokens`` tokens per sequence.

        Full-attention layers keep every token; sliding-window layers keep at most
        ``sliding_window`` (128) tokens. 20b at 4096 tokens in bf16: 103.8 MB."""
        if context_tokens < 0 or batch_size < 1:
            raise ValueError("context_tokens must be >= 0 and batch_size >= 1")
        per_token_layer = 2 * self.num_key_value_heads * self.head_dim * dtype_bytes
        tokens = self.num_full_layers * context_tokens + self.num_sliding_layers * min(context_tokens, self.sliding_window)
        return batch_size * per_token_layer * tokens

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "hub_id": self.hub_id,
            "num_layers": self.num_layers,
            "num_experts": self.num_experts,
            "experts_per_token": self.experts_per_token,
            "hidden_size": self.hidden_size,
            "params_total": self.params_total,
            "params_active": self.params_active,
            "checkpoint_bytes": self.checkpoint_bytes,
            "bytes_per_token": {"mxfp4": self.bytes_per_token("mxfp4"), "bf16": self.bytes_per_token("bf16")},
            "load_bytes": {"mxfp4": self.load_bytes("mxfp4"), "bf16": self.load_bytes("bf16")},
        }


GPT_OSS_20B = ModelSpec(
    name="gpt-oss-20b",
    hub_id="openai/gpt-oss-20b",
    num_layers=24,
    num_experts=32,
    experts_per_token=4,
    hidden_size=2880,
    intermediate_size=2880,
    num_attention_heads=64,
    num_key_value_heads=8,
    head_dim=64,
    vocab_size=201088,
    sliding_window=128,
    # DESIGN.md: H100, torch 2.11, transformers 5.17, random-weight 20b checkpoint.
    measured_load_bytes_mxfp4=round(13.0 * GiB),
    measured_load_bytes_bf16=round(39.1 * GiB),
    measured_load_peak_bytes_mxfp4=round(15.2 * GiB),
    measured_load_peak_bytes_bf16=round(42.9 * GiB),
)

# The same architecture with 36 layers and 128 experts; nothing of it measured here.
GPT_OSS_120B = replace(
    GPT_OSS_20B,
    name="gpt-oss-120b",
    hub_id="openai/gpt-oss-120b",
    num_layers=36,
    num_experts=128,
    measured_load_bytes_mxfp4=None,
    measured_load_bytes_bf16=None,
    measured_load_peak_bytes_mxfp4=None,
    measured_load_peak_bytes_bf16=None,
)

# Measured over computed for 20b, applied to 120b (see ModelSpec.load_bytes).
_LOAD_RATIO_MXFP4 = GPT_OSS_20B.measured_load_bytes_mxfp4 / GPT_OSS_20B.checkpoint_bytes
_LOAD_RATIO_BF16 = GPT_OSS_20B.measured_load_bytes_bf16 / GPT_OSS_20B.bf16_bytes

SPECS: dict[str, ModelSpec] = {s.name: s for s in (GPT_OSS_20B, GPT_OSS_120B)}


def spec_for(model_id: str | None) -> ModelSpec | None:
    """The spec for ``openai/gpt-oss-20b``, ``synthetic:gpt-oss-20b`` or ``gpt-oss-20b`` (and the
    same for 120b); None for anything else (a local folder, another model, ``synthetic:tiny``)."""
    if not model_id:
        return None
    name = model_id.strip()
    for prefix in ("synthetic:", "openai/"):
        if name.lower().startswith(prefix):
            name = name[len(prefix):]
            break
    return SPECS.get(name.lower())


def spec_from_config(config: dict) -> ModelSpec | None:
    """Recognise a gpt-oss shape from a ``config.json`` dict (a local checkpoint folder)."""
    if not isinstance(config, dict) or config.get("model_type") != "gpt_oss":
        return None
    for spec in SPECS.values():
        if (
            config.get("num_hidden_layers") == spec.num_layers
            and config.get("num_local_experts") == spec.num_experts
            and config.get("hidden_size") == spec.hidden_size
        ):
            return spec
    return None


def kv_cache_bytes(context_tokens: int, dtype_bytes: int = BF16_BYTES, model: str | ModelSpec = "gpt-oss-20b", batch_size: int = 1) -> int:
    """KV-cache bytes for ``context_tokens`` tokens of ``model`` (default gpt-oss-20b)."""
    spec = model if isinstance(model, ModelSpec) else spec_for(model)
    if spec is None:
        raise ValueError(f"unknown model {model!r}; use gpt-oss-20b or gpt-oss-120b")
    return spec.kv_cache_bytes(context_tokens, dtype_bytes=dtype_bytes, batch_size=batch_size)
