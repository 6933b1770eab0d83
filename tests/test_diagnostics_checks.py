"""Every check's branches, on injected facts (diagnostics.testing.make_facts): no GPU, T4, A100, H100."""

import pytest

from diagnostics import checks as C
from diagnostics.facts import GpuProcess, StaleModule
from diagnostics.models import spec_for
from diagnostics.report import snapshot
from diagnostics.testing import make_facts, make_gpu

NO_LIB = "NVMLError_LibraryNotFound: NVML Shared Library Not Found"


def ctx(model="openai/gpt-oss-20b"):
    return C.Context(model=model, spec=spec_for(model))


def run(check, facts, model="openai/gpt-oss-20b"):
    return check(facts, ctx(model))


def by_id(report, check_id):
    c = report.check(check_id)
    assert c is not None, check_id
    return c


# ---- whole machines ------------------------------------------------------------------------


def test_healthy_a100_and_h100_pass_on_mxfp4():
    for gpu in ("A100", "H100"):
        r = snapshot(facts=make_facts(gpu))
        assert r.verdict.status == "pass", [(c.id, c.status, c.message) for c in r.checks if c.status in ("warn", "fail")]
        assert r.verdict.path == "mxfp4"
        assert "MXFP4" in r.verdict.reason and gpu in r.verdict.summary.replace("-", " ").replace("A100 SXM4", "A100")
        assert r.exit_code() == 0 and r.exit_code(strict=True) == 0


def test_no_gpu_fails_plainly_with_path_none():
    r = snapshot(facts=make_facts(None, nvml_error=NO_LIB, torch="2.13.0+cpu", cuda_build=None, triton=None,
                                  triton_pin=None, kernels=None, path="bf16"))
    gpu = by_id(r, "gpu")
    assert gpu.status == "fail" and "No NVIDIA GPU found" in gpu.message and "driver is not installed" in gpu.message
    assert "Runtime > Change runtime type" in gpu.fix
    assert r.verdict.status == "fail" and r.verdict.path == "none"
    assert r.verdict.reason == "No NVIDIA GPU is visible, so gpt-oss cannot run on a GPU here."
    assert r.exit_code() == 1
    for check_id in ("gpu.compute_capability", "gpu.bf16", "gpu.mig", "gpu.processes", "torch", "torch.driver",
                     "triton", "kernels", "mxfp4", "kernel.hub", "memory"):
        assert by_id(r, check_id).status == "skip", check_id


def test_t4_on_an_old_driver_fails_on_the_driver_and_torch():
    f = make_facts("T4", driver="470.82.01", driver_cuda="11.4", torch="2.8.0+cu128", cuda_build="12.8",
                   cuda_available=False, cuda_warning="CUDA initialization: The NVIDIA driver on your system is too old (found version 11040).",
                   path="bf16", reason="MXFP4 quantization is only supported on GPUs with compute capability >= 7.5 (e.g T4). We will default to dequantizing the model to bf16.")
    r = snapshot(facts=f)
    drv = by_id(r, "torch.driver")
    assert drv.status == "fail" and "470.82.01" in drv.message and "CUDA 11.4" in drv.message and "12.8" in drv.message
    assert "download.pytorch.org/whl/cu118" in drv.fix
    t = by_id(r, "torch")
    assert t.status == "fail" and "driver on your system is too old" in t.message
    assert r.verdict.path == "none" and r.verdict.status == "fail"
    assert "CUDA 11.4" in r.verdict.reason
    assert by_id(r, "gpu.bf16").status == "warn"  # T4: no native bf16


def test_t4_healthy_runs_mxfp4_with_memory_and_bf16_warnings():
    r = snapshot(facts=make_facts("T4"))
    assert r.verdict.path == "mxfp4" and r.verdict.status == "warn"
    assert by_id(r, "memory").status == "warn"  # fits, but the H100 load peak would not
    assert r.exit_code() == 0 and r.exit_code(strict=True) == 1


# ---- GPU ----------------------------------------------------------------------------------------


def test_gpu_hidden_by_cuda_visible_devices():
    f = make_facts(gpus=[make_gpu("A100", visible=False)], env={"CUDA_VISIBLE_DEVICES": ""})
    c = run(C.check_gpu, f)
    assert c.status == "fail" and "hides them all" in c.message and "CUDA_VISIBLE_DEVICES" in c.fix


def test_gpu_seen_by_torch_but_nvml_unreadable_warns():
    f = make_facts("A100")
    f.gpus, f.nvml.available, f.nvml.error = [], False, "pynvml (nvidia-ml-py) cannot be imported"
    c = run(C.check_gpu, f)
    assert c.status == "warn" and "nvidia-ml-py" in c.fix
    # the memory check falls back to torch's total memory
    m = run(C.check_memory, f)
    assert m.status in ("pass", "warn") and "total" in m.message


def test_gpu_nvml_without_devices():
    f = make_facts(None)
    c = run(C.check_gpu, f)
    assert c.status == "fail" and "NVML lists no device" in c.message


def test_gpu_other_nvml_error_is_quoted():
    c = run(C.check_gpu, make_facts(None, nvml_error="NVMLError_DriverNotLoaded: Driver Not Loaded"))
    assert c.status == "fail" and "Driver Not Loaded" in c.message


def test_multiple_gpus_reported():
    f = make_facts(gpus=[make_gpu("H100", 0), make_gpu("H100", 1)])
    assert "+1 more visible" in run(C.check_gpu, f).message


@pytest.mark.parametrize("gpu,status", [("V100", "warn"), ("T4", "pass"), ("H100", "pass")])
def test_compute_capability(gpu, status):
    c = run(C.check_compute_capability, make_facts(gpu))
    assert c.status == status
    if status == "warn":
        assert "7.0" in c.message and "bf16" in c.message and c.fix


def test_compute_capability_unknown():
    f = make_facts("T4")
    f.gpus[0].compute_capability = None
    assert run(C.check_compute_capability, f).status == "warn"
    assert run(C.check_bf16, f).status == "skip"


@pytest.mark.parametrize("gpu,status", [("T4", "warn"), ("V100", "warn"), ("A100", "pass"), ("L4", "pass")])
def test_native_bf16(gpu, status):
    assert run(C.check_bf16, make_facts(gpu)).status == status


def test_mig_on_warns_off_passes():
    on = run(C.check_mig, make_facts(gpus=[make_gpu("A100", mig=True)]))
    assert on.status == "warn" and "MIG is enabled" in on.message and "-mig 0" in on.fix
    assert run(C.check_mig, make_facts("A100")).status == "pass"
    assert run(C.check_mig, make_facts(gpus=[make_gpu("T4", mig=None)])).status == "pass"


def test_other_processes_on_the_gpu_warn():
    procs = [GpuProcess(pid=4242, used_bytes=3 * 1024**3, name="python3")]
    c = run(C.check_processes, make_facts(gpus=[make_gpu("H100", processes=procs, used_by_others=3 * 1024**3)]))
    assert c.status == "warn" and "pid 4242 python3 3.0 GiB" in c.message and "kill" in c.fix


def test_many_processes_are_summarised():
    procs = [GpuProcess(pid=i, used_bytes=None) for i in range(7)]
    c = run(C.check_processes, make_facts(gpus=[make_gpu("H100", processes=procs)]))
    assert "7 other process" in c.message and "and 2 more" in c.message and "(memory unknown)" in c.message


def test_this_process_holding_memory_warns_with_a_different_fix():
    procs = [GpuProcess(pid=1, used_bytes=13 * 1024**3, this_process=True)]
    c = run(C.check_processes, make_facts(gpus=[make_gpu("H100", processes=procs)]))
    assert c.status == "warn" and "This Python process" in c.message and "empty_cache" in c.fix


def test_no_processes_pass():
    assert run(C.check_processes, make_facts("H100")).status == "pass"


# ---- torch / driver / triton -----------------------------------------------------------------


def test_torch_missing_fails():
    c = run(C.check_torch, make_facts("A100", torch=None))
    assert c.status == "fail" and "not installed" in c.message and "--index-url" in c.fix


def test_torch_cpu_build_on_a_gpu_machine_fails_with_matching_wheel_index():
    c = run(C.check_torch, make_facts("A100", torch="2.8.0+cpu", cuda_build=None, driver_cuda="12.6"))
    assert c.status == "fail" and "CPU-only build" in c.message
    assert c.fix.endswith("https://download.pytorch.org/whl/cu126")


def test_torch_broken_import_fails():
    f = make_facts("A100")
    f.torch.version, f.torch.error = None, "OSError: libcudnn.so.9: cannot open shared object file"
    c = run(C.check_torch, f)
    assert c.status == "fail" and "libcudnn" in c.message


def test_torch_cuda_unavailable_without_warning():
    c = run(C.check_torch, make_facts("A100", cuda_available=False))
    assert c.status == "fail" and "is_available() is False" in c.message


def test_torch_pass_lists_devices():
    c = run(C.check_torch, make_facts("H100"))
    assert c.status == "pass" and "H100" in c.message and "CUDA 12.4" in c.message


def test_driver_minor_version_older_warns():
    c = run(C.check_driver, make_facts("A100", driver_cuda="12.2", cuda_build="12.8"))
    assert c.status == "warn" and "minor-version" in c.message and c.fix.endswith("whl/cu121")


def test_driver_newer_passes_and_unknowns_skip():
    assert run(C.check_driver, make_facts("A100", driver_cuda="12.8", cuda_build="12.4")).status == "pass"
    assert run(C.check_driver, make_facts("A100", cuda_build=None)).status == "skip"
    f = make_facts("A100")
    f.driver.cuda_version = None
    assert run(C.check_driver, f).status == "skip"
    f.driver.cuda_version = "garbage"
    assert run(C.check_driver, f).status == "skip"


def test_torch_index_tag():
    assert C.torch_index_tag("12.4") == "cu124"
    assert C.torch_index_tag("12.5") == "cu124"
    assert C.torch_index_tag("13.1") == "cu130"
    assert C.torch_index_tag("11.4") == "cu118"
    assert C.torch_index_tag("10.2") is None
    assert C.torch_index_tag(None) is None


def test_triton_not_the_one_torch_requires_fails():
    c = run(C.check_triton, make_facts("H100", triton="3.3.1", triton_pin="==3.4.0"))
    assert c.status == "fail" and "3.3.1" in c.message and "triton==3.4.0" in c.message
    assert c.fix == 'pip install "triton==3.4.0"'


def test_triton_required_but_missing_fails():
    c = run(C.check_triton, make_facts("H100", triton=None, triton_pin="==3.4.0"))
    assert c.status == "fail" and "not installed" in c.message


def test_triton_matching_but_too_old_for_mxfp4_warns():
    c = run(C.check_triton, make_facts("H100", torch="2.7.1+cu126", triton="3.3.1", triton_pin="==3.3.1"))
    assert c.status == "warn" and ">= 3.4.0" in c.message and "pip install -U torch" in c.fix


def test_triton_pass_and_unpinned_branches():
    assert run(C.check_triton, make_facts("H100")).status == "pass"
    assert run(C.check_triton, make_facts("H100", triton_pin=None)).status == "pass"
    assert run(C.check_triton, make_facts("H100", triton_pin=None, triton=None)).status == "warn"
    assert run(C.check_triton, make_facts("H100", triton_pin=None, triton="3.2.0")).status == "warn"
    assert run(C.check_triton, make_facts(None, triton_pin=None, triton=None)).status == "skip"
    assert run(C.check_triton, make_facts("H100", torch=None)).status == "skip"


# ---- transformers / accelerate / kernels / mxfp4 / kernel repo ---------------------------------


def test_transformers_missing_old_and_cc75():
    assert run(C.check_transformers, make_facts("T4", transformers=None)).status == "fail"
    old = run(C.check_transformers, make_facts("T4", transformers="4.54.1"))
    assert old.status == "fail" and "predates gpt-oss" in old.message
    t4 = run(C.check_transformers, make_facts("T4", transformers="4.55.0"))
    assert t4.status == "warn" and "4.55.2" in t4.message
    assert run(C.check_transformers, make_facts("A100", transformers="4.55.0")).status == "pass"
    assert run(C.check_transformers, make_facts("T4", transformers="4.55.2")).status == "pass"


def test_accelerate():
    assert run(C.check_accelerate, make_facts("T4", accelerate=None)).status == "fail"
    assert run(C.check_accelerate, make_facts("T4")).status == "pass"


PAIR_FIX = 'pip install "transformers==5.22.2" "kernels==0.17.2"   # no kernels>=0.18.2,<0.19.0 is released'


@pytest.mark.parametrize("version", ["0.17.2", "0.19.0", "0.9.1"])
def test_kernels_outside_an_unreleased_window_offers_the_newest_working_pair(version):
    """transformers 5.23/5.24 want kernels [0.18.2, 0.19), which is not released: the fix must not name it."""
    c = run(C.check_kernels, make_facts("T4", kernels=version, window=("0.18.2", "0.19.0")))
    assert c.status == "warn" and "outside the window" in c.message and "dequantized to bf16" in c.message
    assert "no kernels release is inside it" in c.message and "transformers 5.22.2 + kernels 0.17.2" in c.message
    assert c.fix == PAIR_FIX


@pytest.mark.parametrize("window,fix", [(("0.17.2", "0.18.0"), 'pip install "kernels==0.17.2"'),
                                        (("0.16.0", "0.17.0"), 'pip install "kernels==0.16.2"')])
def test_kernels_outside_a_released_window_names_the_newest_release_inside(window, fix):
    c = run(C.check_kernels, make_facts("T4", transformers="5.20.0", kernels="0.15.2", window=window))
    assert c.status == "warn" and c.fix == fix and "no kernels release" not in c.message


def test_kernels_other_branches():
    assert run(C.check_kernels, make_facts("T4", kernels="0.18.3")).status == "pass"
    missing = run(C.check_kernels, make_facts("T4", kernels=None))
    assert missing.status == "warn" and missing.fix == PAIR_FIX and "no kernels release" in missing.message
    assert run(C.check_kernels, make_facts(None, kernels=None)).status == "skip"
    assert run(C.check_kernels, make_facts(None, kernels="0.1.0")).status == "skip"
    no_window = run(C.check_kernels, make_facts("T4", kernels="0.9.0", window=(None, None)))
    assert no_window.status == "pass" and "declares no version window" in no_window.message
    f = make_facts("T4", kernels=None, window=("0.9.0", None))
    assert run(C.check_kernels, f).fix == 'pip install "kernels==0.17.2"'


def test_kernels_window_prefers_the_subprocess_answer():
    f = make_facts("T4", kernels="0.17.2")
    f.transformers.kernels_min, f.transformers.kernels_max = "0.17.0", "0.18.0"  # source parse (stale?)
    assert C.kernels_window(f) == ("0.18.2", "0.19.0")
    f.mxfp4.kernels_min = f.mxfp4.kernels_max = None
    assert C.kernels_window(f) == ("0.17.0", "0.18.0")
    assert run(C.check_kernels, f).status == "pass"


def test_mxfp4_verdict_branches():
    ok = run(C.check_mxfp4, make_facts("H100"))
    assert ok.status == "pass" and "gpt-oss-triton-kernels" in ok.message
    bf16 = run(C.check_mxfp4, make_facts("T4", path="bf16", kernels="0.17.2"))
    assert bf16.status == "warn" and "silently dequantize" in bf16.message and "39.1 GiB" in bf16.message
    assert bf16.fix == PAIR_FIX
    triton = run(C.check_mxfp4, make_facts("T4", path="bf16", triton="3.3.0", reason="MXFP4 quantization requires Triton: CUDA requires Triton >= 3.4.0. We will default to dequantizing the model to bf16."))
    assert triton.fix == 'pip install "triton==3.4.0"'
    cc = run(C.check_mxfp4, make_facts("V100", path="bf16", reason="MXFP4 quantization is only supported on GPUs with compute capability >= 7.5"))
    assert "compute capability >= 7.5" in cc.fix
    other = run(C.check_mxfp4, make_facts("T4", path="bf16", reason="something new"))
    assert other.status == "warn" and other.fix is None
    none = run(C.check_mxfp4, make_facts("T4", path="none"))
    assert none.status == "fail" and "Accelerate" in none.message
    unknown = run(C.check_mxfp4, make_facts("T4", path="unknown"))
    assert unknown.status == "warn" and "timed out" in unknown.message
    nogpu = run(C.check_mxfp4, make_facts(None, path="bf16"))
    assert nogpu.status == "skip" and "No GPU" in nogpu.message


def test_kernel_repo_branches():
    f = make_facts("H100", kernel_cached=True)
    assert run(C.check_kernel_repo, f).status == "pass"
    local = run(C.check_kernel_repo, make_facts("H100", kernel_cached=False, local_kernels="x=/k", local_ok=True))
    assert local.status == "pass" and "LOCAL_KERNELS" in local.message
    broken = make_facts("T4", path="bf16", local_kernels="x=/k", local_ok=False, local_error="/k has no metadata.json")
    c = run(C.check_kernel_repo, broken)
    assert c.status == "fail" and "metadata.json" in c.message  # even on the bf16 path: a broken setting
    assert run(C.check_kernel_repo, make_facts("T4", path="bf16")).status == "skip"
    online_ok = run(C.check_kernel_repo, make_facts("H100", kernel_cached=False, online_checked=True, online_ok=True))
    assert online_ok.status == "pass" and "hub serves it" in online_ok.message
    online_bad = run(C.check_kernel_repo, make_facts("H100", kernel_cached=False, online_checked=True, online_ok=False))
    assert online_bad.status == "fail" and "timed out" in online_bad.message
    offline = run(C.check_kernel_repo, make_facts("H100", kernel_cached=False, offline=True))
    assert offline.status == "fail" and "HF_HUB_OFFLINE" in offline.message
    unverified = run(C.check_kernel_repo, make_facts("H100", kernel_cached=False))
    assert unverified.status == "skip" and "--online" in unverified.message
    no_repo = run(C.check_kernel_repo, make_facts("H100", kernel_repo=None))
    assert no_repo.status == "warn"


# ---- the process, companions ----------------------------------------------------------------


def test_stale_modules_fail_with_restart_fix():
    stale = [StaleModule("transformers", "transformers", "4.55.0", "5.23.0")]
    c = run(C.check_stale, make_facts("T4", stale=stale, colab=True))
    assert c.status == "fail" and "transformers 4.55.0 is loaded but 5.23.0 is installed" in c.message
    assert "Runtime > Restart session" in c.fix
    assert "notebook kernel" in run(C.check_stale, make_facts("T4", stale=stale, notebook=True)).fix
    assert "Python process" in run(C.check_stale, make_facts("T4", stale=stale)).fix
    assert run(C.check_stale, make_facts("T4")).status == "pass"


def test_torchvision_for_another_torch_fails():
    c = run(C.check_torchvision, make_facts("T4", torch="2.8.0+cu126", torchvision="0.22.1", torchvision_pin="==2.7.1"))
    assert c.status == "fail" and "torch==2.7.1" in c.message and 'pip install "torch==2.8.0" torchvision' in c.fix
    ok = run(C.check_torchvision, make_facts("T4", torch="2.8.0+cu126", torchvision="0.23.0", torchvision_pin="==2.8.0"))
    assert ok.status == "pass"  # a local version (+cu126) satisfies ==2.8.0
    assert run(C.check_torchvision, make_facts("T4")).status == "skip"
    assert run(C.check_torchvision, make_facts("T4", torchvision="0.23.0")).status == "pass"


def test_torchaudio_for_another_torch_fails():
    c = run(C.check_torchaudio, make_facts("T4", torch="2.8.0", torchaudio="2.7.0", torchaudio_pin="==2.7.0"))
    assert c.status == "fail" and c.id == "torchaudio"


# ---- memory and disk -----------------------------------------------------------------------------


def test_120b_memory_fit_fails_on_t4_passes_on_h100():
    t4 = run(C.check_memory, make_facts("T4"), "openai/gpt-oss-120b")
    assert t4.status == "fail" and "gpt-oss-120b" in t4.message and "Tesla T4" in t4.message
    assert "smaller openai/gpt-oss-20b" in t4.fix
    h100 = run(C.check_memory, make_facts("H100"), "openai/gpt-oss-120b")
    assert h100.status == "pass" and "to spare" in h100.message


def test_bf16_fallback_on_t4_fails_and_points_at_mxfp4():
    c = run(C.check_memory, make_facts("T4", path="bf16", kernels="0.17.2"))
    assert c.status == "fail" and "bf16 path" in c.message
    assert c.fix.startswith("Get the MXFP4 path working") and '"transformers==5.22.2" "kernels==0.17.2"' in c.fix


def test_memory_held_by_others_is_named_as_the_fix():
    procs = [GpuProcess(pid=7, used_bytes=10 * 1024**3)]
    f = make_facts(gpus=[make_gpu("L4", processes=procs, used_by_others=10 * 1024**3)])
    c = run(C.check_memory, f)
    assert c.status == "fail" and "other processes" in c.fix


def test_memory_spread_over_two_gpus_warns():
    f = make_facts(gpus=[make_gpu("T4", 0), make_gpu("T4", 1)], path="bf16")
    f.gpus[0].memory_free_bytes = f.gpus[1].memory_free_bytes = 30 * 1024**3  # pretend: two 30 GiB GPUs
    c = run(C.check_memory, f)
    assert c.status == "warn" and "spread over 2 GPUs" in c.message


def test_memory_below_the_load_peak_warns_and_unknown_model_skips():
    GiB = 1024**3
    below_peak = run(C.check_memory, make_facts(gpus=[make_gpu("L4", free_bytes=int(14.0 * GiB))]))
    assert below_peak.status == "warn" and "may run out of memory" in below_peak.message
    above_peak = run(C.check_memory, make_facts(gpus=[make_gpu("L4", free_bytes=int(16.0 * GiB))]))
    assert above_peak.status == "pass"
    short = run(C.check_memory, make_facts(gpus=[make_gpu("L4", free_bytes=int(13.0 * GiB))]))
    assert short.status == "fail"
    assert run(C.check_memory, make_facts("H100"), "meta-llama/Llama-3-8B").status == "skip"
    assert run(C.check_memory, make_facts(None)).status == "skip"


def test_memory_unknown_path_assumes_mxfp4_and_unknown_free_warns():
    c = run(C.check_memory, make_facts("H100", path="unknown"))
    assert "assuming MXFP4" in c.message
    f = make_facts("H100")
    f.gpus[0].memory_free_bytes = None
    f.gpus[0].memory_total_bytes = None
    assert run(C.check_memory, f).status == "warn"


def test_full_disk_fails():
    c = run(C.check_disk, make_facts("T4", disk_free=5 * 10**9))
    assert c.status == "fail" and "14.4 GB" in c.message and "5.0 GB" in c.message and "HF_HOME" in c.fix


def test_disk_other_branches():
    assert run(C.check_disk, make_facts("T4", disk_free=16 * 10**9)).status == "warn"
    assert run(C.check_disk, make_facts("T4")).status == "pass"
    cached = run(C.check_disk, make_facts("T4", disk_free=0, model_cached=True))
    assert cached.status == "pass" and "already on disk" in cached.message
    offline = run(C.check_disk, make_facts("T4", offline=True))
    assert offline.status == "fail" and "hf download openai/gpt-oss-20b" in offline.fix
    f = make_facts("T4")
    f.disk.model_repo = None
    assert run(C.check_disk, f, "synthetic:gpt-oss-20b").status == "skip"
    f = make_facts("T4")
    f.disk.free_bytes, f.disk.error = None, "PermissionError"
    assert run(C.check_disk, f).status == "warn"
    f = make_facts("T4")
    f.disk.model_repo = "someone/other-model"
    assert run(C.check_disk, f, "someone/other-model").status == "pass"


# ---- platform / environment / robustness -------------------------------------------------------


def test_platform_and_environment():
    assert "Google Colab" in run(C.check_platform, make_facts("T4", colab=True)).message
    assert run(C.check_platform, make_facts("T4", system="Windows")).status == "warn"
    f = make_facts("T4")
    f.platform.error = "boom"
    assert run(C.check_platform, f).status == "warn"
    assert run(C.check_environment, make_facts("T4")).message == "No relevant variable is set."
    env = run(C.check_environment, make_facts("T4", env={"HF_HOME": "/data/hf"}))
    assert env.status == "pass" and "HF_HOME=/data/hf" in env.message
    assert run(C.check_environment, make_facts("T4", env={"CUDA_LAUNCH_BLOCKING": "1"})).status == "warn"
    f = make_facts("T4")
    f.environment.error = "nope"
    assert run(C.check_environment, f).status == "warn"


def test_a_crashing_check_becomes_a_warning(monkeypatch):
    def broken(f, ctx):
        raise RuntimeError("bug")

    broken.__name__ = "check_broken"
    monkeypatch.setattr(C, "CHECKS", C.CHECKS + (broken,))
    results = C.run_checks(make_facts("H100"), ctx())
    last = results[-1]
    assert last.id == "broken" and last.status == "warn" and "RuntimeError: bug" in last.message


def test_verdict_paths_and_summaries():
    assert snapshot(facts=make_facts("T4", path="bf16")).verdict.path == "bf16"
    r = snapshot(facts=make_facts("T4", path="none"))
    assert r.verdict.path == "none" and r.verdict.reason.startswith("transformers cannot load gpt-oss here")
    r = snapshot(facts=make_facts("T4", path="unknown"))
    assert r.verdict.path == "unknown" and "unknown" in r.verdict.reason
    r = snapshot(facts=make_facts("A100", cuda_available=False))
    assert r.verdict.path == "none" and "cannot use the GPU" in r.verdict.reason
    r = snapshot(facts=make_facts("A100", torch=None))
    assert r.verdict.path == "none"
    r = snapshot(facts=make_facts("T4", path="bf16"))
    assert r.verdict.summary.startswith("gpt-oss-20b will not run here") and "Memory fit" in r.verdict.summary


def test_first_sentence():
    assert C.first_sentence("A b. C d.") == "A b."
    assert C.first_sentence("no stop") == "no stop."
    assert C.first_sentence(None) == "no reason given."
    kernels_msg = ("MXFP4 quantization requires the `kernels` package: Please install a compatible version "
                   "(0.16.0 <= version < 0.17.0), e.g. `pip install kernels==0.16.0`We will default to dequantizing.")
    assert C.first_sentence(kernels_msg) == kernels_msg  # transformers 5.17's message: no split after "e.g."
    assert C.first_sentence("Only on GPUs (e.g T4, A100). We will default.") == "Only on GPUs (e.g T4, A100)."
