"""What every record this tool writes carries: the tool's version and a UTC time stamp."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def tool_version() -> str:
    """The installed gptoss-harness version; from a source checkout's pyproject.toml if not installed."""
    try:
        from importlib.metadata import version

        return version("gptoss-harness")
    except Exception:  # noqa: BLE001 - PackageNotFoundError or a broken metadata store
        pass
    try:
        text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    m = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return m.group(1) if m else "unknown"


def now_iso() -> str:
    """Now, in UTC, to the second: ``2026-11-30T12:00:00+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
