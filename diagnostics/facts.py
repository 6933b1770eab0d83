"""The facts the probes gather: typed records, one per concern, each able to say "I could not tell".

A fact that could not be gathered carries an ``error`` string instead of raising, so a broken
driver or a half-installed package becomes something a check can explain. ``Facts.to_dict()`` is
the ``facts`` object of the JSON report (``diagnostics/schema/check-1.schema.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Distributions the check reports on, by their PyPI names (the keys of facts.packages).
PACKAGES: tuple[str, ...] = (
    "torch",
    "triton",
    "transformers",
    "accelerate",
    "kernels",
    "torchvision",
    "torchaudio",
    "nvidia-ml-py",
    "huggingface-hub",
    "safetensors",
    "tokenizers",
    "numpy",
)

# Importable module -> distribution, for the stale-module check.
TRACKED_MODULES: dict[str, str] = {
    "torch": "torch",
    "transformers": "transformers",
    "triton": "triton",
    "kernels": "kernels",
    "accelerate": "accelerate",
    "huggingface_hub": "huggingface-hub",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
}


@dataclass
class PlatformFacts:
    python: str = ""
    python_executable: str = ""
    system: str = ""  # platform.system(): Linux, Darwin, Windows
    release: str = ""
    machine: str = ""
    cpu: str = ""  # CPU model: the Python-bound decode paths run at its single-thread speed
    cpu_count: int | None = None
    colab: bool = False
    colab_release: str | None = None
    kaggle: bool = False
    notebook: bool = False  # running inside a Jupyter/IPython kernel
    error: str | None = None


@dataclass
class EnvironmentFacts:
    variables: dict[str, str] = field(default_factory=dict)  # relevant variables, secrets redacted
    error: str | None = None


@dataclass
class GpuProcess:
    pid: int
    used_bytes: int | None = None
    name: str | None = None
    this_process: bool = False


@dataclass
class GpuFact:
    index: int
    name: str
    memory_total_bytes: int | None = None
    memory_free_bytes: int | None = None
    memory_used_bytes: int | None = None
    compute_capability: str | None = None  # "7.5"
    mig_mode: bool | None = None
    processes: list[GpuProcess] = field(default_factory=list)
    spec: dict | None = None  # diagnostics.gpus.GpuSpec.to_dict() when known
    visible: bool = True  # CUDA_VISIBLE_DEVICES lets torch use it
    error: str | None = None

    @property
    def cc(self) -> tuple[int, int] | None:
        if not self.compute_capability:
            return None
        try:
            major, minor = self.compute_capability.split(".")
            return int(major), int(minor)
        except ValueError:
            return None


@dataclass
class NvmlFacts:
    available: bool = False
    error: str | None = None


@dataclass
class DriverFacts:
    version: str | None = None  # "535.104.05"
    cuda_version: str | None = None  # the newest CUDA this driver supports, "12.2"
    error: str | None = None


@dataclass
class TorchFacts:
    """What a fresh interpreter's torch reports (not this process's, which may be stale)."""

    installed: bool = False
    version: str | None = None
    cuda_build: str | None = None  # torch.version.cuda, None on a CPU build
    hip_build: str | None = None
    cuda_available: bool = False
    device_count: int = 0
    devices: list[dict] = field(default_factory=list)  # name, compute_capability, memory_total_bytes
    bf16_supported: bool | None = None
    cuda_warning: str | None = None  # what torch warned while initialising CUDA
    cxx11_abi: bool | None = None  # torch.compiled_with_cxx11_abi(): part of a kernel build variant's name
    error: str | None = None


@dataclass
class PackageFact:
    installed: bool = False
    version: str | None = None
    pins: dict[str, str] = field(default_factory=dict)  # relevant Requires-Dist pins: {"triton": "==3.4.0"}
    error: str | None = None


@dataclass
class TransformersFacts:
    """Read from the installed transformers' source files, without importing it."""

    installed: bool = False
    source_dir: str | None = None
    kernels_min: str | None = None  # KERNELS_MIN_VERSION
    kernels_max: str | None = None  # KERNELS_MAX_VERSION
    kernel_repo: str | None = None  # the hub kernel repo its MXFP4 integration loads
    kernel_version: int | None = None  # get_kernel(..., version=N)
    triton_min: str | None = None  # is_triton_available("3.4.0") on the CUDA branch
    error: str | None = None


@dataclass
class Mxfp4Facts:
    """transformers' own answer, asked in a fresh subprocess: MXFP4 kernels or bf16?"""

    path: str = "unknown"  # mxfp4 | bf16 | none | unknown
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    device: str | None = None  # the accelerator transformers saw: cuda, xpu, cpu
    transformers_version: str | None = None
    kernels_min: str | None = None
    kernels_max: str | None = None
    kernel_requested: str | None = None  # repo id transformers asked the kernels library for
    stage: str | None = None
    duration_s: float | None = None
    error: str | None = None


@dataclass
class KernelFacts:
    repo_id: str | None = None
    version: int | None = None
    local_kernels: str | None = None  # the LOCAL_KERNELS value (redacted)
    local_path: str | None = None  # the folder LOCAL_KERNELS maps repo_id to
    local_ok: bool | None = None  # the folder exists and holds metadata.json
    local_error: str | None = None
    cached: bool = False
    cache_path: str | None = None
    online_checked: bool = False
    online_ok: bool | None = None
    online_error: str | None = None
    # build variants (folder names under build/, e.g. torch211-cxx11-cu128-x86_64-linux) and where
    # the list came from: hub (--online), cache (the cached snapshot), local (LOCAL_KERNELS)
    variants: list[str] | None = None
    variants_source: str | None = None
    variants_error: str | None = None
    error: str | None = None

    @property
    def available(self) -> bool:
        return bool(self.local_ok or self.cached or self.online_ok)


@dataclass
class IndexFacts:
    """Released versions of kernels, transformers and triton: the package index's answer
    (``--online``) or, per package, the dated table shipped in ``diagnostics.ecosystem``."""

    versions: dict[str, list[str]] = field(default_factory=dict)  # only what the index answered
    source: dict[str, str] = field(default_factory=dict)  # name -> pypi | table
    table_date: str | None = None
    checked_at: str | None = None  # UTC time the index answered
    online_checked: bool = False
    online_error: str | None = None  # why the index did not answer (then the table is used)


@dataclass
class TokenizerFacts:
    """The model's chat template, rendered for each reasoning effort."""

    source: str | None = None  # local | cache | hub; None when no template was found
    path: str | None = None  # the file the template came from
    efforts: dict[str, bool] = field(default_factory=dict)  # effort -> system block says "Reasoning: <effort>"
    system_lines: dict[str, str | None] = field(default_factory=dict)  # effort -> the "Reasoning:" line found
    error: str | None = None


@dataclass
class StaleModule:
    module: str
    distribution: str
    loaded_version: str | None
    installed_version: str | None


@dataclass
class DiskFacts:
    cache_dir: str | None = None  # where the hub cache puts downloads
    cache_dir_from: str | None = None  # HF_HUB_CACHE | HF_HOME | XDG_CACHE_HOME | default
    checked_path: str | None = None  # the existing folder whose filesystem was measured
    free_bytes: int | None = None
    total_bytes: int | None = None
    model_repo: str | None = None
    model_cached: bool = False
    model_cache_path: str | None = None
    model_cached_bytes: int | None = None
    offline: bool = False  # HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set
    error: str | None = None


@dataclass
class Facts:
    platform: PlatformFacts = field(default_factory=PlatformFacts)
    environment: EnvironmentFacts = field(default_factory=EnvironmentFacts)
    nvml: NvmlFacts = field(default_factory=NvmlFacts)
    gpus: list[GpuFact] = field(default_factory=list)
    driver: DriverFacts = field(default_factory=DriverFacts)
    torch: TorchFacts = field(default_factory=TorchFacts)
    packages: dict[str, PackageFact] = field(default_factory=dict)
    transformers: TransformersFacts = field(default_factory=TransformersFacts)
    mxfp4: Mxfp4Facts = field(default_factory=Mxfp4Facts)
    kernel: KernelFacts = field(default_factory=KernelFacts)
    stale_modules: list[StaleModule] = field(default_factory=list)
    disk: DiskFacts = field(default_factory=DiskFacts)
    index: IndexFacts = field(default_factory=IndexFacts)
    tokenizer: TokenizerFacts = field(default_factory=TokenizerFacts)
    online: bool = False
    target: dict | None = None  # the what-if applied (diagnostics.targets.Target), None for this machine

    def package(self, name: str) -> PackageFact:
        return self.packages.get(name) or PackageFact()

    def version(self, name: str) -> str | None:
        return self.package(name).version

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
