"""The per-token clock of in-process generation, for ``generate`` and for graph decoding.

``TokenClock`` stamps each new token on a ``GenerationTiming`` when it reached the host; in
natural mode it also follows the harmony channels of the first sequence. For ``generate`` it is
fed by a transformers streamer: transformers calls ``put()`` once with the prompt, then once per
step with the new token ids after they reached the CPU, so each stamp is taken when that token's
device work is done.
"""

from __future__ import annotations

from bench.backends.timing import GenerationTiming, clock


class TokenClock:
    """One generation's clock. ``tokenizer`` given (natural mode): channels are followed too."""

    def __init__(self, prompt_tokens: int, batch_size: int, tokenizer=None):
        self.tracker = None
        if tokenizer is not None:
            from bench.models.channels import ChannelTracker

            self.tracker = ChannelTracker(tokenizer)
        self.timing = GenerationTiming(start=clock(), prompt_tokens=prompt_tokens, batch_size=batch_size)

    def token(self, tokens) -> None:
        """One step's new tokens reached the host (a CPU tensor, the first sequence's first)."""
        now = clock()
        self.timing.arrive(1, at=now)
        if self.tracker is not None:
            if self.tracker.feed(int(tokens.reshape(-1)[0])) == "final" and self.timing.first_final_at is None:
                self.timing.first_final_at = now

    def finish(self, asked: int) -> GenerationTiming:
        """The generation returned after asking for ``asked`` new tokens."""
        timing = self.timing
        timing.end = clock()
        if self.tracker is not None:
            timing.channel_tokens = dict(self.tracker.counts)
            timing.stop_reason = "stop" if timing.new_tokens < asked else "length"
        return timing


def make_clock_streamer(token_clock: TokenClock):
    """A transformers streamer that feeds ``token_clock`` each step's new tokens."""
    from transformers.generation.streamers import BaseStreamer

    class ClockStreamer(BaseStreamer):
        def __init__(self):
            self.prompt_seen = False

        def put(self, value):
            if not self.prompt_seen:  # the first call carries the prompt
                self.prompt_seen = True
                return
            token_clock.token(value)

        def end(self):
            pass

    return ClockStreamer()
