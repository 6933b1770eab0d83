"""--target/--gpu/--driver what-ifs and --plan, on injected facts: the Colab default runtime, the
seed's broken recipe on Colab, this CPU machine, old drivers, missing kernel builds."""

import pytest

from diagnostics import targets as T
from diagnostics.checks import Context
from diagnostics.errors import UserError
from diagnostics.plan import make_plan, render_plan
from diagnostics.report import snapshot
from diagnostics.testing import make_facts

NO_LIB = "NVMLError_LibraryNotFound: NVML Shared Library Not Found"
CU128 = "https://download.pytorch.org/whl/cu128"


def seed_facts(**kw):
    """This machine after the seed's recipe: latest torch (CUDA 13 build), triton==3.4, latest
    transformers and kernels; no GPU."""
    base = dict(nvml_error=NO_LIB, torch="2.14.1", cuda_build="13.0", triton="3.4.0", triton_pin="~=3.8.0",
                transformers="5.24.0", kernels="0.17.2", window=("0.18.2", "0.19.0"), path="bf16")
    base.update(kw)
    return make_facts(None, **base)


def colab_default(**kw):
    """Colab's default GPU runtime (backend-info, August 2026), seen from inside it."""
    base = dict(driver="550.54.15", driver_cuda="12.4", torch="2.11.0+cu128", cuda_build="12.8", triton="3.6.0",
                triton_pin="==3.6.0", transformers="5.15.0", kernels=None, window=("0.16.0", "0.17.0"), path="bf16",
                colab=True)
    base.update(kw)
    return make_facts("T4", **base)


# ---- targets -------------------------------------------------------------------------------


@pytest.mark.parametrize("driver,cuda", [("550.54.15", "12.4"), ("550.54.14", "12.4"), ("550.40.07", "12.3"),
                                         ("470.82.01", "11.4"), ("580.159.04", "13.0"), ("535.104.05", "12.2"),
                                         ("570.26", "12.8"), ("999.1.2", "13.1")])
def test_driver_to_cuda(driver, cuda):
    assert T.driver_cuda(driver) == cuda


@pytest.mark.parametrize("bad,words", [("12.4", "not an NVIDIA driver version"), ("latest", "not an NVIDIA driver"),
                                       ("", "not an NVIDIA driver"), ("390.12", "predates CUDA 11")])
def test_bad_driver_is_one_sentence(bad, words):
    with pytest.raises(UserError, match=words):
        T.driver_cuda(bad)


def test_resolve_targets_and_errors():
    t4 = T.resolve_target("colab-t4")
    assert (t4.gpu, t4.compute_capability, t4.driver, t4.driver_cuda, t4.colab) == ("Tesla T4", "7.5", "550.54.15", "12.4", True)
    h200 = T.resolve_target("H200")
    assert h200.driver_cuda == "13.0" and h200.compute_capability == "9.0" and not h200.colab
    custom = T.resolve_target(gpu="A10G", driver="535.104.05")
    assert custom.name is None and custom.compute_capability == "8.6" and custom.memory_total_bytes == 24 * 10**9
    assert any("nominal memory" in n for n in custom.notes)
    same_as_target = T.resolve_target(gpu="T4", driver="535.104.05")
    assert same_as_target.memory_total_bytes == T.TARGETS["colab-t4"].memory_total_bytes
    over = T.resolve_target("colab-t4", driver="570.26")
    assert over.driver_cuda == "12.8" and over.gpu == "Tesla T4"
    assert T.resolve_target() is None
    with pytest.raises(UserError, match="--target 'colab-v100' is not known"):
        T.resolve_target("colab-v100")
    with pytest.raises(UserError, match="--gpu 'Radeon 7900' is not in the GPU table"):
        T.resolve_target(gpu="Radeon 7900", driver="550.54.15")


def test_what_if_keeps_packages_and_substitutes_the_gpu():
    f = seed_facts(torch="2.11.0+cu128", cuda_build="12.8", triton="3.6.0", triton_pin="==3.6.0",
                   transformers="5.22.2", kernels="0.17.2", window=("0.17.2", "0.18.0"))
    r = snapshot(facts=f, target=T.resolve_target("colab-t4"))
    assert r.facts.packages["transformers"].version == "5.22.2"  # kept
    g = r.facts.gpus[0]
    assert g.name == "Tesla T4" and g.compute_capability == "7.5" and r.facts.driver.cuda_version == "12.4"
    assert r.facts.torch.cuda_available and r.facts.mxfp4.path == "mxfp4" and r.facts.mxfp4.stage == "what-if"
    assert r.verdict.path == "mxfp4" and r.verdict.reason.startswith("What-if, Colab T4 runtime:")
    assert r.check("torch.driver").status == "warn"  # CUDA 12.8 build on a 12.4 driver: minor-version compatibility
    assert r.check("memory").status in ("pass", "warn") and r.to_dict()["target"]["name"] == "colab-t4"
    text = r.render_text()
    assert "WHAT-IF Colab T4 runtime" in text and "predicted, not asked" in text
    assert "WHAT-IF" in r.render_html()
    assert f.gpus == [] and f.target is None  # the probed facts are untouched
    assert not r.facts.platform.colab and "not Colab" in r.check("platform").message  # this machine stays itself


def test_what_if_cuda13_torch_on_the_colab_driver_cannot_use_the_gpu():
    r = snapshot(facts=seed_facts(), target=T.resolve_target("colab-t4"))
    assert r.check("torch.driver").status == "fail" and r.verdict.path == "none"
    assert r.check("mxfp4").fix.startswith("Fix torch first") and CU128 in r.check("mxfp4").fix
    assert r.check("triton").fix == 'pip install "triton==3.8.0"'


@pytest.mark.parametrize("kw,path,words", [
    (dict(kernels="0.16.2"), "bf16", "requires the `kernels` package"),
    (dict(triton="3.3.1", triton_pin=None), "bf16", "requires Triton >= 3.4.0"),
    (dict(accelerate=None), "none", "Accelerate"),
    (dict(transformers="4.54.0"), "none", "predates gpt-oss"),
    (dict(transformers="4.55.1", window=(None, None)), "bf16", "compute capability 7.5"),
    (dict(), "mxfp4", "keeps the experts in MXFP4"),
])
def test_predicted_mxfp4_follows_the_quantizer_rules(kw, path, words):
    base = dict(torch="2.11.0+cu128", cuda_build="12.8", triton="3.6.0", triton_pin="==3.6.0",
                transformers="5.22.2", kernels="0.17.2", window=("0.17.2", "0.18.0"))
    base.update(kw)
    f = T.apply_target(seed_facts(**base), T.resolve_target("colab-t4"))
    assert f.mxfp4.path == path and words in f.mxfp4.reason


def test_predicted_bf16_on_a_v100_and_no_gpu_with_driver_alone():
    f = T.apply_target(seed_facts(torch="2.11.0+cu128", cuda_build="12.8"), T.resolve_target(gpu="V100 16GB", driver="550.54.15"))
    assert f.mxfp4.path == "bf16" and "compute capability >= 7.5" in f.mxfp4.reason
    only_driver = T.apply_target(seed_facts(), T.resolve_target(driver="580.159.04"))
    assert only_driver.gpus == [] and only_driver.driver.cuda_version == "13.0" and only_driver.mxfp4.path == "bf16"


# ---- plans ------------------------------------------------------------------------------------


def test_plan_for_the_seed_recipe_on_colab_t4():
    """The issue's broken seed, planned for the Colab T4: CUDA 12 torch, the working pair, restart."""
    r = snapshot(facts=seed_facts(torch="2.15.0", triton_pin="~=3.9.0", cuda_build="13.2"), target=T.resolve_target("colab-t4"))
    p = r.plan
    assert p.commands == [
        f'pip install "torch==2.11.0" --index-url {CU128}',
        'pip install "transformers==5.22.2" "kernels==0.17.2"',
        "pip check",
        "Runtime > Restart session",
        "gptoss check --target colab-t4",
    ]
    assert "CUDA 13.2, newer than driver 550.54.15 supports (CUDA 12.4)" in p.steps[0].why
    assert "triton==3.6.0" in p.steps[0].why and "no such kernels is released" in p.steps[1].why
    assert p.expected == {"torch": "2.11.0+cu128", "triton": "3.6.0", "transformers": "5.22.2", "kernels": "0.17.2"}
    assert p.reaches_mxfp4 and not p.blockers
    text = render_plan(p, "openai/gpt-oss-20b", "x")
    assert text.count("\npip install") == 2 and "# WHAT-IF" in text and "lead to the MXFP4 path" in text


def test_plan_on_colab_default_keeps_torch_and_adds_kernels_inside_the_window():
    p = snapshot(facts=colab_default()).plan
    assert p.commands == ['pip install "kernels==0.16.2"', "pip check", "Runtime > Restart session", "gptoss check"]
    assert any("torch 2.11.0+cu128 is kept" in n and "minor-version compatibility" in n for n in p.notes)
    assert p.expected == {"torch": "2.11.0+cu128", "triton": "3.6.0", "transformers": "5.15.0", "kernels": "0.16.2"}


def test_plan_on_this_cpu_machine_fixes_packages_and_names_the_blocker():
    p = snapshot(facts=seed_facts()).plan
    assert p.commands == ['pip install "triton==3.8.0"', 'pip install "transformers==5.22.2" "kernels==0.17.2"',
                          "pip check", "gptoss check"]
    assert any("no NVIDIA driver here" in n for n in p.notes)
    assert not p.reaches_mxfp4 and "No NVIDIA GPU here" in p.blockers[0]
    assert "stays out of reach" in render_plan(p, "m", "h")


def test_plan_when_nothing_needs_doing():
    p = snapshot(facts=make_facts("H100", transformers="5.22.2", kernels="0.17.2", window=("0.17.2", "0.18.0"))).plan
    assert p.commands == ["gptoss check"] and p.reaches_mxfp4


def test_plan_cpu_torch_on_a_gpu_with_companions_and_missing_accelerate():
    f = make_facts("A100", driver_cuda="12.6", torch="2.13.0+cpu", cuda_build=None, triton=None, triton_pin=None,
                   torchvision="0.28.0+cpu", torchvision_pin="==2.13.0", accelerate=None, transformers="5.22.2",
                   kernels=None, window=("0.17.2", "0.18.0"), notebook=True)
    p = snapshot(facts=f).plan
    assert p.commands[0] == 'pip install "torch==2.10.0" torchvision --index-url https://download.pytorch.org/whl/cu126'
    assert "CPU-only build" in p.steps[0].why and "torchvision in the same command" in p.steps[0].why
    assert p.commands[1] == 'pip install "kernels==0.17.2" accelerate' and "accelerate is missing" in p.steps[1].why
    assert p.commands[-2] == "Restart the notebook kernel"


def test_plan_on_a_driver_too_old_for_any_listed_torch_is_blocked():
    f = make_facts("T4", driver="470.82.01", driver_cuda="11.4", torch="2.8.0+cu128", cuda_build="12.8")
    p = make_plan(f, Context())
    assert not p.reaches_mxfp4 and "upgrade the NVIDIA driver" in p.blockers[0]


def test_plan_on_a_v100_is_blocked_by_compute_capability():
    p = snapshot(facts=make_facts("V100")).plan
    assert not p.reaches_mxfp4 and "compute capability 7.0" in p.blockers[0]


def test_plan_replaces_a_torch_the_kernel_has_no_build_for():
    """kernels-community issue #1082: no torch 2.13 build. With the builds listed, the plan moves torch."""
    f = make_facts("H100", driver="580.159.04", driver_cuda="13.0", torch="2.13.0", cuda_build="13.0",
                   triton="3.7.1", triton_pin="==3.7.1", transformers="5.22.2", kernels="0.17.2", window=("0.17.2", "0.18.0"))
    f.torch.cxx11_abi = True
    f.kernel.variants = ["torch211-cxx11-cu130-x86_64-linux", "torch212-cxx11-cu130-x86_64-linux",
                         "torch211-cxx11-cu128-x86_64-linux", "torch214-cxx11-cu130-aarch64-linux"]
    f.kernel.variants_source = "hub"
    r = snapshot(facts=f)
    assert r.check("kernel.build").status == "fail" and 'pip install "torch==2.12.1"' == r.check("kernel.build").fix
    assert r.plan.commands[0] == 'pip install "torch==2.12.1"' and "has no build for torch 2.13.0" in r.plan.steps[0].why
    assert r.plan.expected["triton"] == "3.7.1"
