"""A case under sustained load (``--load closed|poisson|gamma``): which request is sent as the
i-th, and the records of the counted ones.

Request i is the case's prompt (sized to ``prompt_len`` tokens, as a wave's is) or, with
``--dataset``, the file's i-th prompt (in file order, starting again at the end) with its own
output length where it gives one. Its reasoning effort is the dataset line's own, else one drawn
from the case's mix (``low:0.5+high:0.5``, with the run's seed), else the case's. The load
(``load.drive``) runs on the client's connection pool; afterwards each counted request's tokens
are counted and reconciled with the server's usage (off the clock), and it becomes a
``RequestRecord``. Failed requests are recorded with their error; a case whose every counted
request failed is an error.
"""

from __future__ import annotations

import random
from typing import Any

from bench.backends.base import LoadPlan
from bench.backends.openai.backend import OpenAICase
from bench.backends.openai.errors import ServerError
from bench.backends.openai.load import LoadOutcome, drive
from bench.backends.openai.prompts import SizedPrompt
from bench.backends.openai.tokens import finalize
from bench.models.dataset import Dataset
from bench.results import CaseKey, RequestLog, RequestRecord, effort_mix, percentile


class RequestSource:
    """The body and effort of request i (see the module docstring)."""

    def __init__(self, backend, key: CaseKey, dataset: Dataset | None, seed: int):
        self.backend, self.key, self.dataset = backend, key, dataset
        self.mix = effort_mix(key.effort)
        self._rng = random.Random(seed)
        self.prompts: dict[str, SizedPrompt] = {}
        if dataset is None:  # size the prompt once per effort, before the clock starts
            for effort, _ in self.mix:
                self.prompts[effort] = backend.prompt(effort, key.prompt_len)
        self.asked: dict[int, int] = {}  # request index -> new tokens asked

    def effort(self, own: str | None) -> str:
        if own is not None:
            return own
        if len(self.mix) == 1:
            return self.mix[0][0]
        names, weights = zip(*self.mix)
        return self._rng.choices(names, weights)[0]

    def __call__(self, i: int) -> tuple[dict[str, Any], str]:
        key, fixed = self.key, self.key.mode == "fixed"
        if self.dataset is None:
            effort = self.effort(None)
            text: str | list[dict[str, str]] = self.prompts[effort].text
            length = key.output_len
        else:
            item = self.dataset.requests[i % len(self.dataset)]
            effort = self.effort(item.effort)
            text, length = item.chat(), item.output_len or key.output_len
        if not fixed:
            length = self.backend.options.natural_cap or length
        self.asked[i] = length
        return self.backend._body(effort, text, length, fixed=fixed), effort


class SustainedCase(OpenAICase):
    """A case whose requests are sent by a load model; ``run_load`` returns their records."""

    dataset: Dataset | None = None

    @classmethod
    def build(cls, backend, key: CaseKey) -> "SustainedCase":
        dataset = None
        if backend.options.dataset:
            dataset = backend.dataset()
        source = RequestSource(backend, key, dataset, backend.options.seed)
        prompt = next(iter(source.prompts.values())) if source.prompts else SizedPrompt("", None, "dataset")
        case = cls(backend, key, prompt, {})
        case.dataset, case.source = dataset, source
        case.facts, case.short = {}, 0
        return case

    def once(self, counted: bool = True):
        raise ServerError(f"a --load {self.key.load} case runs as one sustained load, not in repetitions.")

    def run_load(self, plan: LoadPlan) -> RequestLog:
        client, source = self.backend.client, self.source
        efforts: dict[int, str] = {}

        async def work(session):
            async def send(i: int):
                body, effort = source(i)
                efforts[i] = effort
                return await client.stream(session, body)

            return await drive(plan, send)

        outcome = client.run(work, connections=plan.connections)
        return self._records(outcome, efforts)

    def _records(self, outcome: LoadOutcome, efforts: dict[int, str]) -> RequestLog:
        for s in outcome.sent:
            if s.error is not None and not isinstance(s.error, ServerError):
                raise s.error  # not the server's doing: a bug must not pass as a failed request
        records, ends = [], []
        t0 = outcome.measure_start
        for s in outcome.counted:
            rec = RequestRecord(start=s.start - t0, effort=efforts.get(s.index))
            records.append(rec)
            if s.error is not None:
                rec.error, rec.e2e = str(s.error), (s.end or s.start) - s.start
                ends.append(s.end or s.start)
                continue
            result = s.value
            finalize(result, self.backend.counter)
            t = result.timing
            rec.start = t.start - t0
            if not t.prompt_tokens and self.prompt.tokens and self.prompt.sizing == "tokenizer":
                t.prompt_tokens = self.prompt.tokens
            rec.prompt_tokens = t.prompt_tokens or None
            rec.output_tokens = t.new_tokens
            rec.e2e = t.end - t.start
            ends.append(t.end)
            if t.arrivals:
                rec.ttft = t.arrivals[0] - t.start
                rec.gaps = [b - a for a, b in zip(t.arrivals, t.arrivals[1:])]
                rec.chunk_tokens = list(t.tokens_per_arrival)
            if t.channel_tokens:
                rec.analysis_tokens = t.channel_tokens.get("analysis", 0)
                rec.final_tokens = t.channel_tokens.get("final", 0)
                rec.time_to_final = None if t.first_final_at is None else t.first_final_at - t.start
            self.tally.add(result)
            asked = self.source.asked.get(s.index)
            if self.key.mode == "fixed" and asked and t.new_tokens < asked:
                self.short += 1
        failed = [r for r in records if not r.ok]
        if records and len(failed) == len(records):
            raise ServerError(f"all {len(records)} requests of the case failed; the first: {failed[0].error}")
        lags = [s.lag for s in outcome.sent]
        if self.key.open_loop and lags:
            self.facts["schedule_lag_p99_s"] = round(percentile(lags, 99), 6)
            self.facts["schedule_lag_max_s"] = round(max(lags), 6)
        if outcome.capped:
            self.facts["capped_arrivals"] = outcome.capped
        warm_failed = sum(1 for s in outcome.sent if not s.counted and s.error is not None)
        if warm_failed:
            self.facts["warmup_failed"] = warm_failed
        return RequestLog(records, max(ends, default=t0) - t0, outcome.warmup)

    def info(self) -> dict[str, Any]:
        info = super().info()
        info.pop("note", None)  # the wave's fixed-length note assumes one length; see "short" below
        if self.dataset is not None:
            info.pop("prompt_note", None)
            counted = self.tally.prompt_tokens
            if counted:
                info["prompt_tokens"] = {"min": min(counted), "max": max(counted)}
            info["dataset"] = {"name": self.dataset.name, "prompts": len(self.dataset)}
        if len(self.source.mix) > 1:
            info["effort_mix"] = dict(self.source.mix)
        short = self.short
        if short:
            info["note"] = (
                f"fixed mode: {short} requests came back shorter than asked; the server "
                + ("ignored the exact-length fields" if self.backend.fixed_method() != "none"
                   else "accepts no exact-length field (min_tokens, ignore_eos, generation_config)")
            )
        info["schedule"] = dict(self.facts)
        return info
