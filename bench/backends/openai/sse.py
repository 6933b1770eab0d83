"""Server-sent events of a streamed chat completion, parsed from bytes as they arrive.

Pure: no sockets, no clocks. ``EventParser.feed(bytes)`` yields complete events lazily (a caller
that stops at ``[DONE]`` never parses what follows); ``read_chunk(event)`` turns one event into
the text pieces, usage and finish reason it carries. What is wrong with a stream is raised as a
``StreamError`` whose text completes the sentence "the stream from <server> ...".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from bench.backends.openai.errors import message_of
from diagnostics.errors import one_line

MAX_LINE_BYTES = 1 << 20  # a server-sent event line longer than this is malformed


class StreamError(Exception):
    """The bytes are not a stream of chat completion chunks; the text ends the sentence
    "the stream from <server> ..."."""


class StreamReportedError(Exception):
    """The server reported an error inside the stream; the text is what it said."""


@dataclass(frozen=True)
class Event:
    data: str
    type: str = ""


@dataclass
class ChunkUpdate:
    """What one chat completion chunk carries (choice 0 only)."""

    pieces: list[tuple[str, str]] = field(default_factory=list)  # (field, text): field "reasoning" or "content"
    usage: dict[str, Any] | None = None
    model: str | None = None
    finish_reason: str | None = None


class EventParser:
    """The event-stream format, the parts chat completion streams use: ``data:`` lines (joined),
    ``event:``, comments and keep-alives, ``id:``/``retry:`` ignored; a blank line ends an event.
    ``scrub`` removes secrets from any text an error quotes."""

    def __init__(self, scrub: Callable[[str], str] = str):
        self.scrub = scrub
        self._buf = b""
        self._data: list[str] = []
        self._type = ""

    def feed(self, chunk: bytes) -> Iterator[Event]:
        self._buf += chunk
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_LINE_BYTES:
                    raise StreamError(f"sent a line over {MAX_LINE_BYTES} bytes: it is not a server-sent event stream")
                return
            raw, self._buf = self._buf[:nl], self._buf[nl + 1:]
            event = self._line(raw.rstrip(b"\r"))
            if event is not None:
                yield event

    def flush(self) -> Event | None:
        """A last event the stream ended without its blank line, if any."""
        return self._dispatch()

    def _line(self, line: bytes) -> Event | None:
        if not line:
            return self._dispatch()
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise StreamError(f"holds bytes that are not UTF-8 (a line began {line[:40]!r}): it is not a server-sent event stream") from None
        name, sep, value = text.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "" and sep:  # a comment / keep-alive
            return None
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value.strip()
        elif name not in ("id", "retry"):
            raise StreamError(f"is not server-sent events (a line began {one_line(self.scrub(text), 60)!r})")
        return None

    def _dispatch(self) -> Event | None:
        event = Event("\n".join(self._data), self._type) if self._data else None
        self._data, self._type = [], ""
        return event


def is_done(event: Event) -> bool:
    return event.data.strip() == "[DONE]"


def read_chunk(event: Event, scrub: Callable[[str], str] = str) -> ChunkUpdate:
    """One chat completion chunk (not ``[DONE]``)."""
    try:
        doc = json.loads(event.data)
    except ValueError:
        raise StreamError(f"sent a data line that is not JSON ({one_line(scrub(event.data), 60)!r})") from None
    if event.type == "error" or (isinstance(doc, dict) and doc.get("error")):
        raise StreamReportedError(scrub(one_line(message_of(doc))))
    if not isinstance(doc, dict):
        raise StreamError("sent a data line that is not a chat completion chunk")
    update = ChunkUpdate(model=str(doc["model"]) if doc.get("model") else None)
    usage = doc.get("usage")
    if isinstance(usage, dict):
        update.usage = usage
    choices = doc.get("choices") or []
    if not isinstance(choices, list):
        raise StreamError("sent a chunk whose choices are not a list")
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        if isinstance(delta, dict):
            for name in ("reasoning_content", "reasoning"):
                value = delta.get(name)
                if isinstance(value, str) and value:
                    update.pieces.append(("reasoning", value))
                    break
            value = delta.get("content")
            if isinstance(value, str) and value:
                update.pieces.append(("content", value))
        if choice.get("finish_reason"):
            update.finish_reason = str(choice["finish_reason"])
    return update
