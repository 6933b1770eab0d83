"""`--decode graph` cases: one captured graph per batch size, proved against transformers first.

``GraphCache`` holds, for the loaded model, one ``GraphDecoder`` per batch size. A case that needs
a longer cache than the captured one gets a new capture (cache lengths are rounded up, so the
default lengths share one). Every capture is checked before any case uses it: the replayed
graph's greedy tokens must equal transformers' own static-cache decoding from the same prefill,
and its logits must stay as close to a cache-free forward as transformers' own StaticCache does
(``graph.check_fidelity``). A capture that fails the check fails its cases with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.backends.base import DecodeProfile, Repetition
from bench.backends.transformers.graph import Fidelity, GraphDecoder, check_fidelity, fidelity_steps
from bench.backends.transformers.profile import kernel_seconds
from bench.backends.transformers.streamer import TokenClock
from bench.models.prompts import Prompt
from bench.results import CaseKey

# Cache lengths are rounded up to this many slots. The full-attention layers attend over every
# slot (masked or not), so a cache sized to the case, as transformers' own StaticCache is for
# generate, decodes as fast as that case allows; cases share a capture only at one cache length.
CACHE_ROUND = 64
BARE_STEPS = 128  # replays timed bare (no host read, no clock) beside the counted repetitions


class GraphFidelityError(RuntimeError):
    """The captured graph does not decode what transformers decodes: its numbers are not reported."""


@dataclass
class Captured:
    decoder: GraphDecoder
    fidelity: Fidelity
    number: int  # 1 for the first capture of this load


def cache_len_for(prompt_len: int, new_tokens: int, fidelity_min: int = 64) -> int:
    """A cache long enough for the case and for the fidelity check, rounded up to CACHE_ROUND."""
    need = prompt_len + max(new_tokens, fidelity_min + 1) + 1
    return -(-need // CACHE_ROUND) * CACHE_ROUND


class GraphCache:
    """The captured decoders of one loaded model, by batch size."""

    def __init__(self, model, capture: bool = True):
        self.model = model
        self.capture = capture
        self.by_batch: dict[int, Captured] = {}
        self.captures = 0

    def get(self, ids, new_tokens: int) -> Captured:
        """The decoder for ``ids`` [b, p] and ``new_tokens``: captured (and checked) if needed."""
        b, p = ids.shape
        length = cache_len_for(p, new_tokens)
        held = self.by_batch.get(b)
        if held is not None and held.decoder.max_cache_len == length:
            return held  # a case's speed depends on its cache length: only an equal one is shared
        self.by_batch.pop(b, None)  # free the old cache before allocating the new one
        decoder = GraphDecoder(self.model, b, length, capture=self.capture)
        decoder.warm_and_capture(ids)
        steps = fidelity_steps(p, decoder.window, decoder.max_cache_len - p - 1)
        fidelity = check_fidelity(decoder, ids, steps)
        self.captures += 1
        held = Captured(decoder, fidelity, self.captures)
        self.by_batch[b] = held
        return held

    def clear(self) -> None:
        self.by_batch.clear()


class GraphCase:
    """A case decoded by replaying the captured step; the per-token clock reads each token back."""

    def __init__(self, backend, key: CaseKey, prompt: Prompt):
        import torch

        self.backend, self.key, self.prompt = backend, key, prompt
        self.new_tokens = backend.new_tokens(key)
        self.ids = torch.tensor([prompt.ids] * key.batch_size, dtype=torch.long, device=backend.loaded.device)
        started = time.perf_counter()
        self.captured = backend.graphs.get(self.ids, self.new_tokens)
        self.prepare_s = time.perf_counter() - started
        reason = self.captured.fidelity.reason()
        if reason:
            raise GraphFidelityError(f"{reason}; graph figures are not reported for this model and batch size")
        self.bare_tok_s: float | None = None

    @property
    def decoder(self) -> GraphDecoder:
        return self.captured.decoder

    def once(self, counted: bool = True) -> Repetition:
        from bench.backends.transformers.backend import kv_cache_bytes

        tokenizer = self.backend.loaded.tokenizer if self.key.mode == "natural" else None
        stop_ids: set[int] = set()
        if tokenizer is not None:
            from bench.models.channels import HarmonyTokens

            stop_ids = set(HarmonyTokens.from_tokenizer(tokenizer).stop_ids)
        self.backend.sync()
        token_clock = TokenClock(len(self.prompt.ids), self.key.batch_size, tokenizer)

        def on_token(tokens) -> bool:
            token_clock.token(tokens)
            return bool(stop_ids) and int(tokens[0]) in stop_ids  # the first sequence stops, as with generate

        self.decoder.decode(self.ids, self.new_tokens, on_token)
        self.backend.sync()
        timing = token_clock.finish(self.new_tokens)
        kv = kv_cache_bytes(self.decoder.cache)
        return Repetition([timing], {"kv_cache_bytes": float(kv)} if kv is not None else {})

    def profile(self, max_tokens: int) -> DecodeProfile:
        """Kernel time of the replayed steps alone (the prefill runs before the profiler starts),
        and the speed of a bare replay loop, timed in the same process for comparison."""
        import torch

        n = max(1, min(max_tokens, self.new_tokens) - 1)
        decoder = self.decoder
        with torch.inference_mode():
            decoder.prefill(self.ids)
            self.backend.sync()

            def replay():
                for _ in range(n):
                    decoder.step()

            kernel_s, _ = kernel_seconds(replay)
        if self.decoder.capture:
            room = decoder.max_cache_len - self.ids.shape[1] - 1
            self.bare_tok_s = decoder.bare_tok_s(self.ids, min(BARE_STEPS, room))
        return DecodeProfile(kernel_s_per_step=kernel_s / n, steps=n)

    def info(self) -> dict[str, Any]:
        decoder = self.decoder
        return {
            "decode": "graph",
            "prompt_template_tokens": self.prompt.template_tokens,
            "graph": {
                "captured": decoder.capture,
                "capture_s": decoder.capture_s,
                "prepare_s": self.prepare_s,  # capture and fidelity check, when this case made them
                "capture_number": self.captured.number,
                "graphs_captured": self.backend.graphs.captures,
                "max_cache_len": decoder.max_cache_len,
                "bare_replay_tok_s": self.bare_tok_s,
            },
            "fidelity": self.captured.fidelity.to_dict(),
        }
