"""What goes wrong talking to a server, each as one sentence: ``ServerError`` and the texts of
transport failures and HTTP error bodies."""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any, Callable

from diagnostics.errors import one_line


class ServerError(RuntimeError):
    """A request to the server failed; the message is one sentence saying what happened.

    ``status`` is the HTTP status when the server answered with one, ``server_message`` what the
    server said (scrubbed of the API key).
    """

    def __init__(self, message: str, *, status: int | None = None, server_message: str | None = None):
        super().__init__(message)
        self.status = status
        self.server_message = server_message


def message_of(doc: Any) -> str:
    """What an error document says: the message of {"error": {...}}, {"error": "..."},
    {"detail": ...}, {"message": ...}, a list of those, or the document itself."""
    if isinstance(doc, dict):
        for name in ("error", "detail", "message"):
            if name in doc and doc[name]:
                return message_of(doc[name])
        return json.dumps(doc)[:300]
    if isinstance(doc, list):
        return "; ".join(message_of(x) for x in doc[:3])
    return str(doc)


def error_text(raw: bytes) -> str:
    """What an error body says (JSON as ``message_of`` reads it, else the text itself)."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return one_line(text) or "(empty body)"
    return one_line(message_of(doc)) or "(empty body)"


def transport_error(exc: BaseException, where: str, what: str, timeout: float,
                    scrub: Callable[[str], str] = str, answered: bool = False) -> ServerError:
    """One clear sentence for a failure below HTTP (connection, DNS, TLS, a cut stream); an
    unexpected exception's own text is shown through ``scrub`` (which removes the API key).
    ``answered``: the status line had come when it failed."""
    import aiohttp

    if isinstance(exc, ServerError):
        return exc
    if isinstance(exc, aiohttp.ClientConnectorError):  # could not connect: look at the cause
        cause = exc.os_error
        if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientConnectorSSLError)):
            return ServerError(f"TLS failed with {where} ({one_line(scrub(str(cause or exc)), 120)}); check --base-url.")
        exc = cause if isinstance(cause, BaseException) else exc
    if isinstance(exc, ConnectionRefusedError):
        return ServerError(f"nothing is listening at {where} (connection refused); start the server or fix --base-url.")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ServerError(f"the server at {where} did not answer {what} within {timeout:g} s (--timeout).")
    if isinstance(exc, socket.gaierror):
        return ServerError(f"cannot resolve the host of {where}; fix --base-url.")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ServerError(f"the stream from {where} was cut in the middle of {what}.")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        if answered:
            return ServerError(f"the stream from {where} was cut in the middle of {what}.")
        return ServerError(f"the server at {where} closed the connection without answering {what}.")
    if isinstance(exc, aiohttp.ClientResponseError):  # the answer is not HTTP (a bad status line, bad headers)
        return ServerError(f"the server at {where} did not answer {what} with HTTP ({one_line(scrub(exc.message or type(exc).__name__), 80)}); check --base-url.")
    if isinstance(exc, ssl.SSLError):
        return ServerError(f"TLS failed with {where} ({one_line(exc.reason or str(exc), 120)}); check --base-url.")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return ServerError(f"the server at {where} dropped the connection during {what}.")
    if isinstance(exc, aiohttp.ClientOSError) and isinstance(exc.__cause__ or exc.__context__, ConnectionResetError):
        return ServerError(f"the server at {where} dropped the connection during {what}.")
    if isinstance(exc, OSError):
        return ServerError(f"could not talk to {where} during {what} ({one_line(scrub(exc.strerror or str(exc)), 120)}).")
    return ServerError(f"{what} to {where} failed ({type(exc).__name__}: {one_line(scrub(str(exc)), 200)}).")
