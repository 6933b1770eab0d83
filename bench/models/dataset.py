"""Prompts from a file for a serving benchmark (``--dataset FILE``).

Two formats:

- JSON Lines: one object per line, ``{"prompt": "..."}`` or ``{"messages": [{"role": "user",
  "content": "..."}, ...]}``, optionally with ``"output_len"`` (new tokens to ask for; also
  spelled ``max_tokens``) and ``"reasoning_effort"`` (low, medium, high). Blank lines are skipped.
- ShareGPT-style JSON: an array of ``{"conversations": [{"from": "human", "value": "..."},
  {"from": "gpt", "value": "..."}, ...]}``; the first human turn is the prompt and the answer
  after it sets the output length (its tokens, counted with the tokenizer at hand, else about four
  characters a token). An array of JSON Lines objects works too.

A malformed file is one ``UserError`` sentence naming the line (or the entry) and what to fix.
``SAMPLE`` is a small file written for this project, for a first run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from diagnostics.errors import UserError, one_line

EFFORTS = ("low", "medium", "high")
ROLES = ("system", "developer", "user", "assistant")
SAMPLE = Path(__file__).parent / "data" / "serving_prompts.jsonl"
MAX_BYTES = 512 << 20


@dataclass(frozen=True)
class DatasetRequest:
    messages: tuple[tuple[str, str], ...]  # (role, content)
    output_len: int | None = None
    effort: str | None = None

    def chat(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True)
class Dataset:
    name: str  # the file's name without its suffix: the cases' key names it
    path: str
    requests: tuple[DatasetRequest, ...]

    def __len__(self) -> int:
        return len(self.requests)


def read_dataset(path: str | Path, count_tokens: Callable[[str], int] | None = None) -> Dataset:
    """The requests of a JSONL or ShareGPT-style JSON file (see the module docstring)."""
    path = Path(path)
    where = str(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UserError(f"--dataset {where} is over {MAX_BYTES >> 20} MiB; keep the prompts you need in a smaller file.")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"--dataset {where} does not exist; pass a JSONL file of prompts (one {{\"prompt\": ...}} per line).") from None
    except IsADirectoryError:
        raise UserError(f"--dataset {where} is a folder; pass a JSONL or JSON file of prompts.") from None
    except OSError as e:
        raise UserError(f"--dataset {where} cannot be read ({e.strerror or e}); check the path and its permissions.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"--dataset {where} line {line} is not UTF-8 text; save the file as UTF-8.") from None
    count = count_tokens or _approx_tokens
    if text.lstrip().startswith("["):
        requests = _json_array(text, where, count)
    else:
        requests = _json_lines(text, where, count)
    if not requests:
        raise UserError(f"--dataset {where} holds no prompts; add one JSON object per line, e.g. {{\"prompt\": \"Hello\"}}.")
    return Dataset(path.stem, where, tuple(requests))


def _approx_tokens(text: str) -> int:
    return max(1, round(len(text) / 4))


def _json_lines(text: str, where: str, count) -> list[DatasetRequest]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise UserError(
                f"--dataset {where} line {n} is not JSON ({one_line(str(e), 80)}); "
                "each line must be one object such as {\"prompt\": \"...\", \"output_len\": 128}."
            ) from None
        out.append(_entry(doc, f"--dataset {where} line {n}", count))
    return out


def _json_array(text: str, where: str, count) -> list[DatasetRequest]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--dataset {where} line {e.lineno} is not valid JSON ({e.msg}); fix the file or write it as JSON Lines.") from None
    except RecursionError:
        raise UserError(f"--dataset {where} is nested too deeply to be a list of prompts; pass JSON Lines or ShareGPT-style JSON.") from None
    if not isinstance(doc, list):
        raise UserError(f"--dataset {where} is not a list of conversations; pass JSON Lines or a ShareGPT-style JSON array.")
    return [_entry(item, f"--dataset {where} entry {i}", count) for i, item in enumerate(doc, start=1)]


def _entry(doc: Any, at: str, count) -> DatasetRequest:
    if not isinstance(doc, dict):
        raise UserError(f"{at} is not a JSON object; give {{\"prompt\": \"...\"}} or {{\"messages\": [...]}}.")
    if "conversations" in doc:
        messages, answer = _sharegpt(doc["conversations"], at)
        output_len = count(answer) if answer else None
    elif "messages" in doc:
        messages, output_len = _messages(doc["messages"], at), None
    elif "prompt" in doc:
        prompt = doc["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise UserError(f"{at} has an empty or non-text \"prompt\"; give the prompt as a non-empty string.")
        messages, output_len = (("user", prompt),), None
    else:
        raise UserError(f"{at} has neither \"prompt\" nor \"messages\" (nor ShareGPT \"conversations\"); add one.")
    for name in ("output_len", "max_tokens"):
        if name in doc:
            value = doc[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{at} has \"{name}\": {json.dumps(value)[:40]}; give a whole number of new tokens, at least 1.")
            output_len = value
            break
    effort = doc.get("reasoning_effort", doc.get("effort"))
    if effort is not None and effort not in EFFORTS:
        raise UserError(f"{at} has reasoning effort {json.dumps(effort)[:40]}; use low, medium or high.")
    return DatasetRequest(messages, output_len, effort)


def _messages(value: Any, at: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise UserError(f"{at} has \"messages\" that are not a non-empty list; give [{{\"role\": \"user\", \"content\": \"...\"}}].")
    out = []
    for m in value:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise UserError(f"{at} has a message that is not {{\"role\": one of {', '.join(ROLES)}, \"content\": text}}; fix that message.")
        out.append((m["role"], m["content"]))
    if out[-1][0] == "assistant":
        raise UserError(f"{at} ends with an assistant message; end the conversation with the user's turn.")
    return tuple(out)


def _sharegpt(value: Any, at: str) -> tuple[tuple[tuple[str, str], ...], str | None]:
    if not isinstance(value, list):
        raise UserError(f"{at} has \"conversations\" that are not a list of turns; give [{{\"from\": \"human\", \"value\": \"...\"}}, ...].")
    turns = [t for t in value if isinstance(t, dict) and isinstance(t.get("value"), str)]
    for i, t in enumerate(turns):
        if t.get("from") in ("human", "user") and t["value"].strip():
            answer = next((u["value"] for u in turns[i + 1:] if u.get("from") in ("gpt", "assistant", "chatgpt")), None)
            return (("user", t["value"]),), answer
    raise UserError(f"{at} has no human turn with text; give a {{\"from\": \"human\", \"value\": \"...\"}} turn.")
