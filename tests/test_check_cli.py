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


# ---- --plan, --target, --gpu/--driver, --attn ------------------------------------------------


def seed(**kw):
    base = dict(nvml_error="NVMLError_LibraryNotFound: NVML Shared Library Not Found", torch="2.14.1", cuda_build="13.0",
                triton="3.4.0", triton_pin="~=3.8.0", transformers="5.24.0", kernels="0.17.2", path="bf16")
    base.update(kw)
    return make_facts(None, **base)


@pytest.mark.parametrize("args,words", [
    (["--target", "colab-v100"], "error: --target 'colab-v100' is not known; pass one of colab-t4, colab-l4"),
    (["--target", "colab-t4", "--driver", "12.4"], "error: --driver '12.4' is not an NVIDIA driver version"),
    (["--gpu", "T4", "--driver", "390.12"], "error: --driver 390.12 predates CUDA 11"),
    (["--gpu", "Voodoo 5", "--driver", "550.54.15"], "error: --gpu 'Voodoo 5' is not in the GPU table"),
    (["--attn", "fastest"], "error: --attn 'fastest' is not an attention implementation"),
])
def test_bad_what_if_input_is_one_sentence_and_exit_2(args, words):
    r = invoke(args, facts=make_facts("T4"))
    assert r.exit_code == 2 and r.stderr.startswith(words) and r.stdout == "" and "Traceback" not in r.output
    assert r.stderr.count("\n") == 1


def test_plan_prints_commands_and_exits_by_reachability():
    r = invoke(["--plan", "--target", "colab-t4"], facts=seed(torch="2.15.0", cuda_build="13.2", triton_pin="~=3.9.0"))
    assert r.exit_code == 0, r.output
    lines = [l for l in r.stdout.splitlines() if l and not l.startswith("#")]
    assert lines == ['pip install "torch==2.11.0" --index-url https://download.pytorch.org/whl/cu128',
                     'pip install "transformers==5.22.2" "kernels==0.17.2"', "pip check", "Runtime > Restart session",
                     "gptoss check --target colab-t4"]
    here = invoke(["--plan"], facts=seed())
    assert here.exit_code == 1 and 'pip install "triton==3.8.0"' in here.stdout and "# BLOCKED: No NVIDIA GPU" in here.stdout


def test_target_json_validates_and_says_what_if():
    r = invoke(["--target", "h200", "--json", "--attn", "kernels-community/vllm-flash-attn3"],
               facts=seed(torch="2.14.1", transformers="5.22.2", triton="3.8.0", window=("0.17.2", "0.18.0")))
    doc = json.loads(r.stdout)
    jsonschema.Draft202012Validator(json_schema()).validate(doc)
    assert doc["target"]["name"] == "h200" and doc["target"]["driver_cuda"] == "13.0"
    assert doc["facts"]["gpus"][0]["name"] == "NVIDIA H200" and doc["facts"]["mxfp4"]["stage"] == "what-if"
    assert doc["verdict"]["path"] == "mxfp4" and doc["attn_implementation"] == "kernels-community/vllm-flash-attn3"
    assert next(c for c in doc["checks"] if c["id"] == "attention")["status"] == "pass"
    assert doc["plan"]["reaches_mxfp4"] is True and r.exit_code == 0


def test_target_text_on_a_t4_with_the_seed_packages():
    r = invoke(["--target", "colab-t4"], facts=seed())
    assert r.exit_code == 1 and r.stdout.splitlines()[1].startswith("WHAT-IF Colab T4 runtime: this environment's")
    assert "FAIL  Driver vs torch's CUDA" in r.stdout and "What-if, Colab T4 runtime" in r.stdout


def test_gpu_and_driver_what_if():
    r = invoke(["--gpu", "L4", "--driver", "535.104.05", "--json"],
               facts=seed(torch="2.10.0+cu126", cuda_build="12.6", triton="3.6.0", triton_pin="==3.6.0",
                          transformers="5.22.2", window=("0.17.2", "0.18.0")))
    doc = json.loads(r.stdout)
    assert doc["target"]["name"] is None and doc["target"]["compute_capability"] == "8.9"
    assert doc["facts"]["driver"]["cuda_version"] == "12.2" and doc["verdict"]["path"] == "mxfp4"
    assert doc["plan"]["steps"][-1]["command"] == 'gptoss check --gpu "L4" --driver 535.104.05'
