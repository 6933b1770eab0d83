"""What the sweep runner drives: something that loads a model and runs one repetition of a case.

Two backends: ``transformers`` (in-process, bench/backends/transformers/) and ``openai`` (an
OpenAI-compatible server over HTTP, bench/backends/openai/). The runner owns the sweep, warm-up,
repetitions, trackers (memory, NVML), statistics, resume, out-of-memory handling and the results
journal; a backend only describes itself, loads, prepares a case, runs it once, and cleans up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.backends.timing import GenerationTiming
from bench.results import CaseKey, LoadRecord, ModelInfo

MAX_IN_FLIGHT = 1024  # an open loop without a cap still never holds more than this many requests


@dataclass
class Repetition:
    """One run of a case: a clock per sequence or request, and what the backend measured itself."""

    timings: list[GenerationTiming]
    samples: dict[str, float] = field(default_factory=dict)  # metric name -> value, e.g. kv_cache_bytes


@dataclass(frozen=True)
class DecodeProfile:
    """GPU kernel time of one decode step (every sequence of the batch), from uncounted runs under
    torch.profiler; over the wall time of a step it gives ``gpu_busy_frac``."""

    kernel_s_per_step: float
    steps: int  # decode steps the figure was taken over


@dataclass(frozen=True)
class LoadPlan:
    """A sustained load for one case (bench/backends/openai/load.py says how it is sent)."""

    kind: str  # closed | poisson | gamma
    concurrency: int = 1  # closed: clients; open: the most requests in flight (0: no cap)
    rate: float | None = None  # open: requests per second; None: all at once
    burstiness: float = 1.0  # gamma: the shape of the gaps' distribution
    num_requests: int | None = None  # measured requests; or
    duration_s: float | None = None  # the measured period's length
    warmup_requests: int = 0
    warmup_s: float = 0.0
    seed: int = 0

    @property
    def connections(self) -> int:
        return self.concurrency if self.concurrency > 0 else MAX_IN_FLIGHT


class PreparedCase(Protocol):
    """A case whose prompt is built, ready to run as often as the runner asks."""

    def once(self, counted: bool = True) -> Repetition:
        """One repetition: one generate call (or one wave of ``key.concurrency`` requests).
        Warm-up runs pass ``counted=False`` and leave no trace in ``info``."""

    def info(self) -> dict[str, Any]:
        """Facts about the counted repetitions that are not metrics (the case's ``info``)."""

    # A backend that serves sustained load (``key.load`` other than waves) also has:
    # def run_load(self, plan: LoadPlan) -> bench.results.RequestLog: the warm-up and the
    #     measured period, every counted request recorded.


class ProfiledCase(PreparedCase, Protocol):
    """A case on a GPU that can also say how busy the GPU is while it decodes."""

    def profile(self, max_tokens: int) -> DecodeProfile:
        """Uncounted decoding under the profiler, at most ``max_tokens`` new tokens."""


class Backend(Protocol):
    def describe(self) -> dict[str, Any]:
        """The results file's ``backend`` object (kind, base_url, server, ...; never a secret)."""

    def model_info(self) -> ModelInfo:
        """The model as resolved (id, source, path, synthetic, parameters, ...)."""

    def load(self, quant: str, attn: str) -> LoadRecord:
        """Load (or connect) for one load group; the record's metrics hold the load phase and its
        ``device`` tells the runner which trackers apply."""

    def prepare(self, key: CaseKey) -> PreparedCase:
        """Build the prompt for a case; called once before its warm-up."""

    def recover(self) -> None:
        """Free what a failed case left behind (after an out-of-memory)."""

    def unload(self) -> None:
        """Release the model of the current load group."""
