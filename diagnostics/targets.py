"""What-if runtimes: this environment's installed packages, checked against another GPU and driver.

``gptoss check --target colab-t4`` (or ``--gpu NAME --driver VERSION``) keeps every installed
package as probed here and replaces only the GPU facts: the GPU's name, memory and compute
capability (from ``diagnostics.gpus``) and the driver with the newest CUDA it supports. torch's
view follows: a CUDA build the target driver can run sees the target GPU; a CPU build or one built
for a newer CUDA major does not. transformers' MXFP4 decision cannot be asked on a GPU that is not
here, so ``predict_mxfp4`` applies the rules of its Mxfp4 quantizer to the substituted facts.

Targets: the Colab default GPU runtime (googlecolab/backend-info, August 2026: driver 550.54.15,
CUDA 12.4; the same image serves the T4, L4 and A100 runtimes) and this project's H100/H200
machines (driver 580.159.04, CUDA 13.0, read with nvidia-smi on an H200 on 2026-11-30; the H100
is assumed to run the same driver). Memory totals are what NVML reports on those GPUs.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field

from diagnostics import gpus as gpu_table
from diagnostics.errors import UserError
from diagnostics.facts import DriverFacts, Facts, GpuFact, Mxfp4Facts
from diagnostics.models import gib
from diagnostics.versions import Pin, at_least, base_version, in_window, major_minor

MiB = 1024**2
IDLE_USED_BYTES = 300 * MiB  # what NVML shows as used on an idle GPU (CUDA context not counted)

# The minimum Linux driver of each CUDA toolkit (NVIDIA's CUDA release notes, table 3, "CUDA
# Toolkit and Corresponding Driver Versions"); a driver supports every CUDA up to the newest whose
# minimum it meets.
DRIVER_CUDA: tuple[tuple[str, str], ...] = (
    ("450.36.06", "11.0"), ("455.23.04", "11.1"), ("460.27.03", "11.2"), ("465.19.01", "11.3"),
    ("470.42.01", "11.4"), ("495.29.05", "11.5"), ("510.39.01", "11.6"), ("515.43.04", "11.7"),
    ("520.61.05", "11.8"), ("525.60.13", "12.0"), ("530.30.02", "12.1"), ("535.54.03", "12.2"),
    ("545.23.06", "12.3"), ("550.54.14", "12.4"), ("555.42.02", "12.5"), ("560.28.03", "12.6"),
    ("570.26", "12.8"), ("575.51.03", "12.9"), ("580.65.06", "13.0"), ("590.44.01", "13.1"),
)

COLAB_DRIVER = "550.54.15"
PROJECT_H200_DRIVER = "580.159.04"


@dataclass(frozen=True)
class TargetSpec:
    name: str  # colab-t4
    label: str  # "Colab T4 runtime"
    nvml_name: str  # what NVML calls the GPU
    memory_total_bytes: int
    driver: str
    colab: bool
    source: str


TARGETS: dict[str, TargetSpec] = {
    "colab-t4": TargetSpec("colab-t4", "Colab T4 runtime", "Tesla T4", 15360 * MiB, COLAB_DRIVER, True,
                           "googlecolab/backend-info (August 2026)"),
    "colab-l4": TargetSpec("colab-l4", "Colab L4 runtime", "NVIDIA L4", 23034 * MiB, COLAB_DRIVER, True,
                           "googlecolab/backend-info (August 2026); driver assumed as on the T4 runtime"),
    "colab-a100": TargetSpec("colab-a100", "Colab A100 runtime", "NVIDIA A100-SXM4-40GB", 40960 * MiB, COLAB_DRIVER, True,
                             "googlecolab/backend-info (August 2026); driver assumed as on the T4 runtime"),
    "h100": TargetSpec("h100", "H100 80GB", "NVIDIA H100 80GB HBM3", 81559 * MiB, PROJECT_H200_DRIVER, False,
                       "driver of this project's H200 machines, assumed for an H100"),
    "h200": TargetSpec("h200", "H200", "NVIDIA H200", 143771 * MiB, PROJECT_H200_DRIVER, False,
                       "nvidia-smi on this project's H200 machine, 2026-11-30"),
}


@dataclass
class Target:
    """The what-if that was applied; ``Facts.target`` and the report's ``target`` object."""

    name: str | None  # a TARGETS key, or None for --gpu/--driver alone
    label: str
    gpu: str
    memory_total_bytes: int | None
    compute_capability: str | None
    driver: str | None
    driver_cuda: str | None
    colab: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def cli_options(self) -> list[str]:
        """The ``gptoss check`` options that ask for this what-if again."""
        out = [f"--target {self.name}"] if self.name else ([f'--gpu "{self.gpu}"'] if self.gpu else [])
        spec = TARGETS.get(self.name or "")
        if self.driver and (spec is None or self.driver != spec.driver):
            out.append(f"--driver {self.driver}")
        return out

    def describe(self) -> str:
        mem = gib(self.memory_total_bytes) if self.memory_total_bytes else "memory ?"
        drv = f"driver {self.driver} (CUDA {self.driver_cuda})" if self.driver else "this machine's driver"
        return f"{self.label}: {self.gpu}, {mem}, compute capability {self.compute_capability or '?'}, {drv}"


def driver_cuda(version: str) -> str:
    """The newest CUDA a Linux driver supports (``550.54.15`` -> ``12.4``); a UserError with one
    sentence when the version is not a driver version or older than CUDA 11."""
    v = (version or "").strip()
    if not re.fullmatch(r"\d{3}(\.\d{1,3}){1,2}", v):
        raise UserError(f"--driver {version!r} is not an NVIDIA driver version; pass one like 550.54.15 "
                         "(nvidia-smi shows it).")
    best = None
    for minimum, cuda in DRIVER_CUDA:
        if _driver_key(v) >= _driver_key(minimum):
            best = cuda
    if best is None:
        raise UserError(f"--driver {v} predates CUDA 11 (driver 450.36.06), which no torch with gpt-oss "
                         "support runs on; pass a newer driver version.")
    return best


def _driver_key(v: str) -> tuple[int, ...]:
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def resolve_target(name: str | None = None, gpu: str | None = None, driver: str | None = None) -> Target | None:
    """``--target`` / ``--gpu`` / ``--driver`` -> a Target (None when none is given); a UserError
    with one sentence for a value that cannot be used."""
    if not name and not gpu and not driver:
        return None
    spec = None
    if name:
        spec = TARGETS.get(name.strip().lower())
        if spec is None:
            raise UserError(f"--target {name!r} is not known; pass one of {', '.join(TARGETS)} "
                             "(or --gpu NAME --driver VERSION).")
    notes: list[str] = []
    if spec is not None:
        label, nvml_name, total, drv, colab = spec.label, spec.nvml_name, spec.memory_total_bytes, spec.driver, spec.colab
        notes.append(f"{spec.name}: {spec.source}.")
    else:
        label, nvml_name, total, drv, colab = "", None, None, None, False
    if gpu:
        known = gpu_table.known_gpu(gpu)
        if known is None:
            raise UserError(f"--gpu {gpu!r} is not in the GPU table; pass a name such as T4, L4, A10G, "
                             "A100-SXM4-40GB, H100 80GB HBM3 or H200.")
        same = next((t for t in TARGETS.values() if gpu_table.known_gpu(t.nvml_name, t.memory_total_bytes) == known), None)
        nvml_name = gpu
        if same is not None:
            total = same.memory_total_bytes
        else:
            total = known.memory_gb * 10**9
            notes.append(f"{known.name}: nominal memory {known.memory_gb} GB from the datasheet (NVML shows a little less).")
        label = label or f"{known.name}"
    if driver:
        drv = driver.strip()
    cuda = driver_cuda(drv) if drv else None
    known = gpu_table.known_gpu(nvml_name, total) if nvml_name else None
    if nvml_name is None:
        label = "this machine's GPU"
    return Target(name=spec.name if spec else None, label=label, gpu=nvml_name or "", memory_total_bytes=total,
                  compute_capability=known.compute_capability if known else None, driver=drv, driver_cuda=cuda,
                  colab=colab, notes=notes)


# --------------------------------------------------------------------------------------------
# Applying a target to the facts
# --------------------------------------------------------------------------------------------


def torch_runs_on(cuda_build: str | None, driver_cuda_version: str | None) -> bool | None:
    """Whether a torch built for CUDA ``cuda_build`` runs on a driver supporting ``driver_cuda``:
    same major (newer minors run through CUDA minor-version compatibility, as Colab's own
    torch 2.11+cu128 does on driver 550 / CUDA 12.4). None when either is unknown."""
    b, d = major_minor(cuda_build), major_minor(driver_cuda_version)
    if b is None or d is None:
        return None
    return b[0] < d[0] or (b[0] == d[0])


def apply_target(facts: Facts, target: Target | None) -> Facts:
    """A copy of ``facts`` with the GPU facts of ``target``; packages untouched."""
    if target is None:
        return facts
    f = copy.deepcopy(facts)
    f.target = target.to_dict()
    if target.gpu:
        spec = gpu_table.known_gpu(target.gpu, target.memory_total_bytes)
        total = target.memory_total_bytes
        free = total - IDLE_USED_BYTES if total else None
        f.gpus = [GpuFact(index=0, name=target.gpu, memory_total_bytes=total, memory_free_bytes=free,
                          memory_used_bytes=IDLE_USED_BYTES if total else None,
                          compute_capability=target.compute_capability, mig_mode=False, processes=[],
                          spec=spec.to_dict() if spec else None, visible=True)]
        f.nvml.available, f.nvml.error = True, None
    if target.driver:
        f.driver = DriverFacts(version=target.driver, cuda_version=target.driver_cuda)
    # torch's view of the substituted GPU
    t = f.torch
    if f.gpus:
        runs = torch_runs_on(t.cuda_build, f.driver.cuda_version) if t.installed and t.cuda_build else False
        t.cuda_available = bool(runs)
        g = f.gpus[0]
        t.devices = [{"name": g.name, "compute_capability": g.compute_capability,
                      "memory_total_bytes": g.memory_total_bytes}] if runs else []
        t.device_count = len(t.devices)
        t.bf16_supported = (g.cc is not None and g.cc >= (8, 0)) if runs else None
        t.cuda_warning = None if runs else (
            f"what-if: torch {t.version} built for CUDA {t.cuda_build} cannot use a driver supporting CUDA "
            f"{f.driver.cuda_version}." if t.cuda_build else None)
        t.error = None if t.version else t.error
    f.mxfp4 = predict_mxfp4(f)
    return f


def predict_mxfp4(f: Facts) -> Mxfp4Facts:
    """transformers' Mxfp4 quantizer rules (CUDA) applied to the facts: what it would decide on
    the target GPU. Order as in ``Mxfp4HfQuantizer.validate_environment``."""
    old = f.mxfp4
    tv = f.version("transformers")
    low = old.kernels_min or f.transformers.kernels_min
    high = old.kernels_max or f.transformers.kernels_max
    out = Mxfp4Facts(path="unknown", device="cuda", transformers_version=tv, kernels_min=low, kernels_max=high,
                     kernel_requested=old.kernel_requested, stage="what-if")
    g = f.gpus[0] if f.gpus else None

    def say(path: str, reason: str) -> Mxfp4Facts:
        out.path, out.reason = path, "what-if (predicted, not asked): " + reason
        return out

    if not tv:
        return say("none", "transformers is not installed.")
    if at_least(tv, "4.55.0") is False:
        return say("none", f"transformers {tv} predates gpt-oss.")
    if not f.package("accelerate").installed:
        return say("none", "Using mxfp4 requires Accelerate: `pip install accelerate`.")
    if g is None:
        out.device = "cpu"
        return say("bf16", "no GPU: MXFP4 inference on CPU requires use_kernels=True, so the experts are dequantized to bf16.")
    if not f.torch.cuda_available:
        return say("none", f"torch {f.torch.version} cannot use the {g.name}.")
    if g.cc is None or g.cc < (7, 5):
        return say("bf16", "MXFP4 quantization is only supported on GPUs with compute capability >= 7.5. "
                           "We will default to dequantizing the model to bf16.")
    triton_min = f.transformers.triton_min or "3.4.0"
    triton = f.package("triton")
    torch_pin = next(iter(f.package("torch").pins.values()), None)
    if not triton.installed or at_least(base_version(triton.version), triton_min) is False:
        return say("bf16", f"MXFP4 quantization requires Triton >= {triton_min}. We will default to dequantizing "
                           "the model to bf16.")
    if torch_pin and Pin("triton", torch_pin).satisfied_by(triton.version) is False:
        out.warnings.append(f"triton {triton.version} does not match torch's pin triton{torch_pin}: the kernels "
                            "may fail to compile.")
    kv = f.version("kernels")
    if not kv or in_window(kv, low, high) is False:
        return say("bf16", f"MXFP4 quantization requires the `kernels` package: Please install a compatible version "
                           f"({low} <= version < {high}). We will default to dequantizing the model to bf16.")
    if tv and at_least(tv, "4.55.2") is False and g.cc == (7, 5):
        return say("bf16", f"transformers {tv} has no MXFP4 kernels for compute capability 7.5.")
    return say("mxfp4", f"transformers {tv} keeps the experts in MXFP4 on cuda ({g.name}).")
