"""What every probe is made of: ``never_raises`` (a failure becomes the fact's ``error``), the text
of that error, and the readers of the hub cache that several probes share."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from diagnostics.redact import redact_text

T = TypeVar("T")


def probe_error(e: BaseException) -> str:
    """``Type: message``, redacted and cut to 600 characters: what a failed probe records."""
    return redact_text(f"{type(e).__name__}: {e}")[:600]


def never_raises(make_default: Callable[[str], T]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn any exception of the probe into ``make_default(error_text)``."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - that is the point of a probe
                return make_default(probe_error(e))

        return inner

    return wrap


def hub_cache_dir(environ, home: str) -> tuple[str, str]:
    """Where huggingface_hub caches repos, and which setting decided it."""
    def expand(p: str) -> str:
        return os.path.expandvars(p.replace("~", home, 1) if p.startswith("~") else p)

    if environ.get("HF_HUB_CACHE"):
        return expand(environ["HF_HUB_CACHE"]), "HF_HUB_CACHE"
    if environ.get("HUGGINGFACE_HUB_CACHE"):
        return expand(environ["HUGGINGFACE_HUB_CACHE"]), "HUGGINGFACE_HUB_CACHE"
    if environ.get("HF_HOME"):
        return os.path.join(expand(environ["HF_HOME"]), "hub"), "HF_HOME"
    if environ.get("XDG_CACHE_HOME"):
        return os.path.join(expand(environ["XDG_CACHE_HOME"]), "huggingface", "hub"), "XDG_CACHE_HOME"
    return os.path.join(home, ".cache", "huggingface", "hub"), "default"


def model_snapshots(cache_dir: str, repo: str) -> list[Path]:
    """The cached snapshot folders of the model repo ``repo``, newest first (none: [])."""
    snapshots = Path(cache_dir) / f"models--{repo.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return []
    return sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
