"""The HTTP side of the ``openai`` backend: one streamed chat completion request, timed per
network read, and a wave of them at once.

Standard library only (``http.client``, threads). Each request opens its own connection (what a
new client sees); its set-up is part of the time to first token and is recorded apart
(``connect_s``). The client knows nothing of tokens: it returns the text pieces with their arrival
times, and ``tokens.finalize`` turns them into a ``GenerationTiming``. The API key lives here
only: sent as ``Authorization: Bearer``, scrubbed from every message, never stored or shown.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from bench.backends.openai.errors import ServerError, error_text, transport_error
from bench.backends.openai.sse import EventParser, StreamError, StreamReportedError, is_done, read_chunk
from bench.backends.timing import GenerationTiming, clock
from diagnostics.errors import UserError, one_line

MAX_CONCURRENCY = 256  # requests in flight at once, at most
MAX_ERROR_BYTES = 1 << 16  # of an error body, at most this much is read


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


@dataclass
class ModelList:
    """What GET /models said: the served names (None when the server has no /models) and what
    the server calls itself."""

    ids: list[str] | None
    server: str | None
    http_server: str | None


class Client:
    def __init__(self, endpoint: Endpoint, timeout: float, api_key: str | None = None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.__key = api_key

    def __repr__(self) -> str:  # never the key
        return f"Client({self.endpoint.display!r})"

    @property
    def authenticated(self) -> bool:
        return bool(self.__key)

    def scrub(self, text: str | None) -> str:
        text = text or ""
        return text.replace(self.__key, "***") if self.__key else text

    # ---- requests --------------------------------------------------------------------------

    def list_models(self, model: str) -> ModelList:
        """GET /models: the served names, and what the server calls itself (the owner of
        ``model``'s entry, else of the only entry, else the HTTP Server header)."""
        what = "GET /models"
        with self._talking(what) as conn:
            conn.request("GET", self.endpoint.prefix + "/models", headers=self._headers(stream=False))
            resp = conn.getresponse()
            http_server = resp.getheader("Server")
            if resp.status in (404, 405):
                resp.read(MAX_ERROR_BYTES)
                return ModelList(None, http_server, http_server)  # no /models: the probe decides
            if resp.status != 200:
                raise self._http_error(resp, what)
            raw = resp.read(16 << 20)
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

    def stream(self, body: dict[str, Any]) -> StreamResult:
        """POST /chat/completions with stream=true; parse the events; time every arrival."""
        what = "the chat completion request"
        payload = json.dumps(body).encode()
        start = clock()
        deadline = start + self.timeout
        result = StreamResult(timing=GenerationTiming(start=start, prompt_tokens=0))
        with self._talking(what) as conn:
            conn.connect()
            result.connect_s = clock() - start
            conn.request("POST", self.endpoint.prefix + "/chat/completions", body=payload, headers=self._headers(stream=True))
            sock = conn.sock  # getresponse() may hand the socket over to the response
            resp = conn.getresponse()
            if resp.status != 200:
                raise self._http_error(resp, what)
            self._check_content_type(resp)
            done = self._read_events(resp, sock, deadline, result)
            result.timing.end = clock()
        if not done:
            raise ServerError(f"the stream from {self.endpoint.display} ended before the answer finished (no finish_reason and no [DONE]): it was cut in the middle.")
        return result

    def wave(self, body: dict[str, Any], n: int) -> list[StreamResult]:
        """``n`` requests at once, one thread each; all of them or a ServerError."""
        if n == 1:
            return [self.stream(body)]
        results: list[StreamResult | None] = [None] * n
        errors: list[ServerError | None] = [None] * n
        barrier = threading.Barrier(n)

        def work(i: int) -> None:
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
            try:
                results[i] = self.stream(body)
            except ServerError as exc:
                errors[i] = exc
            except Exception as exc:  # a bug must not hang the wave
                errors[i] = ServerError(f"request failed ({type(exc).__name__}: {one_line(self.scrub(str(exc)), 200)}).")

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
            raise ServerError(f"{len(failed)} of {n} concurrent requests failed; the first: {failed[0]}",
                              status=failed[0].status, server_message=failed[0].server_message)
        return [r for r in results if r is not None]

    # ---- the event stream ------------------------------------------------------------------

    def _read_events(self, resp, sock, deadline: float, result: StreamResult) -> bool:
        """Read the SSE stream until [DONE] or its end. True when the answer finished."""
        parser = EventParser(self.scrub)
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                raise self._too_slow()
            if sock is not None:
                try:
                    sock.settimeout(remaining)
                except OSError:
                    pass
            try:
                chunk = resp.read1(65536)
            except (socket.timeout, TimeoutError):  # the socket's timeout is what is left of --timeout
                raise self._too_slow() from None
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

    def _too_slow(self) -> ServerError:
        return ServerError(f"the answer from {self.endpoint.display} took longer than {self.timeout:g} s (--timeout).")

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
            f" (it began {one_line(self.scrub(head.decode('utf-8', 'replace')), 80)!r}){hint}."
        )

    # ---- HTTP ------------------------------------------------------------------------------

    def _headers(self, stream: bool) -> dict[str, str]:
        h = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            "User-Agent": "gptoss-harness",
        }
        if self.__key:
            h["Authorization"] = "Bearer " + self.__key
        return h

    @contextmanager
    def _talking(self, what: str) -> Iterator[http.client.HTTPConnection]:
        """A fresh connection for one request; any failure below HTTP becomes one ServerError."""
        conn = self._connection()
        try:
            yield conn
        except ServerError:
            raise
        except Exception as exc:
            raise self._fail(exc, what) from None
        finally:
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        e = self.endpoint
        if e.scheme == "https":
            return http.client.HTTPSConnection(e.host, e.port, timeout=self.timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(e.host, e.port, timeout=self.timeout)

    def _fail(self, exc: BaseException, what: str) -> ServerError:
        where = self.endpoint.display
        if isinstance(exc, StreamReportedError):
            said = str(exc)
            return ServerError(f"the server at {where} reported an error during the stream: {said}", server_message=said)
        if isinstance(exc, StreamError):
            return ServerError(f"the stream from {where} {exc}.")
        return transport_error(exc, where, what, self.timeout, self.scrub)

    def _http_error(self, resp: http.client.HTTPResponse, what: str) -> ServerError:
        try:
            raw = resp.read(MAX_ERROR_BYTES)
        except Exception:
            raw = b""
        said = self.scrub(error_text(raw))
        return ServerError(
            f"the server at {self.endpoint.display} answered {what} with HTTP {resp.status} {resp.reason}: {said}",
            status=resp.status,
            server_message=said,
        )
