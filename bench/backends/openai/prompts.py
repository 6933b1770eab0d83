"""Prompts of an exact token length for a server: the user message is plain filler text
(bench.models.prompts.FILLER) sized so the whole rendered prompt is ``prompt_len`` tokens.

Counted by the server itself where it reports usage (a few ``max_tokens=1`` requests, at most
``MAX_CALIBRATION`` per effort and length, starting from the local tokenizer's answer when there
is one), else by the local tokenizer's chat template, else estimated (about 0.75 words a token).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from bench.models.prompts import FILLER

MAX_CALIBRATION = 8  # requests while sizing a prompt to the server's token count
_WORD_RE = re.compile(r"\S+")


@dataclass(frozen=True)
class SizedPrompt:
    text: str
    tokens: int | None  # the rendered prompt's tokens, when known
    sizing: str  # server | tokenizer | approx


def filler(n: int) -> str:
    """The first ``n`` words of the filler text (at least one), repeated as needed."""
    words = _WORD_RE.findall(FILLER)
    return " ".join(words[i % len(words)] for i in range(max(1, n)))


def size_prompt(effort: str, target: int, tokenizer: Any = None,
                server: Callable[[str, str], int | None] | None = None) -> SizedPrompt:
    """Find the number of filler words whose rendered prompt is ``target`` tokens long.

    ``server(effort, text)`` asks the server for the prompt tokens of a message (None: unknown);
    ``tokenizer`` renders the chat template locally."""
    local = _local_count(tokenizer, effort)
    if local is None and server is None:
        return SizedPrompt(filler(max(1, round(target * 0.75))), None, "approx")
    start = 1
    if local is not None:
        n_local, p_local = solve(local, target, start=1, budget=24)
        if server is None:
            return SizedPrompt(filler(n_local), p_local, "tokenizer")
        start = n_local
    n, p = solve(lambda n: server(effort, filler(n)), target, start=start, budget=MAX_CALIBRATION)
    if p is None:
        return SizedPrompt(filler(start), None, "approx")
    return SizedPrompt(filler(n), p, "server")


def _local_count(tokenizer: Any, effort: str) -> Callable[[int], int] | None:
    """Prompt tokens of n filler words by the local tokenizer's chat template, if it has one."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return None

    def count(n: int) -> int:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": filler(n)}],
            tokenize=True, add_generation_prompt=True, reasoning_effort=effort,
        )
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)

    return count


def solve(measure, target: int, start: int, budget: int) -> tuple[int, int | None]:
    """Find n >= 1 with measure(n) == target (measure increasing in n), in at most ``budget``
    calls: secant steps inside a shrinking bracket. Returns the closest (n, measure(n)) found
    (preferring not to exceed the target); measure may return None (unknown) -> (start, None)."""
    seen: dict[int, int] = {}
    lo: tuple[int, int] | None = None  # (n, p) with p < target
    hi: tuple[int, int] | None = None  # (n, p) with p > target
    n = max(1, start)
    for _ in range(budget):
        if n in seen:
            break
        p = measure(n)
        if p is None:
            return start, None
        seen[n] = p
        if p == target:
            return n, p
        if p < target:
            lo = (n, p) if lo is None or n > lo[0] else lo
        else:
            hi = (n, p) if hi is None or n < hi[0] else hi
        if hi is not None and hi[0] == 1:
            break  # the template alone is longer than the target
        # next guess: secant through the two nearest points, else a step of ~1 token per word
        points = sorted(seen.items(), key=lambda kv: abs(kv[1] - target))[:2]
        if len(points) == 2 and points[0][1] != points[1][1]:
            (n1, p1), (n2, p2) = points
            slope = (p2 - p1) / (n2 - n1)
            guess = round(n1 + (target - p1) / slope) if slope > 0 else n + 1
        else:
            step = round((target - p) / 1.3) or (1 if p < target else -1)
            guess = n + step
        low = lo[0] + 1 if lo else 1
        high = hi[0] - 1 if hi else None
        if high is not None and low > high:
            break  # no whole number of words gives the target exactly
        guess = max(low, guess)
        if high is not None:
            guess = min(high, guess)
        n = guess
    under = [(n, p) for n, p in seen.items() if p <= target]
    if under:
        return max(under, key=lambda kv: kv[1])
    return min(seen.items(), key=lambda kv: kv[1])
