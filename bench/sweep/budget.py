"""``--max-time``: stop starting cases that would run past the budget.

A case's expected duration is the median seconds per token of the cases run so far times the
tokens it asks for, so a 512-token case is not estimated from 128-token ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from bench.results import CaseKey


def case_work(key: CaseKey) -> int:
    """Tokens a case asks for per run: what its duration scales with (decode dominates)."""
    return key.output_len * key.batch_size * key.concurrency


@dataclass
class Budget:
    seconds: float | None
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    per_token: list[float] = field(default_factory=list)

    REACHED = "--max-time budget reached before this case started"

    def __post_init__(self):
        self.started = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def record(self, key: CaseKey, seconds: float) -> None:
        self.per_token.append(seconds / max(case_work(key), 1))

    def estimate(self, key: CaseKey) -> float:
        """``key``'s expected duration in seconds (0 before any case ran)."""
        if not self.per_token:
            return 0.0
        ordered = sorted(self.per_token)
        return ordered[len(ordered) // 2] * case_work(key)

    def allows(self, key: CaseKey) -> bool:
        if self.seconds is None:
            return True
        return self.elapsed() + self.estimate(key) <= self.seconds
