"""`gptoss check` through click's CliRunner: injected facts (the seam: ctx.obj["check_injected"]),
exit codes incl. --strict, and ONE end-to-end run of the real command on this machine."""

import json

import jsonschema
import pytest
from click.testing import CliRunner

from bench.cli import main
from diagnostics.render import render_text
from diagnostics.report import json_schema
from diagnostics.sources import RunResult
from diagnostics.testing import FakeNvml, make_facts


def invoke(args, **injected):
    return CliRunner().invoke(main, ["check", *args], obj={"check_injected": injected})


def test_h100_passes_with_exit_0_and_a_table():
    r = invoke([], facts=make_facts("H100"))
    assert r.exit_code == 0, r.output
    assert "PASS  GPU" in r.stdout and "Verdict" in r.stdout and "path: mxfp4" in r.stdout
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_warning_exits_0_and_1_with_strict():
    assert invoke([], facts=make_facts("T4")).exit_code == 0
    strict = invoke(["--strict"], facts=make_facts("T4"))
    assert strict.exit_code == 1 and "WARN" in strict.stdout


def test_no_gpu_exits_1_without_traceback():
    r = invoke([], facts=make_facts(None, nvml_error="NVMLError_LibraryNotFound: NVML Shared Library Not Found"))
    assert r.exit_code == 1
    assert "No NVIDIA GPU found" in r.stdout and "Traceback" not in r.output
    assert not (r.exception and not isinstance(r.exception, SystemExit))


def test_json_output_validates_and_is_pure_stdout():
    r = invoke(["--json"], facts=make_facts("A100"))
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    jsonschema.Draft202012Validator(json_schema()).validate(doc)
    assert doc["verdict"]["status"] == "pass" and doc["facts"]["gpus"][0]["name"] == "NVIDIA A100-SXM4-40GB"


def test_120b_fails_on_a_t4_and_passes_on_an_h100():
    t4 = invoke(["--model", "openai/gpt-oss-120b", "--json"], facts=make_facts("T4"))
    doc = json.loads(t4.stdout)
    assert t4.exit_code == 1 and doc["model"] == "openai/gpt-oss-120b"
    assert next(c for c in doc["checks"] if c["id"] == "memory")["status"] == "fail"
    h100 = invoke(["-m", "openai/gpt-oss-120b"], facts=make_facts("H100"))
    assert h100.exit_code == 0 and "Memory fit (gpt-oss-120b)" in h100.stdout


def test_bad_model_is_a_user_error():
    r = invoke(["--model", "nonsense"], facts=make_facts("H100"))
    assert r.exit_code == 2 and r.stderr.startswith("error: 'nonsense' is neither") and r.stdout == ""


def test_progress_goes_to_stderr_and_quiet_silences_it(tmp_path):
    def runner(argv, env, timeout):
        return RunResult(1, "", "no python here")

    side_effects = dict(nvml=FakeNvml(missing_library=True), run=runner, environ={}, modules={}, home=str(tmp_path))
    r = invoke(["--json"], **side_effects)
    assert r.exit_code == 1 and "gptoss check: reading the GPU through NVML" in r.stderr
    json.loads(r.stdout)  # stdout holds only the JSON
    q = invoke(["--json", "-q"], **side_effects)
    assert q.stderr == ""


def test_help_has_an_example():
    r = CliRunner().invoke(main, ["check", "--help"])
    assert r.exit_code == 0 and "Example:" in r.stdout and "gptoss check --model openai/gpt-oss-120b" in r.stdout


@pytest.mark.slow
def test_end_to_end_real_command_on_this_machine():
    """The real probes, the real subprocess asking the installed transformers; one run."""
    r = CliRunner().invoke(main, ["check", "--json"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    doc = json.loads(r.stdout)
    jsonschema.Draft202012Validator(json_schema()).validate(doc)
    statuses = {c["status"] for c in doc["checks"]}
    assert r.exit_code == (1 if "fail" in statuses else 0)
    assert doc["facts"]["packages"]["transformers"]["installed"] is True
    assert doc["facts"]["mxfp4"]["transformers_version"] == doc["facts"]["packages"]["transformers"]["version"]
    assert doc["facts"]["mxfp4"]["path"] in ("mxfp4", "bf16", "none")  # transformers answered
    text = render_text(doc)
    if not doc["facts"]["gpus"] and not doc["facts"]["torch"]["cuda_available"]:
        # this machine: no GPU -> says so plainly, path none, exit 1
        gpu = next(c for c in doc["checks"] if c["id"] == "gpu")
        assert gpu["status"] == "fail" and "No NVIDIA GPU found" in gpu["message"]
        assert doc["verdict"]["path"] == "none" and r.exit_code == 1
        assert "No NVIDIA GPU found" in text and "FAIL · path: none" in text
