"""The MXFP4 quantizer (our own, from the format definition) and its reference dequantizer.

32 consecutive values along the input dimension share one e8m0 scale byte (2**(byte - 127));
each value is an e2m1 code (sign, 2 exponent bits, 1 mantissa bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6),
two codes per byte, low nibble first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

MXFP4_BLOCK = 32
E2M1_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # codes 0..7; code | 8 is the negative


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
