"""Deterministic tensor bytes, made directly in their stored form (no float weights, no quantizer).

Every tensor is cut into fixed-size chunks of ``CHUNK_BYTES``; chunk ``k`` of tensor ``name``
comes from its own SFC64 generator seeded from (seed, name, k), so the bytes depend on the seed
and the shapes only, never on how many workers write them or in which order. What the bytes are:

- MXFP4 blocks (``*_blocks``, uint8): raw random bytes. Each nibble is a valid e2m1 code, so the
  values are uniform over {0, ±0.5, ±1, ±1.5, ±2, ±3, ±4, ±6} (std 2.93 per unit of scale).
- MXFP4 scales (``*_scales``, uint8, e8m0): ``base + (random bit)``, with ``base`` chosen so the
  dequantized weights have about the spec's ``init_std`` (0.018 for 0.02).
- bf16 weights and biases: bit patterns with a random sign, a random 7-bit mantissa and an
  exponent drawn from two neighbours chosen for ``init_std`` (0.019 for 0.02): two vector
  operations on the random words, and never a NaN, an infinity, a zero or a denormal.
- norms: ones, as in the real checkpoint.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from bench.models.synthetic.spec import SyntheticSpec, TensorSpec

#: Part of the format (a chunk is the unit of seeding): changing it changes the bytes.
CHUNK_BYTES = 16 * 1024 * 1024

_E2M1_STD = math.sqrt(sum(v * v for v in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)) / 8)  # uniform codes
_TWO_EXPONENTS = math.sqrt((1 + 4) / 2)  # an exponent drawn from {e, e + 1}: the rms factor over 2**e
_MANTISSA_RMS = math.sqrt(7 / 3)  # rms of 1 + u, u uniform on [0, 1)
_BF16_ONE = 0x3F80


def _words(pattern: int, width: int) -> np.uint64:
    """``pattern`` (``width`` bits) repeated over a 64-bit word."""
    return np.uint64(sum(pattern << s for s in range(0, 64, width)))


def bf16_masks(std: float) -> tuple[np.uint64, np.uint64]:
    """(and, add) masks that make random 64-bit words four bf16 values with about ``std``: sign,
    mantissa and the exponent's low bit kept, an exponent field added (each lane stays below
    0x10000, so nothing carries into the next value)."""
    field = 127 + round(math.log2(std / (_TWO_EXPONENTS * _MANTISSA_RMS)))
    if not 1 <= field <= 253:
        raise ValueError(f"init std {std} is outside what bf16 weights can hold")
    return _words(0x80FF, 16), _words(field << 7, 16)


def scale_base(std: float) -> int:
    """The e8m0 byte of the smaller of the two scales that give MXFP4 weights about ``std``."""
    base = 127 + round(math.log2(std / (_E2M1_STD * _TWO_EXPONENTS)))
    if not 0 <= base <= 253:
        raise ValueError(f"init std {std} is outside what MXFP4 scales can hold")
    return base


def expected_std(spec: SyntheticSpec, t: TensorSpec) -> float:
    """The std the scheme gives ``t``'s values (dequantized for MXFP4 blocks); 0 for norms."""
    if t.init == "ones":
        return 0.0
    if t.init == "mxfp4":
        return 2.0 ** (scale_base(spec.init_std) - 127) * _E2M1_STD * _TWO_EXPONENTS
    _, exponent = bf16_masks(spec.init_std)
    field = (int(exponent) & 0xFFFF) >> 7
    return 2.0 ** (field - 127) * _TWO_EXPONENTS * _MANTISSA_RMS


def chunk_count(t: TensorSpec, chunk_size: int = CHUNK_BYTES) -> int:
    return max(1, -(-t.nbytes // chunk_size))


def chunk_seed(seed: int, name: str, index: int) -> int:
    digest = hashlib.sha256(f"gptoss-synthetic:{seed}:{name}:{index}".encode()).digest()
    return int.from_bytes(digest[:16], "little")


def chunk_data(spec: SyntheticSpec, t: TensorSpec, seed: int, index: int,
               chunk_size: int = CHUNK_BYTES) -> np.ndarray:
    """Bytes ``[index * chunk_size, ...)`` of tensor ``t`` (uint8, at most ``chunk_size``)."""
    start = index * chunk_size
    n = min(chunk_size, t.nbytes - start)
    if n <= 0 or chunk_size % 8:
        raise ValueError(f"{t.name} has no chunk {index} of {chunk_size} bytes")
    if t.init == "ones":
        return np.full(n // 2, _BF16_ONE, dtype=np.uint16).view(np.uint8)
    words = np.random.SFC64(chunk_seed(seed, t.name, index)).random_raw(-(-n // 8))
    if t.init == "mxfp4" and t.name.endswith("_scales"):
        words &= _words(0x01, 8)
        words += _words(scale_base(spec.init_std), 8)  # each byte base + 0 or 1: no carry
    elif t.init == "random":
        keep, exponent = bf16_masks(spec.init_std)
        words &= keep
        words += exponent
    elif t.init != "mxfp4":
        raise ValueError(f"{t.name}: unknown init {t.init!r}")
    return words.view(np.uint8)[:n]


def tensor_bytes(spec: SyntheticSpec, t: TensorSpec, seed: int, chunk_size: int = CHUNK_BYTES) -> np.ndarray:
    """The whole tensor's bytes, as the writer stores them (for tests and small tensors)."""
    return np.concatenate([chunk_data(spec, t, seed, k, chunk_size) for k in range(chunk_count(t, chunk_size))])


def tensor_values(spec: SyntheticSpec, t: TensorSpec, seed: int):
    """``t`` as a torch tensor of its stored dtype and shape (bf16 or uint8)."""
    import torch

    data = torch.from_numpy(tensor_bytes(spec, t, seed).copy())
    return (data.view(torch.bfloat16) if t.dtype == "BF16" else data).reshape(t.shape)
