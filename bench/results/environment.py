"""The flat one-line view of the environment snapshot that compare, history and reports key on."""

from __future__ import annotations

from typing import Any, Iterable

SUMMARY_FIELDS = ("device", "gpu", "gpu_count", "cpu", "driver", "cuda", "torch", "triton", "transformers", "kernels", "python", "platform")


def summarize_environment(snapshot: dict) -> dict:
    """The flat view of a ``gptoss check --json`` snapshot that compare, history and reports use."""
    facts = snapshot.get("facts", {}) if isinstance(snapshot, dict) else {}
    gpus = facts.get("gpus") or []
    packages = facts.get("packages") or {}
    driver = facts.get("driver") or {}
    torch_fact = facts.get("torch") or {}
    platform_fact = facts.get("platform") or {}

    def version(name: str) -> str | None:
        p = packages.get(name) or {}
        return p.get("version")

    return {
        "device": "cuda" if gpus else "cpu",
        "gpu": gpus[0].get("name") if gpus else None,
        "gpu_count": len(gpus),
        "cpu": platform_fact.get("cpu") or None,
        "driver": driver.get("version"),
        "cuda": torch_fact.get("cuda_build"),
        "torch": version("torch"),
        "triton": version("triton"),
        "transformers": version("transformers"),
        "kernels": version("kernels"),
        "python": platform_fact.get("python"),
        "platform": platform_fact.get("system"),
    }


def env_differences(a: dict, b: dict, keys: Iterable[str] = SUMMARY_FIELDS) -> dict[str, tuple[Any, Any]]:
    """Fields of two environment summaries that differ: name -> (a, b)."""
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}
