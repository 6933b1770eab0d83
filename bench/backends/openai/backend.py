"""The ``openai`` backend: benchmark an OpenAI-compatible server (vLLM, SGLang, TGI, ``transformers
serve``) over HTTP with streaming chat completions.

Standard library only: ``http.client`` for HTTP, threads for concurrency, and our own parser for
the server-sent events. One repetition of a case is one wave of ``key.concurrency`` requests
fired at once; each request is recorded as a ``GenerationTiming`` (start, one arrival per network
read that carried new text, end), so the runner derives TTFT, inter-token latency, decode and
total tokens/s with the same code as for the in-process backend.

Token counts. Each arrival carries the tokens of the text it brought: counted with the served
checkpoint's tokenizer when one is at hand, else one per non-empty delta. When the stream ends
with a ``usage`` object its ``completion_tokens`` is authoritative and the per-arrival counts are
adjusted to sum to it. ``info.token_source`` says which of ``usage``, ``tokenizer`` or ``chunks``
the counts came from.

Channels. Where the server separates them (``delta.reasoning_content`` / ``delta.reasoning`` for
the analysis channel, ``delta.content`` for the final one) both are counted; where the raw
harmony markers appear in ``content`` they are parsed; otherwise channels are left empty.

Prompts. The user message is plain filler text (bench.models.prompts.FILLER) sized so the whole
rendered prompt is ``prompt_len`` tokens: counted by the server itself where it reports usage
(``prepare`` sends a few ``max_tokens=1`` requests, at most 8 per effort and length, starting
from the local tokenizer's answer when there is one), else by the local tokenizer's chat
template, else estimated (noted in the case's info).

Connections. Each request opens its own connection (what a new client sees); the connection
set-up is part of TTFT and its median is recorded in the case's info (``connect_s_median``).

Request fields. Beyond the standard ones (model, messages, stream, max_tokens, temperature 0)
the backend sends optional fields: ``seed``, ``reasoning_effort``, ``stream_options``
(``include_usage``), ``chat_template_kwargs`` (``reasoning_effort`` again, for servers that
render the model's own chat template) and, in fixed mode, ``min_tokens`` + ``ignore_eos`` (vLLM,
SGLang) and ``generation_config`` (``transformers serve``) so exactly ``output_len`` tokens come
back. ``load()`` sends one tiny probe request; a server that refuses some of these fields with a
400/422 gets them dropped: those its message names, else all of them (``describe()`` records
which, and how fixed mode gets its exact length: ``info.fixed_length``).

The API key is read from the environment variable named by ``--api-key-env`` and sent as
``Authorization: Bearer``; it is never stored in results, logged, or put in an exception message
(server messages are scrubbed of it too).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.backends.base import CaseExtras
from bench.sweep.config import BenchConfig
from bench.results.errors import UserError
from bench.results import CaseKey, LoadRecord, ModelInfo
from bench.backends.timing import GenerationTiming, clock

log = logging.getLogger("gptoss.bench.openai")

MAX_CONCURRENCY = 256  # requests in flight at once, at most
MAX_LINE_BYTES = 1 << 20  # a server-sent event line longer than this is malformed
MAX_ERROR_BYTES = 1 << 16  # of an error body, at most this much is read
MAX_NEGOTIATION = 4  # probe requests while finding the fields a server accepts
MAX_CALIBRATION = 8  # requests while sizing a prompt to the server's token count
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

_CHANNEL_MARKER = "<|channel|>"
_HEADER_RE = re.compile(r"<\|channel\|>(.*?)<\|message\|>", re.S)
_BODY_END_RE = re.compile(r"<\|(?:end|return|call|start|channel|endoftext)\|>")
_WORD_RE = re.compile(r"\S+")


class ServerError(RuntimeError):
    """A request to the server failed; the message is one sentence saying what happened.

    ``status`` is the HTTP status when the server answered with one, ``server_message`` what the
    server said (scrubbed of the API key).
    """

    def __init__(self, message: str, *, status: int | None = None, server_message: str | None = None):
        super().__init__(message)
        self.status = status
        self.server_message = server_message


# --------------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    prefix: str  # path before /chat/completions, e.g. "/v1" (no trailing slash)

    @property
    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.prefix}"


def parse_base_url(url: str | None) -> Endpoint:
    """``http://127.0.0.1:8000/v1`` -> Endpoint. Credentials in the URL are refused."""
    if not url:
        raise UserError("--backend openai needs --base-url, e.g. --base-url http://127.0.0.1:8000/v1.")
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--base-url {url!r} is not an http(s) URL; give one such as http://127.0.0.1:8000/v1.")
    if parts.username or parts.password:
        raise UserError("--base-url must not hold credentials; put the API key in an environment variable and name it with --api-key-env.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UserError(f"--base-url {url!r} has an invalid port; give one such as http://127.0.0.1:8000/v1.") from None
    return Endpoint(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(raw: bytes) -> str:
    """What an error body says: the message of {"error": {...}}, {"error": "..."}, {"detail":
    ...}, {"message": ...}, or the text itself."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return _one_line(text) or "(empty body)"
    return _one_line(_message_of(doc)) or "(empty body)"


def _message_of(doc: Any) -> str:
    if isinstance(doc, dict):
        for name in ("error", "detail", "message"):
            if name in doc and doc[name]:
                return _message_of(doc[name])
        return json.dumps(doc)[:300]
    if isinstance(doc, list):
        return "; ".join(_message_of(x) for x in doc[:3])
    return str(doc)


def _merge_same_time(arrivals: list[tuple[float, int]]) -> list[tuple[float, int]]:
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


@dataclass
class Piece:
    """Text that arrived in one network read, on one delta field."""

    at: float
    text: str
    field: str  # "content" | "reasoning"


@dataclass
class StreamResult:
    timing: GenerationTiming
    pieces: list[Piece] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    server_model: str | None = None
    token_source: str = "chunks"
    channel_mode: str | None = None  # separated | harmony | None
    connect_s: float | None = None  # TCP (+TLS) connection set-up, part of the time to first token


# --------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------


class OpenAIBackend:
    """Drives an OpenAI-compatible server (see the module docstring)."""

    def __init__(self, cfg: BenchConfig, model: str, tokenizer: Any = None):
        self.cfg = cfg
        self.model = model
        self.endpoint = parse_base_url(cfg.base_url)
        self.timeout = float(cfg.request_timeout_s)
        if not self.timeout > 0:
            raise UserError("--timeout must be a positive number of seconds.")
        self.__key = None
        if cfg.api_key_env:
            value = os.environ.get(cfg.api_key_env)
            if not value:
                raise UserError(f"the environment variable {cfg.api_key_env} (--api-key-env) is not set; export the API key in it.")
            self.__key = value
        self._tokenizer = tokenizer
        self._tokenizer_tried = tokenizer is not None
        self._tokenizer_note: str | None = None
        self._server: str | None = None
        self._http_server: str | None = None
        self._server_model: str | None = None
        self._listed: list[str] | None = None
        self._dropped: list[str] = []
        self._negotiated = False
        self._stream_usage = False  # the probe stream ended with a usage object
        self._prompts: dict[tuple[str, int], tuple[str, int | None, str]] = {}  # (effort, len) -> text, tokens, sizing
        self._case: dict[str, Any] = _new_tally()
        self._counting = False

    def __repr__(self) -> str:  # never the key
        return f"OpenAIBackend(base_url={self.endpoint.display!r}, model={self.model!r})"

    # ---- Backend protocol ----------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": "openai",
            "base_url": self.endpoint.display,
            "server": self._server,
            "model": self.model,
            "auth": bool(self.__key),
        }
        if self._http_server:
            d["http_server"] = self._http_server
        if self._server_model:
            d["server_model"] = self._server_model
        if self._negotiated:
            d["fixed_length"] = self._fixed_method()
            d["dropped_fields"] = list(self._dropped)
            d["stream_usage"] = self._stream_usage
        return d

    def model_info(self) -> ModelInfo:
        """The served name; where it is a local checkpoint folder (``transformers serve DIR``),
        its path, and whether it is a synthetic checkpoint (its manifest says so)."""
        path = Path(self.model)
        if not path.is_dir():
            return ModelInfo(id=self.model, source="server")
        manifest = _synthetic_manifest(path)
        return ModelInfo(
            id=self.model,
            source="server",
            path=str(path.resolve()),
            synthetic=manifest is not None,
            parameters=_int_or_none((manifest or {}).get("parameters")),
            active_parameters=_int_or_none((manifest or {}).get("active_parameters")),
        )

    def load(self, quant: str, attn: str) -> LoadRecord:
        """No model load: check the server answers and serves the model, and find which optional
        request fields it accepts. ``first_token_cold_s`` is the probe's time to first token."""
        self._list_models()
        try:
            probe = self._negotiate()
        except ServerError as exc:
            if self._listed is not None and self.model not in self._listed and exc.status in (400, 404, 422):
                served = ", ".join(repr(m) for m in self._listed[:20]) if self._listed else "no models"
                raise ServerError(
                    f"the server at {self.endpoint.display} does not serve model {self.model!r} "
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

    def prepare(self, key: CaseKey) -> None:
        if key.batch_size != 1:
            raise ServerError(
                f"the openai backend sends one sequence per request (batch size {key.batch_size} asked); "
                "use --concurrency for several requests at once."
            )
        if not 1 <= key.concurrency <= MAX_CONCURRENCY:
            raise ServerError(f"concurrency {key.concurrency} is outside 1..{MAX_CONCURRENCY}; lower --concurrency.")
        if not self._negotiated:
            self._negotiate()
        self._prompt(key.effort, key.prompt_len)
        self._case = _new_tally()
        self._counting = False

    def once(self, key: CaseKey) -> list[GenerationTiming]:
        """One wave: ``key.concurrency`` streamed requests fired at once (threads), each bounded
        by --timeout; their timings, or a ServerError when any of them failed."""
        body = self._case_body(key)
        n = key.concurrency
        if not 1 <= n <= MAX_CONCURRENCY:
            raise ServerError(f"concurrency {n} is outside 1..{MAX_CONCURRENCY}; lower --concurrency.")
        results = [self._stream(body)] if n == 1 else self._wave(body, n)
        _, counted, sizing = self._prompt(key.effort, key.prompt_len)
        for r in results:
            if not r.timing.prompt_tokens and counted and sizing == "tokenizer":
                r.timing.prompt_tokens = counted  # no usage from the server: the local count
            if self._counting:
                self._tally(r)
        return [r.timing for r in results]

    def begin_rep(self) -> None:
        self._counting = True

    def end_rep(self, extras: CaseExtras) -> None:
        self._counting = False

    def finish(self, key: CaseKey, extras: CaseExtras) -> None:
        c = self._case
        info = extras.info
        _, estimate, sizing = self._prompt(key.effort, key.prompt_len)
        info["prompt_sizing"] = sizing
        if c.get("prompt_tokens"):
            info["prompt_tokens"] = sorted(set(c["prompt_tokens"]))
        elif estimate is not None:
            info["prompt_tokens_estimate"] = estimate
        seen = info.get("prompt_tokens") or ([estimate] if estimate is not None else [])
        if sizing == "approx":
            info["prompt_note"] = (
                f"the prompt was sized to about {key.prompt_len} tokens without a tokenizer or the "
                "server's usage counts; its real length is unknown"
            )
        elif seen and any(p != key.prompt_len for p in seen):
            info["prompt_note"] = (
                f"the prompt is {', '.join(str(p) for p in seen)} tokens, not the {key.prompt_len} asked "
                "(the chat template alone may be longer, or no whole number of filler words fits exactly)"
            )
        sources = c.get("token_sources", set())
        info["token_source"] = _weakest(sources, ("chunks", "tokenizer", "usage")) if sources else None
        modes = c.get("channel_modes", set())
        info["channels"] = (next(iter(modes)) if len(modes) == 1 else "mixed") if modes else "unavailable"
        info["stop_reasons"] = dict(c.get("stop_reasons", {}))
        if c.get("server_models"):
            info["server_model"] = sorted(c["server_models"])[0]
        if c["connect_s"]:
            # each request opens its own connection, as a new client does: this much of TTFT is that
            info["connect_s_median"] = sorted(c["connect_s"])[len(c["connect_s"]) // 2]
        if c["silent"]:
            info["silent_requests"] = c["silent"]  # usage counted tokens but no text was streamed
        if self._tokenizer_note:
            info["tokenizer_note"] = f"the checkpoint's tokenizer did not load ({self._tokenizer_note})"
        tokens = c.get("completion_tokens", [])
        if tokens:
            info["completion_tokens"] = {"min": min(tokens), "max": max(tokens)}
        if key.mode == "fixed":
            info["fixed_length"] = self._fixed_method()
            short = [t for t in tokens if t < key.output_len]
            if short:
                info["note"] = (
                    f"fixed mode asked for {key.output_len} new tokens but {len(short)} of {len(tokens)} "
                    f"requests came back shorter (fewest {min(short)}); the server "
                    + ("ignored the exact-length fields" if self._fixed_method() != "none" else "accepts no exact-length field (min_tokens, ignore_eos, generation_config)")
                )

    def recover(self) -> None:
        self._counting = False

    def unload(self) -> None:
        self._counting = False

    # ---- tallies -------------------------------------------------------------------------

    def _tally(self, r: StreamResult) -> None:
        c = self._case
        if not r.timing.arrivals:
            c["silent"] += 1
        c["completion_tokens"].append(r.timing.new_tokens)
        if r.usage and isinstance(r.usage.get("prompt_tokens"), int):
            c["prompt_tokens"].append(r.usage["prompt_tokens"])
        reason = r.finish_reason or "unknown"
        c["stop_reasons"][reason] = c["stop_reasons"].get(reason, 0) + 1
        c["token_sources"].add(r.token_source)
        if r.channel_mode:
            c["channel_modes"].add(r.channel_mode)
        if r.server_model:
            c["server_models"].add(r.server_model)
        if r.connect_s is not None:
            c["connect_s"].append(r.connect_s)

    def _fixed_method(self) -> str:
        if "min_tokens" not in self._dropped and "ignore_eos" not in self._dropped:
            return "min_tokens+ignore_eos"
        if "generation_config" not in self._dropped:
            return "generation_config"
        return "none"

    # ---- request bodies ------------------------------------------------------------------

    def _body(self, effort: str, text: str, max_tokens: int, *, fixed: bool, stream: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": text}],
            "max_tokens": int(max_tokens),
            "temperature": 0,
            "stream": stream,
        }
        optional: dict[str, Any] = {
            "seed": int(self.cfg.seed),
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

    def _case_body(self, key: CaseKey) -> dict[str, Any]:
        text, _, _ = self._prompt(key.effort, key.prompt_len)
        if key.mode == "natural":
            return self._body(key.effort, text, self.cfg.natural_cap or key.output_len, fixed=False)
        return self._body(key.effort, text, key.output_len, fixed=True)

    def _negotiate(self) -> StreamResult:
        """A tiny streamed request with every optional field; drop the ones the server refuses."""
        last: ServerError | None = None
        for _ in range(MAX_NEGOTIATION):
            body = self._body("low", "Hello", PROBE_TOKENS, fixed=True)
            try:
                result = self._stream(body)
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

    def _prompt(self, effort: str, prompt_len: int) -> tuple[str, int | None, str]:
        """The user message for a case: (text, its prompt tokens if known, how it was sized)."""
        cache_key = (effort, prompt_len)
        if cache_key not in self._prompts:
            self._prompts[cache_key] = self._size_prompt(effort, prompt_len)
        return self._prompts[cache_key]

    def _size_prompt(self, effort: str, target: int) -> tuple[str, int | None, str]:
        """Find the number of filler words whose rendered prompt is ``target`` tokens long.

        Measured by the server itself (usage.prompt_tokens of a max_tokens=1 request) where it
        reports usage, else by the local tokenizer's chat template; else estimated."""
        from bench.models.prompts import FILLER

        words = _WORD_RE.findall(FILLER)

        def text_of(n: int) -> str:
            return " ".join(words[i % len(words)] for i in range(max(1, n)))

        tok = self._get_tokenizer()
        local = None
        if tok is not None and getattr(tok, "chat_template", None):
            def local(n: int) -> int:
                ids = tok.apply_chat_template(
                    [{"role": "user", "content": text_of(n)}],
                    tokenize=True, add_generation_prompt=True, reasoning_effort=effort,
                )
                if isinstance(ids, dict) or hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                return len(ids)

        server = self._server_prompt_tokens if self._stream_usage else None
        if local is None and server is None:
            n = max(1, round(target * 0.75))
            return text_of(n), None, "approx"
        start = 1
        if local is not None:
            n_local, p_local = _solve(local, target, start=1, budget=24)
            if server is None:
                return text_of(n_local), p_local, "tokenizer"
            start = n_local
        measure = lambda n: server(effort, text_of(n))  # noqa: E731
        n, p = _solve(measure, target, start=start, budget=MAX_CALIBRATION)
        if p is None:
            return text_of(start), None, "approx"
        return text_of(n), p, "server"

    def _server_prompt_tokens(self, effort: str, text: str) -> int | None:
        body = self._body(effort, text, 1, fixed=False, stream=True)
        result = self._stream(body)
        usage = result.usage or {}
        value = usage.get("prompt_tokens")
        return value if isinstance(value, int) else None

    def _get_tokenizer(self):
        if self._tokenizer_tried:
            return self._tokenizer
        self._tokenizer_tried = True
        path = Path(self.model)
        if not (path.is_dir() and ((path / "tokenizer.json").exists() or (path / "tokenizer_config.json").exists())):
            return None
        try:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:  # a tokenizer is optional: count chunks without one
            self._tokenizer_note = _one_line(f"{type(exc).__name__}: {exc}", 200)
            log.info("no tokenizer from %s (%s); counting streamed chunks", path, self._tokenizer_note)
            self._tokenizer = None
        return self._tokenizer

    def _count(self, text: str) -> int:
        tok = self._tokenizer
        if tok is None or not text:
            return 1
        try:
            ids = tok(text, add_special_tokens=False)["input_ids"]
        except Exception:
            return 1
        return max(1, len(ids))

    # ---- HTTP ----------------------------------------------------------------------------

    def _headers(self, stream: bool) -> dict[str, str]:
        h = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            "User-Agent": "gptoss-harness",
        }
        if self.__key:
            h["Authorization"] = "Bearer " + self.__key
        return h

    def _scrub(self, text: str | None) -> str | None:
        if text and self.__key:
            text = text.replace(self.__key, "***")
        return text

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        e = self.endpoint
        if e.scheme == "https":
            return http.client.HTTPSConnection(e.host, e.port, timeout=timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(e.host, e.port, timeout=timeout)

    def _fail(self, exc: BaseException, what: str) -> ServerError:
        """One clear sentence for a transport-level failure."""
        where = self.endpoint.display
        if isinstance(exc, ServerError):
            return exc
        if isinstance(exc, ConnectionRefusedError):
            return ServerError(f"nothing is listening at {where} (connection refused); start the server or fix --base-url.")
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return ServerError(f"the server at {where} did not answer {what} within {self.timeout:g} s (--timeout).")
        if isinstance(exc, socket.gaierror):
            return ServerError(f"cannot resolve the host of {where}; fix --base-url.")
        if isinstance(exc, http.client.RemoteDisconnected):
            return ServerError(f"the server at {where} closed the connection without answering {what}.")
        if isinstance(exc, http.client.IncompleteRead):
            return ServerError(f"the stream from {where} was cut in the middle of {what}.")
        if isinstance(exc, (http.client.BadStatusLine, http.client.LineTooLong, http.client.HTTPException)):
            return ServerError(f"the server at {where} did not answer {what} with HTTP ({type(exc).__name__}); check --base-url.")
        if isinstance(exc, ssl.SSLError):
            return ServerError(f"TLS failed with {where} ({_one_line(exc.reason or str(exc), 120)}); check --base-url.")
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return ServerError(f"the server at {where} dropped the connection during {what}.")
        if isinstance(exc, OSError):
            return ServerError(f"could not talk to {where} during {what} ({_one_line(exc.strerror or str(exc), 120)}).")
        return ServerError(f"{what} to {where} failed ({type(exc).__name__}: {_one_line(self._scrub(str(exc)) or '', 200)}).")

    def _http_error(self, resp: http.client.HTTPResponse, what: str) -> ServerError:
        try:
            raw = resp.read(MAX_ERROR_BYTES)
        except Exception:
            raw = b""
        said = self._scrub(_error_text(raw)) or ""
        return ServerError(
            f"the server at {self.endpoint.display} answered {what} with HTTP {resp.status} {resp.reason}: {said}",
            status=resp.status,
            server_message=said,
        )

    def _list_models(self) -> None:
        """GET /models: remembers the served names and what the server calls itself."""
        what = "GET /models"
        conn = self._connection(self.timeout)
        try:
            conn.request("GET", self.endpoint.prefix + "/models", headers=self._headers(stream=False))
            resp = conn.getresponse()
            self._http_server = resp.getheader("Server")
            if resp.status in (404, 405):
                resp.read(MAX_ERROR_BYTES)
                self._listed = None  # some servers have no /models: the probe decides
                self._server = self._http_server
                return
            if resp.status != 200:
                raise self._http_error(resp, what)
            raw = resp.read(16 << 20)
        except ServerError:
            raise
        except Exception as exc:
            raise self._fail(exc, what) from None
        finally:
            conn.close()
        try:
            doc = json.loads(raw)
            data = doc["data"] if isinstance(doc, dict) else doc
            entries = [m for m in data if isinstance(m, dict)]
        except (ValueError, KeyError, TypeError):
            raise ServerError(
                f"the server at {self.endpoint.display} answered GET /models with something that is not a model list; check --base-url (it usually ends in /v1)."
            ) from None
        self._listed = [str(m.get("id")) for m in entries if m.get("id") is not None]
        entry = next((m for m in entries if m.get("id") == self.model), None)
        owned = (entry or {}).get("owned_by") or (entries[0].get("owned_by") if len(entries) == 1 else None)
        self._server = str(owned) if owned else self._http_server

    def _wave(self, body: dict[str, Any], n: int) -> list[StreamResult]:
        """``n`` requests at once, one thread each; all of them or a ServerError."""
        results: list[StreamResult | None] = [None] * n
        errors: list[ServerError | None] = [None] * n
        barrier = threading.Barrier(n)

        def work(i: int) -> None:
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
            try:
                results[i] = self._stream(body)
            except ServerError as exc:
                errors[i] = exc
            except Exception as exc:  # a bug must not hang the wave
                errors[i] = ServerError(f"request failed ({type(exc).__name__}: {_one_line(self._scrub(str(exc)) or '', 200)}).")

        threads = [threading.Thread(target=work, args=(i,), daemon=True, name=f"gptoss-request-{i}") for i in range(n)]
        for t in threads:
            t.start()
        limit = clock() + self.timeout + 35
        for t in threads:
            t.join(max(0.0, limit - clock()))
        if any(t.is_alive() for t in threads):
            raise ServerError(f"{sum(t.is_alive() for t in threads)} of {n} requests were still running past {self.timeout:g} s (--timeout).")
        failed = [e for e in errors if e is not None]
        if failed:
            first = str(failed[0])
            if n == 1:
                raise failed[0]
            raise ServerError(f"{len(failed)} of {n} concurrent requests failed; the first: {first}", status=failed[0].status, server_message=failed[0].server_message)
        return [r for r in results if r is not None]

    def _stream(self, body: dict[str, Any]) -> StreamResult:
        """POST /chat/completions with stream=true; parse the events; time every arrival."""
        what = "the chat completion request"
        payload = json.dumps(body).encode()
        start = clock()
        deadline = start + self.timeout
        timing = GenerationTiming(start=start, prompt_tokens=0)
        result = StreamResult(timing=timing)
        conn = self._connection(self.timeout)
        try:
            conn.connect()
            result.connect_s = clock() - start
            conn.request("POST", self.endpoint.prefix + "/chat/completions", body=payload, headers=self._headers(stream=True))
            sock = conn.sock  # getresponse() may hand the socket over to the response
            resp = conn.getresponse()
            if resp.status != 200:
                raise self._http_error(resp, what)
            self._check_content_type(resp)
            done = self._read_events(resp, sock, deadline, result)
            timing.end = clock()
        except ServerError:
            raise
        except Exception as exc:
            raise self._fail(exc, what) from None
        finally:
            conn.close()
        if not done:
            raise ServerError(f"the stream from {self.endpoint.display} ended before the answer finished (no finish_reason and no [DONE]): it was cut in the middle.")
        self._finalize(result)
        return result

    def _check_content_type(self, resp: http.client.HTTPResponse) -> None:
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if not ctype or ctype == "text/event-stream":
            return
        try:
            head = resp.read(120)
        except Exception:
            head = b""
        hint = "; the server may not support stream=true" if ctype == "application/json" else ""
        raise ServerError(
            f"the server at {self.endpoint.display} answered with {ctype} instead of a server-sent event stream"
            f" (it began {_one_line(self._scrub(head.decode('utf-8', 'replace')) or '', 80)!r}){hint}."
        )

    def _read_events(self, resp, sock, deadline: float, result: StreamResult) -> bool:
        """Read the SSE stream until [DONE] or its end. True when the answer finished."""
        buf = b""
        data_lines: list[str] = []
        event_type = ""
        done = False
        finished = False
        while not done:
            remaining = deadline - clock()
            if remaining <= 0:
                raise ServerError(f"the answer from {self.endpoint.display} took longer than {self.timeout:g} s (--timeout).")
            if sock is not None:
                try:
                    sock.settimeout(remaining)
                except OSError:
                    pass
            try:
                chunk = resp.read1(65536)
            except (socket.timeout, TimeoutError):  # the socket's timeout is what is left of --timeout
                raise ServerError(f"the answer from {self.endpoint.display} took longer than {self.timeout:g} s (--timeout).") from None
            at = clock()
            if not chunk:
                break
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > MAX_LINE_BYTES:
                        raise ServerError(f"the stream from {self.endpoint.display} sent a line over {MAX_LINE_BYTES} bytes: it is not a server-sent event stream.")
                    break
                raw, buf = buf[:nl], buf[nl + 1:]
                line = raw.rstrip(b"\r")
                if not line:  # dispatch
                    if data_lines:
                        finished_now, done = self._dispatch("\n".join(data_lines), event_type, at, result)
                        finished = finished or finished_now
                    data_lines, event_type = [], ""
                    if done:
                        break
                    continue
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    raise ServerError(
                        f"the stream from {self.endpoint.display} holds bytes that are not UTF-8 "
                        f"(a line began {line[:40]!r}): it is not a server-sent event stream."
                    ) from None
                name, sep, value = text.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if name == "" and sep:  # a comment / keep-alive
                    continue
                if name == "data":
                    data_lines.append(value)
                elif name == "event":
                    event_type = value.strip()
                elif name in ("id", "retry"):
                    continue
                else:
                    raise ServerError(
                        f"the stream from {self.endpoint.display} is not server-sent events "
                        f"(a line began {_one_line(self._scrub(text) or '', 60)!r})."
                    )
        if not done and data_lines:  # a last event without its blank line
            finished_now, done = self._dispatch("\n".join(data_lines), event_type, clock(), result)
            finished = finished or finished_now
        return done or finished or result.finish_reason is not None

    def _dispatch(self, data: str, event_type: str, at: float, result: StreamResult) -> tuple[bool, bool]:
        """One event. Returns (finished, done)."""
        if data.strip() == "[DONE]":
            return False, True
        try:
            doc = json.loads(data)
        except ValueError:
            raise ServerError(
                f"the stream from {self.endpoint.display} sent a data line that is not JSON "
                f"({_one_line(self._scrub(data) or '', 60)!r})."
            ) from None
        if event_type == "error" or (isinstance(doc, dict) and doc.get("error")):
            said = self._scrub(_one_line(_message_of(doc))) or ""
            raise ServerError(f"the server at {self.endpoint.display} reported an error during the stream: {said}", server_message=said)
        if not isinstance(doc, dict):
            raise ServerError(f"the stream from {self.endpoint.display} sent a data line that is not a chat completion chunk.")
        if doc.get("model") and result.server_model is None:
            result.server_model = str(doc["model"])
        usage = doc.get("usage")
        if isinstance(usage, dict):
            result.usage = usage
        finished = False
        choices = doc.get("choices") or []
        if not isinstance(choices, list):
            raise ServerError(f"the stream from {self.endpoint.display} sent a chunk whose choices are not a list.")
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta, dict):
                for name in ("reasoning_content", "reasoning"):
                    value = delta.get(name)
                    if isinstance(value, str) and value:
                        result.pieces.append(Piece(at, value, "reasoning"))
                        break
                value = delta.get("content")
                if isinstance(value, str) and value:
                    result.pieces.append(Piece(at, value, "content"))
            if choice.get("finish_reason"):
                result.finish_reason = str(choice["finish_reason"])
                finished = True
        return finished, False

    # ---- from pieces to a timing ---------------------------------------------------------

    def _finalize(self, result: StreamResult) -> None:
        t = result.timing
        t.stop_reason = result.finish_reason
        usage = result.usage or {}
        if isinstance(usage.get("prompt_tokens"), int):
            t.prompt_tokens = usage["prompt_tokens"]
        has_tok = self._tokenizer is not None
        per_piece = [self._count(p.text) if has_tok else 1 for p in result.pieces]
        arrivals = _merge_same_time([(p.at, k) for p, k in zip(result.pieces, per_piece)])
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
        self._channels(result, per_piece)

    def _channels(self, result: StreamResult, per_piece: list[int]) -> None:
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
        content = "".join(p.text for p in pieces if p.field == "content")
        if _CHANNEL_MARKER not in content:
            return
        result.channel_mode = "harmony"
        # Message bodies: [start, end) in the joined content -> channel name.
        bodies: list[tuple[int, int, str]] = []
        for m in _HEADER_RE.finditer(content):
            words = m.group(1).split()
            name = words[0] if words else "none"
            end_m = _BODY_END_RE.search(content, m.end())
            bodies.append((m.end(), end_m.start() if end_m else len(content), name))
        t.channel_tokens = {"analysis": 0, "final": 0}
        pos = 0
        for p in pieces:
            a, b = pos, pos + len(p.text)
            pos = b
            best, best_len = None, 0
            for s, e, name in bodies:
                overlap = min(b, e) - max(a, s)
                if overlap > best_len:
                    best, best_len = (s, e, name), overlap
            if best is None:
                continue
            s, e, name = best
            part = content[max(a, s):min(b, e)]
            k = self._count(part) if self._tokenizer is not None else 1
            t.channel_tokens[name] = t.channel_tokens.get(name, 0) + k
            if name == "final" and t.first_final_at is None:
                t.first_final_at = p.at


def _solve(measure, target: int, start: int, budget: int) -> tuple[int, int | None]:
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


def _new_tally() -> dict[str, Any]:
    """What a case's counted repetitions saw, for its info."""
    return {
        "completion_tokens": [],
        "prompt_tokens": [],
        "stop_reasons": {},
        "token_sources": set(),
        "channel_modes": set(),
        "server_models": set(),
        "silent": 0,
        "connect_s": [],
    }


def _weakest(found: set[str], order: tuple[str, ...]) -> str:
    """Of several sources, the least authoritative (a case is only as exact as its weakest rep)."""
    for name in order:
        if name in found:
            return name
    return sorted(found)[0]


def _synthetic_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of a checkpoint written by `gptoss synthesize` (bench.models.synthetic), else None."""
    try:
        doc = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(doc, dict) and doc.get("kind") == "gptoss-harness/synthetic-checkpoint":
        return doc
    return None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
