"""In-process backend: transformers `model.generate` with a per-token clock.

The clock is a streamer: transformers calls ``put()`` once with the prompt, then once per step
with the new token ids after they reached the CPU (so the device work for that token is done). CUDA
is synchronized before the start clock and after generate returns.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from bench.backends.base import CaseExtras
from bench.sweep.config import BenchConfig
from bench.models.prompts import Prompt, build_prompt
from bench.results import CaseKey, LoadRecord, ModelInfo
from bench.backends.timing import GenerationTiming, clock

log = logging.getLogger("gptoss.bench")


def _streamer_base():
    from transformers.generation.streamers import BaseStreamer

    return BaseStreamer


def make_clock_streamer(timing: GenerationTiming, tracker=None):
    """A streamer that stamps each arrival; in natural mode it also follows harmony channels."""

    class ClockStreamer(_streamer_base()):
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


def kv_cache_bytes(cache: Any) -> int | None:
    """Bytes held by a transformers cache object (key and value tensors of every layer)."""
    if cache is None:
        return None
    total = 0
    layers = getattr(cache, "layers", None)
    if layers is not None:
        for layer in layers:
            for name in ("keys", "values"):
                t = getattr(layer, name, None)
                if t is not None and hasattr(t, "numel"):
                    total += t.numel() * t.element_size()
        return total
    for name in ("key_cache", "value_cache"):
        for t in getattr(cache, name, []) or []:
            total += t.numel() * t.element_size()
    return total


class TransformersBackend:
    def __init__(self, cfg: BenchConfig, progress: bool = True):
        from bench.models.sources import resolve

        self.cfg = cfg
        self.resolved = resolve(cfg.model, cache_dir=cfg.cache_dir, revision=cfg.revision, progress=progress)
        self.loaded = None
        self.record: LoadRecord | None = None
        self.prompt: Prompt | None = None
        self.monitor = None
        self._torch = None
        self._cuda = False

    # ---- description -------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        import transformers

        return {"kind": "transformers", "server": f"transformers {transformers.__version__}"}

    def model_info(self) -> ModelInfo:
        info = self.resolved.to_model_info()
        info.path = str(info.path) if info.path is not None else None
        if self.record is not None:
            info.parameters = self.record.parameters
        return info

    # ---- loading -----------------------------------------------------------------------------

    def load(self, quant: str, attn: str) -> LoadRecord:
        import torch

        from bench.backends.transformers.loading import load_model

        self._torch = torch
        self.loaded = load_model(self.resolved, device=self.cfg.device, quant=quant, attn=attn)
        self.record = self.loaded.record
        self._cuda = str(self.loaded.device).startswith("cuda")
        if self._cuda and self.monitor is None:
            from bench.sweep.nvml import NvmlMonitor

            index = torch.device(self.loaded.device).index or 0
            self.monitor = NvmlMonitor(index=index)
        self.record.metrics["first_token_cold_s"] = self._first_token_cold()
        return self.record

    def _sync(self) -> None:
        if self._cuda:
            self._torch.cuda.synchronize()

    def _first_token_cold(self) -> float:
        """One token from a short prompt right after load: includes kernel compilation/autotuning."""
        prompt = build_prompt(self.loaded.tokenizer, "low", self._min_prompt_len("low"))
        timing = self._generate(prompt.ids, new_tokens=1, batch_size=1, cache="dynamic", natural=False)
        return timing.arrivals[0] - timing.start if timing.arrivals else timing.end - timing.start

    def _min_prompt_len(self, effort: str) -> int:
        from bench.models.prompts import template_parts

        before, after = template_parts(self.loaded.tokenizer, effort)
        return len(before) + len(after) + 8

    # ---- cases -------------------------------------------------------------------------------

    def prepare(self, key: CaseKey) -> None:
        self.prompt = build_prompt(self.loaded.tokenizer, key.effort, key.prompt_len)
        if self.monitor is not None:
            self.monitor.start()

    def _generation_kwargs(self, new_tokens: int, cache: str, natural: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"do_sample": False, "max_new_tokens": new_tokens, "return_dict_in_generate": True}
        if natural:
            from bench.models.harmony import HarmonyTokens

            # <|return|> ends the answer, <|call|> a tool call: where the model would stop.
            kwargs["eos_token_id"] = HarmonyTokens.from_tokenizer(self.loaded.tokenizer).stop_ids
        else:
            kwargs["min_new_tokens"] = new_tokens
        if cache == "static":
            kwargs["cache_implementation"] = "static"
        pad = self.loaded.tokenizer.pad_token_id
        if pad is None:
            pad = self.loaded.model.generation_config.pad_token_id
        if pad is not None:
            kwargs["pad_token_id"] = pad
        return kwargs

    def _generate(self, ids: list[int], new_tokens: int, batch_size: int, cache: str, natural: bool) -> GenerationTiming:
        torch = self._torch
        device = self.loaded.device
        input_ids = torch.tensor([ids] * batch_size, dtype=torch.long, device=device)
        attention_mask = torch.ones_like(input_ids)
        tracker = None
        if natural:
            from bench.models.harmony import ChannelTracker

            tracker = ChannelTracker(self.loaded.tokenizer)
        kwargs = self._generation_kwargs(new_tokens, cache, natural)
        self._sync()
        timing = GenerationTiming(start=clock(), prompt_tokens=len(ids), batch_size=batch_size)
        streamer = make_clock_streamer(timing, tracker)
        with torch.inference_mode():
            out = self.loaded.model.generate(
                input_ids=input_ids, attention_mask=attention_mask, streamer=streamer, **kwargs
            )
        self._sync()
        timing.end = clock()
        if tracker is not None:
            timing.channel_tokens = dict(tracker.counts)
            timing.stop_reason = "stop" if timing.new_tokens < new_tokens else "length"
        self._last_cache = getattr(out, "past_key_values", None)
        return timing

    def once(self, key: CaseKey) -> list[GenerationTiming]:
        natural = key.mode == "natural"
        cap = (self.cfg.natural_cap or key.output_len) if natural else key.output_len
        return [self._generate(self.prompt.ids, cap, key.batch_size, key.cache, natural)]

    def begin_rep(self) -> None:
        if self._cuda:
            self._torch.cuda.reset_peak_memory_stats()

    def end_rep(self, extras: CaseExtras) -> None:
        kv = kv_cache_bytes(getattr(self, "_last_cache", None))
        self._last_cache = None
        if kv is not None:
            extras.samples.setdefault("kv_cache_bytes", []).append(float(kv))
        if self._cuda:
            torch = self._torch
            extras.samples.setdefault("peak_alloc_bytes", []).append(float(torch.cuda.max_memory_allocated()))
            extras.samples.setdefault("peak_reserved_bytes", []).append(float(torch.cuda.max_memory_reserved()))

    def finish(self, key: CaseKey, extras: CaseExtras) -> None:
        extras.weights_path = self.record.weights_path if self.record else None
        extras.info["prompt_template_tokens"] = self.prompt.template_tokens if self.prompt else None
        extras.info["compiled_forward"] = getattr(self.loaded.model, "_compiled_call", None) is not None
        if self.monitor is not None:
            window = self.monitor.stop()
            used = window.max_used_bytes
            if used is not None:
                extras.samples["nvml_used_bytes"] = [float(used)]
            extras.info["nvml"] = window.summary()

    def recover(self) -> None:
        self._last_cache = None
        if self.monitor is not None:
            self.monitor.stop()
        gc.collect()
        if self._cuda:
            self._torch.cuda.empty_cache()

    def unload(self) -> None:
        if self.loaded is not None:
            from bench.backends.transformers.loading import unload

            unload(self.loaded)
        self.loaded = None
        self.prompt = None
        self._last_cache = None
        gc.collect()
