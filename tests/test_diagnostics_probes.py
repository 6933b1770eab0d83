"""Probes on canned side effects: NVML double, fake metadata, fake subprocess runner, temp folders."""

import json
import types

import pytest

from diagnostics import probes as P
from diagnostics.probes import RUNTIME_MARK
from diagnostics.sources import RunResult, Sources, run_subprocess
from diagnostics.testing import FakeDevice, FakeNvml, MiB


def _no_network(*args, **kwargs):
    raise OSError("no network in tests")


def sources(tmp_path, **kw):
    defaults = dict(
        environ={}, modules={}, nvml=FakeNvml(), dist_version=lambda n: None, dist_requires=lambda n: None,
        module_available=lambda n: False, package_dir=lambda n: None, home=str(tmp_path / "home"), pid=1000,
        disk_usage=lambda p: (500 * 10**9, 100 * 10**9, 400 * 10**9), process_name=lambda pid: f"proc{pid}",
        platform_info=lambda: {"python": "3.10.12", "python_executable": "/usr/bin/python3", "system": "Linux",
                               "release": "6.1.85+", "machine": "x86_64",
                               "cpu": "Intel(R) Xeon(R) CPU @ 2.20GHz", "cpu_count": 2},
        run=lambda argv, env, timeout: RunResult(1, "", "not configured"),
        hub_list_build=_no_network, hub_download=_no_network, pypi_json=_no_network,
    )
    defaults.update(kw)
    return Sources(**defaults)


# ---- NVML ---------------------------------------------------------------------------------------


def test_no_nvml_library_is_a_fact_not_an_exception(tmp_path):
    src = sources(tmp_path, nvml=FakeNvml(missing_library=True))
    nvml, gpus = P.probe_gpus(src)
    assert nvml.available is False and "NVML Shared Library Not Found" in nvml.error and gpus == []
    drv = P.probe_driver(src)
    assert drv.version is None and "Not Found" in drv.error


def test_pynvml_not_importable(tmp_path):
    def boom():
        raise ImportError("No module named 'pynvml'")

    nvml, gpus = P.probe_gpus(sources(tmp_path, nvml=None, load_nvml=boom))
    assert not nvml.available and "nvidia-ml-py" in nvml.error


def test_gpu_facts_from_nvml(tmp_path):
    dev = FakeDevice(name="Tesla T4", total=15360 * MiB, free=14000 * MiB, cc=(7, 5), mig=None,
                     processes=[(1000, 500 * MiB), (2222, None)])
    fake = FakeNvml([dev], driver="535.104.05", cuda=12020, bytes_names=True)
    nvml, gpus = P.probe_gpus(sources(tmp_path, nvml=fake))
    assert nvml.available and len(gpus) == 1
    g = gpus[0]
    assert g.name == "Tesla T4" and g.compute_capability == "7.5" and g.mig_mode is None
    assert g.memory_total_bytes == 15360 * MiB and g.memory_free_bytes == 14000 * MiB
    assert g.spec["name"] == "T4" and g.spec["memory_bandwidth_bytes_s"] == 320e9
    assert [(p.pid, p.this_process, p.name) for p in g.processes] == [(1000, True, "proc1000"), (2222, False, "proc2222")]
    assert g.processes[1].used_bytes is None
    assert fake.inits == fake.shutdowns == 1
    drv = P.probe_driver(sources(tmp_path, nvml=fake))
    assert drv.version == "535.104.05" and drv.cuda_version == "12.2" and drv.error is None


def test_mig_enabled_and_cuda_visible_devices(tmp_path):
    devs = [FakeDevice(name="NVIDIA A100-SXM4-80GB", total=81920 * MiB, mig=1, uuid="GPU-aaaa"),
            FakeDevice(name="NVIDIA A100-SXM4-80GB", total=81920 * MiB, mig=0, uuid="GPU-bbbb")]
    _, gpus = P.probe_gpus(sources(tmp_path, nvml=FakeNvml(devs), environ={"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}))
    assert [g.mig_mode for g in gpus] == [True, False]
    assert [g.visible for g in gpus] == [False, True]
    _, gpus = P.probe_gpus(sources(tmp_path, nvml=FakeNvml(devs), environ={"CUDA_VISIBLE_DEVICES": "0"}))
    assert [g.visible for g in gpus] == [True, False]
    _, gpus = P.probe_gpus(sources(tmp_path, nvml=FakeNvml(devs), environ={"CUDA_VISIBLE_DEVICES": ""}))
    assert [g.visible for g in gpus] == [False, False]


def test_a_device_call_failing_is_recorded(tmp_path):
    fake = FakeNvml([FakeDevice()])

    def broken(handle):
        raise RuntimeError("GPU is lost")

    fake.nvmlDeviceGetMemoryInfo = broken
    fake.nvmlDeviceGetComputeProcesses = broken
    _, gpus = P.probe_gpus(sources(tmp_path, nvml=fake))
    assert gpus[0].memory_total_bytes is None and "GPU is lost" in gpus[0].error and gpus[0].compute_capability == "7.5"

    def lost(i):
        raise RuntimeError("Unknown Error")

    fake.nvmlDeviceGetHandleByIndex = lost
    _, gpus = P.probe_gpus(sources(tmp_path, nvml=fake))
    assert gpus[0].name == "unknown" and "Unknown Error" in gpus[0].error


def test_driver_without_cuda_version(tmp_path):
    fake = FakeNvml()

    def nope():
        raise RuntimeError("Function Not Found")

    fake.nvmlSystemGetCudaDriverVersion = nope
    drv = P.probe_driver(sources(tmp_path, nvml=fake))
    assert drv.version == "535.104.05" and drv.cuda_version is None and "Function Not Found" in drv.error


# ---- packages, transformers source, stale modules --------------------------------------------------


def test_packages_and_pins_with_markers(tmp_path):
    versions = {"torch": "2.8.0+cu128", "triton": "3.4.0", "torchvision": "0.23.0", "transformers": "5.23.0"}
    requires = {
        "torch": ['triton==3.4.0; platform_system == "Linux" and platform_machine == "x86_64"',
                  'triton==9.9.9; platform_system == "Nowhere"', 'optree>=0.13.0; extra == "optree"', "filelock"],
        "torchvision": ["numpy", "torch==2.8.0", "pillow!=8.3.*,>=5.3.0"],
    }
    src = sources(tmp_path, dist_version=versions.get, dist_requires=requires.get)
    pk = P.probe_packages(src)
    assert set(pk) >= {"torch", "triton", "transformers", "accelerate", "kernels", "torchvision", "torchaudio",
                       "nvidia-ml-py", "huggingface-hub"}
    assert pk["torch"].pins in ({"triton": "==3.4.0"}, {})  # {} only off Linux x86_64
    assert pk["torchvision"].pins == {"torch": "==2.8.0"}
    assert pk["kernels"].installed is False and pk["kernels"].version is None
    assert pk["transformers"].pins == {}


def test_nightly_triton_is_found_under_its_other_name(tmp_path):
    versions = {"torch": "2.9.0.dev20250801+cu128", "pytorch-triton": "3.4.0+gitabc"}
    pk = P.probe_packages(sources(tmp_path, dist_version=versions.get))
    assert pk["triton"].version == "3.4.0+gitabc"


def test_metadata_errors_do_not_escape(tmp_path):
    def broken(name):
        raise OSError("metadata store corrupt")

    pk = P.probe_packages(sources(tmp_path, dist_version=broken))
    assert "corrupt" in pk["torch"].error


def _fake_transformers(root, kernel_call, window=True, triton="3.4.0"):
    (root / "utils").mkdir(parents=True)
    (root / "quantizers").mkdir()
    (root / "integrations").mkdir()
    consts = 'KERNELS_MIN_VERSION = "0.18.2"\nKERNELS_MAX_VERSION = "0.19.0"\n' if window else ""
    (root / "utils" / "import_utils.py").write_text("import os\n" + consts)
    (root / "quantizers" / "quantizer_mxfp4.py").write_text(
        "if torch.xpu.is_available():\n    t = is_triton_available(\"3.5.0\")\n"
        f"elif torch.cuda.is_available():\n    t = is_triton_available(\"{triton}\")\n"
    )
    (root / "integrations" / "mxfp4.py").write_text(kernel_call)


def test_transformers_source_new_layout(tmp_path):
    root = tmp_path / "transformers"
    _fake_transformers(root, 'hub = get_kernel("kernels-community/gpt-oss-triton-kernels", version=1)\n')
    src = sources(tmp_path, package_dir=lambda n: str(root), dist_version={"transformers": "5.23.0"}.get)
    t = P.probe_transformers_source(src)
    assert (t.kernels_min, t.kernels_max) == ("0.18.2", "0.19.0")
    assert t.kernel_repo == "kernels-community/gpt-oss-triton-kernels" and t.kernel_version == 1
    assert t.triton_min == "3.4.0" and t.error is None


def test_transformers_source_dir_is_a_string_even_when_the_spec_holds_a_path(tmp_path):
    # after some imports transformers' live __spec__ lists a PosixPath: the fact must stay JSON-able
    root = tmp_path / "transformers"
    _fake_transformers(root, "")
    t = P.probe_transformers_source(sources(tmp_path, package_dir=lambda n: root, dist_version={"transformers": "5.23.0"}.get))
    assert t.source_dir == str(root) and isinstance(t.source_dir, str)


def test_transformers_source_old_layout_without_window(tmp_path):
    root = tmp_path / "transformers"
    _fake_transformers(root, "", window=False)
    (root / "quantizers" / "quantizer_mxfp4.py").write_text(
        (root / "quantizers" / "quantizer_mxfp4.py").read_text()
        + '\n        self.triton_kernels_hub = get_kernel("kernels-community/triton_kernels")\n'
    )
    src = sources(tmp_path, package_dir=lambda n: str(root), dist_version={"transformers": "4.57.0"}.get)
    t = P.probe_transformers_source(src)
    assert t.kernels_min is None and t.kernels_max is None
    assert t.kernel_repo == "kernels-community/triton_kernels" and t.kernel_version is None


def test_transformers_not_installed_or_without_quantizer(tmp_path):
    t = P.probe_transformers_source(sources(tmp_path))
    assert not t.installed and t.error is None
    t = P.probe_transformers_source(sources(tmp_path, dist_version={"transformers": "4.40.0"}.get))
    assert "not found" in t.error
    root = tmp_path / "tf"
    (root / "utils").mkdir(parents=True)
    t = P.probe_transformers_source(sources(tmp_path, package_dir=lambda n: str(root), dist_version={"transformers": "4.40.0"}.get))
    assert "no MXFP4 quantizer" in t.error


def test_stale_modules(tmp_path):
    modules = {
        "transformers": types.SimpleNamespace(__version__="4.55.0"),
        "torch": types.SimpleNamespace(__version__="2.8.0+cu126"),
        "triton": types.SimpleNamespace(),  # no __version__: cannot tell, not reported
        "kernels": types.SimpleNamespace(__version__="0.17.2"),
    }
    versions = {"transformers": "5.23.0", "torch": "2.8.0+cu126", "kernels": None}
    stale = P.probe_stale_modules(sources(tmp_path, modules=modules, dist_version=versions.get))
    assert [(s.module, s.loaded_version, s.installed_version) for s in stale] == [
        ("transformers", "4.55.0", "5.23.0"), ("kernels", "0.17.2", None)]


# ---- platform and environment ------------------------------------------------------------------------


def test_platform_colab_by_env_module_or_importable(tmp_path):
    p = P.probe_platform(sources(tmp_path, environ={"COLAB_RELEASE_TAG": "release-colab_20250801-060053_RC00"}))
    assert p.colab and p.colab_release.startswith("release-colab") and p.python == "3.10.12" and p.system == "Linux"
    assert P.probe_platform(sources(tmp_path, modules={"google.colab": object()})).colab
    assert P.probe_platform(sources(tmp_path, module_available=lambda n: n == "google.colab")).colab
    plain = P.probe_platform(sources(tmp_path, modules={"ipykernel": object()}))
    assert not plain.colab and plain.notebook
    assert P.probe_platform(sources(tmp_path, environ={"KAGGLE_KERNEL_RUN_TYPE": "Interactive"})).kaggle


def test_platform_records_the_cpu(tmp_path):
    p = P.probe_platform(sources(tmp_path))
    assert p.cpu == "Intel(R) Xeon(R) CPU @ 2.20GHz" and p.cpu_count == 2


def test_cpu_model_from_proc_cpuinfo():
    from diagnostics.sources import cpu_model

    text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7R13 Processor\nflags\t: fpu\n"
    assert cpu_model(text) == "AMD EPYC 7R13 Processor"
    assert cpu_model("processor\t: 0\nBogoMIPS\t: 50.00\n") is None  # some arm64 kernels
    assert cpu_model(None) is None and cpu_model("model name\t:   \n") is None


def test_platform_probe_never_raises(tmp_path):
    def boom():
        raise RuntimeError("no platform")

    p = P.probe_platform(sources(tmp_path, platform_info=boom))
    assert "no platform" in p.error


def test_environment_picks_relevant_variables_and_redacts(tmp_path):
    env = {
        "HF_HOME": "/data/hf", "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz123456", "CUDA_VISIBLE_DEVICES": "0",
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "MY_API_KEY": "xyz", "PATH": "/usr/bin",
        "HF_ENDPOINT": "https://user:s3cret@hub.example.com", "HUGGING_FACE_HUB_TOKEN": "abc",
        "LOCAL_KERNELS": "kernels-community/gpt-oss-triton-kernels=/k", "WANDB_NOTE": "hf_zzzzzzzzzzzzzzzzzzzzzzzz",
    }
    v = P.probe_environment(sources(tmp_path, environ=env)).variables
    assert v["HF_HOME"] == "/data/hf" and v["CUDA_VISIBLE_DEVICES"] == "0"
    assert v["HF_TOKEN"] == "<redacted>" and v["HUGGING_FACE_HUB_TOKEN"] == "<redacted>"
    assert v["HF_ENDPOINT"] == "https://<redacted>@hub.example.com"
    assert "PATH" not in v and "MY_API_KEY" not in v and "WANDB_NOTE" not in v
    assert v["LOCAL_KERNELS"].endswith("=/k")


def test_environment_drops_container_noise_and_shortens_long_values(tmp_path):
    env = {"NVIDIA_REQUIRE_CUDA": "cuda>=13.0 " + "brand=tesla,driver>=535 " * 50, "NVIDIA_VISIBLE_DEVICES": "0",
           "PYTORCH_CUDA_ALLOC_CONF": "x" * 500, "HF_TOKEN": "hf_" + "a" * 300}
    v = P.probe_environment(sources(tmp_path, environ=env)).variables
    assert "NVIDIA_REQUIRE_CUDA" not in v and v["NVIDIA_VISIBLE_DEVICES"] == "0"
    assert len(v["PYTORCH_CUDA_ALLOC_CONF"]) == P.MAX_VALUE_CHARS and v["PYTORCH_CUDA_ALLOC_CONF"].endswith("…")
    assert v["HF_TOKEN"] == "<redacted>"


# ---- the runtime probe ---------------------------------------------------------------------------------


def _payload(torch=None, mxfp4=None, **extra):
    return {"torch": torch or {"installed": True, "version": "2.8.0+cu128", "cuda_build": "12.8", "cuda_available": True,
                               "device_count": 1, "devices": [{"name": "Tesla T4", "compute_capability": "7.5"}]},
            "mxfp4": mxfp4 or {"path": "mxfp4", "reason": "ok", "transformers_version": "5.23.0", "kernels_min": "0.18.2",
                               "kernels_max": "0.19.0", "future_field": 1},
            "duration_s": 3.2, **extra}


def test_runtime_probe_parses_the_marked_line_and_passes_a_safe_env(tmp_path):
    seen = {}

    def runner(argv, env, timeout):
        seen.update(argv=argv, env=env, timeout=timeout)
        return RunResult(0, "noise printed by a library\n" + RUNTIME_MARK + json.dumps(_payload()) + "\n", "")

    src = sources(tmp_path, run=runner, environ={"HF_HOME": "/x"}, python="/venv/bin/python")
    torch, mx = P.probe_runtime(src, online=False)
    assert seen["argv"][:2] == ["/venv/bin/python", "-c"] and "Mxfp4HfQuantizer" in seen["argv"][2]
    assert seen["env"]["HF_HUB_OFFLINE"] == "1" and seen["env"]["HF_HOME"] == "/x"
    assert torch.cuda_build == "12.8" and torch.devices[0]["name"] == "Tesla T4"
    assert mx.path == "mxfp4" and mx.kernels_max == "0.19.0" and mx.duration_s == 3.2
    P.probe_runtime(src, online=True)
    assert "HF_HUB_OFFLINE" not in seen["env"]


def test_runtime_probe_failures_become_unknown(tmp_path):
    def crash(argv, env, timeout):
        return RunResult(1, "", "Traceback...\nImportError: libcuda.so.1: cannot open shared object file\n")

    torch, mx = P.probe_runtime(sources(tmp_path, run=crash))
    assert mx.path == "unknown" and "exited with code 1" in mx.reason and "libcuda" in mx.reason
    assert torch.installed is False and "no answer" in torch.error

    def slow(argv, env, timeout):
        return RunResult(None, "", "", timed_out=True)

    _, mx = P.probe_runtime(sources(tmp_path, run=slow, runtime_timeout_s=12))
    assert mx.path == "unknown" and "timed out after 12 s" in mx.reason

    def garbage(argv, env, timeout):
        return RunResult(0, RUNTIME_MARK + "{not json", "")

    _, mx = P.probe_runtime(sources(tmp_path, run=garbage))
    assert mx.path == "unknown"

    def raising(argv, env, timeout):
        raise OSError("fork failed")

    _, mx = P.probe_runtime(sources(tmp_path, run=raising))
    assert mx.path == "unknown" and "fork failed" in mx.reason

    def odd(argv, env, timeout):
        return RunResult(0, RUNTIME_MARK + json.dumps(_payload(mxfp4={"path": "fp8"})), "")

    _, mx = P.probe_runtime(sources(tmp_path, run=odd))
    assert mx.path == "unknown"

    def script_error(argv, env, timeout):
        return RunResult(0, RUNTIME_MARK + json.dumps({"torch": None, "mxfp4": None, "error": "KeyboardInterrupt: "}), "")

    _, mx = P.probe_runtime(sources(tmp_path, run=script_error))
    assert mx.path == "unknown" and "KeyboardInterrupt" in mx.reason


def test_run_subprocess_never_raises(tmp_path):
    r = run_subprocess([str(tmp_path / "does-not-exist")], {}, 5)
    assert r.returncode is None and "Error" in r.stderr


# ---- the kernel --------------------------------------------------------------------------------------------

REPO = "kernels-community/gpt-oss-triton-kernels"


def _cache_kernel(cache, prefix="kernels", ref="v1", commit="c0ffee"):
    root = cache / f"{prefix}--kernels-community--gpt-oss-triton-kernels"
    (root / "snapshots" / commit / "build").mkdir(parents=True)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / ref).write_text(commit)
    return root / "snapshots" / commit


def test_local_kernels_ok_and_broken(tmp_path):
    good = tmp_path / "k"
    good.mkdir()
    (good / "metadata.json").write_text("{}")
    k = P.probe_kernel(sources(tmp_path, environ={"LOCAL_KERNELS": f"{REPO}={good}"}), REPO, 1, False)
    assert k.local_ok and k.local_path == str(good) and k.available
    k = P.probe_kernel(sources(tmp_path, environ={"LOCAL_KERNELS": f"other/repo=/x:{REPO}={tmp_path}"}), REPO, 1, False)
    assert k.local_ok is False and "no metadata.json" in k.local_error
    k = P.probe_kernel(sources(tmp_path, environ={"LOCAL_KERNELS": f"{REPO}={tmp_path / 'missing'}"}), REPO, 1, False)
    assert k.local_ok is False and "not a folder" in k.local_error
    k = P.probe_kernel(sources(tmp_path, environ={"LOCAL_KERNELS": "garbage"}), REPO, 1, False)
    assert k.local_ok is False and "not repo_id=/path" in k.local_error
    k = P.probe_kernel(sources(tmp_path, environ={"LOCAL_KERNELS": "other/repo=/x"}), REPO, 1, False)
    assert k.local_ok is None and "does not map" in k.local_error


def test_kernel_in_the_hub_cache_either_layout(tmp_path):
    cache = tmp_path / "hub"
    snap = _cache_kernel(cache, prefix="models")
    k = P.probe_kernel(sources(tmp_path, environ={"HF_HUB_CACHE": str(cache)}), REPO, 1, False)
    assert k.cached and k.cache_path == str(snap)
    # transformers asks for v1; a cache holding only v2 does not count
    cache2 = tmp_path / "hub2"
    _cache_kernel(cache2, ref="v2")
    assert not P.probe_kernel(sources(tmp_path, environ={"HF_HUB_CACHE": str(cache2)}), REPO, 1, False).cached
    # an older transformers asks for no version: any snapshot counts
    assert P.probe_kernel(sources(tmp_path, environ={"HF_HUB_CACHE": str(cache2)}), REPO, None, False).cached
    # KERNELS_CACHE is looked at too
    kc = tmp_path / "kc"
    _cache_kernel(kc)
    assert P.probe_kernel(sources(tmp_path, environ={"KERNELS_CACHE": str(kc)}), REPO, 1, False).cached


def test_kernel_online_only_when_asked(tmp_path):
    calls = []

    def hub(repo, timeout):
        calls.append((repo, timeout))

    k = P.probe_kernel(sources(tmp_path, hub_check=hub), REPO, 1, False)
    assert calls == [] and not k.online_checked and not k.available
    k = P.probe_kernel(sources(tmp_path, hub_check=hub, hub_timeout_s=3), REPO, 1, True)
    assert calls == [(REPO, 3)] and k.online_ok and k.available

    def down(repo, timeout):
        raise TimeoutError("hub unreachable")

    k = P.probe_kernel(sources(tmp_path, hub_check=down), REPO, 1, True)
    assert k.online_ok is False and "hub unreachable" in k.online_error


def test_kernel_without_repo(tmp_path):
    k = P.probe_kernel(sources(tmp_path), None, None, False)
    assert "names no hub kernel" in k.error


def test_parse_local_kernels_formats():
    assert P.parse_local_kernels("a/b=/x:c/d=/y") == {"a/b": "/x", "c/d": "/y"}
    assert P.parse_local_kernels("a/b=/x;c/d=/y") == {"a/b": "/x", "c/d": "/y"}
    with pytest.raises(ValueError):
        P.parse_local_kernels("a/b")


# ---- disk ------------------------------------------------------------------------------------------------


def _cache_model(cache, shards=("model-00000-of-00002.safetensors", "model-00001-of-00002.safetensors"), present=None):
    snap = cache / "models--openai--gpt-oss-20b" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {f"w{i}": s for i, s in enumerate(shards)}}))
    for s in (shards if present is None else present):
        (snap / s).write_bytes(b"x" * 10)
    return snap


def test_hub_cache_dir_resolution(tmp_path):
    home = str(tmp_path)
    assert P.hub_cache_dir({"HF_HUB_CACHE": "/a", "HF_HOME": "/b"}, home) == ("/a", "HF_HUB_CACHE")
    assert P.hub_cache_dir({"HUGGINGFACE_HUB_CACHE": "/legacy"}, home) == ("/legacy", "HUGGINGFACE_HUB_CACHE")
    assert P.hub_cache_dir({"HF_HOME": "/b"}, home) == ("/b/hub", "HF_HOME")
    assert P.hub_cache_dir({"HF_HOME": "~/hf"}, home) == (f"{home}/hf/hub", "HF_HOME")
    assert P.hub_cache_dir({"XDG_CACHE_HOME": "/c"}, home) == ("/c/huggingface/hub", "XDG_CACHE_HOME")
    assert P.hub_cache_dir({}, home) == (f"{home}/.cache/huggingface/hub", "default")


def test_disk_model_cached_complete(tmp_path):
    cache = tmp_path / "hub"
    snap = _cache_model(cache)
    d = P.probe_disk(sources(tmp_path, environ={"HF_HUB_CACHE": str(cache)}), "openai/gpt-oss-20b")
    assert d.model_cached and d.model_cache_path == str(snap) and d.model_cached_bytes == 20
    assert d.checked_path == str(cache) and d.free_bytes == 400 * 10**9 and d.cache_dir_from == "HF_HUB_CACHE"


def test_disk_partial_download_is_not_cached_and_free_space_is_measured_on_an_existing_parent(tmp_path):
    cache = tmp_path / "hub"
    _cache_model(cache, present=["model-00000-of-00002.safetensors"])
    asked = []

    def usage(path):
        asked.append(path)
        return (100, 99, 1)

    d = P.probe_disk(sources(tmp_path, environ={"HF_HUB_CACHE": str(cache)}, disk_usage=usage), "openai/gpt-oss-20b")
    assert not d.model_cached and d.free_bytes == 1
    d = P.probe_disk(sources(tmp_path, environ={"HF_HOME": str(tmp_path / "nope" / "deeper")}, disk_usage=usage), "openai/gpt-oss-20b")
    assert asked[-1] == str(tmp_path) and d.cache_dir == str(tmp_path / "nope" / "deeper" / "hub")


def test_disk_offline_local_and_synthetic(tmp_path):
    d = P.probe_disk(sources(tmp_path, environ={"HF_HUB_OFFLINE": "1"}), "openai/gpt-oss-20b")
    assert d.offline and not d.model_cached
    local = tmp_path / "ckpt"
    local.mkdir()
    d = P.probe_disk(sources(tmp_path), str(local))
    assert d.model_cached and d.model_repo is None
    d = P.probe_disk(sources(tmp_path), "synthetic:gpt-oss-20b")
    assert d.model_repo is None and not d.model_cached


def test_disk_probe_never_raises(tmp_path):
    def broken(path):
        raise PermissionError("denied")

    d = P.probe_disk(sources(tmp_path, disk_usage=broken), "openai/gpt-oss-20b")
    assert "denied" in d.error


# ---- everything --------------------------------------------------------------------------------------------


def test_gather_runs_every_probe_once_with_injected_world(tmp_path):
    def runner(argv, env, timeout):
        return RunResult(0, RUNTIME_MARK + json.dumps(_payload()), "")

    notes = []
    src = sources(tmp_path, run=runner, nvml=FakeNvml([FakeDevice()]))
    facts = P.gather(src, "openai/gpt-oss-20b", progress=notes.append)
    assert facts.gpus[0].name == "Tesla T4" and facts.driver.cuda_version == "12.2"
    assert facts.torch.cuda_build == "12.8" and facts.mxfp4.path == "mxfp4"
    assert facts.platform.python == "3.10.12" and notes and not facts.online


def test_gather_uses_the_kernel_transformers_requested_when_the_source_names_none(tmp_path):
    def runner(argv, env, timeout):
        p = _payload()
        p["mxfp4"]["kernel_requested"] = "kernels-community/triton_kernels"
        return RunResult(0, RUNTIME_MARK + json.dumps(p), "")

    facts = P.gather(sources(tmp_path, run=runner), "openai/gpt-oss-20b")
    assert facts.kernel.repo_id == "kernels-community/triton_kernels"
