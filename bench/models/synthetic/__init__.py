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

from bench.models.synthetic.cache import (
    DEFAULT_SEED,
    FORMAT_VERSION,
    SyntheticCheckpoint,
    build,
    cache_path,
    check_disk,
    check_folder,
    default_cache_root,
    ensure,
    read_manifest,
)
from bench.models.synthetic.mxfp4 import dequantize_mxfp4, quantize_mxfp4
from bench.models.synthetic.spec import SYNTHETIC_MODELS, SyntheticSpec, TensorSpec, get_spec
from bench.models.synthetic.tensors import expert_weights
from bench.models.synthetic.writer import INDEX, MANIFEST, StreamingSafetensorsWriter, write_checkpoint

__all__ = [
    "DEFAULT_SEED", "FORMAT_VERSION", "INDEX", "MANIFEST", "SYNTHETIC_MODELS", "StreamingSafetensorsWriter",
    "SyntheticCheckpoint", "SyntheticSpec", "TensorSpec", "build", "cache_path", "check_disk", "check_folder",
    "default_cache_root", "dequantize_mxfp4", "ensure", "expert_weights", "get_spec", "quantize_mxfp4",
    "read_manifest", "write_checkpoint",
]
