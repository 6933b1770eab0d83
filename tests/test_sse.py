"""The event-stream parser, fed bytes as a network would deliver them (no server)."""

import json

import pytest

from bench.backends.openai.sse import EventParser, StreamError, StreamReportedError, is_done, read_chunk


def _stream() -> bytes:
    chunks = [{"model": "m", "choices": [{"index": 0, "delta": {"reasoning_content": "think"}}]},
              {"choices": [{"index": 0, "delta": {"content": "answer"}, "finish_reason": "stop"}]},
              {"choices": [], "usage": {"completion_tokens": 2}}]
    return b"".join(b": keep-alive\r\n" + f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks) + b"data: [DONE]\n\n"


@pytest.mark.parametrize("size", [1, 7, 1 << 16])
def test_any_split_of_the_bytes_gives_the_same_events(size):
    parser, events = EventParser(), []
    data = _stream()
    for i in range(0, len(data), size):
        events.extend(parser.feed(data[i:i + size]))
    assert [is_done(e) for e in events] == [False, False, False, True]
    updates = [read_chunk(e) for e in events[:3]]
    assert updates[0].model == "m" and updates[0].pieces == [("reasoning", "think")]
    assert updates[1].pieces == [("content", "answer")] and updates[1].finish_reason == "stop"
    assert updates[2].usage == {"completion_tokens": 2}


def test_parsing_is_lazy_past_done_and_errors_name_what_is_wrong():
    parser = EventParser()
    events = parser.feed(b"data: [DONE]\n\nthis is not an event stream\n")
    assert is_done(next(events))  # a caller that stops here never parses the garbage
    with pytest.raises(StreamError, match="is not server-sent events"):
        list(EventParser().feed(b"garbage\n"))
    with pytest.raises(StreamError, match="not UTF-8"):
        list(EventParser().feed(b"data: \xff\xfe\n"))
    with pytest.raises(StreamReportedError, match="overloaded"):
        read_chunk(next(EventParser().feed(b'data: {"error": {"message": "overloaded"}}\n\n')))
    assert EventParser().flush() is None
    last = EventParser()
    list(last.feed(b"data: {}"))
    assert last.flush() is None  # no newline yet: the line is still in the buffer
