"""A streaming safetensors writer (header from the plan, then the data as it is generated) and
the whole checkpoint written with it: configs, tokenizer, shards and their index."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.models.synthetic.spec import SyntheticSpec, TensorSpec, Unit
from bench.models.device import resolve_device
from bench.models.synthetic.tensors import unit_chunks

if TYPE_CHECKING:  # pragma: no cover
    import torch

MANIFEST = "manifest.json"
INDEX = "model.safetensors.index.json"
MAX_SHARD_BYTES = 4_800_000_000
SMALL_FILE_BYTES = 64 * 1024 * 1024  # files below this are hashed in the manifest and on reuse


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

def write_checkpoint(spec: SyntheticSpec, seed: int, out_dir: str | Path, progress: bool = True,
                     max_shard_bytes: int = MAX_SHARD_BYTES, device: str | None = None) -> dict[str, Any]:
    """Write the whole checkpoint into ``out_dir`` (no manifest, no atomic rename: see ``ensure``).
    Returns the manifest's ``files`` entry."""
    from bench.models.harmony import write_tokenizer

    spec.validate()
    device = resolve_device(device or "auto")
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
                    for name, data in unit_chunks(spec, unit, seed, device):
                        bar.update(writer.write(name, data))
            except BaseException:
                writer.abort()
                raise
            writer.close()
            weight_map.update({t.name: fname for t in tensors})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return describe_files(out)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe_files(folder: Path) -> dict[str, Any]:
    files = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name != MANIFEST:
            size = p.stat().st_size
            entry: dict[str, Any] = {"size": size}
            if size < SMALL_FILE_BYTES:
                entry["sha256"] = sha256(p)
            files[p.name] = entry
    return files
