"""The cache folder of synthetic checkpoints: manifest, validation, and the atomic build (written
into a temporary sibling, renamed into place when complete; a damaged folder is rebuilt)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.models.synthetic.spec import SyntheticSpec, get_spec
from bench.models.synthetic.writer import INDEX, MANIFEST, MAX_SHARD_BYTES, sha256, write_checkpoint
from bench.results import writable_folder
from diagnostics.errors import UserError, write_failure
from diagnostics.meta import tool_version
from diagnostics.models import gb

#: Bump when the bytes written for a (name, seed) change; old cache folders are then ignored.
FORMAT_VERSION = 2
DEFAULT_SEED = 0
_TMP_MARK = ".tmp-"
WRITABLE_FIX = "pass --cache-dir (or --out of `gptoss synthesize`) a folder you can write to"


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
        if "sha256" in entry and sha256(p) != entry["sha256"]:
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


def check_disk(spec: SyntheticSpec, folder: Path, disk_usage: Callable = shutil.disk_usage) -> int:
    """Raise UserError when the disk under ``folder`` cannot hold the checkpoint; returns the need."""
    need = spec.checkpoint_bytes() + 64 * 1024 * 1024  # tokenizer, configs and headers: a few MB
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = disk_usage(str(probe)).free
    if free < need:
        raise UserError(
            f"writing synthetic:{spec.name} needs {gb(need)} free under {folder} but only "
            f"{gb(free)} is free; free some space or pass --cache-dir on a larger disk."
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
          max_shard_bytes: int = MAX_SHARD_BYTES, jobs: int | None = None) -> SyntheticCheckpoint:
    """Make ``folder`` a complete synthetic checkpoint of (name, seed): reuse it when valid,
    else write it into a temporary sibling (``jobs`` writer threads, default one per core) and
    rename that into place."""
    spec = get_spec(name)
    folder = Path(folder).expanduser().absolute()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    parent = folder.parent
    problem = check_folder(folder, spec.name, seed)
    if problem is None and not force:  # reused as it is, even on a read-only mount
        return SyntheticCheckpoint(folder, spec.name, seed, False, None, read_manifest(folder) or {})
    writable_folder(parent, WRITABLE_FIX)
    _clean_stale_temps(parent, folder.name)
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
        files = write_checkpoint(spec, seed, tmp, progress=progress, max_shard_bytes=max_shard_bytes, jobs=jobs)
        manifest = {
            "kind": "gptoss-harness/synthetic-checkpoint",
            "name": spec.name,
            "seed": seed,
            "format_version": FORMAT_VERSION,
            "tool_version": tool_version(),
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
    except OSError as e:  # a full disk, a mount gone read-only: the temporary folder goes, nothing else
        raise write_failure(e, folder, WRITABLE_FIX, full=(
            f"it filled up while writing synthetic:{spec.name} ({gb(spec.checkpoint_bytes())}): "
            "free some space or pass --cache-dir on a larger disk")) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return SyntheticCheckpoint(folder, spec.name, seed, True, write_s, read_manifest(folder) or {})


def ensure(name: str, seed: int = DEFAULT_SEED, cache_dir: str | Path | None = None, progress: bool = True,
           disk_usage: Callable = shutil.disk_usage, force: bool = False,
           jobs: int | None = None) -> SyntheticCheckpoint:
    """The cached synthetic checkpoint of (name, seed), written first when needed."""
    return build(name, cache_path(name, seed, cache_dir), seed=seed, progress=progress, force=force,
                 disk_usage=disk_usage, jobs=jobs)
