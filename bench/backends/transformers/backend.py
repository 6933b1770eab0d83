"""In-process backend: transformers ``model.generate`` with a per-token clock.

The clock is a streamer (``streamer.py``): transformers calls ``put()`` once with the prompt, then
once per step with the new token ids after they reached the CPU (so the device work for that token
is done). CUDA is synchronized before the start clock and after generate returns. Memory and NVML
are measured around each repetition by the runner's trackers, not here.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

from bench.backends.base import DecodeProfile, Repetition
from bench.backends.timing import GenerationTiming
from bench.backends.transformers.parallel import ParallelPlan
from bench.backends.transformers.profile import kernel_seconds
from bench.backends.transformers.streamer import TokenClock, make_clock_streamer
from bench.models.prompts import Prompt, build_prompt, template_parts
from bench.results import CaseKey, LoadRecord, ModelInfo
from diagnostics.modelref import ModelRef


@dataclass(frozen=True)
class TransformersOptions:
    device: str = "cpu"  # already resolved (bench.models.device.resolve_device): cpu or cuda:N
    cache_dir: str | None = None  # where synthetic checkpoints are written
    revision: str | None = None  # hub revision
    natural_cap: int | None = None  # natural mode: the most new tokens (default: the case's length)
    plan: ParallelPlan | None = None  # several devices (parallel.py); None: all on ``device``
    # --decode graph: capture the step in a CUDA graph. False runs the very same step eagerly,
    # which is how the graph path's logic is tested on a CPU.
    graph_capture: bool = True


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


def output_cache(out: Any) -> Any:
    """The cache a ``generate`` output holds, read by its field name: ``cache`` from transformers
    5.24 on, ``past_key_values`` before. Reading ``out.past_key_values`` on 5.24 goes through a
    compatibility property that logs a deprecation warning on every call."""
    fields = getattr(type(out), "__dataclass_fields__", {})
    for name in ("cache", "past_key_values"):
        if name in fields:
            return getattr(out, name, None)
    return None


class TransformersBackend:
    def __init__(self, ref: ModelRef, options: TransformersOptions = TransformersOptions(), progress: bool = True):
        from bench.models.sources import resolve

        self.options = options
        self.spec = ref.spec  # known gpt-oss shapes, for the roofline of a parallel layout
        self.resolved = resolve(ref, cache_dir=options.cache_dir, revision=options.revision, progress=progress)
        self.loaded = None
        self.record: LoadRecord | None = None
        self.graphs = None  # GraphCache of the loaded model (--decode graph)

    # ---- description -------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        import transformers

        return {"kind": "transformers", "server": f"transformers {transformers.__version__}"}

    def model_info(self) -> ModelInfo:
        info = self.resolved.to_model_info()
        if self.record is not None:
            info.parameters = self.record.parameters
        return info

    # ---- loading -----------------------------------------------------------------------------

    def load(self, quant: str, attn: str) -> LoadRecord:
        from bench.backends.transformers.loading import load_model

        from bench.backends.transformers.graph_cases import GraphCache

        self.loaded = load_model(self.resolved, device=self.options.device, quant=quant, attn=attn,
                                 plan=self.options.plan)
        self.record = self.loaded.record
        self._complete_layout(self.record)
        self.graphs = GraphCache(self.loaded.model, capture=self.options.graph_capture)
        self.record.metrics["first_token_cold_s"] = self._first_token_cold()
        return self.record

    def _complete_layout(self, record: LoadRecord) -> None:
        """Under torchrun: every rank's device in the record, memory summed over them; then the
        bytes the busiest GPU reads per token, for the roofline."""
        from bench.backends.transformers.parallel import gather_layout, roofline_bytes_per_token
        from bench.models import ranks

        layout = record.layout
        if layout is None:
            return
        if layout.concurrent:
            layout = record.layout = gather_layout(layout, ranks.gather)
            for name in ("load_alloc_bytes", "load_peak_bytes"):
                values = [getattr(d, name) for d in layout.devices]
                record.metrics[name] = sum(values) if all(v is not None for v in values) else None
        layout.roofline_bytes_per_token = roofline_bytes_per_token(self.spec, record.weights_path, layout)
        if self.spec is not None and record.weights_path in ("mxfp4", "bf16"):
            from diagnostics.check_base import CUDA_CONTEXT_BYTES, DEFAULT_CONTEXT_TOKENS
            from diagnostics.multi_gpu import share

            predicted = share(self.spec, record.weights_path, layout.kind, max(len(layout.devices), 1),
                              DEFAULT_CONTEXT_TOKENS, CUDA_CONTEXT_BYTES)
            layout.predicted_load_peak_bytes = predicted.load_peak_bytes

    @property
    def cuda(self) -> bool:
        return self.loaded is not None and str(self.loaded.device).startswith("cuda")

    def _first_token_cold(self) -> float:
        """One token from a short prompt right after load: includes kernel compilation/autotuning."""
        before, after = template_parts(self.loaded.tokenizer, "low")
        prompt = build_prompt(self.loaded.tokenizer, "low", len(before) + len(after) + 8)
        timing, _ = self.generate(prompt.ids, new_tokens=1, batch_size=1, cache="dynamic", natural=False)
        return timing.arrivals[0] - timing.start if timing.arrivals else timing.end - timing.start

    # ---- cases -------------------------------------------------------------------------------

    def prepare(self, key: CaseKey) -> "TransformersCase":
        prompt = build_prompt(self.loaded.tokenizer, key.effort, key.prompt_len)
        if key.decode == "graph":
            from bench.backends.transformers.graph_cases import GraphCase

            return GraphCase(self, key, prompt)
        return TransformersCase(self, key, prompt)

    def new_tokens(self, key: CaseKey) -> int:
        """New tokens a repetition asks for: the length, or in natural mode the cap."""
        return (self.options.natural_cap or key.output_len) if key.mode == "natural" else key.output_len

    def generation_kwargs(self, new_tokens: int, cache: str, natural: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"do_sample": False, "max_new_tokens": new_tokens, "return_dict_in_generate": True}
        if natural:
            from bench.models.channels import HarmonyTokens

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

    def generate(self, ids: list[int], new_tokens: int, batch_size: int, cache: str,
                 natural: bool) -> tuple[GenerationTiming, Any]:
        """One timed ``generate`` call: its clock and the cache it left (for its size)."""
        import torch

        input_ids = torch.tensor([ids] * batch_size, dtype=torch.long, device=self.loaded.device)
        attention_mask = torch.ones_like(input_ids)
        kwargs = self.generation_kwargs(new_tokens, cache, natural)
        self.sync()
        token_clock = TokenClock(len(ids), batch_size, self.loaded.tokenizer if natural else None)
        with torch.inference_mode():
            out = self.loaded.model.generate(
                input_ids=input_ids, attention_mask=attention_mask, streamer=make_clock_streamer(token_clock), **kwargs
            )
        self.sync()
        timing = token_clock.finish(new_tokens)
        return timing, output_cache(out)

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def recover(self) -> None:
        if self.graphs is not None:
            self.graphs.clear()
        gc.collect()
        if self.cuda:
            import torch

            torch.cuda.empty_cache()

    def unload(self) -> None:
        if self.loaded is not None:
            from bench.backends.transformers.loading import unload

            unload(self.loaded)
        self.loaded = None
        self.graphs = None
        gc.collect()


class TransformersCase:
    """A case on a loaded model: its prompt built, ready to generate."""

    def __init__(self, backend: TransformersBackend, key: CaseKey, prompt: Prompt):
        self.backend, self.key, self.prompt = backend, key, prompt

    def once(self, counted: bool = True) -> Repetition:
        key = self.key
        cap = self.backend.new_tokens(key)
        timing, cache = self.backend.generate(self.prompt.ids, cap, key.batch_size, key.cache, key.mode == "natural")
        kv = kv_cache_bytes(cache)
        return Repetition([timing], {"kv_cache_bytes": float(kv)} if kv is not None else {})

    def profile(self, max_tokens: int) -> DecodeProfile:
        """GPU kernel time of one decode step: two uncounted generate calls under the profiler,
        one of a single token (the prefill) and one of ``n + 1``; their difference over ``n``."""
        key = self.key
        n = max(1, min(max_tokens, self.backend.new_tokens(key)) - 1)

        def run(tokens: int):
            return lambda: self.backend.generate(self.prompt.ids, tokens, key.batch_size, key.cache, natural=False)

        prefill_s, _ = kernel_seconds(run(1))
        total_s, _ = kernel_seconds(run(n + 1))
        return DecodeProfile(kernel_s_per_step=max(total_s - prefill_s, 0.0) / n, steps=n)

    def info(self) -> dict[str, Any]:
        model = self.backend.loaded.model
        return {
            "decode": "generate",
            "prompt_template_tokens": self.prompt.template_tokens,
            "compiled_forward": getattr(model, "_compiled_call", None) is not None,
        }
