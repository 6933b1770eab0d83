"""Probes: one function per fact, each reading the world only through ``Sources``, none raising.

A probe that fails returns its fact with ``error`` set (``never_raises`` guarantees it even for
bugs), so the checks can say what went wrong instead of the tool crashing. ``gather()`` runs them
all: NVML first (so the subprocess below is not mistaken for another process on the GPU), then
the fresh-interpreter runtime probe in a background thread while the cheap probes run.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from diagnostics import gpus as gpu_table
from diagnostics.facts import (
    PACKAGES,
    TRACKED_MODULES,
    DiskFacts,
    DriverFacts,
    EnvironmentFacts,
    Facts,
    GpuFact,
    GpuProcess,
    KernelFacts,
    Mxfp4Facts,
    NvmlFacts,
    PackageFact,
    PlatformFacts,
    StaleModule,
    TorchFacts,
    TransformersFacts,
)
from diagnostics.ecosystem_probes import kernel_variants, probe_index, probe_tokenizer
from diagnostics.probe_base import hub_cache_dir, model_snapshots, never_raises, probe_error
from diagnostics.redact import redact_env, redact_text
from diagnostics.sources import Sources
from diagnostics.versions import base_version, compare, pins_for

RUNTIME_SCRIPT = Path(__file__).with_name("_runtime_script.py")
RUNTIME_MARK = "@@gptoss-runtime@@"

RELEVANT_ENV = (
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
    "TRANSFORMERS_CACHE", "XDG_CACHE_HOME", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT",
    "HF_HUB_ENABLE_HF_TRANSFER", "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "CUDA_LAUNCH_BLOCKING",
    "PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF", "LOCAL_KERNELS", "KERNELS_CACHE", "HF_KERNELS_CACHE",
    "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "COLAB_RELEASE_TAG",
    "COLAB_GPU", "KAGGLE_KERNEL_RUN_TYPE", "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS",
)
RELEVANT_PREFIXES = ("HF_", "HUGGINGFACE_", "HUGGING_FACE_", "TRANSFORMERS_", "TORCH_", "PYTORCH_", "CUDA_",
                     "TRITON_", "KERNELS_", "COLAB_")
MAX_VALUE_CHARS = 200

TRUTHY = {"1", "ON", "YES", "TRUE"}


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def is_offline(environ) -> bool:
    return any(str(environ.get(k, "")).strip().upper() in TRUTHY for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


# --------------------------------------------------------------------------------------------
# Platform and environment
# --------------------------------------------------------------------------------------------


@never_raises(lambda e: PlatformFacts(error=e))
def probe_platform(src: Sources) -> PlatformFacts:
    info = src.platform_info()
    env = src.environ
    colab_release = env.get("COLAB_RELEASE_TAG") or None
    colab = bool(colab_release) or "google.colab" in src.modules or src.module_available("google.colab")
    return PlatformFacts(
        python=info.get("python", ""),
        python_executable=info.get("python_executable", ""),
        system=info.get("system", ""),
        release=info.get("release", ""),
        machine=info.get("machine", ""),
        cpu=info.get("cpu") or "",
        cpu_count=info.get("cpu_count"),
        colab=bool(colab),
        colab_release=colab_release,
        kaggle=bool(env.get("KAGGLE_KERNEL_RUN_TYPE") or env.get("KAGGLE_URL_BASE")),
        notebook="ipykernel" in src.modules,
    )


@never_raises(lambda e: EnvironmentFacts(error=e))
def probe_environment(src: Sources) -> EnvironmentFacts:
    picked = {
        k: str(v)
        for k, v in src.environ.items()
        if k in RELEVANT_ENV or k.startswith(RELEVANT_PREFIXES)
    }
    redacted = redact_env(picked)  # before shortening, so a cut cannot hide a token from the patterns
    short = {k: (v if len(v) <= MAX_VALUE_CHARS else v[: MAX_VALUE_CHARS - 1] + "…") for k, v in redacted.items()}
    return EnvironmentFacts(variables=dict(sorted(short.items())))


# --------------------------------------------------------------------------------------------
# NVML: driver and GPUs
# --------------------------------------------------------------------------------------------


def _visible(environ, index: int, uuid: str | None) -> bool:
    """Whether CUDA_VISIBLE_DEVICES lets torch see GPU ``index`` (unset: all are visible)."""
    cvd = environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is None:
        return True
    for entry in (x.strip() for x in cvd.split(",")):
        if not entry:
            continue
        if entry.isdigit() and int(entry) == index:
            return True
        if uuid and not entry.isdigit() and uuid.startswith(entry):
            return True
    return False


@never_raises(lambda e: DriverFacts(error=e))
def probe_driver(src: Sources) -> DriverFacts:
    nvml = src.get_nvml()
    nvml.nvmlInit()
    try:
        facts = DriverFacts(version=_text(nvml.nvmlSystemGetDriverVersion()))
        try:
            v = int(nvml.nvmlSystemGetCudaDriverVersion())
            facts.cuda_version = f"{v // 1000}.{(v % 1000) // 10}"
        except Exception as e:  # noqa: BLE001
            facts.error = f"CUDA driver version unknown ({probe_error(e)})"
        return facts
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def _gpu(nvml: Any, src: Sources, index: int) -> GpuFact:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    fact = GpuFact(index=index, name=_text(nvml.nvmlDeviceGetName(handle)))
    problems = []
    try:
        mem = nvml.nvmlDeviceGetMemoryInfo(handle)
        fact.memory_total_bytes, fact.memory_free_bytes, fact.memory_used_bytes = int(mem.total), int(mem.free), int(mem.used)
    except Exception as e:  # noqa: BLE001
        problems.append(f"memory: {probe_error(e)}")
    try:
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
        fact.compute_capability = f"{int(major)}.{int(minor)}"
    except Exception as e:  # noqa: BLE001
        problems.append(f"compute capability: {probe_error(e)}")
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
        fact.mig_mode = int(current) == 1
    except Exception:  # noqa: BLE001 - NotSupported on GPUs without MIG
        fact.mig_mode = None
    try:
        for p in nvml.nvmlDeviceGetComputeProcesses(handle) or []:
            used = getattr(p, "usedGpuMemory", None)
            pid = int(p.pid)
            fact.processes.append(
                GpuProcess(pid=pid, used_bytes=int(used) if used is not None else None,
                           name=src.process_name(pid), this_process=(pid == src.pid))
            )
    except Exception as e:  # noqa: BLE001
        problems.append(f"processes: {probe_error(e)}")
    uuid = None
    try:
        uuid = _text(nvml.nvmlDeviceGetUUID(handle))
    except Exception:  # noqa: BLE001
        pass
    fact.visible = _visible(src.environ, index, uuid)
    spec = gpu_table.known_gpu(fact.name, fact.memory_total_bytes)
    fact.spec = spec.to_dict() if spec else None
    fact.error = "; ".join(problems) or None
    return fact


def probe_gpus(src: Sources) -> tuple[NvmlFacts, list[GpuFact]]:
    """All GPUs NVML sees (whatever CUDA_VISIBLE_DEVICES says; ``visible`` tells)."""
    try:
        nvml = src.get_nvml()
    except Exception as e:  # noqa: BLE001
        return NvmlFacts(available=False, error=f"pynvml (nvidia-ml-py) cannot be imported: {probe_error(e)}"), []
    try:
        nvml.nvmlInit()
    except Exception as e:  # noqa: BLE001
        return NvmlFacts(available=False, error=probe_error(e)), []
    try:
        count = int(nvml.nvmlDeviceGetCount())
        out = []
        for i in range(count):
            try:
                out.append(_gpu(nvml, src, i))
            except Exception as e:  # noqa: BLE001
                out.append(GpuFact(index=i, name="unknown", error=probe_error(e)))
        return NvmlFacts(available=True), out
    except Exception as e:  # noqa: BLE001
        return NvmlFacts(available=True, error=probe_error(e)), []
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------------------------
# Packages, transformers' declared requirements, stale modules
# --------------------------------------------------------------------------------------------

TRITON_DISTS = {"triton", "pytorch-triton", "pytorch-triton-rocm", "pytorch-triton-xpu"}


def _one_package(src: Sources, name: str) -> PackageFact:
    try:
        version = src.dist_version(name)
    except Exception as e:  # noqa: BLE001
        return PackageFact(error=probe_error(e))
    fact = PackageFact(installed=version is not None, version=version)
    if version is None:
        return fact
    wanted = {"torch": TRITON_DISTS, "torchvision": {"torch"}, "torchaudio": {"torch"}}.get(name)
    if wanted:
        try:
            for pin in pins_for(src.dist_requires(name), wanted):
                fact.pins[pin.name] = pin.specifier
        except Exception as e:  # noqa: BLE001
            fact.error = f"requirements unreadable: {probe_error(e)}"
    return fact


@never_raises(lambda e: {name: PackageFact(error=e) for name in PACKAGES})
def probe_packages(src: Sources) -> dict[str, PackageFact]:
    out = {name: _one_package(src, name) for name in PACKAGES}
    # nightly torch pins pytorch-triton; report the triton actually installed under either name
    if not out["triton"].installed:
        for alt in ("pytorch-triton", "pytorch-triton-rocm", "pytorch-triton-xpu"):
            alt_fact = _one_package(src, alt)
            if alt_fact.installed:
                out["triton"] = alt_fact
                break
    return out


_KERNEL_CALL = re.compile(r"""get_kernel\(\s*["']([\w.-]+/[\w.-]+)["'](?:\s*,\s*version\s*=\s*(\d+))?""")
_CONST = r"""^{name}\s*=\s*["']([^"']+)["']"""


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


@never_raises(lambda e: TransformersFacts(error=e))
def probe_transformers_source(src: Sources) -> TransformersFacts:
    """KERNELS_MIN/MAX_VERSION, the hub kernel repo and the triton minimum, from the installed
    transformers' source files (never imported here)."""
    facts = TransformersFacts(installed=src.dist_version("transformers") is not None)
    root = src.package_dir("transformers")
    if not root:
        if facts.installed:
            facts.error = "the transformers package folder was not found"
        return facts
    facts.source_dir = str(root)
    base = Path(root)
    import_utils = _read(base / "utils" / "import_utils.py") or ""
    for attr, name in (("kernels_min", "KERNELS_MIN_VERSION"), ("kernels_max", "KERNELS_MAX_VERSION")):
        m = re.search(_CONST.format(name=name), import_utils, re.MULTILINE)
        setattr(facts, attr, m.group(1) if m else None)
    quantizer = _read(base / "quantizers" / "quantizer_mxfp4.py") or ""
    integration = _read(base / "integrations" / "mxfp4.py") or ""
    for text in (integration, quantizer):
        m = _KERNEL_CALL.search(text)
        if m:
            facts.kernel_repo = m.group(1)
            facts.kernel_version = int(m.group(2)) if m.group(2) else None
            break
    cuda_at = quantizer.find("torch.cuda.is_available()")
    m = re.search(r"""is_triton_available\(\s*["']([\d.]+)["']""", quantizer[cuda_at:] if cuda_at >= 0 else quantizer)
    facts.triton_min = m.group(1) if m else None
    if not quantizer and facts.installed:
        facts.error = "this transformers has no MXFP4 quantizer (quantizers/quantizer_mxfp4.py)"
    return facts


@never_raises(lambda e: [])
def probe_stale_modules(src: Sources) -> list[StaleModule]:
    """Packages imported in THIS process whose installed version has changed since (pip install
    in a running notebook): the process keeps running the old code until restarted."""
    out = []
    for module, dist in TRACKED_MODULES.items():
        try:
            mod = src.modules.get(module)
            if mod is None:
                continue
            loaded = getattr(mod, "__version__", None)
            loaded = str(loaded) if loaded is not None else None
            installed = src.dist_version(dist)
        except Exception:  # noqa: BLE001
            continue
        if loaded is None:
            continue
        same = compare(loaded, installed) == 0 or base_version(loaded) == base_version(installed)
        if not same:
            out.append(StaleModule(module, dist, loaded, installed))
    return out


# --------------------------------------------------------------------------------------------
# The fresh-interpreter runtime probe: torch and transformers' MXFP4 decision
# --------------------------------------------------------------------------------------------


def _fill(cls, data: dict | None, **extra):
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in (data or {}).items() if k in names}
    kwargs.update(extra)
    return cls(**kwargs)


def probe_runtime(src: Sources, online: bool = False) -> tuple[TorchFacts, Mxfp4Facts]:
    """Ask a fresh ``python -c`` what torch sees and what transformers decides for MXFP4."""
    try:
        script = RUNTIME_SCRIPT.read_text(encoding="utf-8")
        env = {str(k): str(v) for k, v in src.environ.items()}
        if not online:
            env["HF_HUB_OFFLINE"] = "1"  # belt and braces: the script never downloads anyway
        env["TRANSFORMERS_VERBOSITY"] = "warning"
        env.setdefault("PYTHONIOENCODING", "utf-8")
        result = src.run([src.python, "-c", script], env, src.runtime_timeout_s)
    except Exception as e:  # noqa: BLE001
        err = probe_error(e)
        return TorchFacts(error=f"runtime probe failed: {err}"), Mxfp4Facts(reason=f"the runtime probe failed ({err})", error=err)
    payload = None
    for line in reversed((result.stdout or "").splitlines()):
        if line.startswith(RUNTIME_MARK):
            try:
                payload = json.loads(line[len(RUNTIME_MARK):])
            except ValueError:
                payload = None
            break
    if payload is None:
        if result.timed_out:
            why = f"it timed out after {src.runtime_timeout_s:.0f} s"
        else:
            tail = " ".join((result.stderr or "").strip().splitlines()[-3:])[-400:]
            why = f"it exited with code {result.returncode}" + (f": {tail}" if tail else "")
        err = redact_text(f"the fresh Python process that asks torch and transformers gave no answer ({why})")
        return TorchFacts(error=err), Mxfp4Facts(reason=err, error=err)
    torch_facts = _fill(TorchFacts, payload.get("torch"))
    mx = payload.get("mxfp4") or {}
    mxfp4 = _fill(Mxfp4Facts, mx, duration_s=payload.get("duration_s"))
    if payload.get("error") and not mx:
        mxfp4.error = payload["error"]
        mxfp4.reason = f"the runtime probe failed ({payload['error']})"
    if mxfp4.path not in ("mxfp4", "bf16", "none", "unknown"):
        mxfp4.path = "unknown"
    return torch_facts, mxfp4


# --------------------------------------------------------------------------------------------
# The hub kernel
# --------------------------------------------------------------------------------------------


def parse_local_kernels(value: str) -> dict[str, str]:
    """``repo_id=/path:repo2=/path2`` (the kernels library's format; ';' accepted too)."""
    out = {}
    for entry in re.split(r"[;:]", value or ""):
        entry = entry.strip()
        if not entry:
            continue
        if "=" not in entry:
            raise ValueError(f"LOCAL_KERNELS entry {entry!r} is not repo_id=/path")
        repo, path = entry.split("=", 1)
        out[repo.strip()] = path.strip()
    return out


def _kernel_in_cache(cache_dir: str, repo_id: str, version: int | None) -> str | None:
    """The cached snapshot folder of a kernel repo (either layout: kernels--… or models--…).

    With a ``version`` (transformers asks ``get_kernel(repo, version=1)``) the kernels library
    resolves the ref ``v1`` offline, so only that ref's snapshot counts."""
    flat = repo_id.replace("/", "--")
    for prefix in ("kernels", "models"):
        root = Path(cache_dir) / f"{prefix}--{flat}"
        snapshots = root / "snapshots"
        if not snapshots.is_dir():
            continue
        if version is not None:
            ref = root / "refs" / f"v{version}"
            if ref.is_file():
                commit = ref.read_text(encoding="utf-8").strip()
                if commit and (snapshots / commit).is_dir():
                    return str(snapshots / commit)
            continue
        for snap in sorted(snapshots.iterdir()):
            if snap.is_dir() and any(snap.iterdir()):
                return str(snap)
    return None


@never_raises(lambda e: KernelFacts(error=e))
def probe_kernel(src: Sources, repo_id: str | None, version: int | None, online: bool) -> KernelFacts:
    facts = KernelFacts(repo_id=repo_id, version=version)
    if not repo_id:
        facts.error = "the installed transformers names no hub kernel for MXFP4"
        return facts
    raw = src.environ.get("LOCAL_KERNELS")
    if raw:
        facts.local_kernels = redact_text(raw)
        try:
            mapping = parse_local_kernels(raw)
            path = mapping.get(repo_id)
            if path is None:
                facts.local_error = f"LOCAL_KERNELS does not map {repo_id}"
            else:
                facts.local_path = path
                folder = Path(path)
                if not folder.is_dir():
                    facts.local_ok, facts.local_error = False, f"{path} is not a folder"
                elif not (folder / "metadata.json").is_file():
                    facts.local_ok, facts.local_error = False, f"{path} has no metadata.json"
                else:
                    facts.local_ok = True
        except Exception as e:  # noqa: BLE001
            facts.local_ok, facts.local_error = False, probe_error(e)
    try:
        dirs = [src.environ.get("KERNELS_CACHE"), src.environ.get("HF_KERNELS_CACHE"), hub_cache_dir(src.environ, src.home)[0]]
        for d in dirs:
            if not d:
                continue
            found = _kernel_in_cache(d, repo_id, version)
            if found:
                facts.cached, facts.cache_path = True, found
                break
    except Exception as e:  # noqa: BLE001
        facts.error = probe_error(e)
    if online:
        facts.online_checked = True
        try:
            src.hub_check(repo_id, src.hub_timeout_s)
            facts.online_ok = True
        except Exception as e:  # noqa: BLE001
            facts.online_ok, facts.online_error = False, probe_error(e)
    kernel_variants(src, facts, online)
    return facts


# --------------------------------------------------------------------------------------------
# Disk and the model cache
# --------------------------------------------------------------------------------------------


def _model_snapshot(cache_dir: str, repo: str) -> tuple[str | None, int | None]:
    """A complete cached snapshot of ``repo`` (all safetensors shards present) and its size."""
    for snap in model_snapshots(cache_dir, repo):
        index = snap / "model.safetensors.index.json"
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            except (ValueError, KeyError, OSError):
                continue
            files = [snap / s for s in shards]
        else:
            files = list(snap.glob("*.safetensors"))
        if files and all(f.is_file() for f in files):
            return str(snap), sum(f.stat().st_size for f in files)
    return None, None


@never_raises(lambda e: DiskFacts(error=e))
def probe_disk(src: Sources, model: str) -> DiskFacts:
    cache_dir, decided_by = hub_cache_dir(src.environ, src.home)
    facts = DiskFacts(cache_dir=cache_dir, cache_dir_from=decided_by, offline=is_offline(src.environ))
    if model and os.path.isdir(model):
        facts.model_repo = None
        facts.model_cached, facts.model_cache_path = True, os.path.abspath(model)
    elif model and not model.startswith("synthetic:") and "/" in model:
        facts.model_repo = model
        path, size = _model_snapshot(cache_dir, model)
        facts.model_cached, facts.model_cache_path, facts.model_cached_bytes = path is not None, path, size
    probe = Path(cache_dir)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    facts.checked_path = str(probe)
    usage = src.disk_usage(str(probe))
    facts.total_bytes, facts.free_bytes = int(usage[0]), int(usage[2])
    return facts


# --------------------------------------------------------------------------------------------
# Everything
# --------------------------------------------------------------------------------------------


def gather(src: Sources, model: str, online: bool = False, progress: Callable[[str], None] | None = None) -> Facts:
    """Run every probe once. ``progress`` gets short notes (the CLI prints them to stderr)."""
    note = progress or (lambda _msg: None)
    facts = Facts(online=online)
    note("reading the GPU through NVML")
    facts.nvml, facts.gpus = probe_gpus(src)
    facts.driver = probe_driver(src) if facts.nvml.available else DriverFacts(error=facts.nvml.error)

    runtime: dict[str, Any] = {}

    def _runtime() -> None:
        runtime["value"] = probe_runtime(src, online)

    note("asking torch and transformers in a fresh Python process")
    worker = threading.Thread(target=_runtime, name="gptoss-runtime-probe", daemon=True)
    worker.start()
    facts.platform = probe_platform(src)
    facts.environment = probe_environment(src)
    facts.packages = probe_packages(src)
    facts.transformers = probe_transformers_source(src)
    facts.stale_modules = probe_stale_modules(src)
    facts.disk = probe_disk(src, model)
    repo = facts.transformers.kernel_repo
    note("looking for the MXFP4 kernel" + (" (and asking the hub)" if online else ""))
    facts.kernel = probe_kernel(src, repo, facts.transformers.kernel_version, online)
    note("reading the chat template" + (" and asking the package index" if online else ""))
    facts.tokenizer = probe_tokenizer(src, model, online)
    facts.index = probe_index(src, online)
    worker.join()
    facts.torch, facts.mxfp4 = runtime.get("value") or (
        TorchFacts(error="runtime probe did not finish"),
        Mxfp4Facts(reason="the runtime probe did not finish", error="did not finish"),
    )
    if not facts.transformers.kernel_repo and facts.mxfp4.kernel_requested:
        facts.kernel = probe_kernel(src, facts.mxfp4.kernel_requested, None, online)
    return facts
