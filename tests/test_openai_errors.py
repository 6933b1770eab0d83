"""The openai backend against scripted loopback servers: every error path, stream parsing
(channels, usage, [DONE]), field negotiation and the API key's secrecy. No model, no GPU."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from types import SimpleNamespace
import time

import pytest

from bench.backends.openai.backend import OpenAIBackend, OpenAIOptions
from bench.backends.openai.client import parse_base_url
from bench.backends.openai.errors import ServerError
from bench.backends.openai.prompts import solve as _solve
from bench.backends.openai.tokens import reconcile
from bench.sweep.config import BenchConfig
from bench.results.errors import UserError
from bench.results import CaseKey
from bench.sweep.runner import run_case
from tests.openai_helpers import (
    server_key,
    server_options,
    FakeOpenAIServer,
    GarbageServer,
    Reply,
    chunk,
    free_port,
    simple_stream,
    sse,
)

SENTINEL = "sk-SENTINEL-never-in-output-41b2"


def _run_one(backend, key, cfg):
    return run_case(backend, key, cfg, [], None)


def _cfg(base_url: str, **kw) -> OpenAIOptions:
    return server_options(base_url, 10.0, **kw)


def _key(**kw) -> CaseKey:
    return server_key(dict(effort="medium", output_len=4, prompt_len=64), **kw)


def _backend(fake, model: str = "fake-model", **kw) -> OpenAIBackend:
    return OpenAIBackend(model, _cfg(fake.base_url, **kw))


def _stream_error(reply: Reply, **kw) -> ServerError:
    """Load against a fake whose probe answer is ``reply``; return the error raised."""
    with FakeOpenAIServer(lambda req: reply) as fake:
        with pytest.raises(ServerError) as err:
            _backend(fake, **kw).load("server", "server")
    assert "\n" not in str(err.value)  # one line
    return err.value


# ---- HTTP and transport errors -------------------------------------------------------------


def test_http_500_carries_the_servers_message():
    body = json.dumps({"error": {"message": "CUDA out of memory on the server", "type": "server_error"}}).encode()
    err = _stream_error(Reply(status=500, body=body, content_type="application/json"))
    assert err.status == 500
    assert "HTTP 500" in str(err) and "CUDA out of memory on the server" in str(err)


def test_http_error_with_plain_text_body():
    err = _stream_error(Reply(status=503, body=b"<html>upstream\n overloaded</html>", content_type="text/html"))
    assert err.status == 503 and "upstream overloaded" in str(err)


def test_nothing_listening_is_connection_refused():
    b = OpenAIBackend("m", _cfg(f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(ServerError, match="connection refused"):
        b.load("server", "server")


def test_a_socket_that_answers_garbage():
    with GarbageServer() as g:
        b = OpenAIBackend("m", _cfg(g.base_url))
        with pytest.raises(ServerError, match="did not answer GET /models with HTTP"):
            b.load("server", "server")
        # the chat request too (a backend that skips the listing, as prepare() does)
        with pytest.raises(ServerError, match="did not answer the chat completion request with HTTP"):
            b.prepare(_key())


def test_a_server_that_hangs_past_the_timeout():
    started = time.monotonic()
    err = _stream_error(Reply(hang_s=4.0), request_timeout_s=0.5)
    assert time.monotonic() - started < 3.5  # bounded by --timeout, not by the server
    assert "did not answer the chat completion request within 0.5 s" in str(err)


def test_a_stream_that_drips_past_the_timeout():
    pieces = [b": keep-alive\n\n"] * 40  # one comment every 0.1 s, never an answer
    started = time.monotonic()
    err = _stream_error(Reply(pieces=pieces, pause_s=0.1), request_timeout_s=0.6)
    assert time.monotonic() - started < 3.5
    assert "took longer than 0.6 s" in str(err)


def test_a_non_sse_answer():
    err = _stream_error(Reply(body=b"<html><body>Welcome to nginx!</body></html>", content_type="text/html"))
    assert "text/html instead of a server-sent event stream" in str(err) and "Welcome to nginx" in str(err)


def test_a_json_answer_to_a_streaming_request():
    err = _stream_error(Reply(body=b'{"choices": []}', content_type="application/json"))
    assert "may not support stream=true" in str(err)


def test_lines_that_are_not_server_sent_events():
    err = _stream_error(Reply(body=b"hello world\nthis is not sse\n\n"))
    assert "is not server-sent events" in str(err) and "hello world" in str(err)


def test_garbage_bytes_inside_an_event_stream():
    err = _stream_error(Reply(body=b"data: \xff\xfe\x00garbage\n\n"))
    assert "not UTF-8" in str(err)


def test_invalid_json_in_a_data_line():
    err = _stream_error(Reply(body=sse([chunk(content="a"), "{not json"], done=False)))
    assert "not JSON" in str(err) and "{not json" in str(err)


def test_a_stream_cut_in_the_middle():
    err = _stream_error(Reply(body=sse([chunk(content="a"), chunk(content="b")], done=False)))
    assert "cut in the middle" in str(err)


def test_a_chunked_stream_cut_in_the_middle():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    event = sse([chunk(content="a")], done=False)
    raw = head + b"%x\r\n" % len(event) + event + b"\r\n" + b"400\r\ndata: {\"partial"  # promised 1024 bytes
    err = _stream_error(Reply(raw=raw))
    assert "cut in the middle" in str(err)


def test_an_error_event_mid_stream():
    err = _stream_error(Reply(body=sse([chunk(content="a"), {"error": "generation crashed: boom"}], done=False)))
    assert "reported an error during the stream: generation crashed: boom" in str(err)


def test_a_typed_error_event():
    body = b"event: error\ndata: {\"message\": \"overloaded\"}\n\n"
    err = _stream_error(Reply(body=body))
    assert "overloaded" in str(err)


# ---- the model listing ------------------------------------------------------------------------


def test_a_wrong_model_lists_the_served_models():
    def handler(req):
        if req["body"]["model"] != "fake-model":
            return Reply(status=404, content_type="application/json",
                         body=json.dumps({"error": {"message": f"The model `{req['body']['model']}` does not exist."}}).encode())
        return Reply(body=simple_stream(2))

    with FakeOpenAIServer(handler, models=[{"id": "fake-model", "owned_by": "vllm"}, {"id": "other"}]) as fake:
        with pytest.raises(ServerError) as err:
            _backend(fake, model="gpt-oss-wrong").load("server", "server")
        record = _backend(fake).load("server", "server")
    msg = str(err.value)
    assert "does not serve model 'gpt-oss-wrong'" in msg and "'fake-model', 'other'" in msg
    assert "does not exist" in msg and "--model" in msg
    assert record.status == "ok"


def test_owned_by_names_the_server():
    with FakeOpenAIServer(models=[{"id": "fake-model", "owned_by": "sglang"}]) as fake:
        b = _backend(fake)
        b.load("server", "server")
    assert b.describe()["server"] == "sglang"


def test_models_answer_that_is_not_a_list():
    with FakeOpenAIServer(models_body=b"<html>hi</html>") as fake:
        with pytest.raises(ServerError, match="not a model list"):
            _backend(fake).load("server", "server")


def test_no_models_endpoint_is_fine():
    with FakeOpenAIServer(models_status=404, models_body=b"{}") as fake:
        record = _backend(fake).load("server", "server")
    assert record.status == "ok"


# ---- field negotiation --------------------------------------------------------------------


def test_fields_the_server_names_as_refused_are_dropped():
    def handler(req):
        bad = {"min_tokens", "ignore_eos"} & set(req["body"])
        if bad:
            return Reply(status=422, content_type="application/json",
                         body=json.dumps({"detail": f"Unexpected fields in the request: {bad}"}).encode())
        return Reply(body=simple_stream(req["body"]["max_tokens"]))

    with FakeOpenAIServer(handler) as fake:
        b = _backend(fake)
        b.load("server", "server")
        key = _key(output_len=5)
        (t,) = b.prepare(key).once().timings
        last = fake.chat_requests[-1]["body"]
    assert t.new_tokens == 5
    assert "min_tokens" not in last and "ignore_eos" not in last
    assert "generation_config" in last and last["reasoning_effort"] == "medium"
    assert sorted(b.describe()["dropped_fields"]) == ["ignore_eos", "min_tokens"]


def test_fields_refused_without_names_are_all_dropped():
    optional = {"seed", "reasoning_effort", "stream_options", "chat_template_kwargs", "min_tokens", "ignore_eos",
                "generation_config"}

    def handler(req):
        if optional & set(req["body"]):
            return Reply(status=400, content_type="application/json", body=b'{"error": "bad request"}')
        return Reply(body=simple_stream(2))

    with FakeOpenAIServer(handler) as fake:
        b = _backend(fake)
        b.load("server", "server")
    assert set(b.describe()["dropped_fields"]) == optional
    assert b.describe()["fixed_length"] == "none"


def test_a_400_that_is_not_about_fields_still_fails():
    with FakeOpenAIServer(lambda req: Reply(status=400, content_type="application/json",
                                            body=b'{"error": {"message": "prompt too long"}}')) as fake:
        with pytest.raises(ServerError, match="prompt too long"):
            _backend(fake).load("server", "server")
        assert len(fake.chat_requests) == 2  # with the optional fields, then without; no more


# ---- parsing: channels, usage, tokens -----------------------------------------------------


def _case(handler, key=None, **cfg):
    key = key or _key()
    with FakeOpenAIServer(handler) as fake:
        b = _backend(fake, **cfg)
        b.load("server", "server")
        case = b.prepare(key)
        timings = case.once().timings
        info = case.info()
        bodies = [r["body"] for r in fake.chat_requests]
    return timings, info, bodies


def _usage(n, p=64):
    return {"prompt_tokens": p, "completion_tokens": n, "total_tokens": p + n}


def test_separated_channels_are_counted():
    thinking = [chunk(reasoning="think "), chunk(reasoning="more "), chunk(reasoning="still ")]
    answer = [chunk(content="Answer"), chunk(content="!"), chunk(finish="stop"), chunk(choices=False, usage=_usage(5))]
    # the answer is written 50 ms after the thinking: the first final token arrives after that
    reply = Reply(pieces=[sse(thinking, done=False), sse(answer)], pause_s=0.05)
    (t,), info, _ = _case(lambda req: reply, key=_key(mode="natural", output_len=16))
    assert t.channel_tokens == {"analysis": 3, "final": 2}
    assert t.first_final_at in t.arrivals and t.first_final_at - t.arrivals[0] >= 0.04
    assert t.stop_reason == "stop" and t.new_tokens == 5
    assert info["channels"] == "separated" and info["stop_reasons"] == {"stop": 1}


def test_reasoning_field_spelled_reasoning_is_analysis():
    events = [chunk(reasoning="a", reasoning_field="reasoning"), chunk(content="b"), chunk(finish="stop", usage=_usage(2))]
    (t,), info, _ = _case(lambda req: Reply(body=sse(events)))
    assert t.channel_tokens == {"analysis": 1, "final": 1}


def test_raw_harmony_markers_in_content_are_parsed():
    first = ["<|channel|>", "analysis", "<|message|>", "We", " think", "<|end|>", "<|start|>", "assistant",
             "<|channel|>", "final", "<|message|>"]
    last = ["Hi", "<|return|>"]
    usage = _usage(len(first) + len(last))
    reply = Reply(pieces=[sse([chunk(content=p) for p in first], done=False),
                          sse([chunk(content=p) for p in last] + [chunk(finish="stop", usage=usage)])], pause_s=0.05)
    (t,), info, _ = _case(lambda req: reply)
    assert t.channel_tokens == {"analysis": 2, "final": 1}
    assert t.first_final_at in t.arrivals and t.first_final_at - t.arrivals[0] >= 0.04
    assert info["channels"] == "harmony"


def test_plain_content_leaves_channels_empty():
    (t,), info, _ = _case(lambda req: Reply(body=simple_stream(3)))
    assert t.channel_tokens == {} and t.first_final_at is None and info["channels"] == "unavailable"


def test_usage_is_authoritative_over_chunk_counts():
    # 3 text deltas but 9 tokens (special tokens that decode to nothing): the arrivals carry 9
    events = [chunk(content="a"), chunk(content="b"), chunk(content="c"), chunk(finish="length", usage=_usage(9))]
    (t,), info, _ = _case(lambda req: Reply(pieces=[sse([e], done=False) for e in events], pause_s=0.02),
                          key=_key(output_len=9))
    assert t.new_tokens == 9 and sum(t.tokens_per_arrival) == 9 and 1 <= len(t.arrivals) <= 3
    assert info["token_source"] == "usage" and "note" not in info


def test_without_usage_each_delta_is_one_token_and_the_prompt_is_approximate():
    (t,), info, _ = _case(lambda req: Reply(body=simple_stream(6, usage=False)), key=_key(output_len=6))
    assert t.new_tokens == 6 and t.prompt_tokens == 0
    assert info["token_source"] == "chunks" and info["prompt_sizing"] == "approx" and "prompt_note" in info


class WordTokenizer:
    """A stand-in tokenizer: one token per whitespace-separated word, a 10-token template."""

    chat_template = "stand-in"

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": list(range(len(text.split())))}

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=True, reasoning_effort=None):
        return list(range(10 + len(messages[0]["content"].split())))


def test_a_local_tokenizer_sizes_the_prompt_and_counts_tokens_without_usage():
    events = [chunk(content="two words"), chunk(content="three more words"), chunk(finish="length")]
    with FakeOpenAIServer(lambda req: Reply(pieces=[sse([e], done=False) for e in events], pause_s=0.02)) as fake:
        b = OpenAIBackend("fake-model", _cfg(fake.base_url), tokenizer=WordTokenizer())
        b.load("server", "server")
        key = _key(prompt_len=50, output_len=5)
        case = b.prepare(key)
        (t,) = case.once().timings
        extras = SimpleNamespace(info=case.info())
        sent = fake.chat_requests[-1]["body"]["messages"][0]["content"]
    assert len(sent.split()) == 40  # 10 template tokens + 40 words = 50
    assert t.prompt_tokens == 50 and t.new_tokens == 5
    info = extras.info
    assert info["prompt_sizing"] == "tokenizer" and info["prompt_tokens_estimate"] == 50
    assert info["token_source"] == "tokenizer" and "note" not in info
    assert info["connect_s_median"] >= 0


def test_events_in_one_read_are_one_arrival():
    events = [chunk(content="a"), chunk(content="b"), chunk(content="c"), chunk(finish="length", usage=_usage(3))]
    (t,), _, _ = _case(lambda req: Reply(body=sse(events)), key=_key(output_len=3))
    assert t.new_tokens == 3 and len(t.arrivals) == len(set(t.arrivals))


def test_stream_without_done_ends_cleanly_after_finish_reason():
    # transformers serve style: no [DONE], the finish chunk carries usage
    events = [chunk(content="x"), chunk(content="y"), chunk(finish="length", usage=_usage(2))]
    (t,), _, _ = _case(lambda req: Reply(body=sse(events, done=False)), key=_key(output_len=2))
    assert t.new_tokens == 2 and t.stop_reason == "length"


def test_fixed_mode_short_answer_is_noted():
    def handler(req):
        n = min(req["body"]["max_tokens"], 3)
        return Reply(body=simple_stream(n, finish="stop"))

    (t,), info, bodies = _case(handler, key=_key(output_len=8))
    assert t.new_tokens == 3
    assert "asked for 8 new tokens" in info["note"] and "fewest 3" in info["note"]
    assert bodies[-1]["min_tokens"] == 8 and bodies[-1]["ignore_eos"] is True
    assert info["fixed_length"] == "min_tokens+ignore_eos"


def test_prompt_is_sized_with_the_servers_count():
    # a server that counts 40 template tokens + 2 tokens per word of the user message
    def handler(req):
        words = len(req["body"]["messages"][0]["content"].split())
        p = 40 + 2 * words
        n = req["body"]["max_tokens"]
        return Reply(body=simple_stream(n, prompt_tokens=p))

    (t,), info, bodies = _case(handler, key=_key(prompt_len=100))
    assert t.prompt_tokens == 100 and info["prompt_sizing"] == "server" and info["prompt_tokens"] == [100]
    assert len(bodies) <= 1 + 8 + 1  # probe + bounded calibration + the measured request


def test_one_failed_request_fails_the_wave():
    calls = {"n": 0}

    def handler(req):
        if req["body"]["max_tokens"] == 4:
            calls["n"] += 1
            if calls["n"] == 2:
                return Reply(status=500, content_type="application/json", body=b'{"error": "worker died"}')
        return Reply(body=simple_stream(req["body"]["max_tokens"]))

    with FakeOpenAIServer(handler) as fake:
        b = _backend(fake)
        b.load("server", "server")
        key = _key(concurrency=3)
        case = b.prepare(key)
        with pytest.raises(ServerError, match=r"1 of 3 concurrent requests failed; the first: .*worker died"):
            case.once()


def test_the_runner_records_a_server_error_and_goes_on():
    with FakeOpenAIServer(lambda req: Reply(body=simple_stream(2))) as fake:
        b = _backend(fake)
        b.load("server", "server")
    # the server is gone now: the case is an error with the message, not a crash
    case = _run_one(b, _key(), BenchConfig(reps=1, warmup=0))
    assert case.status == "error" and "ServerError" in case.message and "connection refused" in case.message


# ---- configuration errors -------------------------------------------------------------------


def test_missing_api_key_variable_is_a_user_error(monkeypatch):
    monkeypatch.delenv("GPTOSS_NO_SUCH_VAR", raising=False)
    with pytest.raises(UserError, match="GPTOSS_NO_SUCH_VAR"):
        OpenAIBackend("m", _cfg("http://127.0.0.1:9/v1", api_key_env="GPTOSS_NO_SUCH_VAR"))


@pytest.mark.parametrize("url, match", [
    (None, "needs --base-url"),
    ("ftp://host/v1", "not an http"),
    ("http://user:secret@127.0.0.1:8000/v1", "must not hold credentials"),
    ("http://127.0.0.1:99999/v1", "invalid port"),
])
def test_bad_base_urls(url, match):
    with pytest.raises(UserError, match=match) as err:
        parse_base_url(url)
    assert "secret" not in str(err.value)


def test_base_url_is_normalised():
    e = parse_base_url("https://example.org/v1/")
    assert (e.scheme, e.host, e.port, e.prefix, e.display) == ("https", "example.org", 443, "/v1", "https://example.org:443/v1")


def test_batch_size_above_one_is_refused():
    with FakeOpenAIServer() as fake:
        b = _backend(fake)
        with pytest.raises(ServerError, match="--concurrency"):
            b.prepare(_key(batch_size=2))


# ---- the API key ----------------------------------------------------------------------------


def test_the_api_key_never_appears_in_results_logs_or_errors(monkeypatch, caplog):
    monkeypatch.setenv("GPTOSS_TEST_KEY", SENTINEL)
    caplog.set_level(logging.DEBUG)

    def handler(req):
        auth = req["headers"].get("Authorization", "")
        if req["body"].get("max_tokens") == 3:  # the measured request: echo the key back in an error
            return Reply(status=401, content_type="application/json",
                         body=json.dumps({"error": {"message": f"invalid key: {auth}"}}).encode())
        if "min_tokens" in req["body"]:
            return Reply(status=422, content_type="application/json",
                         body=json.dumps({"detail": f"min_tokens not allowed for {auth}"}).encode())
        return Reply(body=simple_stream(req["body"]["max_tokens"]))

    with FakeOpenAIServer(handler) as fake:
        b = _backend(fake, api_key_env="GPTOSS_TEST_KEY")
        record = b.load("server", "server")
        key = _key(output_len=2)
        case = b.prepare(key)
        case.once()
        extras = SimpleNamespace(info=case.info())
        with pytest.raises(ServerError) as err:
            b.prepare(_key(output_len=3)).once()
        case = _run_one(b, _key(output_len=3), BenchConfig(reps=1, warmup=0))
        sent = [r["headers"].get("Authorization") for r in fake.requests]
    assert sent and all(h == f"Bearer {SENTINEL}" for h in sent)
    assert "***" in str(err.value) and SENTINEL not in str(err.value)
    assert case.status == "error" and SENTINEL not in json.dumps(case.to_dict())
    dumped = json.dumps({"backend": b.describe(), "model": b.model_info().to_dict(), "load": record.to_dict(),
                         "info": extras.info, "config": asdict(b.options)})
    assert SENTINEL not in dumped and SENTINEL not in repr(b) and SENTINEL not in caplog.text
    assert b.describe()["auth"] is True


# ---- pure helpers ---------------------------------------------------------------------------


def test_reconcile():
    assert reconcile([1, 1, 1], 7) == [1, 3, 3]
    assert reconcile([1], 4) == [4]
    assert reconcile([3, 1, 2], 4) == [1, 1, 2]
    assert reconcile([1, 1], 1) is None and reconcile([], 3) is None
    assert sum(reconcile([2, 5, 1, 1], 20)) == 20


def test_solve_finds_the_exact_length_and_stays_bounded():
    calls = []

    def measure(n):
        calls.append(n)
        return 30 + (3 * n) // 2

    n, p = _solve(measure, 120, start=1, budget=8)
    assert p == 120 and len(calls) <= 8
    n, p = _solve(lambda n: 50 + n, 10, start=1, budget=8)  # the template alone is too long
    assert (n, p) == (1, 51)
    n, p = _solve(lambda n: 10 + 2 * n, 15, start=1, budget=8)  # odd target unreachable: closest below
    assert p == 14
    assert _solve(lambda n: None, 10, start=3, budget=8) == (3, None)
