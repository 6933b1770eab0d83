"""The HTTP side of the ``openai`` backend, on asyncio (aiohttp): one streamed chat completion
timed per network read, a wave of them, or as many as a load model asks for at once.

A ``Client`` holds the endpoint, the timeout and the API key; ``Client.run(work, connections)``
opens one connection pool (``connections`` at most, kept alive between requests, as a serving
client does) and runs ``work(session)`` on an event loop of its own, so the synchronous runner
never sees asyncio. Each request is bounded as a whole by ``--timeout`` (connection, headers and
the whole stream), not per socket read, so a server that trickles bytes is stopped too. The
set-up of a new connection is part of the time to first token and is recorded apart
(``connect_s``; None when the request reused one).

The client knows nothing of tokens: it returns the text pieces with their arrival times, and
``tokens.finalize`` turns them into a ``GenerationTiming``. The API key lives here only: sent as
``Authorization: Bearer``, scrubbed from every message, never stored or shown; the values of a
query string in ``--base-url`` are sent but shown as ``<redacted>``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

import aiohttp

from bench.backends.openai.errors import ServerError, error_text, transport_error
from bench.backends.openai.sse import EventParser, StreamError, StreamReportedError, is_done, read_chunk
from bench.backends.timing import GenerationTiming, clock
from diagnostics.errors import UserError, one_line
from diagnostics.redact import REDACTED, redact_text

MAX_CONCURRENCY = 1024  # requests in flight at once, at most
MAX_ERROR_BYTES = 1 << 16  # of an error body, at most this much is read
READ_BYTES = 1 << 16

T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    prefix: str  # path before /chat/completions, e.g. "/v1" (no trailing slash)
    query: tuple[tuple[str, str], ...] = ()  # sent with every request; values never shown

    @property
    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        shown = "&".join(f"{name}={REDACTED}" for name, _ in self.query)
        return f"{self.scheme}://{host}:{self.port}{self.prefix}" + (f"?{shown}" if shown else "")

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.prefix}{path}"


def parse_base_url(url: str | None) -> Endpoint:
    """``http://127.0.0.1:8000/v1`` -> Endpoint. Credentials in the URL are refused; a query
    string is kept (sent with every request, its values never shown)."""
    if not url:
        raise UserError("--backend openai needs --base-url, e.g. --base-url http://127.0.0.1:8000/v1.")
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--base-url {redact_text(url)!r} is not an http(s) URL; give one such as http://127.0.0.1:8000/v1.")
    if "@" in parts.netloc:
        raise UserError("--base-url must not hold credentials; put the API key in an environment variable and name it with --api-key-env.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UserError(f"--base-url {redact_text(url)!r} has an invalid port; give one such as http://127.0.0.1:8000/v1.") from None
    query = tuple(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return Endpoint(parts.scheme, parts.hostname, port, parts.path.rstrip("/"), query)


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
    connect_s: float | None = None  # a new connection's set-up (part of TTFT); None when one was reused
    answered: bool = False  # the status line and headers came


@dataclass
class ModelList:
    """What GET /models said: the served names (None when the server has no /models) and what
    the server calls itself."""

    ids: list[str] | None
    server: str | None
    http_server: str | None


def run_sync(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end on a new event loop; in a helper thread when this thread
    already runs one (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(work())
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="gptoss-client", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class _Connecting:
    """Per-request trace context: when a new connection was opened for it."""

    __slots__ = ("started", "connect_s")

    def __init__(self) -> None:
        self.started: float | None = None
        self.connect_s: float | None = None


def _trace() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()

    async def start(session, ctx, params) -> None:
        if isinstance(ctx.trace_request_ctx, _Connecting):
            ctx.trace_request_ctx.started = clock()

    async def end(session, ctx, params) -> None:
        c = ctx.trace_request_ctx
        if isinstance(c, _Connecting) and c.started is not None:
            c.connect_s = clock() - c.started

    trace.on_connection_create_start.append(start)
    trace.on_connection_create_end.append(end)
    return trace


class Client:
    def __init__(self, endpoint: Endpoint, timeout: float, api_key: str | None = None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.__key = api_key
        self._hidden = [v for _, v in endpoint.query if len(v) >= 4]

    def __repr__(self) -> str:  # never the key
        return f"Client({self.endpoint.display!r})"

    @property
    def authenticated(self) -> bool:
        return bool(self.__key)

    def scrub(self, text: str | None) -> str:
        """``text`` without the API key, the query values of --base-url, or any URL's secrets."""
        text = text or ""
        if self.__key:
            text = text.replace(self.__key, "***")
        for value in self._hidden:
            text = text.replace(value, REDACTED)
        return redact_text(text)

    # ---- sessions ---------------------------------------------------------------------------

    def session(self, connections: int = 1) -> aiohttp.ClientSession:
        """A connection pool of at most ``connections`` keep-alive connections (open it with
        ``async with``, inside a running loop)."""
        context = ssl.create_default_context() if self.endpoint.scheme == "https" else None
        connector = aiohttp.TCPConnector(limit=max(1, connections), limit_per_host=max(1, connections),
                                         ssl=context if context is not None else False)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),  # each request is bounded as a whole instead
            trace_configs=[_trace()],
            auto_decompress=False,
            trust_env=False,
            skip_auto_headers=("Accept-Encoding",),
        )

    def run(self, work: Callable[[aiohttp.ClientSession], Awaitable[T]], connections: int = 1) -> T:
        """``work(session)`` on a fresh loop and pool; returns its result."""

        async def main() -> T:
            async with self.session(connections) as session:
                return await work(session)

        return run_sync(main)

    # ---- requests --------------------------------------------------------------------------

    def list_models(self, model: str) -> ModelList:
        """GET /models: the served names, and what the server calls itself (the owner of
        ``model``'s entry, else of the only entry, else the HTTP Server header)."""
        return self.run(lambda session: self._bounded(self._list_models(session, model), "GET /models", None))

    def wave(self, body: dict[str, Any], n: int) -> list[StreamResult]:
        """``n`` requests at once; all of them or a ServerError."""

        async def work(session: aiohttp.ClientSession) -> list[Any]:
            return await asyncio.gather(*(self.stream(session, body) for _ in range(n)), return_exceptions=True)

        outcomes = self.run(work, connections=n)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        for o in failed:
            if not isinstance(o, ServerError):
                raise o  # a bug, or Ctrl-C: not a server's fault
        if failed and n == 1:
            raise failed[0]
        if failed:
            first = failed[0]
            raise ServerError(f"{len(failed)} of {n} concurrent requests failed; the first: {first}",
                              status=first.status, server_message=first.server_message)
        return list(outcomes)

    async def stream(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> StreamResult:
        """POST /chat/completions with stream=true; parse the events; time every arrival. The
        whole request is bounded by --timeout; every failure is one ServerError."""
        start = clock()
        result = StreamResult(timing=GenerationTiming(start=start, prompt_tokens=0))
        await self._bounded(self._stream(session, body, result), "the chat completion request", result)
        return result

    async def _bounded(self, work: Awaitable[T], what: str, result: StreamResult | None) -> T:
        try:
            return await asyncio.wait_for(work, self.timeout)
        except asyncio.TimeoutError:
            if result is not None and result.answered:
                raise ServerError(f"the answer from {self.endpoint.display} took longer than {self.timeout:g} s (--timeout).") from None
            raise ServerError(f"the server at {self.endpoint.display} did not answer {what} within {self.timeout:g} s (--timeout).") from None
        except ServerError:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._fail(exc, what, result) from None

    async def _list_models(self, session: aiohttp.ClientSession, model: str) -> ModelList:
        async with session.get(self.endpoint.url("/models"), params=self.endpoint.query or None,
                               headers=self._headers(stream=False)) as resp:
            http_server = resp.headers.get("Server")
            if resp.status in (404, 405):
                return ModelList(None, http_server, http_server)  # no /models: the probe decides
            if resp.status != 200:
                raise await self._http_error(resp, "GET /models")
            raw = await resp.content.read(16 << 20)
        try:
            doc = json.loads(raw)
            data = doc["data"] if isinstance(doc, dict) else doc
            entries = [m for m in data if isinstance(m, dict)]
        except (ValueError, KeyError, TypeError):
            raise ServerError(
                f"the server at {self.endpoint.display} answered GET /models with something that is not a model list; check --base-url (it usually ends in /v1)."
            ) from None
        entry = next((m for m in entries if m.get("id") == model), None)
        owned = (entry or {}).get("owned_by") or (entries[0].get("owned_by") if len(entries) == 1 else None)
        ids = [str(m.get("id")) for m in entries if m.get("id") is not None]
        return ModelList(ids, str(owned) if owned else http_server, http_server)

    async def _stream(self, session: aiohttp.ClientSession, body: dict[str, Any], result: StreamResult) -> None:
        trace = _Connecting()
        async with session.post(self.endpoint.url("/chat/completions"), data=json.dumps(body).encode(),
                                params=self.endpoint.query or None, headers=self._headers(stream=True),
                                trace_request_ctx=trace) as resp:
            result.answered = True
            result.connect_s = trace.connect_s
            if resp.status != 200:
                raise await self._http_error(resp, "the chat completion request")
            await self._check_content_type(resp)
            done = await self._read_events(resp, result)
            result.timing.end = clock()
        if not done:
            raise ServerError(f"the stream from {self.endpoint.display} ended before the answer finished (no finish_reason and no [DONE]): it was cut in the middle.")

    # ---- the event stream ------------------------------------------------------------------

    async def _read_events(self, resp: aiohttp.ClientResponse, result: StreamResult) -> bool:
        """Read the SSE stream until [DONE] or its end. True when the answer finished."""
        parser = EventParser(self.scrub)
        while True:
            chunk = await resp.content.readany()
            at = clock()
            if not chunk:
                break
            for event in parser.feed(chunk):
                if is_done(event):
                    return True
                self._apply(event, at, result)
        last = parser.flush()  # a last event without its blank line
        if last is not None:
            if is_done(last):
                return True
            self._apply(last, clock(), result)
        return result.finish_reason is not None

    def _apply(self, event, at: float, result: StreamResult) -> None:
        update = read_chunk(event, self.scrub)
        if update.model and result.server_model is None:
            result.server_model = update.model
        if update.usage is not None:
            result.usage = update.usage
        result.pieces.extend(Piece(at, text, name) for name, text in update.pieces)
        if update.finish_reason:
            result.finish_reason = update.finish_reason

    async def _check_content_type(self, resp: aiohttp.ClientResponse) -> None:
        ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not ctype or ctype == "text/event-stream":
            return
        try:
            head = await resp.content.read(120)
        except Exception:
            head = b""
        hint = "; the server may not support stream=true" if ctype == "application/json" else ""
        raise ServerError(
            f"the server at {self.endpoint.display} answered with {ctype} instead of a server-sent event stream"
            f" (it began {one_line(self.scrub(head.decode('utf-8', 'replace')), 80)!r}){hint}."
        )

    # ---- HTTP ------------------------------------------------------------------------------

    def _headers(self, stream: bool) -> dict[str, str]:
        h = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            "Accept-Encoding": "identity",  # a compressed stream would arrive in lumps
            "User-Agent": "gptoss-harness",
        }
        if self.__key:
            h["Authorization"] = "Bearer " + self.__key
        return h

    def _fail(self, exc: BaseException, what: str, result: StreamResult | None) -> ServerError:
        where = self.endpoint.display
        if isinstance(exc, StreamReportedError):
            said = str(exc)
            return ServerError(f"the server at {where} reported an error during the stream: {said}", server_message=said)
        if isinstance(exc, StreamError):
            return ServerError(f"the stream from {where} {exc}.")
        return transport_error(exc, where, what, self.timeout, self.scrub, answered=bool(result and result.answered))

    async def _http_error(self, resp: aiohttp.ClientResponse, what: str) -> ServerError:
        try:
            raw = await resp.content.read(MAX_ERROR_BYTES)
        except Exception:
            raw = b""
        said = self.scrub(error_text(raw))
        return ServerError(
            f"the server at {self.endpoint.display} answered {what} with HTTP {resp.status} {resp.reason or ''}".rstrip()
            + f": {said}",
            status=resp.status,
            server_message=said,
        )
