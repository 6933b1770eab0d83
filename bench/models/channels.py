"""Which harmony channel generated text is on: token by token (``ChannelTracker``, in-process) or
over streamed text (``count_text_channels``, a server that returns the raw harmony markers).

``ChannelTracker`` needs only ``tokenizer.decode`` and ``convert_tokens_to_ids``, so it works
with the real gpt-oss tokenizer as well as with the synthetic one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from bench.models.harmony import CHANNELS, NO_CHANNEL



@dataclass(frozen=True)
class HarmonyTokens:
    """The ids of the harmony control tokens in one tokenizer."""

    start: int
    end: int
    message: int
    channel: int
    constrain: int
    return_: int
    call: int
    endoftext: int
    startoftext: int

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "HarmonyTokens":
        def tid(tok: str) -> int:
            i = tokenizer.convert_tokens_to_ids(tok)
            if i is None or (getattr(tokenizer, "unk_token_id", None) is not None and i == tokenizer.unk_token_id):
                raise ValueError(f"the tokenizer has no harmony token {tok}: is this a gpt-oss tokenizer?")
            return int(i)

        return cls(
            start=tid("<|start|>"), end=tid("<|end|>"), message=tid("<|message|>"), channel=tid("<|channel|>"),
            constrain=tid("<|constrain|>"), return_=tid("<|return|>"), call=tid("<|call|>"),
            endoftext=tid("<|endoftext|>"), startoftext=tid("<|startoftext|>"),
        )

    @property
    def stop_ids(self) -> list[int]:
        """Ids that end the turn: pass as ``eos_token_id`` to generate in natural mode."""
        return [self.return_, self.call, self.endoftext]

    def is_stop(self, token_id: int) -> bool:
        return int(token_id) in (self.return_, self.call, self.endoftext)

    def is_control(self, token_id: int) -> bool:
        return int(token_id) in (
            self.start, self.end, self.message, self.channel, self.constrain,
            self.return_, self.call, self.endoftext, self.startoftext,
        )


def _channel_name(header_text: str) -> str:
    """'analysis' / 'commentary to=functions.x' / 'final ' -> the channel, or 'none'."""
    words = header_text.strip().split()
    if words and words[0] in CHANNELS:
        return words[0]
    return NO_CHANNEL


@dataclass
class ChannelTracker:
    """Fed generated token ids one at a time; says which channel each belongs to.

    ``feed(id)`` returns ``"analysis"``, ``"commentary"``, ``"final"`` for a content token of a
    message on that channel, and ``"none"`` for everything else: header tokens (role, channel
    name, recipient, constraint), control tokens, content of a message without a known
    channel, and stray tokens outside any message. ``counts`` holds content tokens per channel
    (``"none"`` counts content with no known channel and stray tokens, never header or control
    tokens); ``header_tokens`` the header and control tokens. ``first_final_index`` is the
    0-based position (among the fed tokens) of the first final-channel content token.

    By default the tracker starts inside an assistant header, because the prompt ends with the
    generation prompt ``<|start|>assistant``; pass ``in_header=False`` to start outside.
    """

    tokenizer: Any
    in_header: bool = True
    tokens: HarmonyTokens = field(init=False)
    counts: dict[str, int] = field(init=False)
    header_tokens: int = field(init=False, default=0)
    first_final_index: int | None = field(init=False, default=None)
    stop_token: int | None = field(init=False, default=None)
    n: int = field(init=False, default=0)
    _state: str = field(init=False)
    _channel: str = field(init=False, default=NO_CHANNEL)
    _name_ids: list[int] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.tokens = HarmonyTokens.from_tokenizer(self.tokenizer)
        self.counts = {c: 0 for c in (*CHANNELS, NO_CHANNEL)}
        self._state = "header" if self.in_header else "outside"

    # states: outside | header (role, recipient) | channel (its name) | constrain | content
    def feed(self, token_id: int) -> str:
        tid = int(token_id)
        t = self.tokens
        index = self.n
        self.n += 1
        if t.is_control(tid):
            self.header_tokens += 1
            if tid == t.start:
                self._state, self._channel = "header", NO_CHANNEL
            elif tid == t.channel:
                self._state, self._name_ids = "channel", []
            elif tid == t.constrain:
                self._close_channel_name()
                self._state = "constrain"
            elif tid == t.message:
                self._close_channel_name()
                self._state = "content"
            else:  # end, return, call, endoftext, startoftext
                self._state = "outside"
                if t.is_stop(tid) and self.stop_token is None:
                    self.stop_token = tid
            return NO_CHANNEL
        if self._state == "content":
            label = self._channel
        elif self._state == "outside":
            label = NO_CHANNEL
        else:
            if self._state == "channel":
                self._name_ids.append(tid)
            self.header_tokens += 1
            return NO_CHANNEL
        self.counts[label] += 1
        if label == "final" and self.first_final_index is None:
            self.first_final_index = index
        return label

    def feed_many(self, token_ids: Iterable[int]) -> list[str]:
        return [self.feed(i) for i in token_ids]

    def _close_channel_name(self) -> None:
        if self._state == "channel":
            self._channel = _channel_name(self.tokenizer.decode(self._name_ids))
            self._name_ids = []

    def is_stop_token(self, token_id: int) -> bool:
        return self.tokens.is_stop(token_id)

    @property
    def channel(self) -> str:
        """The channel of the message being generated now (``none`` outside one)."""
        return self._channel if self._state == "content" else NO_CHANNEL

    def summary(self) -> dict[str, Any]:
        return {
            "analysis_tokens": self.counts["analysis"],
            "commentary_tokens": self.counts["commentary"],
            "final_tokens": self.counts["final"],
            "other_tokens": self.counts[NO_CHANNEL],
            "header_tokens": self.header_tokens,
            "first_final_index": self.first_final_index,
            "stop_token": self.stop_token,
            "tokens": self.n,
        }


_SPECIAL_RE = re.compile(r"<\|[a-z_0-9]+\|>")


def split_specials(text: str) -> list[str]:
    """Split rendered harmony text into special tokens and the text between them (for tests
    and debugging)."""
    out: list[str] = []
    pos = 0
    for m in _SPECIAL_RE.finditer(text):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        out.append(m.group(0))
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


CHANNEL_MARKER = "<|channel|>"
_HEADER_RE = re.compile(r"<\|channel\|>(.*?)<\|message\|>", re.S)
_BODY_END_RE = re.compile(r"<\|(?:end|return|call|start|channel|endoftext)\|>")


@dataclass
class TextChannels:
    """Tokens per channel over streamed text, and when the first final-channel text arrived."""

    counts: dict[str, int]
    first_final_at: float | None = None


def count_text_channels(pieces: Sequence[tuple[float, str]], count: Callable[[str], int]) -> TextChannels | None:
    """Channels of streamed text that carries the raw harmony markers.

    ``pieces`` are (arrival time, text) in order; ``count`` counts the tokens of a piece of text.
    Each piece is attributed to the message body it overlaps most. None when the text holds no
    channel marker (the server parsed the channels away, or the model wrote plain text).
    """
    content = "".join(text for _, text in pieces)
    if CHANNEL_MARKER not in content:
        return None
    # Message bodies: [start, end) in the joined content -> channel name.
    bodies: list[tuple[int, int, str]] = []
    for m in _HEADER_RE.finditer(content):
        words = m.group(1).split()
        name = words[0] if words else "none"
        end_m = _BODY_END_RE.search(content, m.end())
        bodies.append((m.end(), end_m.start() if end_m else len(content), name))
    out = TextChannels(counts={"analysis": 0, "final": 0})
    pos = 0
    for at, text in pieces:
        a, b = pos, pos + len(text)
        pos = b
        best, best_len = None, 0
        for s, e, name in bodies:
            overlap = min(b, e) - max(a, s)
            if overlap > best_len:
                best, best_len = (s, e, name), overlap
        if best is None:
            continue
        s, e, name = best
        out.counts[name] = out.counts.get(name, 0) + count(content[max(a, s):min(b, e)])
        if name == "final" and out.first_final_at is None:
            out.first_final_at = at
    return out
