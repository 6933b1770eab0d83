"""The per-token clock of in-process generation: a transformers streamer that stamps arrivals.

transformers calls ``put()`` once with the prompt, then once per step with the new token ids
after they reached the CPU, so each stamp is taken when that token's device work is done. In
natural mode it also follows the harmony channels of the first sequence.
"""

from __future__ import annotations

from bench.backends.timing import GenerationTiming, clock


def make_clock_streamer(timing: GenerationTiming, tracker=None):
    """A streamer that stamps each arrival on ``timing``; ``tracker`` (a ChannelTracker) is fed
    each token of the first sequence."""
    from transformers.generation.streamers import BaseStreamer

    class ClockStreamer(BaseStreamer):
        def __init__(self):
            self.prompt_seen = False

        def put(self, value):
            now = clock()
            if not self.prompt_seen:  # the first call carries the prompt
                self.prompt_seen = True
                return
            timing.arrive(1, at=now)
            if tracker is not None:
                token = int(value.reshape(-1)[0])  # channels of the first sequence
                channel = tracker.feed(token)
                if channel == "final" and timing.first_final_at is None:
                    timing.first_final_at = now

        def end(self):
            pass

    return ClockStreamer()
