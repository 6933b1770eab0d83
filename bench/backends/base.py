"""What the sweep runner drives: something that loads a model and runs one repetition of a case.

Two backends: ``transformers`` (in-process, bench/backends/transformers_backend.py) and ``openai``
(an OpenAI-compatible server over HTTP, bench/backends/openai_backend.py). The runner owns the
sweep, warm-up, repetitions, statistics, resume, out-of-memory handling and the results file; a
backend only knows how to load and how to run one repetition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.results import CaseKey, LoadRecord, ModelInfo
from bench.backends.timing import GenerationTiming


@dataclass
class CaseExtras:
    """What a backend measured about a case beyond its per-token clocks."""

    samples: dict[str, list[float]] = field(default_factory=dict)  # e.g. peak_alloc_bytes per rep
    info: dict[str, Any] = field(default_factory=dict)
    weights_path: str | None = None


class Backend(Protocol):
    def describe(self) -> dict[str, Any]:
        """The results file's ``backend`` object (kind, base_url, server, ...; never a secret)."""

    def model_info(self) -> ModelInfo:
        """The model as resolved (id, source, path, synthetic, parameters, ...)."""

    def load(self, quant: str, attn: str) -> LoadRecord:
        """Load (or connect) for one load group; the record's metrics hold the load phase."""

    def prepare(self, key: CaseKey) -> None:
        """Build the prompt for a case; called once before its warm-up."""

    def once(self, key: CaseKey) -> list[GenerationTiming]:
        """One repetition: one generate call (or one wave of `key.concurrency` requests)."""

    def begin_rep(self) -> None:
        """Called before each counted repetition (reset peak-memory counters)."""

    def end_rep(self, extras: CaseExtras) -> None:
        """Called after each counted repetition: append per-rep samples (memory) to extras."""

    def finish(self, key: CaseKey, extras: CaseExtras) -> None:
        """Called after the last repetition of a case (info, weights path)."""

    def recover(self) -> None:
        """Free what a failed case left behind (after an out-of-memory)."""

    def unload(self) -> None:
        """Release the model of the current load group."""
