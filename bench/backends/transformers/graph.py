"""CUDA-graph decoding: prefill eagerly, then decode each token by replaying one captured forward.

At batch 1, `model.generate` on gpt-oss spends most of each token in Python and in hundreds of
small kernel launches; the GPU idles. Capturing the model's own forward (the same transformers
modules, the same MXFP4 kernels) once in a CUDA graph and replaying it per token removes that
host cost, so the speed measured is the GPU's.

What makes the forward capturable, on transformers' own ``StaticCache``:

* the attention masks are built on the GPU from a position tensor (``j <= pos``) and passed as the
  ``{"full_attention", "sliding_attention"}`` mapping, so transformers' mask code (which copies a
  CPU scalar to the GPU) is not run inside the graph;
* ``position_ids`` come from the same tensor;
* each cache layer's single-token ``update`` is replaced, on this cache object only, by a
  branch-free tensor version: full layers ``index_copy_`` at ``pos``; sliding layers keep the last
  ``window`` tokens in order, oldest first, exactly as transformers' ``StaticSlidingWindowLayer``
  does (write at ``pos`` while the window fills, then shift left by one and write at the end), but
  with the shift done by an index tensor, so one graph serves before and after the window fills.

The cache keeps transformers' shapes (full layers ``max_cache_len``, sliding layers ``window``), so
the attention kernels see the same shapes as in transformers' own static-cache decoding and give
the same numbers. ``fidelity`` proves it per graph: tokens and logits of the replayed graph against
transformers' own eager decoding (its masks, its cache code) from the same prefill.
"""

from __future__ import annotations

import inspect
import math
import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import torch


def _cache_kwarg(model) -> str:
    """The forward's name for the cache: ``past_key_values`` (transformers <= 5.22) or ``cache``."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params and "past_key_values" not in params else "past_key_values"


def _static_cache(config, max_cache_len: int):
    from transformers import StaticCache

    return StaticCache(config=config, max_cache_len=max_cache_len)


def _full_update(pos: torch.Tensor):
    def update(self, key_states, value_states, *args, **kwargs):
        self.keys.index_copy_(2, pos, key_states)
        self.values.index_copy_(2, pos, value_states)
        return self.keys, self.values

    return update


def _sliding_update(pos: torch.Tensor, slots: torch.Tensor, last: torch.Tensor):
    """``slots`` is ``arange(window)`` and ``last`` ``[window - 1]``, both on the cache's device;
    they must outlive any graph captured with this update (the graph reads their addresses)."""
    window = slots.numel()

    def update(self, key_states, value_states, *args, **kwargs):
        full = (pos >= window).long()  # 1 once the window is full: shift left by one
        order = (slots + full).clamp_(max=window - 1)
        at = torch.minimum(pos, last)
        for buf, new in ((self.keys, key_states), (self.values, value_states)):
            buf.copy_(buf.index_select(2, order))
            buf.index_copy_(2, at, new)
        return self.keys, self.values

    return update


# Slack when comparing the graph's drift from a cache-free forward with transformers' own
# StaticCache's drift: the two are the same arithmetic (on the CPU bit for bit), so anything
# beyond rounding noise is a defect.
COSINE_SLACK = 1e-4


@dataclass
class Fidelity:
    """Graph decoding against transformers' own eager decoding on its own StaticCache (same
    prefill, same greedy steps), and both against a forward without any cache.

    ``tokens_equal``: every greedy token of the replayed graph equals transformers' own.
    ``nocache_cosine_*``: the lowest cosine, over the steps, between a path's logits and those of
    one cache-free forward over the same tokens (``static``: transformers' StaticCache; ``graph``:
    this module); ``nocache_top1_*``: the share of steps whose top token agrees with it.
    """

    steps: int
    tokens_equal: bool
    first_mismatch: int | None
    max_abs_logit_diff: float
    min_logit_cosine: float
    nocache_cosine_static: float | None = None
    nocache_cosine_graph: float | None = None
    nocache_top1_static: float | None = None
    nocache_top1_graph: float | None = None

    @property
    def ok(self) -> bool:
        if not self.tokens_equal:
            return False
        if self.nocache_cosine_static is None or self.nocache_cosine_graph is None:
            return True
        return self.nocache_cosine_graph >= self.nocache_cosine_static - COSINE_SLACK

    def reason(self) -> str | None:
        """Why fidelity does not hold, in one sentence (None when it holds)."""
        if not self.tokens_equal:
            return (f"graph decoding gave another token than transformers' own static-cache decoding at step "
                    f"{self.first_mismatch} of {self.steps}")
        if not self.ok:
            return (f"graph decoding drifts further from a cache-free forward (cosine {self.nocache_cosine_graph:.4f}) "
                    f"than transformers' own StaticCache does ({self.nocache_cosine_static:.4f})")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "tokens_equal": self.tokens_equal,
            "first_mismatch": self.first_mismatch,
            "max_abs_logit_diff": self.max_abs_logit_diff,
            "min_logit_cosine": self.min_logit_cosine,
            "nocache_cosine_static": self.nocache_cosine_static,
            "nocache_cosine_graph": self.nocache_cosine_graph,
            "nocache_top1_static": self.nocache_top1_static,
            "nocache_top1_graph": self.nocache_top1_graph,
            "ok": self.ok,
        }


@dataclass
class GraphDecoder:
    """One static cache and (on CUDA) one captured decode step for a batch size and cache length."""

    model: Any
    batch_size: int
    max_cache_len: int
    capture: bool = True  # False: run the same step eagerly (CPU, tests)
    capture_s: float | None = None
    _graph: Any = field(default=None, repr=False)

    def __post_init__(self):
        model = self.model
        config = model.config
        self.device = next(model.parameters()).device
        self.dtype = model.dtype
        self.window = int(getattr(config, "sliding_window", 0) or 0)
        self.layer_types = list(config.layer_types)
        self.cache_kw = _cache_kwarg(model)
        self.cache = _static_cache(config, self.max_cache_len)
        b, dev = self.batch_size, self.device
        self.tokens = torch.zeros((b, 1), dtype=torch.long, device=dev)
        self.pos = torch.zeros((1,), dtype=torch.long, device=dev)
        self._zero = torch.zeros((), dtype=self.dtype, device=dev)
        self._neg = torch.full((), torch.finfo(self.dtype).min, dtype=self.dtype, device=dev)
        self._j_full = torch.arange(self.max_cache_len, device=dev).view(1, 1, 1, -1)
        # The last step's logits [b, vocab]: one buffer for the object's life, since a captured
        # graph writes to the address it saw at capture.
        self.logits: torch.Tensor | None = None
        # The decode-mode updates, made once: a captured graph reads the tensors they hold, so
        # they live as long as this object, across prefills.
        # Sliding layers shorter than the cache keep their own window of slots; otherwise they are
        # full layers in all but name.
        self.sliding = bool(self.window) and self.window < self.max_cache_len
        self._slots = torch.arange(self.window if self.sliding else 1, device=dev)
        self._last = torch.tensor([max(self.window - 1, 0)], device=dev)
        self._updates = [
            _sliding_update(self.pos, self._slots, self._last) if kind == "sliding_attention" and self.sliding
            else _full_update(self.pos)
            for kind in self.layer_types
        ]

    # ---- cache modes ---------------------------------------------------------------------------

    def _install(self, on: bool) -> None:
        """Swap this cache's layers between transformers' own update and the capturable one."""
        for layer, fn in zip(self.cache.layers, self._updates):
            if on:
                layer.update = types.MethodType(fn, layer)
            else:
                layer.__dict__.pop("update", None)

    def _forward(self, ids: torch.Tensor, **kwargs):
        kwargs[self.cache_kw] = self.cache
        return self.model(ids, use_cache=True, logits_to_keep=1, **kwargs)

    # ---- steps ---------------------------------------------------------------------------------

    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        """Eager prefill of ``ids`` [b, p] with transformers' own masks; returns the first tokens."""
        self._install(False)
        self.cache.reset()
        out = self._forward(ids)
        self._keep_logits(out.logits[:, -1, :])
        self.tokens.copy_(self.logits.argmax(-1, keepdim=True))
        self.pos.fill_(ids.shape[1])
        self._install(True)
        return self.tokens

    def _masks(self) -> dict[str, torch.Tensor]:
        p = self.pos.view(1, 1, 1, 1)
        masks = {"full_attention": torch.where(self._j_full <= p, self._zero, self._neg)}
        if "sliding_attention" in self.layer_types:
            if self.sliding:
                # slots hold the last `window` tokens oldest first; before the window fills, slot j
                # holds position j; once it is full every slot is visible.
                masks["sliding_attention"] = torch.where(self._slots.view(1, 1, 1, -1) <= p, self._zero, self._neg)
            else:
                masks["sliding_attention"] = masks["full_attention"]
        return masks

    def _step(self) -> None:
        """One decode step on the buffers: tokens at pos -> next tokens, pos + 1."""
        out = self._forward(self.tokens, attention_mask=self._masks(), position_ids=self.pos.view(1, 1).expand(self.batch_size, 1))
        logits = out.logits[:, -1, :]
        self._keep_logits(logits)
        self.tokens.copy_(logits.argmax(-1, keepdim=True))
        self.pos.add_(1)

    def _keep_logits(self, logits: torch.Tensor) -> None:
        if self.logits is None:
            self.logits = torch.empty_like(logits)
        self.logits.copy_(logits)

    def warm_and_capture(self, ids: torch.Tensor, warm_steps: int = 2) -> None:
        """Warm up (allocator, autotuning) on a side stream, then capture one step."""
        self.prefill(ids)
        if not self.capture:
            self.capture_s = 0.0
            return
        t0 = time.perf_counter()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(warm_steps):
                self._step()
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        self.prefill(ids)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step()
        torch.cuda.synchronize()
        self._graph = graph
        self.capture_s = time.perf_counter() - t0

    def step(self) -> torch.Tensor:
        """Decode one token for every sequence; returns the token buffer [b, 1]."""
        if self._graph is not None:
            self._graph.replay()
        else:
            self._step()
        return self.tokens

    # ---- decoding ------------------------------------------------------------------------------

    def decode(self, ids: torch.Tensor, new_tokens: int, on_token: Callable[[torch.Tensor], bool] | None = None) -> int:
        """Prefill, then decode until ``new_tokens`` tokens per sequence (the prefill's included).

        ``on_token(tokens)`` is called once each token reached the host (``tokens``: a CPU tensor
        [b]); returning True stops early. Returns the tokens delivered per sequence. With a
        captured graph the next step is queued before the host waits for the current token (a
        pinned copy and an event per token), so the launch overlaps the GPU's work on the step
        before, as it would in a server's decode loop.
        """
        if ids.shape[1] + new_tokens > self.max_cache_len:
            raise ValueError(f"prompt {ids.shape[1]} + {new_tokens} new tokens exceed the cache ({self.max_cache_len})")
        deliver = on_token or (lambda tokens: False)
        with torch.inference_mode():
            self.prefill(ids)
            if self._graph is None:
                for n in range(1, new_tokens + 1):
                    if n > 1:
                        self.step()
                    if deliver(self.tokens.view(-1).cpu()):
                        return n
                return new_tokens
            out = _HostTokens(self.tokens)
            out.copy(0)
            for n in range(1, new_tokens):
                self._graph.replay()  # step n, queued behind the copy of token n - 1
                out.copy(n)
                if deliver(out.take(n - 1)):
                    return n
            deliver(out.take(new_tokens - 1))
            return new_tokens

    def bare_tok_s(self, ids: torch.Tensor, steps: int) -> float:
        """Decode speed of the replay loop alone: no host read, no clock per token (CUDA only)."""
        with torch.inference_mode():
            self.prefill(ids)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                self.step()
            torch.cuda.synchronize()
            return steps * self.batch_size / (time.perf_counter() - t0)


class _HostTokens:
    """Tokens copied from the device into pinned host buffers, one event per token: the host
    waits for token n while step n + 1 runs."""

    def __init__(self, tokens: torch.Tensor, depth: int = 2):
        self.tokens = tokens.view(-1)
        self.bufs = [torch.empty(self.tokens.shape, dtype=tokens.dtype, pin_memory=True) for _ in range(depth)]
        self.events = [torch.cuda.Event() for _ in range(depth)]

    def copy(self, n: int) -> None:
        k = n % len(self.bufs)
        self.bufs[k].copy_(self.tokens, non_blocking=True)
        self.events[k].record()

    def take(self, n: int) -> torch.Tensor:
        k = n % len(self.bufs)
        self.events[k].synchronize()
        return self.bufs[k].clone()


def eager_reference(model, ids: torch.Tensor, steps: int, max_cache_len: int) -> tuple[list[list[int]], list[torch.Tensor]]:
    """Greedy decoding with transformers' own code: its StaticCache, its masks, no graph."""
    cache = _static_cache(model.config, max_cache_len)
    kw = _cache_kwarg(model)
    tokens, logits = [], []
    with torch.inference_mode():
        out = model(ids, use_cache=True, logits_to_keep=1, **{kw: cache})
        pos = ids.shape[1]
        for _ in range(steps + 1):
            lg = out.logits[:, -1, :].float()
            nxt = lg.argmax(-1, keepdim=True)
            tokens.append(nxt.view(-1).tolist())
            logits.append(lg)
            if len(tokens) > steps:
                break
            position_ids = torch.full((ids.shape[0], 1), pos, dtype=torch.long, device=ids.device)
            out = model(nxt, use_cache=True, logits_to_keep=1, position_ids=position_ids, **{kw: cache})
            pos += 1
    return tokens, logits


def fidelity_steps(prompt_len: int, window: int, room: int, minimum: int = 64) -> int:
    """Steps to compare: at least ``minimum``, and past the point where the sliding window fills,
    within the ``room`` the cache leaves after the prompt."""
    wanted = max(minimum, window - prompt_len + 16 if window else 0)
    return max(1, min(wanted, room))


def _nocache_logits(model, ids: torch.Tensor, tokens: list[list[int]]) -> torch.Tensor:
    """Logits of one forward without a cache over the prompt and the decoded tokens: at the last
    prompt position and after each decoded token but the last -> [steps + 1, b, vocab]."""
    decoded = torch.tensor(tokens[:-1], dtype=torch.long, device=ids.device).T  # [b, steps]
    full = torch.cat([ids, decoded], dim=1)
    p = ids.shape[1]
    with torch.inference_mode():
        out = model(full, use_cache=False, logits_to_keep=full.shape[1] - p + 1)
    return out.logits.float().transpose(0, 1)


def _agreement(logits: list[torch.Tensor], ref) -> tuple[float, float]:
    """Lowest cosine over the steps, and the share of steps whose top tokens agree; ``ref`` holds
    one logits tensor per step (a list, or a tensor stacked on its first dimension)."""
    cos = min(float(torch.nn.functional.cosine_similarity(a, b, dim=-1).min()) for a, b in zip(logits, ref))
    top1 = sum(bool((a.argmax(-1) == b.argmax(-1)).all()) for a, b in zip(logits, ref)) / len(logits)
    return cos, top1


def check_fidelity(decoder: GraphDecoder, ids: torch.Tensor, steps: int) -> Fidelity:
    """Tokens and logits of ``decoder`` against transformers' own eager static-cache decoding,
    and both against a cache-free forward over the same tokens."""
    ref_tokens, ref_logits = eager_reference(decoder.model, ids, steps, decoder.max_cache_len)
    got_tokens, got_logits = [], []
    with torch.inference_mode():
        decoder.prefill(ids)
        got_tokens.append(decoder.tokens.view(-1).tolist())
        got_logits.append(decoder.logits.float().clone())
        for _ in range(steps):
            decoder.step()
            got_tokens.append(decoder.tokens.view(-1).tolist())
            got_logits.append(decoder.logits.float().clone())
    mismatch = next((i for i, (a, b) in enumerate(zip(got_tokens, ref_tokens)) if a != b), None)
    diff = max(float((a - b).abs().max()) for a, b in zip(got_logits, ref_logits))
    cos, _ = _agreement(got_logits, ref_logits)
    fidelity = Fidelity(steps=steps, tokens_equal=mismatch is None, first_mismatch=mismatch,
                        max_abs_logit_diff=diff, min_logit_cosine=cos if math.isfinite(cos) else 0.0)
    if mismatch is None:  # the same tokens: one cache-free forward serves both paths
        nocache = _nocache_logits(decoder.model, ids, ref_tokens)
        fidelity.nocache_cosine_static, fidelity.nocache_top1_static = _agreement(ref_logits, nocache)
        fidelity.nocache_cosine_graph, fidelity.nocache_top1_graph = _agreement(got_logits, nocache)
    return fidelity
