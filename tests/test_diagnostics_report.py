"""CheckReport: JSON schema, exit codes, renderers, and secrets redacted in every output."""

import json

import jsonschema
import pytest

import diagnostics
from diagnostics.facts import GpuProcess, StaleModule
from diagnostics.redact import REDACTED, is_secret_name, redact_text, redact_tree
from diagnostics.errors import UserError
from diagnostics.modelref import ModelRef, canonical_model
from diagnostics.report import SCHEMA_ID, json_schema, snapshot
from diagnostics.testing import make_facts

TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def validate(doc):
    jsonschema.Draft202012Validator(json_schema()).validate(doc)


def test_schema_is_valid_and_documented():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == SCHEMA_ID
    assert schema["description"] and schema["properties"]["verdict"]["description"]


@pytest.mark.parametrize("gpu", ["T4", "A100", "H100", None])
def test_reports_of_canned_machines_fit_the_schema_and_survive_a_round_trip(gpu):
    report = snapshot(facts=make_facts(gpu, nvml_error=None if gpu else "NVMLError_LibraryNotFound: x"))
    doc = json.loads(report.to_json())
    validate(doc)
    assert doc["schema"] == "gptoss-harness/check/1" and doc["model"] == "openai/gpt-oss-20b"
    assert doc["verdict"]["path"] in ("mxfp4", "bf16", "none", "unknown")
    facts = doc["facts"]
    for name in ("torch", "triton", "transformers", "accelerate", "kernels", "torchvision", "torchaudio",
                 "nvidia-ml-py", "huggingface-hub"):
        assert set(facts["packages"][name]) >= {"installed", "version"}
    assert facts["platform"]["python"] and facts["platform"]["system"]
    if gpu:
        g = facts["gpus"][0]
        assert g["compute_capability"] in ("7.5", "8.0", "9.0") and g["memory_total_bytes"] > g["memory_free_bytes"] > 0
        assert facts["driver"]["cuda_version"] == "12.4" and facts["torch"]["cuda_build"] == "12.4"
        assert g["spec"]["memory_bandwidth_bytes_s"] > 0
    assert doc["memory_estimate"]["needed_bytes"] > 0


def test_schema_rejects_a_bad_status():
    doc = json.loads(snapshot(facts=make_facts("T4")).to_json())
    doc["checks"][0]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_summarize_environment_of_the_bench_reads_this_report():
    results = pytest.importorskip("bench.results")
    summary = results.summarize_environment(snapshot(facts=make_facts("H100")).to_dict())
    assert summary["gpu"] == "NVIDIA H100 80GB HBM3" and summary["cuda"] == "12.4" and summary["driver"] == "550.54.15"
    assert summary["torch"] == "2.8.0+cu124" and summary["python"] == "3.11.7" and summary["platform"] == "Linux"


def test_exit_codes():
    ok = snapshot(facts=make_facts("H100"))
    assert ok.exit_code() == 0 and ok.exit_code(strict=True) == 0
    warn = snapshot(facts=make_facts("H100", kernels="0.17.2", path="bf16"))
    assert warn.verdict.status == "warn" and warn.exit_code() == 0 and warn.exit_code(strict=True) == 1
    fail = snapshot(facts=make_facts(None))
    assert fail.exit_code() == 1 and fail.exit_code(strict=True) == 1


def _secret_facts():
    f = make_facts("T4", env={"HF_TOKEN": TOKEN, "MY_SECRET_THING": "p4ss", "HF_HOME": "/data/hf"},
                   local_kernels=f"org/k=/k?token={TOKEN}", local_ok=True)
    # a secret that slipped into a message elsewhere (a warning text, an error) is caught too
    f.mxfp4.warnings = [f"login with HF_TOKEN={TOKEN}"]
    f.gpus[0].processes = [GpuProcess(pid=9, used_bytes=1, name=f"python --token {TOKEN}")]
    return f


def test_secrets_are_redacted_in_json_text_and_html():
    report = snapshot(facts=_secret_facts())
    outputs = {"json": report.to_json(), "text": report.render_text(), "str": str(report), "repr": repr(report),
               "html": report._repr_html_()}
    for kind, out in outputs.items():
        assert TOKEN not in out, kind
        assert "p4ss" not in out, kind
    assert REDACTED in outputs["json"] and "&lt;redacted&gt;" in outputs["html"]
    assert "HF_HOME=/data/hf" in outputs["text"]  # the harmless ones stay


def test_redaction_rules():
    assert is_secret_name("HF_TOKEN") and is_secret_name("aws_secret_access_key") and is_secret_name("DB_PASSWORD")
    assert is_secret_name("GITHUB_AUTH") and is_secret_name("GOOGLE_APPLICATION_CREDENTIALS")
    assert not is_secret_name("HF_HOME") and not is_secret_name("CUDA_VISIBLE_DEVICES")
    assert redact_text(f"x {TOKEN} y") == f"x {REDACTED} y"
    assert redact_text("https://bob:pw@host/x") == f"https://{REDACTED}@host/x"
    assert redact_text("API_KEY=abc123 rest") == f"API_KEY={REDACTED} rest"
    assert redact_text("Passed: 3 checks") == "Passed: 3 checks"
    assert redact_text("") == ""
    assert redact_tree({"a": [TOKEN, 1, None], "b": {"c": TOKEN}}) == {"a": [REDACTED, 1, None], "b": {"c": REDACTED}}


def test_text_table_shows_status_title_message_fix_and_verdict():
    text = snapshot(facts=make_facts("T4", kernels="0.17.2", path="bf16")).render_text()
    assert text.startswith("gptoss check · openai/gpt-oss-20b")
    assert "  WARN  kernels version" in text and 'fix: pip install "transformers==5.22.2"' in text
    assert "  FAIL  Memory fit (gpt-oss-20b)" in text
    assert "Verdict" in text and "FAIL · path: bf16" in text
    assert "\033[" not in text
    colored = snapshot(facts=make_facts("T4")).render_text(color=True)
    assert "\033[32mPASS\033[0m" in colored
    for line in snapshot(facts=make_facts("T4")).render_text(width=80).splitlines():
        assert len(line) <= 80 or "/" in line  # long unbreakable paths may overflow


def test_html_escapes_and_colours():
    f = make_facts("T4")
    f.stale_modules = [StaleModule("transformers", "transformers", "<script>alert(1)</script>", "5.23.0")]
    html = snapshot(facts=f).render_html()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "#cf222e" in html  # fail colour
    assert "<code" in html and "Restart the Python process" in html
    assert "<details" in html and "all facts (JSON)" in html


def test_snapshot_with_injected_side_effects(tmp_path):
    from diagnostics.sources import RunResult, Sources
    from diagnostics.testing import FakeNvml

    def runner(argv, env, timeout):
        return RunResult(1, "", "boom")

    report = snapshot("gpt-oss-120b", nvml=FakeNvml(missing_library=True), run=runner, environ={}, modules={},
                      home=str(tmp_path), dist_version=lambda n: None)
    assert report.model == "openai/gpt-oss-120b" and report.spec.name == "gpt-oss-120b"
    assert report.verdict.path == "none" and report.exit_code() == 1
    src = Sources(nvml=FakeNvml(missing_library=True), run=runner, environ={}, modules={}, home=str(tmp_path))
    assert snapshot(sources=src, dist_version=lambda n: None).facts.packages["torch"].installed is False
    with pytest.raises(TypeError):
        snapshot(facts=make_facts("T4"), environ={})


def test_model_validation_and_canonical_names(tmp_path):
    def problem(model):
        try:
            ModelRef.parse(canonical_model(model or ""))
        except UserError as e:
            return str(e)
        return None

    assert problem("openai/gpt-oss-20b") is None and problem("gpt-oss-120b") is None
    assert problem("synthetic:tiny") is None and problem(str(tmp_path)) is None
    assert problem("org/other-model") is None
    assert "empty" in problem("") and "empty" in problem(None)
    assert "neither a hub id" in problem("foo")
    assert "unknown synthetic model" in problem("synthetic:bogus")
    with pytest.raises(ValueError):
        snapshot("  ", facts=make_facts("T4"))
    served = snapshot("my-served-model", facts=make_facts("T4"))  # the bench passes served names too
    assert served.model == "my-served-model" and served.check("memory").status == "skip"
    assert canonical_model("gpt-oss-20b") == "openai/gpt-oss-20b"
    assert canonical_model("synthetic:gpt-oss-20b") == "synthetic:gpt-oss-20b"
    assert canonical_model("org/x") == "org/x"


def test_local_checkpoint_folder_is_recognised(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "gpt_oss", "num_hidden_layers": 24, "num_local_experts": 32, "hidden_size": 2880}))
    report = snapshot(str(tmp_path), facts=make_facts("H100"))
    assert report.spec.name == "gpt-oss-20b" and report.check("memory").status == "pass"
    (tmp_path / "config.json").write_text("{broken")
    assert snapshot(str(tmp_path), facts=make_facts("H100")).spec is None


def test_public_api_for_notebooks():
    report = diagnostics.check(facts=make_facts("A100"))
    assert isinstance(report, diagnostics.CheckReport)
    assert report._repr_html_().startswith("<div") and "gptoss check" in repr(report)
    assert report.check("nonexistent") is None
    assert [c.id for c in report.failed] == [] and isinstance(report.warnings, list)


def test_importing_diagnostics_does_not_import_torch_or_transformers():
    import subprocess
    import sys

    code = ("import sys, diagnostics, diagnostics.probes, diagnostics.render, diagnostics.testing;"
            "print(sorted(m for m in ('torch', 'transformers', 'pynvml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
