"""Prompts of an exact token length, rendered by the model's own chat template.

The chat template is rendered with ``reasoning_effort`` (the harmony system block says
"Reasoning: <effort>") and the generation prompt. The user message is filled with plain English
text cut at the token level, so the prompt is exactly ``prompt_len`` tokens long whatever the
tokenizer: ids(template before the message) + the first n filler ids + ids(template after it).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.results.errors import UserError

_SENTINEL = "\ue000GPTOSS_HARNESS_USER_MESSAGE\ue000"

# Filler: ordinary prose, so the tokenizer sees realistic text (not one repeated token).
FILLER = (
    "The harness measures how quickly a language model answers on a given graphics card. "
    "It loads the model once, warms it up, and then asks the same question several times, "
    "recording when each new token arrives. From those clocks it computes the time to the first "
    "token, the decoding speed, and the spread between repetitions. Memory is read before and "
    "after each run, and the device is watched for throttling or other programs that compete "
    "for it. Summarise the trade-offs between accuracy, latency and cost for a small team that "
    "serves an open-weight reasoning model to its users, and suggest how to measure each one. "
)


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    effort: str
    template_tokens: int  # tokens the chat template itself takes for this effort

    def __len__(self) -> int:
        return len(self.ids)


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def template_parts(tokenizer, effort: str) -> tuple[list[int], list[int]]:
    """Token ids of the rendered template before and after the user message."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError("this model's tokenizer has no chat template; use a gpt-oss checkpoint (or synthetic:NAME).")
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": _SENTINEL}],
        tokenize=False,
        add_generation_prompt=True,
        reasoning_effort=effort,
    )
    if text.count(_SENTINEL) != 1:
        raise UserError("the chat template does not render the user message once; use a gpt-oss checkpoint.")
    before, after = text.split(_SENTINEL)
    return _encode(tokenizer, before), _encode(tokenizer, after)


def build_prompt(tokenizer, effort: str, prompt_len: int) -> Prompt:
    before, after = template_parts(tokenizer, effort)
    overhead = len(before) + len(after)
    n = prompt_len - overhead
    if n < 1:
        raise UserError(
            f"--prompt-lengths {prompt_len} is shorter than the chat template itself "
            f"({overhead} tokens for effort {effort}) plus one token; use at least {overhead + 1}."
        )
    filler = _encode(tokenizer, FILLER)
    body = (filler * (n // max(len(filler), 1) + 1))[:n]
    return Prompt(ids=before + body + after, effort=effort, template_tokens=overhead)
