"""Reasoning effort: the chat template rendered for low/medium/high, from a tiny tokenizer written
here (tokenizer_config.json or chat_template.jinja), the hub cache, or --online (injected)."""

import json

import pytest

from bench.models.harmony import CHAT_TEMPLATE
from diagnostics import checks as C
from diagnostics.ecosystem_probes import probe_tokenizer
from diagnostics import reasoning as R
from diagnostics.facts import TokenizerFacts
from diagnostics.models import spec_for
from diagnostics.sources import Sources
from diagnostics.testing import make_facts

GOOD = ("{%- set effort = reasoning_effort if reasoning_effort is defined and reasoning_effort else 'medium' -%}"
        "<|start|>system<|message|>You are ChatGPT.\nReasoning: {{ effort }}\n<|end|>"
        "{% for m in messages %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|start|>assistant{% endif %}")
DROPS = GOOD.replace("{{ effort }}", "medium")  # a template that hard-codes the effort
NO_LINE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}"
BROKEN = "{{ raise_exception('no system role') }}"


def write_tokenizer(folder, template, as_jinja=False):
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|return|>"}
    if as_jinja:
        (folder / "chat_template.jinja").write_text(template)
    else:
        cfg["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    return folder


def ctx(model="openai/gpt-oss-20b"):
    return C.Context(model=model, spec=spec_for(model))


def test_template_that_honours_the_effort():
    ok, lines = R.check_template(GOOD)
    assert ok == {"low": True, "medium": True, "high": True} and lines["high"] == "Reasoning: high"


def test_the_projects_own_synthetic_template_honours_it():
    ok, _ = R.check_template(CHAT_TEMPLATE)
    assert all(ok.values())


def test_template_that_drops_the_effort():
    ok, lines = R.check_template(DROPS)
    assert ok == {"low": False, "medium": True, "high": False} and lines["low"] == "Reasoning: medium"
    ok, lines = R.check_template(NO_LINE)
    assert not any(ok.values()) and lines["low"] is None


def test_read_template_from_either_file_and_named_templates(tmp_path):
    assert R.read_template(write_tokenizer(tmp_path / "a", GOOD))[0] == GOOD
    tpl, path = R.read_template(write_tokenizer(tmp_path / "b", GOOD, as_jinja=True))
    assert tpl == GOOD and path.endswith("chat_template.jinja")
    c = tmp_path / "c"
    c.mkdir()
    (c / "tokenizer_config.json").write_text(json.dumps({"chat_template": [{"name": "tool_use", "template": "x"},
                                                                         {"name": "default", "template": GOOD}]}))
    assert R.read_template(c)[0] == GOOD
    assert R.read_template(tmp_path / "missing") == (None, None)


def src(tmp_path, **kw):
    def no_network(*a, **k):
        raise OSError("no network in tests")
    defaults = dict(environ={"HF_HUB_CACHE": str(tmp_path / "hub")}, home=str(tmp_path), hub_download=no_network)
    defaults.update(kw)
    return Sources(**defaults)


def test_probe_renders_a_local_checkpoint_folder(tmp_path):
    folder = write_tokenizer(tmp_path / "ckpt", GOOD)
    t = probe_tokenizer(src(tmp_path), str(folder), False)
    assert t.source == "local" and all(t.efforts.values())
    c = C.check_reasoning(make_facts_with(t), ctx(str(folder)))
    assert c.status == "pass" and "the model folder" in c.message


def make_facts_with(tokenizer):
    f = make_facts("T4")
    f.tokenizer = tokenizer
    return f


def test_probe_reads_the_hub_cache_offline(tmp_path):
    snap = tmp_path / "hub" / "models--openai--gpt-oss-20b" / "snapshots" / "abc"
    write_tokenizer(snap, DROPS, as_jinja=True)
    t = probe_tokenizer(src(tmp_path), "openai/gpt-oss-20b", False)
    assert t.source == "cache" and t.efforts == {"low": False, "medium": True, "high": False}
    c = C.check_reasoning(make_facts_with(t), ctx())
    assert c.status == "fail" and "ignores reasoning_effort for low, high" in c.message
    assert "low: Reasoning: medium" in c.message and "chat template" in c.fix


def test_probe_online_fetches_only_template_files(tmp_path):
    asked = []

    def download(repo, name, timeout):
        asked.append(name)
        if name == "chat_template.jinja":
            raise OSError("404 Not Found")
        return str(write_tokenizer(tmp_path / "dl", GOOD) / name)

    t = probe_tokenizer(src(tmp_path, hub_download=download), "openai/gpt-oss-20b", True)
    assert asked == ["chat_template.jinja", "tokenizer_config.json"] and t.source == "hub" and all(t.efforts.values())
    offline = probe_tokenizer(src(tmp_path, hub_download=download), "openai/gpt-oss-20b", False)
    assert offline.source is None and len(asked) == 2


def test_probe_online_unreachable_and_broken_template(tmp_path):
    t = probe_tokenizer(src(tmp_path), "openai/gpt-oss-20b", True)
    assert t.source is None and "no chat template" in t.error and "no network" in t.error
    assert C.check_reasoning(make_facts_with(t), ctx()).status == "warn"
    broken = probe_tokenizer(src(tmp_path), str(write_tokenizer(tmp_path / "x", BROKEN)), False)
    assert broken.source == "local" and "does not render" in broken.error and "no system role" in broken.error
    assert C.check_reasoning(make_facts_with(broken), ctx()).status == "fail"


def test_reasoning_skips_without_a_template():
    assert C.check_reasoning(make_facts_with(TokenizerFacts()), ctx()).status == "skip"
    synth = C.check_reasoning(make_facts_with(TokenizerFacts()), ctx("synthetic:tiny"))
    assert synth.status == "skip" and "gptoss synthesize" in synth.message


@pytest.mark.parametrize("model", ["synthetic:tiny", "openai/gpt-oss-20b"])
def test_probe_never_raises_and_never_asks_offline(tmp_path, model):
    t = probe_tokenizer(src(tmp_path), model, False)
    assert t.source is None and t.error is None
