"""From streamed text to tokens: counting, reconciling with the server's usage, and channels.

Each arrival carries the tokens of the text it brought: counted with the served checkpoint's
tokenizer when one is at hand, else one per non-empty delta. When the stream ends with a
``usage`` object its ``completion_tokens`` is authoritative and the per-arrival counts are
adjusted to sum to it. ``token_source`` says which of ``usage``, ``tokenizer`` or ``chunks`` the
counts came from.

Channels: where the server separates them (``delta.reasoning_content`` / ``delta.reasoning``
for the analysis channel, ``delta.content`` for the final one) both are counted; where the raw
harmony markers appear in ``content`` they are parsed (``bench.models.channels``); otherwise
channels are left empty.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench.backends.openai.client import StreamResult
from bench.models.channels import count_text_channels
from diagnostics.errors import one_line

log = logging.getLogger("gptoss.bench.openai")


class TokenCounter:
    """Counts tokens of text with a local tokenizer: the one given, else the served checkpoint's
    when the served name is a folder holding one (loaded on first use), else none."""

    def __init__(self, folder: Path | None, tokenizer: Any = None):
        self.folder = folder
        self._tokenizer = tokenizer
        self._tried = tokenizer is not None
        self.note: str | None = None  # why the folder's tokenizer did not load

    @property
    def tokenizer(self):
        if self._tried:
            return self._tokenizer
        self._tried = True
        path = self.folder
        if path is None or not ((path / "tokenizer.json").exists() or (path / "tokenizer_config.json").exists()):
            return None
        try:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        except Exception as exc:  # a tokenizer is optional: count chunks without one
            self.note = one_line(f"{type(exc).__name__}: {exc}", 200)
            log.info("no tokenizer from %s (%s); counting streamed chunks", path, self.note)
            self._tokenizer = None
        return self._tokenizer

    @property
    def ready(self) -> bool:
        """A tokenizer is loaded (``tokenizer`` loads it; counting never does)."""
        return self._tokenizer is not None

    def count(self, text: str) -> int:
        """Tokens in ``text`` (at least 1); 1 without a tokenizer."""
        tok = self._tokenizer
        if tok is None or not text:
            return 1
        try:
            ids = tok(text, add_special_tokens=False)["input_ids"]
        except Exception:
            return 1
        return max(1, len(ids))


def merge_same_time(arrivals: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """Arrivals read in the same network read are one arrival carrying all their tokens."""
    out: list[tuple[float, int]] = []
    for at, k in arrivals:
        if out and out[-1][0] == at:
            out[-1] = (at, out[-1][1] + k)
        else:
            out.append((at, k))
    return out


def reconcile(counts: list[int], total: int) -> list[int] | None:
    """Adjust per-arrival token counts (each >= 1) to sum to ``total`` (the server's usage).

    Missing tokens (e.g. special tokens that decode to no text) are spread evenly over the
    arrivals after the first; surplus ones (a tokenizer that counts more than the server did) are
    taken from the largest counts. None when impossible (fewer tokens than arrivals)."""
    if not counts:
        return None
    if total < len(counts):
        return None
    out = list(counts)
    diff = total - sum(out)
    if diff > 0:
        targets = list(range(1, len(out))) or [0]
        each, rest = divmod(diff, len(targets))
        for j, i in enumerate(targets):
            out[i] += each + (1 if j < rest else 0)
    while diff < 0:
        i = max(range(len(out)), key=lambda j: out[j])
        take = min(out[i] - 1, -diff)
        out[i] -= take
        diff += take
    return out


def finalize(result: StreamResult, counter: TokenCounter) -> None:
    """Fill the result's timing: arrivals with their token counts, prompt tokens, stop reason,
    channels."""
    t = result.timing
    t.stop_reason = result.finish_reason
    usage = result.usage or {}
    if isinstance(usage.get("prompt_tokens"), int):
        t.prompt_tokens = usage["prompt_tokens"]
    has_tok = counter.ready
    per_piece = [counter.count(p.text) if has_tok else 1 for p in result.pieces]
    arrivals = merge_same_time([(p.at, k) for p, k in zip(result.pieces, per_piece)])
    counts = [k for _, k in arrivals]
    result.token_source = "tokenizer" if has_tok else "chunks"
    total = usage.get("completion_tokens")
    if isinstance(total, int) and arrivals:
        fixed_counts = reconcile(counts, total)
        if fixed_counts is not None:
            counts = fixed_counts
            result.token_source = "usage"
    for (at, _), k in zip(arrivals, counts):
        t.arrive(tokens=k, at=at)
    _channels(result, per_piece, counter)


def _channels(result: StreamResult, per_piece: list[int], counter: TokenCounter) -> None:
    t = result.timing
    pieces = result.pieces
    if any(p.field == "reasoning" for p in pieces):
        result.channel_mode = "separated"
        t.channel_tokens = {"analysis": 0, "final": 0}
        for p, k in zip(pieces, per_piece):
            channel = "analysis" if p.field == "reasoning" else "final"
            t.channel_tokens[channel] += k
            if channel == "final" and t.first_final_at is None:
                t.first_final_at = p.at
        return
    found = count_text_channels([(p.at, p.text) for p in pieces if p.field == "content"], counter.count)
    if found is not None:
        result.channel_mode = "harmony"
        t.channel_tokens = found.counts
        t.first_final_at = found.first_final_at
