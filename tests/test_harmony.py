"""The harmony tokenizer, chat template and channel tracker."""

from __future__ import annotations

import json

import pytest

from bench.models import harmony
from bench.models import channels
from bench.models.channels import ChannelTracker, HarmonyTokens


def _load(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-tok")
    harmony.write_tokenizer(folder, 1024)
    return _load(folder)


@pytest.fixture(scope="module")
def real_vocab_tok(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big-tok")
    harmony.write_tokenizer(folder, 201088)
    return _load(folder)


REAL_IDS = {
    "<|startoftext|>": 199998, "<|endoftext|>": 199999, "<|return|>": 200002, "<|constrain|>": 200003,
    "<|channel|>": 200005, "<|start|>": 200006, "<|end|>": 200007, "<|message|>": 200008, "<|call|>": 200012,
    "<|endofprompt|>": 200018, "<|reserved_200000|>": 200000, "<|reserved_200013|>": 200013,
}


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def test_special_tokens_sit_at_their_real_ids_in_the_real_vocabulary(real_vocab_tok):
    t = real_vocab_tok
    assert len(t) == 201088
    for token, i in REAL_IDS.items():
        assert t.convert_tokens_to_ids(token) == i, token
        assert t.encode(token, add_special_tokens=False) == [i]
    assert t.convert_ids_to_tokens(201087) == "<|reserved_201087|>"
    assert (t.bos_token, t.eos_token, t.pad_token) == ("<|startoftext|>", "<|return|>", "<|endoftext|>")
    assert t.eos_token_id == 200002 and t.pad_token_id == 199999


def test_special_tokens_sit_at_the_top_of_a_small_vocabulary(tok):
    assert len(tok) == 1024
    base = 1024 - len(harmony.HARMONY_SPECIAL_TOKENS)
    for offset, token in enumerate(harmony.HARMONY_SPECIAL_TOKENS):
        assert tok.convert_tokens_to_ids(token) == base + offset
    assert tok.convert_tokens_to_ids("<|start|>") == base + 8
    assert harmony.special_base_for(1024) == base and harmony.special_base_for(201088) == 199998
    with pytest.raises(ValueError):
        harmony.special_token_ids(1000, 1010)
    with pytest.raises(ValueError):
        harmony.build_tokenizer(200)


def test_text_round_trips_through_the_byte_level_bpe(tok):
    for text in ["Hello there, how are you?", "héllo wörld 世界 🙂\n\ttabs", "<|start|>user<|message|>x<|end|>"]:
        ids = tok.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == text
    # merges compress ordinary words; specials are single tokens
    assert len(tok.encode(" analysis", add_special_tokens=False)) == 1
    ids = tok.encode("<|start|>assistant<|channel|>final<|message|>", add_special_tokens=False)
    assert ids[0] == tok.convert_tokens_to_ids("<|start|>") and ids[-1] == tok.convert_tokens_to_ids("<|message|>")


def test_byte_alphabet_is_the_byte_level_one():
    from tokenizers import pre_tokenizers

    mapping = harmony.bytes_to_unicode()
    assert len(set(mapping.values())) == 256
    assert set(mapping.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert mapping[ord("A")] == "A" and mapping[ord(" ")] == "Ġ"


def test_tokenizer_files_load_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    names = harmony.write_tokenizer(tmp_path, 1024, model_max_length=4096)
    assert names == ["tokenizer.json", "tokenizer_config.json"]
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert cfg["chat_template"] == harmony.CHAT_TEMPLATE and cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    t = _load(tmp_path)
    assert t.model_max_length == 4096 and t.chat_template == harmony.CHAT_TEMPLATE


# --------------------------------------------------------------------------------------------
# Chat template
# --------------------------------------------------------------------------------------------

MSGS = [{"role": "user", "content": "What is 2 + 2?"}]


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_template_renders_each_effort(tok, effort):
    text = tok.apply_chat_template(MSGS, tokenize=False, add_generation_prompt=True, reasoning_effort=effort,
                                   current_date="2025-08-05")
    assert text == (
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\nCurrent date: 2025-08-05\n\n"
        f"Reasoning: {effort}\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant"
    )


def test_template_defaults_generation_prompt_and_date(tok):
    text = tok.apply_chat_template(MSGS, tokenize=False, add_generation_prompt=True)
    assert "Reasoning: medium\n" in text and text.endswith("<|start|>assistant")
    import re

    assert re.search(r"Current date: \d{4}-\d{2}-\d{2}\n", text)  # today, from strftime_now
    without = tok.apply_chat_template(MSGS, tokenize=False, add_generation_prompt=False)
    assert without.endswith("What is 2 + 2?<|end|>")
    ids = tok.apply_chat_template(MSGS, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert ids[-2:] == tok.encode("<|start|>assistant", add_special_tokens=False)[-2:]


def test_template_renders_developer_history_and_tools(tok):
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use "}, {"type": "text", "text": "tables."}]},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "assistant", "tool_calls": [{"function": {"name": "get_time", "arguments": {"tz": "UTC"}}}]},
        {"role": "tool", "name": "get_time", "content": "12:00"},
        {"role": "user", "content": "Thanks"},
    ]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, model_identity="You are a test.")
    parts = text.split("<|end|>")
    assert parts[0].startswith("<|start|>system<|message|>You are a test.\n")
    assert "<|start|>developer<|message|># Instructions\n\nBe brief.\n\nUse tables.<|end|>" in text
    assert "<|start|>user<|message|>Hi<|end|><|start|>assistant<|channel|>final<|message|>Hello!<|end|>" in text
    assert ('<|start|>assistant to=functions.get_time<|channel|>commentary <|constrain|>json<|message|>'
            '{"tz": "UTC"}<|call|>') in text
    assert "<|start|>functions.get_time to=assistant<|channel|>commentary<|message|>12:00<|end|>" in text
    assert text.endswith("<|start|>user<|message|>Thanks<|end|><|start|>assistant")


def test_template_rejects_unknown_roles(tok):
    with pytest.raises(Exception, match="no role 'wizard'"):
        tok.apply_chat_template([{"role": "wizard", "content": "x"}], tokenize=False)


# --------------------------------------------------------------------------------------------
# Channel tracker
# --------------------------------------------------------------------------------------------


def _ids(tok, text):
    return tok.encode(text, add_special_tokens=False)


def test_tracker_follows_analysis_then_final(tok):
    body_a, body_f = _ids(tok, "think hard"), _ids(tok, "four")
    seq = (_ids(tok, "<|channel|>analysis<|message|>") + body_a + _ids(tok, "<|end|><|start|>assistant<|channel|>final<|message|>")
           + body_f + _ids(tok, "<|return|>"))
    tr = ChannelTracker(tok)
    labels = tr.feed_many(seq)
    content = [lab for lab in labels if lab != "none"]
    assert content == ["analysis"] * len(body_a) + ["final"] * len(body_f)
    assert tr.counts == {"analysis": len(body_a), "commentary": 0, "final": len(body_f), "none": 0}
    assert tr.header_tokens == len(seq) - len(body_a) - len(body_f)
    assert tr.first_final_index == labels.index("final") == len(seq) - len(body_f) - 1
    assert tr.stop_token == tok.convert_tokens_to_ids("<|return|>") and tr.is_stop_token(seq[-1])
    assert tr.channel == "none"  # outside a message after <|return|>
    s = tr.summary()
    assert (s["analysis_tokens"], s["final_tokens"], s["tokens"]) == (len(body_a), len(body_f), len(seq))


def test_tracker_commentary_with_recipient_constraint_and_call(tok):
    args = _ids(tok, '{"x": 1}')
    seq = _ids(tok, " to=functions.f<|channel|>commentary <|constrain|>json<|message|>") + args + _ids(tok, "<|call|>")
    tr = ChannelTracker(tok)
    labels = tr.feed_many(seq)
    assert labels.count("commentary") == len(args) and tr.counts["commentary"] == len(args)
    assert tr.first_final_index is None and tr.stop_token == tok.convert_tokens_to_ids("<|call|>")


def test_tracker_none_for_unknown_channel_missing_channel_and_stray_tokens(tok):
    tr = ChannelTracker(tok)
    body = _ids(tok, "abc")
    seq = _ids(tok, "<|channel|>weird<|message|>") + body + _ids(tok, "<|end|>") + _ids(tok, "stray")
    labels = tr.feed_many(seq)
    assert set(labels) == {"none"} and tr.counts["none"] == len(body) + len(_ids(tok, "stray"))
    tr2 = ChannelTracker(tok, in_header=False)
    seq2 = _ids(tok, "<|start|>assistant<|message|>") + body
    tr2.feed_many(seq2)
    assert tr2.counts["none"] == len(body) and tr2.channel == "none" and tr2.stop_token is None
    # a final message after stray text still counts from its first content token
    tr3 = ChannelTracker(tok, in_header=False)
    pre = _ids(tok, "xyz")
    labels3 = tr3.feed_many(pre + _ids(tok, "<|start|>assistant<|channel|>final<|message|>ok"))
    assert tr3.first_final_index == labels3.index("final") and tr3.channel == "final"


def test_tracker_with_real_ids(real_vocab_tok):
    t = real_vocab_tok
    tr = ChannelTracker(t)
    assert tr.tokens.start == 200006 and tr.tokens.stop_ids == [200002, 200012, 199999]
    assert tr.feed(200005) == "none"  # <|channel|>
    for i in _ids(t, "final"):
        assert tr.feed(i) == "none"
    assert tr.feed(200008) == "none"  # <|message|>
    assert tr.feed(_ids(t, "x")[0]) == "final" and tr.first_final_index == 2 + len(_ids(t, "final"))
    assert tr.is_stop_token(200002) and tr.is_stop_token(200012) and not tr.is_stop_token(200007)


def test_tracker_needs_a_harmony_tokenizer():
    class Plain:
        unk_token_id = 0

        def convert_tokens_to_ids(self, token):
            return 0

    with pytest.raises(ValueError, match="harmony"):
        HarmonyTokens.from_tokenizer(Plain())


def test_split_specials():
    assert channels.split_specials("<|start|>user<|message|>hi<|end|>") == ["<|start|>", "user", "<|message|>", "hi", "<|end|>"]
    assert channels.split_specials("plain") == ["plain"]
