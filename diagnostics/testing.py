"""Canned machines for tests and demos: facts for a T4, an A100, an H100 or no GPU, and an NVML double.

``make_facts(gpu="T4", ...)`` builds a healthy MXFP4-ready machine of that kind; every keyword
bends one fact (an old driver, kernels outside the window, a stale module, a full disk, ...), so a
test states exactly the situation it checks. ``FakeNvml`` answers like pynvml does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from diagnostics.facts import (
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
from diagnostics.gpus import known_gpu

MiB = 1024**2


@dataclass(frozen=True)
class GpuProfile:
    nvml_name: str
    total_bytes: int
    cc: str


GPUS: dict[str, GpuProfile] = {
    "T4": GpuProfile("Tesla T4", 15360 * MiB, "7.5"),
    "V100": GpuProfile("Tesla V100-SXM2-16GB", 16384 * MiB, "7.0"),
    "L4": GpuProfile("NVIDIA L4", 23034 * MiB, "8.9"),
    "A100": GpuProfile("NVIDIA A100-SXM4-40GB", 40960 * MiB, "8.0"),
    "A100-80": GpuProfile("NVIDIA A100-SXM4-80GB", 81920 * MiB, "8.0"),
    "H100": GpuProfile("NVIDIA H100 80GB HBM3", 81559 * MiB, "9.0"),
    "H200": GpuProfile("NVIDIA H200", 143771 * MiB, "9.0"),
}


def make_gpu(kind: str = "T4", index: int = 0, free_bytes: int | None = None, used_by_others: int = 0,
             mig: bool | None = False, processes: list[GpuProcess] | None = None, visible: bool = True) -> GpuFact:
    p = GPUS[kind]
    reserved = 300 * MiB  # what NVML shows as used on an idle GPU
    free = free_bytes if free_bytes is not None else p.total_bytes - reserved - used_by_others
    spec = known_gpu(p.nvml_name, p.total_bytes)
    return GpuFact(
        index=index, name=p.nvml_name, memory_total_bytes=p.total_bytes, memory_free_bytes=free,
        memory_used_bytes=p.total_bytes - free, compute_capability=p.cc, mig_mode=mig,
        processes=list(processes or []), spec=spec.to_dict() if spec else None, visible=visible,
    )


def make_facts(
    gpu: str | None = "T4",
    *,
    gpus: list[GpuFact] | None = None,
    driver: str = "550.54.15",
    driver_cuda: str = "12.4",
    torch: str | None = "2.8.0+cu124",
    cuda_build: str | None = "12.4",
    cuda_available: bool | None = None,
    cuda_warning: str | None = None,
    triton: str | None = "3.4.0",
    triton_pin: str | None = "==3.4.0",
    transformers: str | None = "5.23.0",
    accelerate: str | None = "1.15.0",
    kernels: str | None = "0.18.2",
    window: tuple[str | None, str | None] = ("0.18.2", "0.19.0"),
    path: str = "mxfp4",
    reason: str | None = None,
    kernel_repo: str | None = "kernels-community/gpt-oss-triton-kernels",
    kernel_cached: bool = True,
    local_kernels: str | None = None,
    local_ok: bool | None = None,
    local_error: str | None = None,
    online_checked: bool = False,
    online_ok: bool | None = None,
    torchvision: str | None = None,
    torchvision_pin: str | None = None,
    torchaudio: str | None = None,
    torchaudio_pin: str | None = None,
    stale: list[StaleModule] | None = None,
    disk_free: int = 100 * 10**9,
    model_cached: bool = False,
    offline: bool = False,
    colab: bool = False,
    notebook: bool = False,
    env: dict[str, str] | None = None,
    system: str = "Linux",
    nvml_error: str | None = None,
) -> Facts:
    if gpus is None:
        gpus = [make_gpu(gpu)] if gpu else []
    has_gpu = any(g.visible for g in gpus)
    if cuda_available is None:
        cuda_available = has_gpu and cuda_build is not None
    devices = [{"name": g.name, "compute_capability": g.compute_capability, "memory_total_bytes": g.memory_total_bytes}
               for g in gpus if g.visible] if cuda_available else []

    def pkg(version: str | None, pins: dict[str, str] | None = None) -> PackageFact:
        return PackageFact(installed=version is not None, version=version, pins=dict(pins or {}) if version else {})

    packages = {
        "torch": pkg(torch, {"triton": triton_pin} if triton_pin else None),
        "triton": pkg(triton),
        "transformers": pkg(transformers),
        "accelerate": pkg(accelerate),
        "kernels": pkg(kernels),
        "torchvision": pkg(torchvision, {"torch": torchvision_pin} if torchvision_pin else None),
        "torchaudio": pkg(torchaudio, {"torch": torchaudio_pin} if torchaudio_pin else None),
        "nvidia-ml-py": pkg("12.575.51"),
        "huggingface-hub": pkg("0.35.0"),
        "safetensors": pkg("0.6.2"),
        "tokenizers": pkg("0.22.1"),
        "numpy": pkg("2.1.0"),
    }
    if reason is None:
        reason = {
            "mxfp4": f"transformers {transformers} keeps the experts in MXFP4 on cuda",
            "bf16": "MXFP4 quantization requires the `kernels` package. We will default to dequantizing the model to bf16.",
            "none": "transformers refuses to load the MXFP4 checkpoint here: Using mxfp4 requires Accelerate",
            "unknown": "the fresh Python process that asks torch and transformers gave no answer (it timed out after 90 s)",
        }[path]
    return Facts(
        platform=PlatformFacts(python="3.11.7", python_executable="/usr/bin/python3", system=system, release="6.1",
                               machine="x86_64", colab=colab, colab_release="release-colab_20250801" if colab else None,
                               notebook=notebook or colab),
        environment=EnvironmentFacts(variables=dict(env or {})),
        nvml=NvmlFacts(available=nvml_error is None and bool(gpus), error=nvml_error),
        gpus=gpus,
        driver=DriverFacts(version=driver, cuda_version=driver_cuda) if gpus else DriverFacts(error=nvml_error),
        torch=TorchFacts(installed=torch is not None, version=torch, cuda_build=cuda_build if torch else None,
                         cuda_available=bool(cuda_available and torch), device_count=len(devices), devices=devices,
                         cuda_warning=cuda_warning),
        packages=packages,
        transformers=TransformersFacts(installed=transformers is not None, kernels_min=window[0], kernels_max=window[1],
                                       kernel_repo=kernel_repo, kernel_version=None, triton_min="3.4.0"),
        mxfp4=Mxfp4Facts(path=path, reason=reason, device="cuda" if has_gpu else "cpu", transformers_version=transformers,
                         kernels_min=window[0], kernels_max=window[1]),
        kernel=KernelFacts(repo_id=kernel_repo, cached=kernel_cached,
                           cache_path="/root/.cache/huggingface/hub/models--x/snapshots/abc" if kernel_cached else None,
                           local_kernels=local_kernels, local_ok=local_ok, local_error=local_error,
                           local_path="/kernels/gpt-oss" if local_kernels else None,
                           online_checked=online_checked, online_ok=online_ok,
                           online_error=None if online_ok or not online_checked else "ConnectTimeout: timed out"),
        stale_modules=list(stale or []),
        disk=DiskFacts(cache_dir="/root/.cache/huggingface/hub", cache_dir_from="default", free_bytes=disk_free,
                       total_bytes=200 * 10**9, model_repo="openai/gpt-oss-20b", model_cached=model_cached,
                       model_cache_path="/root/.cache/huggingface/hub/models--openai--gpt-oss-20b/snapshots/abc" if model_cached else None,
                       model_cached_bytes=13_761_264_768 if model_cached else None, offline=offline),
    )


# --------------------------------------------------------------------------------------------
# An NVML double
# --------------------------------------------------------------------------------------------


class NVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801 - pynvml's name
    def __str__(self) -> str:
        return "NVML Shared Library Not Found"


class NVMLError_NotSupported(NVMLError):  # noqa: N801
    def __str__(self) -> str:
        return "Not Supported"


@dataclass
class FakeDevice:
    name: str = "Tesla T4"
    total: int = 15360 * MiB
    free: int = 15000 * MiB
    cc: tuple[int, int] = (7, 5)
    mig: int | None = None  # None: not supported
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    uuid: str = "GPU-00000000-1111-2222-3333-444444444444"


class FakeNvml:
    """Enough of pynvml for the probes: init/shutdown, driver, devices."""

    def __init__(self, devices: list[FakeDevice] | None = None, driver: str = "535.104.05", cuda: int = 12020,
                 missing_library: bool = False, bytes_names: bool = False):
        self.devices = devices if devices is not None else [FakeDevice()]
        self.driver, self.cuda = driver, cuda
        self.missing_library, self.bytes_names = missing_library, bytes_names
        self.inits = self.shutdowns = 0

    def _s(self, s: str) -> Any:
        return s.encode() if self.bytes_names else s

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        if self.missing_library:
            raise NVMLError_LibraryNotFound()
        self.inits += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> Any:  # noqa: N802
        return self._s(self.driver)

    def nvmlSystemGetCudaDriverVersion(self) -> int:  # noqa: N802
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeDevice:  # noqa: N802
        return self.devices[i]

    def nvmlDeviceGetName(self, h: FakeDevice) -> Any:  # noqa: N802
        return self._s(h.name)

    def nvmlDeviceGetUUID(self, h: FakeDevice) -> Any:  # noqa: N802
        return self._s(h.uuid)

    def nvmlDeviceGetMemoryInfo(self, h: FakeDevice) -> Any:  # noqa: N802
        return SimpleNamespace(total=h.total, free=h.free, used=h.total - h.free)

    def nvmlDeviceGetCudaComputeCapability(self, h: FakeDevice) -> tuple[int, int]:  # noqa: N802
        return h.cc

    def nvmlDeviceGetMigMode(self, h: FakeDevice) -> tuple[int, int]:  # noqa: N802
        if h.mig is None:
            raise NVMLError_NotSupported()
        return (h.mig, h.mig)

    def nvmlDeviceGetComputeProcesses(self, h: FakeDevice) -> list:  # noqa: N802
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in h.processes]
