"""A checkpoint that ships its own Python code (an auto_map in config.json or
tokenizer_config.json) is refused: its code never runs, and nothing is asked on stdin, even when
a user would answer "y"."""

from __future__ import annotations

import builtins
import json
import shutil

import pytest
from click.testing import CliRunner

from bench.backends.transformers import loading
from bench.cli import main
from bench.models import sources
from bench.models import synthetic as syn
from bench.results.errors import UserError

EVIL_CODE = '''
from pathlib import Path
Path({marker!r}).write_text("the checkpoint's own code ran")
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast

class EvilConfig(PretrainedConfig):
    model_type = "evil_oss"

class EvilModel(PreTrainedModel):
    config_class = EvilConfig

class EvilTokenizer(PreTrainedTokenizerFast):
    pass
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return syn.ensure("tiny", cache_dir=tmp_path_factory.mktemp("cache"), progress=False).path


def _with_code(tiny, tmp_path, where: str):
    """A copy of the tiny checkpoint whose ``where`` (model or tokenizer) needs its own code."""
    folder = tmp_path / f"custom-{where}"
    shutil.copytree(tiny, folder)
    (folder / syn.MANIFEST).unlink()  # a plain local checkpoint, not one of our synthetic folders
    marker = tmp_path / "ran.txt"
    (folder / "evil.py").write_text(EVIL_CODE.format(marker=str(marker)))
    if where == "model":
        cfg = json.loads((folder / "config.json").read_text())
        cfg["model_type"] = "evil_oss"
        cfg["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
        (folder / "config.json").write_text(json.dumps(cfg))
    else:
        tc = json.loads((folder / "tokenizer_config.json").read_text())
        tc["tokenizer_class"] = "EvilTokenizer"
        tc["auto_map"] = {"AutoTokenizer": [None, "evil.EvilTokenizer"]}
        (folder / "tokenizer_config.json").write_text(json.dumps(tc))
    return folder, marker


@pytest.fixture
def no_prompt(monkeypatch):
    asked = []

    def fake_input(prompt=""):
        asked.append(prompt)
        return "y"  # what a user who trusts the prompt would answer

    monkeypatch.setattr(builtins, "input", fake_input)
    return asked


@pytest.mark.parametrize("where", ["model", "tokenizer"])
def test_load_model_refuses_a_checkpoints_own_code(tiny, tmp_path, no_prompt, where):
    folder, marker = _with_code(tiny, tmp_path, where)
    resolved = sources.resolve(str(folder), progress=False)
    with pytest.raises(UserError, match="never runs a checkpoint's code"):
        loading.load_model(resolved, device="cpu")
    assert no_prompt == []
    assert not marker.exists()


def test_bench_refuses_it_even_when_stdin_says_yes(tiny, tmp_path, monkeypatch):
    from bench.sweep import session

    monkeypatch.setattr(session, "_environment", lambda ref: {"error": "not taken in this test"})
    folder, marker = _with_code(tiny, tmp_path, "model")
    r = CliRunner().invoke(main, ["bench", "--model", str(folder), "--device", "cpu", "--efforts", "low", "--lengths", "4",
                                  "--reps", "1", "--warmup", "0", "--out", str(tmp_path / "out"), "-q"], input="y\ny\ny\n")
    assert r.exit_code == 2, r.output
    assert "never runs a checkpoint's code" in r.stderr and "Traceback" not in r.output
    assert "Do you wish to run the custom code" not in r.output
    assert not marker.exists()


def test_an_error_that_mentions_remote_code_is_not_taken_for_a_checkpoints_code(tiny, monkeypatch):
    """Whether a checkpoint needs its own code is read from its files: an MXFP4 kernel failure
    whose text mentions trust_remote_code still falls back to bf16 (auto) with its reason."""
    resolved = sources.resolve(str(tiny), progress=False)
    real = loading._from_pretrained
    calls = []

    def kernel_path_fails_once(path, kwargs):
        calls.append(kwargs.get("quantization_config"))
        if len(calls) == 1:
            raise ValueError("the hub kernel could not be loaded; pass trust_remote_code=True to run custom code")
        return real(path, kwargs)

    monkeypatch.setattr(loading, "_from_pretrained", kernel_path_fails_once)
    loaded = loading.load_model(resolved, device="cpu", quant="auto")
    assert loaded.record.weights_path == "bf16" and "trust_remote_code=True" in loaded.record.fallback_reason
    assert not loading.needs_own_code(tiny)
