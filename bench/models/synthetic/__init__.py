"""Synthetic gpt-oss checkpoints: the exact architecture with deterministic random weights.

``synthetic:tiny``, ``synthetic:gpt-oss-20b`` and ``synthetic:gpt-oss-120b`` are written once,
as a real checkpoint, into a cache folder and then loaded through the same ``from_pretrained``
path as the real weights:

- ``config.json``: the real checkpoint's config (same keys, same MXFP4 ``quantization_config``),
  ``generation_config.json`` like the instruct checkpoint's;
- ``model-0000i-of-0000N.safetensors`` + ``model.safetensors.index.json``: bf16 tensors, and the
  expert weights as real MXFP4 tensors (``*_blocks``/``*_scales``, uint8), all generated directly
  as bytes in their stored form (``tensors``: random e2m1 nibbles, e8m0 scales in a narrow range,
  bf16 bit patterns with about the init std);
- ``tokenizer.json`` + ``tokenizer_config.json`` (bench.models.harmony: harmony special tokens, chat
  template honouring ``reasoning_effort``);
- ``manifest.json``: name, seed, format version, tool version, every file with its size (and
  sha256 for the small ones), ``complete: true``.

Writing runs at the speed of the storage (``writer``): every shard is created at its final size
with its header, then worker threads fill it chunk by chunk with ``os.pwrite``. Each chunk is
seeded from (seed, tensor name, chunk index), so the bytes depend only on the seed and the
shapes, not on the number of workers. A folder is written into a temporary sibling and renamed
when complete; a partial or damaged folder (missing or short file, bad manifest) is rebuilt.

The folder: ``<cache root>/synthetic/<name>-seed<seed>-v<FORMAT_VERSION>``, where the cache root
is the ``cache_dir`` argument, else ``$GPTOSS_CACHE``, else ``$XDG_CACHE_HOME/gptoss-harness``
(``~/.cache/gptoss-harness``).

MXFP4 (OCP microscaling, as gpt-oss stores it): 32 consecutive values along the input dimension
share one e8m0 scale byte (2**(byte - 127)); each value is an e2m1 code (sign, 2 exponent bits,
1 mantissa bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6), two codes per byte, low nibble first. ``mxfp4``
holds a quantizer and a dequantizer written from that definition: the reference the tests hold
the written bytes against.
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
from bench.models.synthetic.tensors import CHUNK_BYTES, expected_std, tensor_bytes, tensor_values
from bench.models.synthetic.writer import INDEX, MANIFEST, ShardPlan, default_jobs, plan_shards, write_checkpoint

__all__ = [
    "CHUNK_BYTES", "DEFAULT_SEED", "FORMAT_VERSION", "INDEX", "MANIFEST", "SYNTHETIC_MODELS", "ShardPlan",
    "SyntheticCheckpoint", "SyntheticSpec", "TensorSpec", "build", "cache_path", "check_disk", "check_folder",
    "default_cache_root", "default_jobs", "dequantize_mxfp4", "ensure", "expected_std", "get_spec",
    "plan_shards", "quantize_mxfp4", "read_manifest", "tensor_bytes", "tensor_values", "write_checkpoint",
]
