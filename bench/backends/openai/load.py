"""Load models: when each request of a sustained-load case is sent.

- ``closed``: ``concurrency`` clients, each sending its next request as soon as its previous one
  ended (a fixed number in flight).
- ``poisson`` / ``gamma``: an open loop. Requests arrive at ``rate`` per second whatever the
  server does, the gaps between arrivals drawn from an exponential distribution (``poisson``) or
  a gamma distribution of shape ``burstiness`` and the same mean (``gamma``: below 1 burstier
  than Poisson, above 1 more regular). ``rate`` None (``inf``) sends every request at once.
  ``concurrency`` > 0 caps the requests in flight (an arrival then waits for a free slot, and is
  counted as ``capped``).

A case runs a warm-up (the first ``warmup_requests`` requests, or those sent in the first
``warmup_s`` seconds) and then its measured period: ``num_requests`` requests, or those sent
within ``duration_s`` seconds; requests still in flight at the end are waited for (each bounded
by the client's --timeout). Pure asyncio: ``drive`` calls ``send(i)`` for request i and knows
nothing of HTTP, so the schedule is tested without a server.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterator

from bench.backends.base import LoadPlan
from bench.backends.timing import clock


@dataclass
class Sent:
    """One request as the load generator saw it."""

    index: int
    counted: bool
    start: float  # clock() when it was sent
    end: float | None = None  # clock() when it finished or failed
    value: object = None  # what send() returned
    error: BaseException | None = None
    lag: float = 0.0  # open loops: sent this long after its scheduled arrival


@dataclass
class LoadOutcome:
    sent: list[Sent] = field(default_factory=list)
    measure_start: float = 0.0  # clock() when the measured period began
    capped: int = 0  # arrivals that waited for a free slot (open loops with a cap)

    @property
    def counted(self) -> list[Sent]:
        return [s for s in self.sent if s.counted]

    @property
    def warmup(self) -> int:
        return sum(1 for s in self.sent if not s.counted)


def arrival_gaps(rate: float | None, burstiness: float, seed: int) -> Iterator[float]:
    """Seconds between consecutive arrivals: exponential (burstiness 1), gamma of shape
    ``burstiness`` and mean 1/rate otherwise; 0 forever when the rate is infinite."""
    rng = random.Random(seed)
    while True:
        if rate is None:
            yield 0.0
        elif burstiness == 1.0:
            yield rng.expovariate(rate)
        else:
            yield rng.gammavariate(burstiness, 1.0 / (rate * burstiness))


class _Gate:
    """Which request comes next, whether it counts, and when sending stops."""

    def __init__(self, plan: LoadPlan, t0: float):
        self.plan, self.t0 = plan, t0
        self.next = 0
        self.counted = 0
        self.measure_start: float | None = None
        if plan.warmup_s > 0:
            self.measure_start = t0 + plan.warmup_s

    def take(self, now: float) -> tuple[int, bool] | None:
        """The next request's index and whether it is counted; None when sending is over."""
        p = self.plan
        if self.measure_start is not None and now < self.measure_start:
            counted = False
        elif self.measure_start is None and self.next < p.warmup_requests:
            counted = False
        else:
            counted = True
            if self.measure_start is None:
                self.measure_start = now
            if p.num_requests is not None and self.counted >= p.num_requests:
                return None
            if p.duration_s is not None and now >= self.measure_start + p.duration_s:
                return None
        i = self.next
        self.next += 1
        self.counted += counted
        return i, counted


async def drive(plan: LoadPlan, send: Callable[[int], Awaitable[object]]) -> LoadOutcome:
    """Run the plan; ``send(i)`` performs request i (its exceptions are recorded, not raised)."""
    t0 = clock()
    gate = _Gate(plan, t0)
    outcome = LoadOutcome()

    async def one(i: int, counted: bool, lag: float = 0.0) -> None:
        s = Sent(i, counted, clock(), lag=lag)
        outcome.sent.append(s)
        try:
            s.value = await send(i)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            s.error = exc
        s.end = clock()

    if plan.kind == "closed":
        async def client() -> None:
            while (nxt := gate.take(clock())) is not None:
                await one(*nxt)

        await asyncio.gather(*(client() for _ in range(max(1, plan.concurrency))))
    else:
        slots = asyncio.Semaphore(plan.connections)
        tasks: list[asyncio.Task] = []

        async def held(i: int, counted: bool, due: float) -> None:
            try:
                await one(i, counted, lag=max(0.0, clock() - due))
            finally:
                slots.release()

        due = t0
        for gap in arrival_gaps(plan.rate, plan.burstiness, plan.seed):
            due += gap
            wait = due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
            nxt = gate.take(max(due, clock()) if plan.rate is not None else clock())
            if nxt is None:
                break
            if slots.locked():
                outcome.capped += 1
            await slots.acquire()
            tasks.append(asyncio.create_task(held(*nxt, due)))
            if plan.rate is None and len(tasks) % 64 == 0:
                await asyncio.sleep(0)  # let the first requests go out while the rest are queued
        await asyncio.gather(*tasks)
    outcome.measure_start = gate.measure_start if gate.measure_start is not None else t0
    outcome.sent.sort(key=lambda s: s.index)
    return outcome
