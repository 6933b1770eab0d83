"""The parsed --model (diagnostics.modelref): one parse for check and bench, carried down."""

import json

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.results import ModelInfo
from bench.sweep.session import _apply_spec
from diagnostics.errors import UserError
from diagnostics.modelref import HUB, LOCAL, SERVED, SYNTHETIC, ModelRef
from diagnostics.testing import make_facts

CONFIG_20B = {"model_type": "gpt_oss", "num_hidden_layers": 24, "num_local_experts": 32, "hidden_size": 2880}


def test_kinds_names_and_shapes(tmp_path):
    hub = ModelRef.parse(" openai/gpt-oss-120b ")
    assert (hub.kind, hub.name, hub.text, hub.spec.name) == (HUB, "openai/gpt-oss-120b", "openai/gpt-oss-120b", "gpt-oss-120b")
    tiny = ModelRef.parse("synthetic:tiny")
    assert (tiny.kind, tiny.name, tiny.spec) == (SYNTHETIC, "tiny", None)
    assert ModelRef.parse("synthetic:gpt-oss-20b").spec.name == "gpt-oss-20b"
    assert ModelRef.parse("org/other").spec is None
    local = ModelRef.parse(str(tmp_path))
    assert local.kind == LOCAL and local.spec is None and local.folder == tmp_path
    served = ModelRef.served("my-served-model")
    assert served.kind == SERVED and served.folder is None and served.spec is None


@pytest.mark.parametrize("text, needle", [
    ("", "empty"), ("synthetic:bogus", "unknown synthetic model"), ("gpt-oss-20b", "synthetic:gpt-oss-20b"),
    ("./no/such/folder", "does not exist"), ("nonsense", "neither a hub id"), ("a--b/c", "neither a hub id"),
])
def test_refusals_are_one_sentence(text, needle):
    with pytest.raises(UserError, match=needle) as e:
        ModelRef.parse(text)
    assert "\n" not in str(e.value)


def test_a_local_copy_of_a_gpt_oss_checkpoint_gets_its_roofline(tmp_path):
    """A local folder is recognised by its config.json, so it gets bytes per token like a hub id."""
    (tmp_path / "config.json").write_text(json.dumps(CONFIG_20B))
    ref = ModelRef.parse(str(tmp_path))
    assert ref.kind == LOCAL and ref.spec.name == "gpt-oss-20b"
    model = ModelInfo(id=ref.text, source="local")
    _apply_spec(model, ref)
    assert model.bytes_per_token["mxfp4"] == pytest.approx(3.71e9, rel=0.01)
    assert model.active_parameters == pytest.approx(3.61e9, rel=0.01)
    assert ModelRef.served(str(tmp_path)).spec.name == "gpt-oss-20b"  # `transformers serve DIR` too


def test_check_refuses_what_bench_refuses():
    for args in (["check", "--model", "synthetic:bogus"], ["bench", "--model", "synthetic:bogus", "--out", "unused"]):
        r = CliRunner().invoke(main, args, obj={"check_injected": {"facts": make_facts("H100")}})
        assert r.exit_code == 2 and r.stderr.startswith("error: unknown synthetic model 'synthetic:bogus'"), r.output
