"""The harmony chat format: special tokens, a chat template, and a tokenizer for synthetic
checkpoints.

gpt-oss talks in the harmony format::

    <|start|>system<|message|>...<|end|><|start|>user<|message|>...<|end|><|start|>assistant
    <|channel|>analysis<|message|>...thinking...<|end|>
    <|start|>assistant<|channel|>final<|message|>...answer...<|return|>

The special tokens sit at their real o200k_harmony ids (199998..200018) where the vocabulary
is large enough (gpt-oss-20b/120b: 201088) and at the top of the vocabulary otherwise (the
tiny synthetic model). The tokenizer built here is our own byte-level BPE (256 byte tokens, a
few hundred merges learned from a built-in paragraph, then unreachable filler tokens up to the
special tokens); it is saved as ``tokenizer.json`` + ``tokenizer_config.json`` and loads with
``AutoTokenizer.from_pretrained`` offline.

Which channel generated tokens are on: ``bench.models.channels``.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------
# Special tokens
# --------------------------------------------------------------------------------------------

#: The real id of <|startoftext|>, the first harmony special token in o200k_harmony.
HARMONY_BASE_ID = 199998

_NAMED = {
    199998: "<|startoftext|>",
    199999: "<|endoftext|>",
    200002: "<|return|>",
    200003: "<|constrain|>",
    200005: "<|channel|>",
    200006: "<|start|>",
    200007: "<|end|>",
    200008: "<|message|>",
    200012: "<|call|>",
    200018: "<|endofprompt|>",
}

#: The 21 harmony special tokens in id order (<|startoftext|> = 199998 ... <|endofprompt|> = 200018).
HARMONY_SPECIAL_TOKENS: list[str] = [
    _NAMED.get(i, f"<|reserved_{i}|>") for i in range(HARMONY_BASE_ID, HARMONY_BASE_ID + 21)
]

CHANNELS = ("analysis", "commentary", "final")
NO_CHANNEL = "none"

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|return|>"  # what the instruct checkpoint's tokenizer declares
PAD_TOKEN = "<|endoftext|>"
#: Tokens that end the assistant's turn (generation stops): the real generation_config's
#: eos_token_id list. <|end|> ends a *message* (e.g. the analysis one), not the turn.
STOP_TOKENS = ("<|return|>", "<|call|>", "<|endoftext|>")


def special_token_ids(base_id: int, vocab_size: int) -> dict[str, int]:
    """Every special token -> id: the 21 harmony tokens from ``base_id``, then (when the
    vocabulary is the real one) ``<|reserved_N|>`` for every id after them up to vocab_size."""
    if base_id + len(HARMONY_SPECIAL_TOKENS) > vocab_size:
        raise ValueError(f"special tokens from {base_id} do not fit a vocabulary of {vocab_size}")
    ids = {tok: base_id + i for i, tok in enumerate(HARMONY_SPECIAL_TOKENS)}
    first_free = base_id + len(HARMONY_SPECIAL_TOKENS)
    if base_id == HARMONY_BASE_ID:
        for i in range(first_free, vocab_size):
            ids[f"<|reserved_{i}|>"] = i
    elif first_free != vocab_size:
        raise ValueError("off-real-id special tokens must sit at the top of the vocabulary")
    return ids


def special_base_for(vocab_size: int) -> int:
    """Where <|startoftext|> goes: its real id when the vocabulary allows, else the top."""
    if vocab_size >= HARMONY_BASE_ID + len(HARMONY_SPECIAL_TOKENS):
        return HARMONY_BASE_ID
    return vocab_size - len(HARMONY_SPECIAL_TOKENS)


# --------------------------------------------------------------------------------------------
# Chat template (Jinja, rendered by transformers' apply_chat_template)
# --------------------------------------------------------------------------------------------

DEFAULT_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
KNOWLEDGE_CUTOFF = "2024-06"

# Kwargs it honours: reasoning_effort (low|medium|high, default medium), model_identity,
# current_date (default: today via transformers' strftime_now), add_generation_prompt.
# A "system" message becomes the developer block's instructions, as gpt-oss expects; past
# assistant turns render their final answer (their analysis is dropped, as harmony does).
CHAT_TEMPLATE = r"""
{%- set effort = reasoning_effort if (reasoning_effort is defined and reasoning_effort) else "medium" -%}
{%- set identity = model_identity if (model_identity is defined and model_identity) else "__IDENTITY__" -%}
{%- if current_date is defined and current_date -%}
  {%- set today = current_date -%}
{%- elif strftime_now is defined -%}
  {%- set today = strftime_now("%Y-%m-%d") -%}
{%- else -%}
  {%- set today = "2025-08-05" -%}
{%- endif -%}
{%- macro text_of(content) -%}
  {%- if content is string -%}{{- content -}}
  {%- elif content is iterable -%}
    {%- for part in content -%}{%- if part.text is defined -%}{{- part.text -}}{%- endif -%}{%- endfor -%}
  {%- endif -%}
{%- endmacro -%}
<|start|>system<|message|>{{ identity }}
Knowledge cutoff: __CUTOFF__
Current date: {{ today }}

Reasoning: {{ effort }}

# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>
{%- set ns = namespace(instructions="") -%}
{%- for m in messages -%}
  {%- if m.role in ("system", "developer") -%}
    {%- set ns.instructions = ns.instructions ~ ("\n\n" if ns.instructions else "") ~ text_of(m.content) -%}
  {%- endif -%}
{%- endfor -%}
{%- if ns.instructions -%}
<|start|>developer<|message|># Instructions

{{ ns.instructions }}<|end|>
{%- endif -%}
{%- for m in messages -%}
  {%- if m.role == "user" -%}
<|start|>user<|message|>{{ text_of(m.content) }}<|end|>
  {%- elif m.role == "assistant" -%}
    {%- if m.tool_calls is defined and m.tool_calls -%}
      {%- for call in m.tool_calls -%}
        {%- set fn = call.function if call.function is defined else call -%}
<|start|>assistant to=functions.{{ fn.name }}<|channel|>commentary <|constrain|>json<|message|>
        {%- if fn.arguments is string -%}{{ fn.arguments }}{%- else -%}{{ fn.arguments | tojson }}{%- endif -%}
<|call|>
      {%- endfor -%}
    {%- else -%}
<|start|>assistant<|channel|>final<|message|>{{ text_of(m.content) }}<|end|>
    {%- endif -%}
  {%- elif m.role == "tool" -%}
<|start|>functions.{{ m.name if (m.name is defined and m.name) else "tool" }} to=assistant<|channel|>commentary<|message|>{{ text_of(m.content) }}<|end|>
  {%- elif m.role not in ("system", "developer") -%}
    {{- raise_exception("harmony has no role '" ~ m.role ~ "'") -}}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|start|>assistant
{%- endif -%}
""".replace("__IDENTITY__", DEFAULT_IDENTITY).replace("__CUTOFF__", KNOWLEDGE_CUTOFF).strip()


# --------------------------------------------------------------------------------------------
# The synthetic tokenizer (byte-level BPE, our own construction)
# --------------------------------------------------------------------------------------------

# The text the merges are learned from: the words of the harmony format and of typical
# benchmark prompts, so headers and prompts tokenize to a realistic few characters per token.
_MERGE_CORPUS = """
system user assistant developer analysis commentary final channel message return call
Knowledge cutoff Current date Reasoning low medium high Valid channels Channel must be
included for every message. Instructions You are ChatGPT, a large language model trained by
OpenAI. The quick brown fox jumps over the lazy dog. Explain the theory of relativity in
simple terms, then write a short story about a robot that learns to paint. We need to answer
the question about the benchmark. Let us think step by step about the answer and then give
the final result to the user. The model reads the prompt, thinks on the analysis channel and
answers on the final channel. This is a synthetic checkpoint with random weights: the text it
writes means nothing, but its speed is the speed of the real model with the same shapes.
Tokens per second, time to first token, memory bandwidth and latency are measured for every
case of the sweep. 0 1 2 3 4 5 6 7 8 9 10 100 2024 2025 the of and to in is that for it with
as was on be at by this have from or one had not but what all were when we there can an your
which their said if do will each about how up out them then she many some so these would other
into has more her two like him see time could no make than first been its who now people my
made over did down only way find use may water long little very after words called just where
most know get through back much before go good new write our used me man too any day same
right look think also around another came come work three word must because does part even
place well such here take why things help put years different away again off went old number
""" * 3


def bytes_to_unicode() -> dict[int, str]:
    """The byte-level alphabet: printable Latin-1 bytes stand for themselves, the other bytes
    for code points from 256 on, in byte order (the mapping the ByteLevel pre-tokenizer uses)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping: dict[int, str] = {}
    extra = 0
    for b in range(256):
        if b in keep:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _learn_merges(words: list[str], max_merges: int) -> list[tuple[str, str]]:
    """Plain BPE on pre-tokenized words; ties broken by the pair's text so it is deterministic."""
    counts = Counter(words)
    seqs = {w: list(w) for w in counts}
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        pairs: Counter = Counter()
        for w, n in counts.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        joined = best[0] + best[1]
        for w, s in seqs.items():
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == best[0] and s[i + 1] == best[1]:
                    out.append(joined)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


@functools.lru_cache(maxsize=4)
def _corpus_merges(limit: int) -> tuple[tuple[str, str], ...]:
    """The merges learned from the built-in corpus (deterministic; memoised per process)."""
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    words = [piece for piece, _ in pre.pre_tokenize_str(_MERGE_CORPUS)]
    return tuple(_learn_merges(words, limit))


def build_tokenizer(vocab_size: int, max_merges: int = 2000):
    """A ``tokenizers.Tokenizer``: ids 0..255 the bytes, then learned merges, then filler
    tokens (in the vocabulary, never produced by encoding) up to the harmony special tokens,
    which sit at their real ids when ``vocab_size`` allows and at the top otherwise."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    base = special_base_for(vocab_size)
    if base < 256:
        raise ValueError(f"vocab_size {vocab_size} is too small for the byte tokens and the harmony tokens")
    byte_char = bytes_to_unicode()
    vocab: dict[str, int] = {byte_char[b]: b for b in range(256)}

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    merges = []
    for a, b in _corpus_merges(min(max_merges, base - 256)):
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            merges.append((a, b))
    filler = 0
    while len(vocab) < base:
        vocab[f"<filler_{filler}>"] = len(vocab)
        filler += 1

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    specials = special_token_ids(base, vocab_size)
    ordered = sorted(specials.items(), key=lambda kv: kv[1])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, _ in ordered])
    for t, i in ordered:  # the library appends added tokens after the model vocabulary
        got = tok.token_to_id(t)
        if got != i:
            raise AssertionError(f"special token {t} landed on id {got}, expected {i}")
    if tok.get_vocab_size(with_added_tokens=True) != vocab_size:
        raise AssertionError("tokenizer size differs from the model vocabulary")
    return tok


def tokenizer_config(model_max_length: int = 131072) -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }


def write_tokenizer(out_dir: str | Path, vocab_size: int, model_max_length: int = 131072) -> list[str]:
    """Write tokenizer.json and tokenizer_config.json; returns the file names written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(vocab_size)
    # Through Python's own file API (same bytes as ``tok.save``): a full disk is an OSError here,
    # not an untyped exception from the tokenizers library.
    (out / "tokenizer.json").write_text(tok.to_str(pretty=True), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(model_max_length), indent=2) + "\n")
    return ["tokenizer.json", "tokenizer_config.json"]
