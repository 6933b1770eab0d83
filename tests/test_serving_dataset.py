"""Prompts from a file (--dataset): JSON Lines and ShareGPT-style JSON, the shipped sample, every
malformed input as one sentence with its line; and harmony channels counted per request under
sustained load where the server separates reasoning from content."""

from __future__ import annotations

import json

import pytest

from bench.models.dataset import SAMPLE, read_dataset
from bench.results.errors import UserError


def _write(tmp_path, text, name="d.jsonl"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_the_sample_file_reads_and_mixes_every_form():
    d = read_dataset(SAMPLE)
    assert d.name == "serving_prompts" and len(d) >= 16
    assert any(len(r.messages) > 1 for r in d.requests)  # chat messages
    assert {r.effort for r in d.requests} >= {"low", "medium", "high", None}
    assert all(r.output_len and r.output_len > 0 for r in d.requests)


def test_json_lines_prompt_messages_lengths_and_efforts(tmp_path):
    p = _write(tmp_path, '{"prompt": "a b"}\n\n{"messages": [{"role": "system", "content": "s"}, '
                         '{"role": "user", "content": "u"}], "max_tokens": 7, "reasoning_effort": "high"}\n')
    a, b = read_dataset(p).requests
    assert a.chat() == [{"role": "user", "content": "a b"}] and a.output_len is None and a.effort is None
    assert b.chat()[0]["role"] == "system" and b.output_len == 7 and b.effort == "high"


def test_sharegpt_takes_the_first_human_turn_and_sizes_the_answer(tmp_path):
    doc = [{"id": "x", "conversations": [{"from": "system", "value": "ignored"}, {"from": "human", "value": "Q1"},
                                         {"from": "gpt", "value": "a" * 40}, {"from": "human", "value": "Q2"}]},
           {"conversations": [{"from": "human", "value": "only a question"}]}]
    p = _write(tmp_path, json.dumps(doc, indent=2), "share.json")
    first, second = read_dataset(p).requests
    assert first.chat() == [{"role": "user", "content": "Q1"}] and first.output_len == 10  # ~4 characters a token
    assert second.output_len is None
    assert read_dataset(p, count_tokens=lambda text: 3).requests[0].output_len == 3  # a tokenizer when there is one


@pytest.mark.parametrize("text, match", [
    ('{"prompt": "ok"}\n{"prompt": "x", "output_len": 0}\n', r"line 2 has \"output_len\": 0; give a whole number"),
    ('{"prompt": "ok"}\n[1, 2]\n', r"line 2 is not a JSON object"),
    ('{"text": "no prompt"}\n', r"line 1 has neither \"prompt\" nor \"messages\""),
    ('{"prompt": ""}\n', r"line 1 has an empty or non-text \"prompt\""),
    ('{"prompt": "x", "reasoning_effort": "max"}\n', r"line 1 has reasoning effort \"max\"; use low, medium or high"),
    ('{"messages": [{"role": "robot", "content": "x"}]}\n', r"line 1 has a message that is not"),
    ('{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}\n', r"ends with an assistant message"),
    ('\n\n', r"holds no prompts"),
    ('[{"conversations": [{"from": "gpt", "value": "x"}]}]', r"entry 1 has no human turn"),
    ('[{"prompt": "x"},\n {"prompt": }]', r"line 2 is not valid JSON"),
    ('{"a": 1}', r"not a list of conversations|neither"),
])
def test_malformed_files_are_one_sentence_with_the_line(tmp_path, text, match):
    with pytest.raises(UserError, match=match) as err:
        read_dataset(_write(tmp_path, text, "bad.json" if text.startswith("[") else "bad.jsonl"))
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_dataset(tmp_path / "missing.jsonl")
    with pytest.raises(UserError, match="is a folder"):
        read_dataset(tmp_path)
    p = tmp_path / "latin1.jsonl"
    p.write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(UserError, match="line 2 is not UTF-8"):
        read_dataset(p)


def test_separated_channels_are_counted_per_request_under_load():
    from bench.backends.openai.backend import OpenAIBackend
    from bench.sweep.config import BenchConfig
    from bench.sweep.runner import run_case
    from tests.openai_helpers import FakeOpenAIServer, Reply, chunk, server_key, server_options, sse

    def handler(req):
        n = req["body"]["max_tokens"]
        events = [chunk(reasoning="think ") for _ in range(3)] + [chunk(content="ans ") for _ in range(n - 3)]
        events += [chunk(finish="length"), chunk(choices=False, usage={"prompt_tokens": 30, "completion_tokens": n})]
        return Reply(pieces=[sse(events[:3], done=False), sse(events[3:])], pause_s=0.01)

    with FakeOpenAIServer(handler) as fake:
        b = OpenAIBackend("fake-model", server_options(fake.base_url, 10.0))
        b.load("server", "server")
        cfg = BenchConfig(backend="openai", base_url=fake.base_url, load="closed", num_requests=6, warmup=0, mode="natural")
        key = server_key(dict(effort="high", output_len=8, prompt_len=30), load="closed", concurrency=2, mode="natural")
        case = run_case(b, key, cfg, [], None)
    assert case.status == "ok", case.message
    recs = case.requests.records
    assert all((r.analysis_tokens, r.final_tokens) == (3, 5) for r in recs)
    assert all(r.time_to_final is not None and r.ttft <= r.time_to_final <= r.e2e for r in recs)
    assert case.median("analysis_tokens") == 3 and case.median("final_tokens") == 5
    assert case.info["channels"] == "separated"
    doc = case.requests.to_dict()
    assert doc["analysis_tokens"] == [3] * 6 and len(doc["time_to_final_s"]) == 6
