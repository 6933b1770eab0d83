"""The ``openai`` backend: benchmark an OpenAI-compatible server (vLLM, SGLang, TGI, ``transformers
serve``) over HTTP with streaming chat completions.

One repetition of a case is one wave of ``key.concurrency`` requests fired at once (a sustained
load, ``--load closed|poisson|gamma``, is ``sustained``'s); each request is recorded as a
``GenerationTiming`` (start, one arrival per network read that carried new text,
end), so the runner derives TTFT, inter-token latency, decode and total tokens/s with the same
code as for the in-process backend. The pieces: ``client`` (asyncio HTTP: one request, a wave,
or a pool for a load), ``load`` (when each request of a sustained load is sent), ``sustained``
(a case under sustained load: its requests and their records),
``sse`` (the event stream, parsed from bytes), ``tokens`` (counting, usage, channels),
``prompts`` (sizing a prompt to a token count), ``errors``.

Request fields. Beyond the standard ones (model, messages, stream, max_tokens, temperature 0)
the backend sends optional fields: ``seed``, ``reasoning_effort``, ``stream_options``
(``include_usage``), ``chat_template_kwargs`` (``reasoning_effort`` again, for servers that
render the model's own chat template) and, in fixed mode, ``min_tokens`` + ``ignore_eos`` (vLLM,
SGLang) and ``generation_config`` (``transformers serve``) so exactly ``output_len`` tokens come
back. ``load()`` sends one tiny probe request; a server that refuses some of these fields with a
400/422 gets them dropped: those its message names, else all of them (``describe()`` records
which, and how fixed mode gets its exact length: ``info.fixed_length``).

The API key is read from the environment variable named by ``--api-key-env``; the client sends
it and scrubs it from every message; it is never stored in results or logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from bench.backends.base import Repetition
from bench.backends.openai.client import MAX_CONCURRENCY, Client, StreamResult, parse_base_url
from bench.backends.openai.errors import ServerError
from bench.backends.openai.prompts import SizedPrompt, size_prompt
from bench.backends.openai.tokens import TokenCounter, finalize
from bench.results import CaseKey, LoadRecord, ModelInfo
from diagnostics.errors import UserError
from diagnostics.modelref import ModelRef

log = logging.getLogger("gptoss.bench.openai")

MAX_NEGOTIATION = 4  # probe requests while finding the fields a server accepts
PROBE_TOKENS = 2

# Optional request fields: dropped when a server refuses them (those it names, else all).
OPTIONAL_FIELDS = (
    "generation_config",
    "min_tokens",
    "ignore_eos",
    "chat_template_kwargs",
    "stream_options",
    "reasoning_effort",
    "seed",
)


@dataclass(frozen=True)
class OpenAIOptions:
    base_url: str | None = None
    api_key_env: str | None = None  # the environment variable holding the API key
    request_timeout_s: float = 300.0
    seed: int = 0
    natural_cap: int | None = None  # natural mode: the most new tokens (default: the case's length)
    dataset: str | None = None  # --dataset: a JSONL / ShareGPT file of prompts (sustained load)


class OpenAIBackend:
    """Drives an OpenAI-compatible server (see the module docstring)."""

    def __init__(self, model: str, options: OpenAIOptions, tokenizer: Any = None):
        self.options = options
        self.model = model
        self.ref = ModelRef.served(model)
        timeout = float(options.request_timeout_s)
        if not timeout > 0:
            raise UserError("--timeout must be a positive number of seconds.")
        key = None
        if options.api_key_env:
            key = os.environ.get(options.api_key_env)
            if not key:
                raise UserError(f"the environment variable {options.api_key_env} (--api-key-env) is not set; export the API key in it.")
        self.client = Client(parse_base_url(options.base_url), timeout, key)
        self.counter = TokenCounter(self.ref.folder, tokenizer)
        self._server: str | None = None
        self._http_server: str | None = None
        self._server_model: str | None = None
        self._listed: list[str] | None = None
        self._dropped: list[str] = []
        self._negotiated = False
        self._stream_usage = False  # the probe stream ended with a usage object
        self._prompts: dict[tuple[str, int], SizedPrompt] = {}
        self._dataset = None

    def __repr__(self) -> str:  # never the key
        return f"OpenAIBackend(base_url={self.client.endpoint.display!r}, model={self.model!r})"

    # ---- Backend protocol ----------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": "openai",
            "base_url": self.client.endpoint.display,
            "server": self._server,
            "model": self.model,
            "auth": self.client.authenticated,
        }
        if self._http_server:
            d["http_server"] = self._http_server
        if self._server_model:
            d["server_model"] = self._server_model
        if self._negotiated:
            d["fixed_length"] = self.fixed_method()
            d["dropped_fields"] = list(self._dropped)
            d["stream_usage"] = self._stream_usage
        return d

    def model_info(self) -> ModelInfo:
        """The served name; where it is a local checkpoint folder (``transformers serve DIR``),
        its path, and whether it is a synthetic checkpoint (its manifest says so)."""
        folder = self.ref.folder
        if folder is None:
            return ModelInfo(id=self.model, source="server")
        manifest = _synthetic_manifest(folder)
        return ModelInfo(
            id=self.model,
            source="server",
            path=str(folder.resolve()),
            synthetic=manifest is not None,
            parameters=_int_or_none((manifest or {}).get("parameters")),
            active_parameters=_int_or_none((manifest or {}).get("active_parameters")),
        )

    def load(self, quant: str, attn: str) -> LoadRecord:
        """No model load: check the server answers and serves the model, and find which optional
        request fields it accepts. ``first_token_cold_s`` is the probe's time to first token."""
        listed = self.client.list_models(self.model)
        self._listed, self._server, self._http_server = listed.ids, listed.server, listed.http_server
        try:
            probe = self._negotiate()
        except ServerError as exc:
            if self._listed is not None and self.model not in self._listed and exc.status in (400, 404, 422):
                served = ", ".join(repr(m) for m in self._listed[:20]) if self._listed else "no models"
                raise ServerError(
                    f"the server at {self.client.endpoint.display} does not serve model {self.model!r} "
                    f"(its /models lists {served}; it answered: {exc.server_message}); "
                    "pass a served model name with --model.",
                    status=exc.status,
                    server_message=exc.server_message,
                ) from None
            raise
        metrics: dict[str, float | None] = {}
        if probe.timing.arrivals:
            metrics["first_token_cold_s"] = probe.timing.arrivals[0] - probe.timing.start
        return LoadRecord(quant=quant, attn=attn, weights_path=None, device=None, metrics=metrics)

    def prepare(self, key: CaseKey) -> "OpenAICase":
        if key.batch_size != 1:
            raise ServerError(
                f"the openai backend sends one sequence per request (batch size {key.batch_size} asked); "
                "use --concurrency for several requests at once."
            )
        lowest = 0 if key.open_loop else 1  # an open loop may have no cap
        if not lowest <= key.concurrency <= MAX_CONCURRENCY:
            raise ServerError(f"concurrency {key.concurrency} is outside {lowest}..{MAX_CONCURRENCY}; lower --concurrency.")
        if not self._negotiated:
            self._negotiate()
        if key.load != "waves":
            from bench.backends.openai.sustained import SustainedCase

            return SustainedCase.build(self, key)
        prompt = self.prompt(key.effort, key.prompt_len)
        if key.mode == "natural":
            body = self._body(key.effort, prompt.text, self.options.natural_cap or key.output_len, fixed=False)
        else:
            body = self._body(key.effort, prompt.text, key.output_len, fixed=True)
        return OpenAICase(self, key, prompt, body)

    def recover(self) -> None:
        pass

    def unload(self) -> None:
        pass

    # ---- requests ------------------------------------------------------------------------

    def requests(self, body: dict[str, Any], n: int = 1) -> list[StreamResult]:
        """``n`` streamed requests at once, each bounded by --timeout, their tokens counted."""
        results = self.client.wave(body, n)
        for r in results:
            finalize(r, self.counter)
        return results

    def fixed_method(self) -> str:
        """How fixed mode gets its exact length from this server."""
        if "min_tokens" not in self._dropped and "ignore_eos" not in self._dropped:
            return "min_tokens+ignore_eos"
        if "generation_config" not in self._dropped:
            return "generation_config"
        return "none"

    def _body(self, effort: str, text: str | list[dict[str, str]], max_tokens: int, *, fixed: bool,
              stream: bool = True) -> dict[str, Any]:
        """A request body: ``text`` is the user message, or the whole conversation."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": text}] if isinstance(text, str) else text,
            "max_tokens": int(max_tokens),
            "temperature": 0,
            "stream": stream,
        }
        optional: dict[str, Any] = {
            "seed": int(self.options.seed),
            "reasoning_effort": effort,
            "chat_template_kwargs": {"reasoning_effort": effort},
        }
        if stream:
            optional["stream_options"] = {"include_usage": True}
        if fixed:
            optional["min_tokens"] = int(max_tokens)
            optional["ignore_eos"] = True
            optional["generation_config"] = json.dumps(
                {"max_new_tokens": int(max_tokens), "min_new_tokens": int(max_tokens), "do_sample": False}
            )
        for name, value in optional.items():
            if name not in self._dropped:
                body[name] = value
        return body

    def _negotiate(self) -> StreamResult:
        """A tiny streamed request with every optional field; drop the ones the server refuses."""
        last: ServerError | None = None
        for _ in range(MAX_NEGOTIATION):
            body = self._body("low", "Hello", PROBE_TOKENS, fixed=True)
            try:
                [result] = self.requests(body)
            except ServerError as exc:
                if exc.status not in (400, 422):
                    raise
                last = exc
                sent = [f for f in OPTIONAL_FIELDS if f in body]
                said = exc.server_message or ""
                named = [f for f in sent if re.search(rf"\b{re.escape(f)}\b", said)]
                drop = named or sent
                if not drop:
                    raise
                log.info("the server refused the request fields %s; sending them no more", ", ".join(drop))
                self._dropped.extend(f for f in drop if f not in self._dropped)
                continue
            self._negotiated = True
            self._stream_usage = result.usage is not None
            self._server_model = result.server_model
            return result
        assert last is not None
        raise last

    # ---- prompts -------------------------------------------------------------------------

    def dataset(self):
        """The --dataset file's requests, read once; output lengths of ShareGPT answers counted
        with the served checkpoint's tokenizer when there is one."""
        if self._dataset is None:
            from bench.models.dataset import read_dataset

            tokenizer = self.counter.tokenizer
            self._dataset = read_dataset(self.options.dataset, self.counter.count if tokenizer is not None else None)
        return self._dataset

    def prompt(self, effort: str, prompt_len: int) -> SizedPrompt:
        """The user message for a case, sized once per (effort, length)."""
        cache_key = (effort, prompt_len)
        if cache_key not in self._prompts:
            server = self.server_prompt_tokens if self._stream_usage else None
            self._prompts[cache_key] = size_prompt(effort, prompt_len, self.counter.tokenizer, server)
        return self._prompts[cache_key]

    def server_prompt_tokens(self, effort: str, text: str) -> int | None:
        """The prompt tokens the server counts for a message (a max_tokens=1 request)."""
        [result] = self.requests(self._body(effort, text, 1, fixed=False, stream=True))
        value = (result.usage or {}).get("prompt_tokens")
        return value if isinstance(value, int) else None


@dataclass
class Tally:
    """What a case's counted repetitions saw, for its info."""

    completion_tokens: list[int] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    stop_reasons: dict[str, int] = field(default_factory=dict)
    token_sources: set[str] = field(default_factory=set)
    channel_modes: set[str] = field(default_factory=set)
    server_models: set[str] = field(default_factory=set)
    silent: int = 0  # requests whose usage counted tokens but which streamed no text
    connect_s: list[float] = field(default_factory=list)

    def add(self, r: StreamResult) -> None:
        if not r.timing.arrivals:
            self.silent += 1
        self.completion_tokens.append(r.timing.new_tokens)
        if r.usage and isinstance(r.usage.get("prompt_tokens"), int):
            self.prompt_tokens.append(r.usage["prompt_tokens"])
        reason = r.finish_reason or "unknown"
        self.stop_reasons[reason] = self.stop_reasons.get(reason, 0) + 1
        self.token_sources.add(r.token_source)
        if r.channel_mode:
            self.channel_modes.add(r.channel_mode)
        if r.server_model:
            self.server_models.add(r.server_model)
        if r.connect_s is not None:
            self.connect_s.append(r.connect_s)


class OpenAICase:
    """A case against the server: its prompt sized and its request body built."""

    def __init__(self, backend: OpenAIBackend, key: CaseKey, prompt: SizedPrompt, body: dict[str, Any]):
        self.backend, self.key, self.prompt, self.body = backend, key, prompt, body
        self.tally = Tally()

    def once(self, counted: bool = True) -> Repetition:
        """One wave: ``key.concurrency`` streamed requests fired at once; their timings, or a
        ServerError when any of them failed."""
        n = self.key.concurrency
        if not 1 <= n <= MAX_CONCURRENCY:
            raise ServerError(f"concurrency {n} is outside 1..{MAX_CONCURRENCY}; lower --concurrency.")
        results = self.backend.requests(self.body, n)
        for r in results:
            if not r.timing.prompt_tokens and self.prompt.tokens and self.prompt.sizing == "tokenizer":
                r.timing.prompt_tokens = self.prompt.tokens  # no usage from the server: the local count
            if counted:
                self.tally.add(r)
        return Repetition([r.timing for r in results])

    def info(self) -> dict[str, Any]:
        key, c, prompt = self.key, self.tally, self.prompt
        info: dict[str, Any] = {"prompt_sizing": prompt.sizing}
        estimate = prompt.tokens
        if c.prompt_tokens:
            info["prompt_tokens"] = sorted(set(c.prompt_tokens))
        elif estimate is not None:
            info["prompt_tokens_estimate"] = estimate
        seen = info.get("prompt_tokens") or ([estimate] if estimate is not None else [])
        if prompt.sizing == "approx":
            info["prompt_note"] = (
                f"the prompt was sized to about {key.prompt_len} tokens without a tokenizer or the "
                "server's usage counts; its real length is unknown"
            )
        elif seen and any(p != key.prompt_len for p in seen):
            info["prompt_note"] = (
                f"the prompt is {', '.join(str(p) for p in seen)} tokens, not the {key.prompt_len} asked "
                "(the chat template alone may be longer, or no whole number of filler words fits exactly)"
            )
        info["token_source"] = _weakest(c.token_sources, ("chunks", "tokenizer", "usage")) if c.token_sources else None
        modes = c.channel_modes
        info["channels"] = (next(iter(modes)) if len(modes) == 1 else "mixed") if modes else "unavailable"
        info["stop_reasons"] = dict(c.stop_reasons)
        if c.server_models:
            info["server_model"] = sorted(c.server_models)[0]
        if c.connect_s:
            # each request opens its own connection, as a new client does: this much of TTFT is that
            info["connect_s_median"] = sorted(c.connect_s)[len(c.connect_s) // 2]
        if c.silent:
            info["silent_requests"] = c.silent  # usage counted tokens but no text was streamed
        if self.backend.counter.note:
            info["tokenizer_note"] = f"the checkpoint's tokenizer did not load ({self.backend.counter.note})"
        tokens = c.completion_tokens
        if tokens:
            info["completion_tokens"] = {"min": min(tokens), "max": max(tokens)}
        if key.mode == "fixed":
            method = self.backend.fixed_method()
            info["fixed_length"] = method
            short = [t for t in tokens if t < key.output_len]
            if short:
                info["note"] = (
                    f"fixed mode asked for {key.output_len} new tokens but {len(short)} of {len(tokens)} "
                    f"requests came back shorter (fewest {min(short)}); the server "
                    + ("ignored the exact-length fields" if method != "none" else "accepts no exact-length field (min_tokens, ignore_eos, generation_config)")
                )
        return info


def _weakest(found: set[str], order: tuple[str, ...]) -> str:
    """Of several sources, the least authoritative (a case is only as exact as its weakest rep)."""
    for name in order:
        if name in found:
            return name
    return sorted(found)[0]


def _synthetic_manifest(path) -> dict[str, Any] | None:
    """The manifest of a checkpoint written by `gptoss synthesize` (bench.models.synthetic), else None."""
    from bench.models.synthetic import read_manifest

    doc = read_manifest(path)
    if isinstance(doc, dict) and doc.get("kind") == "gptoss-harness/synthetic-checkpoint":
        return doc
    return None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
