"""Checks: pure functions from ``Facts`` to a ``CheckResult`` (pass / warn / fail / skip, a message
saying what was found, and the exact fix), then one ``Verdict``.

No check touches the machine; they only read facts, so each branch is tested by feeding facts.
Status meanings: ``fail`` = gpt-oss will not run (or not correctly) until fixed; ``warn`` = it runs,
but slower, on the bf16 fallback, or with a risk worth knowing; ``skip`` = does not apply here or
could not be verified (e.g. the hub without ``--online``); ``pass`` = fine.

Memory fit (``check_memory``): resident need = weights after load on the predicted path
(measured for 20b: 13.0 GiB MXFP4, 39.1 GiB bf16; derived for 120b, see ``diagnostics.models``)
+ the KV cache of ``DEFAULT_CONTEXT_TOKENS`` tokens at batch 1 in bf16 + the CUDA context
(~0.3-0.5 GiB outside torch's allocator but inside NVML's "used"; counted as 0.5 GiB). Batch-1
decode activations are a few MiB and not counted; a long prompt's prefill needs more with eager
attention. Fails when the resident need exceeds the free memory. Loading also peaks above the
resident size: by 2.2 GiB (MXFP4) and 3.8 GiB (bf16) for 20b on an H100 (DESIGN.md), scaled by
expert size for 120b. That peak depends on how transformers converts tensors while loading and
was not measured on other GPUs, so exceeding it only warns (the load may run out of memory).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Callable

from diagnostics import ecosystem
from diagnostics.facts import Facts, GpuFact
from diagnostics.models import GiB, ModelSpec
from diagnostics.versions import Pin, at_least, base_version, in_window, major_minor

STATUSES = ("pass", "warn", "fail", "skip")
PATHS = ("mxfp4", "bf16", "none", "unknown")

DEFAULT_CONTEXT_TOKENS = 4096
CUDA_CONTEXT_BYTES = int(0.5 * GiB)
DISK_MARGIN = 1.05  # checkpoint size + 5 % (metadata, tokenizer, partial downloads)
DISK_HEADROOM_BYTES = 5 * 10**9

GPT_OSS_MIN_TRANSFORMERS = "4.55.0"
# MXFP4 on compute capability 7.5 (T4) came with transformers v4.55.2, through the hub's
# triton kernels: https://github.com/huggingface/transformers/pull/39940, as cited in
# https://github.com/vllm-project/vllm/issues/23203 ("transformers v4.55.2 includes support for
# mxfp4 on compute capability 7.5"). Release notes not re-read here; the fresh-subprocess verdict
# (check_mxfp4) is the authority for the installed version either way.
MXFP4_CC75_MIN_TRANSFORMERS = "4.55.2"
TRITON_MIN_DEFAULT = "3.4.0"  # DESIGN.md; the installed transformers' own figure is preferred

# PyTorch's CUDA wheel indexes (download.pytorch.org/whl/<tag>), for fixes only.
TORCH_CUDA_TAGS = ((11, 8), (12, 1), (12, 4), (12, 6), (12, 8), (12, 9), (13, 0))

PATH_WORDS = {"mxfp4": "MXFP4 kernels", "bf16": "bf16 (dequantized)", "none": "none", "unknown": "unknown"}


@dataclass
class CheckResult:
    id: str
    title: str
    status: str  # pass | warn | fail | skip
    message: str
    fix: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    status: str  # pass | warn | fail
    path: str  # mxfp4 | bf16 | none | unknown
    reason: str
    summary: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MemoryEstimate:
    model: str
    path: str
    context_tokens: int
    weights_bytes: int
    kv_cache_bytes: int
    cuda_context_bytes: int
    needed_bytes: int  # resident: weights + KV cache + CUDA context
    load_transient_bytes: int  # extra at the peak of loading (measured for 20b on an H100)
    load_peak_bytes: int  # needed + transient
    free_bytes: int | None = None
    gpu: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Context:
    """What the checks need besides the facts."""

    model: str = "openai/gpt-oss-20b"
    spec: ModelSpec | None = None
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    memory: MemoryEstimate | None = field(default=None)
    attn: str | None = None  # the requested attn_implementation; None: transformers' default
    today: date | None = None  # for the age of the version table; None: today


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def gib(n: int | float | None) -> str:
    return "?" if n is None else f"{n / GiB:.1f} GiB"


def gb(n: int | float | None) -> str:
    return "?" if n is None else f"{n / 1e9:.1f} GB"


def visible_gpus(f: Facts) -> list[GpuFact]:
    return [g for g in f.gpus if g.visible]


def primary_gpu(f: Facts) -> GpuFact | None:
    """The GPU the model lands on first (cuda:0): the first one CUDA_VISIBLE_DEVICES shows.

    Without NVML, torch's view of device 0 stands in for it (no free-memory figure then)."""
    gpus = visible_gpus(f)
    if gpus:
        return gpus[0]
    if f.torch.cuda_available and f.torch.devices:
        d = f.torch.devices[0]
        return GpuFact(index=0, name=d.get("name", "GPU"), memory_total_bytes=d.get("memory_total_bytes"),
                       compute_capability=d.get("compute_capability"))
    return None


def first_sentence(text: str | None) -> str:
    """The first sentence of a (transformers) message, ending with a full stop."""
    if not text:
        return "no reason given."
    head = re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s+(?=[A-Z])", text.strip(), maxsplit=1)[0].strip()
    return head if head.endswith((".", "!", "?")) else head + "."


def gpu_present(f: Facts) -> bool:
    return primary_gpu(f) is not None


def gpu_label(g: GpuFact | None) -> str:
    return g.name if g else "no GPU"


def _cc(f: Facts) -> tuple[int, int] | None:
    g = primary_gpu(f)
    return g.cc if g else None


def kernels_window(f: Facts) -> tuple[str | None, str | None]:
    """The kernels window of the installed transformers: its own answer, else its source."""
    low = f.mxfp4.kernels_min or f.transformers.kernels_min
    high = f.mxfp4.kernels_max or f.transformers.kernels_max
    return low, high


def index_words(f: Facts, name: str = "kernels") -> str:
    """Where the released versions of ``name`` come from, for messages."""
    if ecosystem.source_of(f.index, name) == "pypi":
        return "PyPI, asked " + (f.index.checked_at or "now")[:10]
    return f"the table of {ecosystem.TABLE_DATE}"


def working_pair(f: Facts) -> ecosystem.Pair | None:
    """The newest transformers + kernels that install together and keep MXFP4 (4.55.2+ on a T4)."""
    return ecosystem.newest_working_pair(f.index, at_least=MXFP4_CC75_MIN_TRANSFORMERS)


def pair_command(pair: ecosystem.Pair, *extra: str) -> str:
    return " ".join([f'pip install "transformers=={pair.transformers}" "kernels=={pair.kernels}"', *extra])


def kernels_fix(f: Facts) -> str:
    """A command that installs: the newest released kernels inside the installed transformers'
    window, or, when no release is inside it, the newest transformers + kernels pair that works."""
    low, high = kernels_window(f)
    k = ecosystem.newest_in(ecosystem.released(f.index, "kernels"), low, high)
    if k:
        return f'pip install "kernels=={k}"'
    if low or high:
        pair = working_pair(f)
        if pair:
            return pair_command(pair) + f"   # no kernels{ecosystem.window_text(low, high)} is released"
    return "pip install -U kernels"


def triton_fix(pin_name: str, pin: str, f: Facts) -> str:
    """``pip install "triton==X"`` with X the newest released version the pin accepts."""
    if pin_name == "triton":
        v = ecosystem.newest_matching(ecosystem.released(f.index, "triton"), pin)
        if v:
            return f'pip install "triton=={v}"'
    return f'pip install "{pin_name}{pin}"'


def torch_index_tag(cuda: str | None) -> str | None:
    """The newest PyTorch CUDA wheel tag a driver supporting CUDA ``cuda`` can run."""
    mm = major_minor(cuda)
    if mm is None:
        return None
    same_major = [t for t in TORCH_CUDA_TAGS if t[0] == mm[0]]
    ok = [t for t in same_major if t <= mm]
    if ok:
        major, minor = max(ok)
    elif same_major and mm[0] >= 11:  # CUDA >= 11 runs newer minors of its major (minor-version compatibility)
        major, minor = min(same_major)
    else:
        return None
    return f"cu{major}{minor}"


def torch_install_fix(f: Facts, exact_only: bool = False) -> str:
    """A torch this driver runs: a release known on a CUDA index of the driver's major (with its
    version pinned, so pip cannot pick one past what the driver supports), else the index alone."""
    choice = ecosystem.torch_for_driver(f.driver.cuda_version, exact_only=exact_only)
    if choice:
        build, tag = choice
        where = f" --index-url {ecosystem.TORCH_INDEX_URL.format(tag=tag)}" if tag else ""
        return f'pip install "torch=={build.version}"{where}'
    tag = torch_index_tag(f.driver.cuda_version)
    if tag:
        return f"pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/{tag}"
    return "pip install --force-reinstall torch  (a CUDA build: https://pytorch.org/get-started/locally/)"


def restart_fix(f: Facts) -> str:
    if f.platform.colab:
        return "Restart the runtime (Colab: Runtime > Restart session), then run the check again."
    if f.platform.notebook:
        return "Restart the notebook kernel, then run the check again."
    return "Restart the Python process, then run the check again."


def _r(id_: str, title: str, status: str, message: str, fix: str | None = None) -> CheckResult:
    assert status in STATUSES, status
    return CheckResult(id_, title, status, message, fix)


# --------------------------------------------------------------------------------------------
# GPU
# --------------------------------------------------------------------------------------------

NO_GPU_FIX = (
    "In Colab: Runtime > Change runtime type > a GPU (T4 or better), then run this again. "
    "Elsewhere: use a machine with an NVIDIA GPU and driver (`nvidia-smi` must list it)."
)


def check_gpu(f: Facts, ctx: Context) -> CheckResult:
    t = "GPU"
    shown = visible_gpus(f)
    if shown:
        g = shown[0]
        others = f" (+{len(shown) - 1} more visible)" if len(shown) > 1 else ""
        drv = f"; driver {f.driver.version}, CUDA {f.driver.cuda_version or '?'}" if f.driver.version else ""
        return _r("gpu", t, "pass",
                  f"{g.name}{others}: {gib(g.memory_total_bytes)} total, {gib(g.memory_free_bytes)} free, "
                  f"compute capability {g.compute_capability or '?'}{drv}.")
    if f.gpus:
        cvd = f.environment.variables.get("CUDA_VISIBLE_DEVICES", "")
        return _r("gpu", t, "fail",
                  f"NVML sees {len(f.gpus)} GPU(s) ({', '.join(g.name for g in f.gpus)}) but CUDA_VISIBLE_DEVICES={cvd!r} hides them all.",
                  "unset CUDA_VISIBLE_DEVICES  (or set it to a listed index, e.g. CUDA_VISIBLE_DEVICES=0)")
    if f.torch.cuda_available and f.torch.devices:
        d = f.torch.devices[0]
        return _r("gpu", t, "warn",
                  f"torch sees {d.get('name')} but NVML cannot be read ({f.nvml.error or 'unknown error'}): "
                  "free memory, MIG mode and other processes are unknown.",
                  "pip install -U nvidia-ml-py")
    err = f.nvml.error or ""
    if "LibraryNotFound" in err or "Shared Library Not Found" in err:
        why = "the NVIDIA driver is not installed (NVML library not found)"
    elif err:
        why = f"NVML: {err}"
    else:
        why = "NVML lists no device"
    torch_part = "torch is not installed" if not f.torch.installed else "torch sees no CUDA device"
    return _r("gpu", t, "fail", f"No NVIDIA GPU found: {why}, and {torch_part}.", NO_GPU_FIX)


def check_compute_capability(f: Facts, ctx: Context) -> CheckResult:
    t = "Compute capability"
    g = primary_gpu(f)
    if g is None:
        return _r("gpu.compute_capability", t, "skip", "No GPU.")
    cc = g.cc
    if cc is None:
        return _r("gpu.compute_capability", t, "warn", f"The compute capability of {g.name} could not be read.")
    if cc < (7, 5):
        return _r("gpu.compute_capability", t, "warn",
                  f"{g.name} has compute capability {g.compute_capability}: no MXFP4 kernels, so transformers "
                  "dequantizes the experts to bf16 (gpt-oss-20b then needs ~39 GiB).",
                  "Use a GPU with compute capability >= 7.5 (T4, L4, A10, A100, H100, ...).")
    return _r("gpu.compute_capability", t, "pass", f"{g.name}: {g.compute_capability}, enough for the MXFP4 kernels.")


def check_bf16(f: Facts, ctx: Context) -> CheckResult:
    t = "Native bf16"
    g = primary_gpu(f)
    if g is None or g.cc is None:
        return _r("gpu.bf16", t, "skip", "No GPU." if g is None else "Compute capability unknown.")
    if g.cc < (8, 0):
        return _r("gpu.bf16", t, "warn",
                  f"{g.name} (compute capability {g.compute_capability}) has no native bf16: gpt-oss's bf16 "
                  "layers (attention, router, lm_head) run emulated and slower.",
                  "Nothing to install; a GPU with compute capability >= 8.0 (L4, A10, A100, H100) runs bf16 natively.")
    return _r("gpu.bf16", t, "pass", f"{g.name} runs bf16 natively.")


def check_mig(f: Facts, ctx: Context) -> CheckResult:
    t = "MIG mode"
    shown = visible_gpus(f)
    if not shown:
        return _r("gpu.mig", t, "skip", "No GPU read through NVML.")
    on = [g for g in shown if g.mig_mode]
    if on:
        g = on[0]
        return _r("gpu.mig", t, "warn",
                  f"MIG is enabled on GPU {g.index} ({g.name}): CUDA sees a MIG slice with only part of the "
                  "memory and bandwidth; the memory figures here are for the whole GPU.",
                  f"Use a whole GPU, or (admin, no jobs running) `sudo nvidia-smi -i {g.index} -mig 0` and reset the GPU.")
    return _r("gpu.mig", t, "pass", "MIG is off (or not supported) on the visible GPU(s).")


def check_processes(f: Facts, ctx: Context) -> CheckResult:
    t = "Other processes on the GPU"
    shown = visible_gpus(f)
    if not shown:
        return _r("gpu.processes", t, "skip", "No GPU read through NVML.")
    others = [(g, p) for g in shown for p in g.processes if not p.this_process]
    mine = [(g, p) for g in shown for p in g.processes if p.this_process]
    if others:
        held = sum(p.used_bytes or 0 for _, p in others)
        listing = ", ".join(
            f"pid {p.pid}{' ' + p.name if p.name else ''} {gib(p.used_bytes) if p.used_bytes is not None else '(memory unknown)'} on GPU {g.index}"
            for g, p in others[:5]
        )
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        return _r("gpu.processes", t, "warn",
                  f"{len(others)} other process(es) hold {gib(held)} of GPU memory ({listing}{more}): less memory "
                  "for the model, and benchmark numbers shared with them.",
                  "Stop them (`nvidia-smi` lists them; `kill <pid>`), or restart the runtime.")
    if mine:
        held = sum(p.used_bytes or 0 for _, p in mine)
        return _r("gpu.processes", t, "warn",
                  f"This Python process already holds {gib(held)} on the GPU (a model loaded earlier?).",
                  "del model; import gc; gc.collect(); torch.cuda.empty_cache()   # or restart the runtime")
    return _r("gpu.processes", t, "pass", "No other process uses the GPU.")


# --------------------------------------------------------------------------------------------
# torch, driver, triton
# --------------------------------------------------------------------------------------------


def check_torch(f: Facts, ctx: Context) -> CheckResult:
    t = "torch"
    tf = f.torch
    if not tf.installed:
        return _r("torch", t, "fail", "torch is not installed (or not importable): transformers cannot run gpt-oss.",
                  torch_install_fix(f) if gpu_present(f) else "pip install torch")
    if tf.error and not tf.version:
        return _r("torch", t, "fail", f"torch fails to import in a fresh Python: {tf.error}", torch_install_fix(f))
    build = f"CUDA {tf.cuda_build}" if tf.cuda_build else ("ROCm " + tf.hip_build if tf.hip_build else "CPU-only build")
    label = f"torch {tf.version} ({build})"
    nvml_gpu = bool(visible_gpus(f))
    if not nvml_gpu and not tf.cuda_available:
        return _r("torch", t, "skip", f"{label}; no GPU to use.")
    if not tf.cuda_build and not tf.hip_build:
        return _r("torch", t, "fail", f"{label} cannot use the GPU: it is a CPU-only build.", torch_install_fix(f))
    if not tf.cuda_available:
        why = tf.cuda_warning or tf.error or "torch.cuda.is_available() is False"
        return _r("torch", t, "fail", f"{label} cannot use the GPU: {why}",
                  "See the driver check below; if it passes, check CUDA_VISIBLE_DEVICES and reinstall torch: "
                  + torch_install_fix(f))
    names = ", ".join(f"{d.get('name')} ({d.get('compute_capability')})" for d in tf.devices) or "?"
    return _r("torch", t, "pass", f"{label} sees {tf.device_count} GPU(s): {names}.")


def check_driver(f: Facts, ctx: Context) -> CheckResult:
    t = "Driver vs torch's CUDA"
    drv, build = f.driver.cuda_version, f.torch.cuda_build
    if not gpu_present(f):
        return _r("torch.driver", t, "skip", "No GPU.")
    if not build:
        return _r("torch.driver", t, "skip", "torch has no CUDA build to compare.")
    if not drv:
        return _r("torch.driver", t, "skip", f"The driver's CUDA version is unknown ({f.driver.error or 'NVML unavailable'}).")
    d, b = major_minor(drv), major_minor(build)
    if d is None or b is None:
        return _r("torch.driver", t, "skip", f"Cannot compare driver CUDA {drv!r} with torch's {build!r}.")
    older = f"Upgrade the NVIDIA driver to one that supports CUDA {build}, or install a torch build this driver runs: "
    if d[0] < b[0]:
        return _r("torch.driver", t, "fail",
                  f"Driver {f.driver.version} supports CUDA {drv}, but torch {f.torch.version} is built for CUDA {build}: "
                  "torch cannot use the GPU with this driver.",
                  older + torch_install_fix(f))
    if d < b:
        return _r("torch.driver", t, "warn",
                  f"Driver {f.driver.version} supports CUDA {drv}, older than torch's CUDA {build}: torch runs through "
                  "CUDA minor-version compatibility, but Triton-compiled kernels (MXFP4, torch.compile) can fail "
                  "with 'unsupported toolchain'.",
                  older + torch_install_fix(f, exact_only=True))
    return _r("torch.driver", t, "pass", f"Driver {f.driver.version} supports CUDA {drv} >= torch's CUDA {build}.")


def check_triton(f: Facts, ctx: Context) -> CheckResult:
    t = "triton"
    torch_pkg, triton = f.package("torch"), f.package("triton")
    minimum = f.transformers.triton_min or TRITON_MIN_DEFAULT
    if not torch_pkg.installed:
        return _r("triton", t, "skip", "torch is not installed.")
    pin_name, pin = next(iter(torch_pkg.pins.items()), (None, None))
    if pin:
        p = Pin(pin_name, pin)
        if not triton.installed:
            return _r("triton", t, "fail",
                      f"torch {torch_pkg.version} requires {pin_name}{pin}, which is not installed: torch.compile and "
                      "the MXFP4 kernels cannot run.",
                      triton_fix(pin_name, pin, f))
        if p.satisfied_by(triton.version) is False:
            return _r("triton", t, "fail",
                      f"triton {triton.version} is installed but torch {torch_pkg.version} requires {pin_name}{pin}: "
                      "a mismatched triton breaks torch.compile and the MXFP4 kernels.",
                      triton_fix(pin_name, pin, f))
        if at_least(base_version(triton.version), minimum) is False:
            return _r("triton", t, "warn",
                      f"triton {triton.version} matches torch {torch_pkg.version}, but MXFP4 needs triton >= {minimum}: "
                      "the experts fall back to bf16.",
                      "pip install -U torch   # a newer torch brings its matching triton")
        return _r("triton", t, "pass",
                  f"triton {triton.version}: the version torch {torch_pkg.version} requires ({pin_name}{pin}); MXFP4 needs >= {minimum}.")
    # torch declares no triton (CPU build, macOS, Windows)
    if not gpu_present(f):
        state = f"triton {triton.version}" if triton.installed else "triton is not installed"
        return _r("triton", t, "skip", f"{state}; torch {torch_pkg.version} does not require it; not needed without a GPU.")
    if not triton.installed:
        return _r("triton", t, "warn",
                  f"triton is not installed: MXFP4 needs triton >= {minimum}, so the experts fall back to bf16.",
                  f'pip install "triton>={minimum}"')
    if at_least(base_version(triton.version), minimum) is False:
        return _r("triton", t, "warn", f"triton {triton.version} < {minimum}: the experts fall back to bf16.",
                  f'pip install "triton>={minimum}"')
    return _r("triton", t, "pass", f"triton {triton.version} (torch declares no pin); MXFP4 needs >= {minimum}.")


# --------------------------------------------------------------------------------------------
# transformers, accelerate, kernels, the MXFP4 verdict, the kernel repo
# --------------------------------------------------------------------------------------------


def check_transformers(f: Facts, ctx: Context) -> CheckResult:
    t = "transformers"
    v = f.version("transformers")
    pair = working_pair(f)
    fix = pair_command(pair) if pair else "pip install -U transformers"
    if not v:
        return _r("transformers", t, "fail", "transformers is not installed.", fix)
    if at_least(v, GPT_OSS_MIN_TRANSFORMERS) is False:
        return _r("transformers", t, "fail",
                  f"transformers {v} predates gpt-oss (it needs >= {GPT_OSS_MIN_TRANSFORMERS}).", fix)
    cc = _cc(f)
    if cc == (7, 5) and at_least(v, MXFP4_CC75_MIN_TRANSFORMERS) is False:
        return _r("transformers", t, "warn",
                  f"transformers {v} has no MXFP4 kernels for compute capability 7.5 (added in "
                  f"{MXFP4_CC75_MIN_TRANSFORMERS}): the experts fall back to bf16 on this GPU.", fix)
    return _r("transformers", t, "pass", f"transformers {v} supports gpt-oss (>= {GPT_OSS_MIN_TRANSFORMERS}).")


def check_accelerate(f: Facts, ctx: Context) -> CheckResult:
    t = "accelerate"
    v = f.version("accelerate")
    if not v:
        return _r("accelerate", t, "fail",
                  "accelerate is not installed: from_pretrained(device_map='auto') and the MXFP4 quantizer need it.",
                  "pip install -U accelerate")
    return _r("accelerate", t, "pass", f"accelerate {v}.")


def check_kernels(f: Facts, ctx: Context) -> CheckResult:
    t = "kernels version"
    v = f.version("kernels")
    low, high = kernels_window(f)
    tv = f.version("transformers") or "?"
    window = f"{low} <= kernels < {high}" if low and high else (f"kernels >= {low}" if low else None)
    has_gpu = gpu_present(f)
    if not v:
        msg = "kernels is not installed" + (f"; transformers {tv} wants {window}" if window else "") + _unreleased(f)
        if not has_gpu:
            return _r("kernels", t, "skip", msg + "; not needed without a GPU.")
        return _r("kernels", t, "warn", msg + ": the MXFP4 experts are silently dequantized to bf16.", kernels_fix(f))
    if not window:
        return _r("kernels", t, "pass", f"kernels {v}; transformers {tv} declares no version window.")
    inside = in_window(v, low, high)
    if inside is False:
        msg = f"kernels {v} is outside the window transformers {tv} declares ({window})" + _unreleased(f)
        if not has_gpu:
            return _r("kernels", t, "skip", msg + "; not needed without a GPU.", kernels_fix(f))
        return _r("kernels", t, "warn", msg + ": the MXFP4 experts are silently dequantized to bf16.", kernels_fix(f))
    return _r("kernels", t, "pass", f"kernels {v} is inside the window transformers {tv} declares ({window}).")


def _unreleased(f: Facts) -> str:
    """', and no kernels release is inside it (...); the newest pair that works: ...' or ''."""
    low, high = kernels_window(f)
    released = ecosystem.released(f.index, "kernels")
    if not (low or high) or ecosystem.newest_in(released, low, high):
        return ""
    pair = working_pair(f)
    text = (f", and no kernels release is inside it (newest released: {released[-1] if released else '?'}, "
            f"per {index_words(f)})")
    if pair:
        text += f"; the newest pair that works is transformers {pair.transformers} + kernels {pair.kernels}"
    return text


def _fallback_fix(f: Facts, ctx: Context) -> str | None:
    """The fix for the bf16 fallback: whichever prerequisite transformers complained about."""
    reason = (f.mxfp4.reason or "").lower()
    if "compute capability" in reason or "cuda/xpu" in reason or "requires a gpu" in reason:
        return NO_GPU_FIX if not gpu_present(f) else "Use a GPU with compute capability >= 7.5 (T4, L4, A10, A100, H100, ...)."
    if "triton" in reason:
        return check_triton(f, ctx).fix or f'pip install "triton>={f.transformers.triton_min or TRITON_MIN_DEFAULT}"'
    if "kernels" in reason:
        return kernels_fix(f)
    if "use_kernels" in reason or f.mxfp4.device == "cpu":
        return NO_GPU_FIX
    return None


def check_mxfp4(f: Facts, ctx: Context) -> CheckResult:
    t = "MXFP4 or bf16"
    m = f.mxfp4
    tv = m.transformers_version or f.version("transformers") or "?"
    if not gpu_present(f):
        said = f" It says: {first_sentence(m.reason)}" if m.reason else ""
        return _r("mxfp4", t, "skip",
                  f"No GPU here: transformers {tv} would put gpt-oss on the {m.path} path on {m.device or 'the CPU'}.{said}")
    if m.path == "mxfp4":
        kernel = f" with the hub kernel {f.kernel.repo_id}" if f.kernel.repo_id else ""
        return _r("mxfp4", t, "pass", f"transformers {tv} keeps the experts in MXFP4 on {m.device or 'cuda'}{kernel}.")
    if m.path == "bf16":
        size = f" (~{gib(ctx.spec.load_bytes('bf16'))} for {ctx.spec.name})" if ctx.spec else ""
        return _r("mxfp4", t, "warn",
                  f"transformers {tv} will silently dequantize the experts to bf16{size}. It says: {m.reason}",
                  _fallback_fix(f, ctx))
    if m.path == "none":
        fix = _fallback_fix(f, ctx)
        if fix is None and not f.torch.cuda_available:
            fix = "Fix torch first (see the torch and driver checks): " + torch_install_fix(f)
        return _r("mxfp4", t, "fail", f"transformers cannot load gpt-oss here: {m.reason}",
                  fix or "pip install -U transformers accelerate")
    return _r("mxfp4", t, "warn", f"Could not ask transformers: {m.reason or m.error or 'no answer'}",
              'python -c "import torch, transformers"   # shows the import error')


def check_kernel_repo(f: Facts, ctx: Context) -> CheckResult:
    k = f.kernel
    t = "MXFP4 kernel"
    name = k.repo_id or "the MXFP4 kernel"
    if k.local_kernels and k.local_ok is False:
        return _r("kernel.hub", t, "fail",
                  f"LOCAL_KERNELS maps {name} to {k.local_path}, but {k.local_error}: loading the kernel will fail.",
                  f"export LOCAL_KERNELS={k.repo_id}=/folder/with/metadata.json   # the folder holding metadata.json "
                  "and the package folder")
    if f.mxfp4.path != "mxfp4":
        return _r("kernel.hub", t, "skip", f"{name}: not used, the experts will not run on MXFP4 kernels.")
    if not k.repo_id:
        return _r("kernel.hub", t, "warn", k.error or "The installed transformers names no kernel repo.")
    if k.local_ok:
        return _r("kernel.hub", t, "pass", f"LOCAL_KERNELS points {name} at {k.local_path} (metadata.json found).")
    if k.cached:
        return _r("kernel.hub", t, "pass", f"{name} is cached at {k.cache_path}.")
    if k.online_checked:
        if k.online_ok:
            return _r("kernel.hub", t, "pass", f"{name} is not cached; the hub serves it, and transformers downloads it on first load.")
        return _r("kernel.hub", t, "fail",
                  f"{name} is not cached, and the hub does not answer for it ({k.online_error}): loading the MXFP4 path will fail.",
                  f"Check the network (and HF_ENDPOINT), or copy the kernel here and export LOCAL_KERNELS={k.repo_id}=/path")
    if f.disk.offline:
        return _r("kernel.hub", t, "fail",
                  f"HF_HUB_OFFLINE is set and {name} is neither cached nor in LOCAL_KERNELS: loading the MXFP4 path will fail.",
                  f"unset HF_HUB_OFFLINE   # or: export LOCAL_KERNELS={k.repo_id}=/path/to/local/copy")
    return _r("kernel.hub", t, "skip",
              f"{name} is not cached yet; transformers downloads it from the hub on first load (not verified: run with --online).")


def check_kernel_build(f: Facts, ctx: Context) -> CheckResult:
    """Point 4: does the kernel repo hold a build the installed torch would load?"""
    from diagnostics import kernel_builds

    k, t = f.kernel, "Kernel build for this torch"
    name = k.repo_id or "the MXFP4 kernel"
    if not k.repo_id:
        return _r("kernel.build", t, "skip", "The installed transformers names no hub kernel.")
    if not f.torch.installed or not f.torch.cuda_build:
        return _r("kernel.build", t, "skip", f"torch {f.torch.version or '(none)'} is not a CUDA build: no kernel build applies.")
    p = f.platform
    system = kernel_builds.system_of(f.torch.version, f.torch.cuda_build, f.torch.cxx11_abi, p.machine, p.system)
    wanted = system.wanted()
    py = f"; Python {p.python} (builds are not per Python version)" if p.python else ""
    if k.variants is None:
        if k.local_ok and k.variants_source is None:
            return _r("kernel.build", t, "pass",
                      f"LOCAL_KERNELS points at a package folder without build variants: loaded as is for torch "
                      f"{f.torch.version}{py}.")
        where = "its cached copy holds no build/ folder" if k.cached else "it is not cached"
        why = f"; {k.variants_error}" if k.variants_error else ""
        ask = "" if k.online_checked else " (run with --online to ask the hub)"
        return _r("kernel.build", t, "skip",
                  f"{name}'s builds are not known here ({where}{why}); this torch looks for build/{wanted}{ask}.")
    accepted, rejected = kernel_builds.match(k.variants, system)
    src = {"hub": "the hub lists", "cache": "the cached copy holds", "local": "LOCAL_KERNELS holds"}.get(
        k.variants_source or "", "there are")
    if accepted:
        return _r("kernel.build", t, "pass",
                  f"{src} {len(k.variants)} build(s) of {name}; build/{accepted[0]} fits torch {f.torch.version} "
                  f"(CUDA {f.torch.cuda_build}){py}.")
    built = kernel_builds.torch_versions_built(k.variants)
    covers = f" (torch {', '.join(built)})" if built else ""
    msg = (f"{src} {len(k.variants)} build(s) of {name}{covers}, none for torch {f.torch.version} (CUDA "
           f"{f.torch.cuda_build}, looking for build/{wanted}): loading the MXFP4 path fails with 'does not have build'.")
    choice = ecosystem.torch_for_driver(
        f.driver.cuda_version,
        accept=lambda b: bool(kernel_builds.match(
            k.variants, kernel_builds.system_of(b.version, b.pypi_cuda, system.cxx11, p.machine, p.system))[0]
            or any(kernel_builds.match(k.variants, kernel_builds.system_of(
                b.version, f"{tag[2:-1]}.{tag[-1]}", system.cxx11, p.machine, p.system))[0] for tag in b.cuda_indexes)))
    fix = None
    if choice:
        b, tag = choice
        fix = f'pip install "torch=={b.version}"' + (f" --index-url {ecosystem.TORCH_INDEX_URL.format(tag=tag)}" if tag else "")
    status = "fail" if f.mxfp4.path == "mxfp4" else "warn"
    return _r("kernel.build", t, status, msg, fix or "Install a torch the kernel has a build for (see the list above).")


# Attention implementations transformers maps to the Hopper-only flash attention 3 kernel for gpt-oss
FLASH_REQUESTS = ("flash_attention_2", "flash_attention_3", "kernels-community/vllm-flash-attn3")
FA3_REPO = "kernels-community/vllm-flash-attn3"
ATTN_CHOICES = ("eager", "sdpa", "flex_attention", *FLASH_REQUESTS)


def check_attention(f: Facts, ctx: Context) -> CheckResult:
    """Point 5: the requested (or default) attention implementation against the GPU."""
    t = "Attention"
    req = ctx.attn
    g = primary_gpu(f)
    low, high = kernels_window(f)
    kv = f.version("kernels")
    kernels_ok = kv is not None and in_window(kv, low, high) is not False
    hopper = g is not None and g.cc == (9, 0)
    if req == "sdpa":
        return _r("attention", t, "fail",
                  "gpt-oss refuses attn_implementation='sdpa': its attention sinks are not supported by SDPA, and "
                  "from_pretrained raises.",
                  'attn_implementation="eager"' + (f'   # or on this Hopper GPU: "{FA3_REPO}"' if hopper and kernels_ok else ""))
    if req in FLASH_REQUESTS:
        asked = f"attn_implementation={req!r}" + (f" (transformers maps it to {FA3_REPO} for gpt-oss)" if req != FA3_REPO else "")
        if g is None:
            return _r("attention", t, "skip", f"{asked}: needs a Hopper GPU; there is none here.")
        if not hopper:
            return _r("attention", t, "fail",
                      f"{asked}: the kernel is built for Hopper (compute capability 9.0) only; {g.name} has "
                      f"{g.compute_capability or '?'}.", 'attn_implementation="eager"   # what runs on this GPU')
        if not kernels_ok:
            window = ecosystem.window_text(low, high)
            state = f"kernels {kv}" if kv else "kernels is not installed"
            return _r("attention", t, "fail",
                      f"{asked}: transformers loads it through the kernels library, but {state} (transformers "
                      f"{f.version('transformers') or '?'} wants kernels{window}).", kernels_fix(f))
        return _r("attention", t, "pass", f"{asked} on {g.name} (Hopper) with kernels {kv}.")
    if req and req not in ("eager", "flex_attention"):
        return _r("attention", t, "warn", f"attn_implementation={req!r} is not one gpt-oss is known to run with.",
                  'attn_implementation="eager"')
    label = f"attn_implementation={req!r}" if req else "No attn_implementation requested: transformers uses eager for gpt-oss (it refuses SDPA)"
    if g is None:
        return _r("attention", t, "pass", f"{label}; on the CPU eager is what runs.")
    if hopper and kernels_ok:
        return _r("attention", t, "pass",
                  f"{label}. On this Hopper GPU attn_implementation=\"{FA3_REPO}\" (flash attention 3) is available too.")
    why = "not Hopper" if not hopper else "kernels is outside transformers' window"
    return _r("attention", t, "pass", f"{label}; eager is what runs on {g.name} (flash attention 3 needs Hopper and "
                                      f"kernels in the window: {why}).")


def check_reasoning(f: Facts, ctx: Context) -> CheckResult:
    """Point 6: the chat template says 'Reasoning: <effort>' for low, medium and high."""
    tk, t = f.tokenizer, "Reasoning effort"
    if tk.source is None:
        if tk.error:
            return _r("reasoning", t, "warn", f"Could not read {ctx.model}'s chat template: {tk.error}")
        if ctx.model.startswith("synthetic:"):
            return _r("reasoning", t, "skip",
                      f"{ctx.model} writes the project's own template; pass its folder (gptoss synthesize NAME --out DIR) "
                      "as --model to render it.")
        return _r("reasoning", t, "skip",
                  f"{ctx.model}'s tokenizer is not in the local cache (run with --online to fetch only its chat template).")
    if tk.error:
        return _r("reasoning", t, "fail", f"{tk.error} ({tk.path}).",
                  "Use the model's own chat template (re-download tokenizer_config.json / chat_template.jinja).")
    bad = [e for e, ok in tk.efforts.items() if not ok]
    where = {"local": "the model folder", "cache": "the hub cache", "hub": "the hub"}.get(tk.source, tk.source)
    if bad:
        found = "; ".join(f"{e}: {tk.system_lines.get(e) or 'no Reasoning line'}" for e in bad)
        return _r("reasoning", t, "fail",
                  f"The chat template from {where} ignores reasoning_effort for {', '.join(bad)} ({found}): every "
                  "effort level runs the same.",
                  "Use the model's own chat template (re-download tokenizer_config.json / chat_template.jinja), or pass "
                  "the effort in the system prompt yourself.")
    return _r("reasoning", t, "pass",
              f"The chat template from {where} says 'Reasoning: low|medium|high' in the system block for each effort.")


def check_index(f: Facts, ctx: Context) -> CheckResult:
    """Point 1: where the released versions behind every fix come from, and how old they are."""
    t = "Package versions"
    ix = f.index
    age = ecosystem.table_age_days(ctx.today)
    table = f"the table of known-good pairs of {ecosystem.TABLE_DATE} ({age} day{'s' if age != 1 else ''} old)"
    newest = ", ".join(f"{n} {ecosystem.released(ix, n)[-1]}" for n in ecosystem.INDEX_PACKAGES
                       if ecosystem.released(ix, n))
    asked = [n for n in ecosystem.INDEX_PACKAGES if ecosystem.source_of(ix, n) == "pypi"]
    if ix.online_checked and ix.online_error:
        part = f" (PyPI answered for {', '.join(asked)})" if asked else ""
        return _r("index", t, "warn",
                  f"The package index did not answer ({ix.online_error}){part}; fixes use {table}: newest {newest}.",
                  "Check the network (or PIP_INDEX_URL), then run with --online again.")
    if asked:
        unknown = [v for v in ecosystem.released(ix, "transformers") if ecosystem.window_for(v) is None
                   and at_least(v, "5.13.0")]
        extra = (f" transformers {', '.join(unknown)} is newer than {table}: its kernels window is not known here."
                 if unknown else "")
        return _r("index", t, "pass",
                  f"PyPI, asked {(ix.checked_at or '')[:10]}: newest {newest}; kernels windows from {table}.{extra}")
    if age > ecosystem.TABLE_STALE_DAYS:
        return _r("index", t, "warn",
                  f"Fixes use {table}: newest {newest}; newer releases may exist.", "gptoss check --online")
    return _r("index", t, "pass", f"Fixes use {table}: newest {newest} (--online asks PyPI).")


# --------------------------------------------------------------------------------------------
# The Python process, companion packages
# --------------------------------------------------------------------------------------------


def check_stale(f: Facts, ctx: Context) -> CheckResult:
    t = "Stale modules"
    if not f.stale_modules:
        return _r("stale", t, "pass", "No imported package changed on disk since it was imported.")
    items = "; ".join(
        f"{s.module} {s.loaded_version} is loaded but {s.installed_version or 'no version'} is installed" for s in f.stale_modules
    )
    return _r("stale", t, "fail", f"{items}: this process keeps running the old code.", restart_fix(f))


def _companion(name: str) -> Callable[[Facts, Context], CheckResult]:
    def check(f: Facts, ctx: Context) -> CheckResult:
        t = f"{name} matches torch"
        pkg, torch_v = f.package(name), f.version("torch")
        if not pkg.installed:
            return _r(name, t, "skip", f"{name} is not installed (not needed).")
        pin = pkg.pins.get("torch")
        if not pin or not torch_v:
            return _r(name, t, "pass", f"{name} {pkg.version} declares no torch pin.")
        if Pin("torch", pin).satisfied_by(torch_v) is False:
            return _r(name, t, "fail",
                      f"{name} {pkg.version} is built for torch{pin}, but torch {torch_v} is installed: importing "
                      f"transformers can fail (e.g. 'operator torchvision::nms does not exist').",
                      f'pip install "torch=={base_version(torch_v)}" {name}   # or: pip uninstall -y {name}')
        return _r(name, t, "pass", f"{name} {pkg.version} is built for torch{pin} (installed: {torch_v}).")

    check.__name__ = f"check_{name}"
    return check


check_torchvision = _companion("torchvision")
check_torchaudio = _companion("torchaudio")


# --------------------------------------------------------------------------------------------
# Memory and disk
# --------------------------------------------------------------------------------------------


def estimate_memory(f: Facts, ctx: Context, path: str | None = None) -> MemoryEstimate | None:
    spec = ctx.spec
    if spec is None:
        return None
    if path is None:
        path = f.mxfp4.path if f.mxfp4.path in ("mxfp4", "bf16") else "mxfp4"
    weights = spec.load_bytes(path)
    kv = spec.kv_cache_bytes(ctx.context_tokens)
    transient = spec.load_transient_bytes(path)
    needed = weights + kv + CUDA_CONTEXT_BYTES
    g = primary_gpu(f)
    return MemoryEstimate(
        model=spec.name, path=path, context_tokens=ctx.context_tokens, weights_bytes=weights,
        kv_cache_bytes=kv, cuda_context_bytes=CUDA_CONTEXT_BYTES, needed_bytes=needed,
        load_transient_bytes=transient, load_peak_bytes=needed + transient,
        free_bytes=(g.memory_free_bytes if g and g.memory_free_bytes is not None else (g.memory_total_bytes if g else None)),
        gpu=g.name if g else None,
    )


def check_memory(f: Facts, ctx: Context) -> CheckResult:
    spec = ctx.spec
    t = "Memory fit" + (f" ({spec.name})" if spec else "")
    if spec is None:
        return _r("memory", t, "skip", f"{ctx.model} is not a gpt-oss model this tool knows the size of.")
    est = ctx.memory or estimate_memory(f, ctx)
    g = primary_gpu(f)
    if g is None or est is None:
        return _r("memory", t, "skip", "No GPU.")
    assumed = "" if f.mxfp4.path in ("mxfp4", "bf16") else " (path unknown: assuming MXFP4)"
    breakdown = (
        f"{spec.name} on the {est.path} path{assumed} needs ~{gib(est.needed_bytes)} (weights {gib(est.weights_bytes)} + "
        f"KV cache {gib(est.kv_cache_bytes)} for {est.context_tokens:,} tokens + CUDA context {gib(est.cuda_context_bytes)})"
    )
    free = est.free_bytes
    if free is None:
        return _r("memory", t, "warn", breakdown + f"; the free memory of {g.name} is unknown.")
    kind = "free" if g.memory_free_bytes is not None else "total"
    if est.needed_bytes > free:
        shown = visible_gpus(f)
        total_free = sum(x.memory_free_bytes or 0 for x in shown)
        if len(shown) > 1 and est.needed_bytes <= total_free:
            return _r("memory", t, "warn",
                      f"{breakdown}; GPU {g.index} has {gib(free)} {kind}, so it fits only spread over {len(shown)} GPUs "
                      f"({gib(total_free)} free together).",
                      "from_pretrained(..., device_map='auto') spreads the layers over the GPUs.")
        fix = None
        if est.path == "bf16":
            mx = estimate_memory(f, ctx, "mxfp4")
            if mx is not None and mx.needed_bytes <= free:
                how = (_fallback_fix(f, ctx) or "see the kernels and triton checks").split("   #")[0]
                fix = (f"Get the MXFP4 path working ({how}): "
                       f"it needs ~{gib(mx.needed_bytes)}.")
        held = sum(p.used_bytes or 0 for p in g.processes)
        if fix is None and held and est.needed_bytes <= free + held:
            fix = "Free the memory other processes hold on the GPU (see above), then run the check again."
        if fix is None:
            fix = (f"Use a GPU with more memory (~{gib(est.load_peak_bytes)} free to be safe)"
                   + (", or the smaller openai/gpt-oss-20b." if spec.name != "gpt-oss-20b" else "."))
        return _r("memory", t, "fail", f"{breakdown}, but {g.name} has {gib(free)} {kind}.", fix)
    left = free - est.needed_bytes
    if est.load_peak_bytes > free:
        return _r("memory", t, "warn",
                  f"{breakdown}; {g.name} has {gib(free)} {kind}, {gib(left)} to spare, but loading peaked "
                  f"{gib(est.load_transient_bytes)} higher on an H100: the load may run out of memory here.",
                  "Load with nothing else on the GPU (restart the runtime first) and keep contexts short.")
    return _r("memory", t, "pass", f"{breakdown}; {g.name} has {gib(free)} {kind} ({gib(left)} to spare).")


def check_disk(f: Facts, ctx: Context) -> CheckResult:
    t = "Disk space for the download"
    d = f.disk
    if d.model_cached:
        size = f" ({gb(d.model_cached_bytes)})" if d.model_cached_bytes else ""
        return _r("disk", t, "pass", f"{ctx.model} is already on disk at {d.model_cache_path}{size}.")
    if not d.model_repo:
        return _r("disk", t, "skip", f"{ctx.model} is not downloaded from the hub (synthetic or local).")
    if d.offline:
        return _r("disk", t, "fail",
                  f"HF_HUB_OFFLINE is set and {d.model_repo} is not in the cache at {d.cache_dir}: from_pretrained will fail.",
                  f"unset HF_HUB_OFFLINE   # or download it first: hf download {d.model_repo}")
    if d.free_bytes is None:
        return _r("disk", t, "warn", f"Free space in {d.cache_dir} is unknown ({d.error or 'no answer'}).")
    need = round(ctx.spec.checkpoint_bytes * DISK_MARGIN) if ctx.spec else None
    where = d.cache_dir + (" (the default location)" if d.cache_dir_from == "default" else f" (set by {d.cache_dir_from})")
    if need is None:
        return _r("disk", t, "pass", f"{gb(d.free_bytes)} free in {where}; the size of {d.model_repo} is not known here.")
    if d.free_bytes < need:
        return _r("disk", t, "fail",
                  f"{d.model_repo} needs ~{gb(need)} in {where}, but only {gb(d.free_bytes)} are free.",
                  "Free disk space, or put the cache on a bigger disk: export HF_HOME=/path/with/space")
    if d.free_bytes < need + DISK_HEADROOM_BYTES:
        return _r("disk", t, "warn",
                  f"{d.model_repo} needs ~{gb(need)} in {where}; {gb(d.free_bytes)} are free: little room left after it.",
                  "Free disk space, or export HF_HOME=/path/with/space")
    return _r("disk", t, "pass", f"{d.model_repo} is not cached yet: ~{gb(need)} to download, {gb(d.free_bytes)} free in {where}.")


# --------------------------------------------------------------------------------------------
# Platform and environment
# --------------------------------------------------------------------------------------------


def check_platform(f: Facts, ctx: Context) -> CheckResult:
    t = "Platform"
    p = f.platform
    if p.error:
        return _r("platform", t, "warn", f"Platform unknown: {p.error}")
    where = "Google Colab" + (f" ({p.colab_release})" if p.colab_release else "") if p.colab else ("Kaggle" if p.kaggle else "not Colab")
    msg = f"{p.system} {p.release} {p.machine}, Python {p.python}, {where}."
    if p.system == "Windows":
        return _r("platform", t, "warn", msg + " triton (MXFP4 kernels) has no official Windows build.",
                  "Use Linux or WSL2 for the MXFP4 path.")
    return _r("platform", t, "pass", msg)


def check_environment(f: Facts, ctx: Context) -> CheckResult:
    t = "Environment variables"
    v = f.environment.variables
    if f.environment.error:
        return _r("env", t, "warn", f"Could not read the environment: {f.environment.error}")
    if str(v.get("CUDA_LAUNCH_BLOCKING", "")).strip() == "1":
        return _r("env", t, "warn", "CUDA_LAUNCH_BLOCKING=1 serialises every kernel launch: generation is much slower.",
                  "unset CUDA_LAUNCH_BLOCKING")
    if not v:
        return _r("env", t, "pass", "No relevant variable is set.")
    shown = ", ".join(f"{k}={val}" for k, val in v.items())
    return _r("env", t, "pass", f"{len(v)} set: {shown}")


CHECKS: tuple[Callable[[Facts, Context], CheckResult], ...] = (
    check_gpu,
    check_compute_capability,
    check_bf16,
    check_mig,
    check_processes,
    check_torch,
    check_driver,
    check_triton,
    check_transformers,
    check_accelerate,
    check_kernels,
    check_mxfp4,
    check_kernel_repo,
    check_kernel_build,
    check_attention,
    check_reasoning,
    check_index,
    check_stale,
    check_torchvision,
    check_torchaudio,
    check_memory,
    check_disk,
    check_platform,
    check_environment,
)


def run_checks(f: Facts, ctx: Context) -> list[CheckResult]:
    """Every check; a check that crashes (a bug) reports itself as a warning, not a traceback."""
    ctx.memory = estimate_memory(f, ctx)
    out = []
    for check in CHECKS:
        try:
            out.append(check(f, ctx))
        except Exception as e:  # noqa: BLE001
            name = check.__name__.removeprefix("check_")
            out.append(_r(name, name, "warn", f"This check crashed ({type(e).__name__}: {e}); please report it."))
    return out


# --------------------------------------------------------------------------------------------
# Verdict
# --------------------------------------------------------------------------------------------


def decide(f: Facts, ctx: Context, results: list[CheckResult]) -> Verdict:
    fails = [r for r in results if r.status == "fail"]
    warns = [r for r in results if r.status == "warn"]
    status = "fail" if fails else ("warn" if warns else "pass")
    name = ctx.spec.name if ctx.spec else ctx.model
    g = primary_gpu(f)
    torch_usable = f.torch.installed and f.torch.cuda_available

    if g is None:
        path = "none"
        reason = "No NVIDIA GPU is visible, so gpt-oss cannot run on a GPU here."
    elif not torch_usable:
        path = "none"
        reason = f"torch cannot use the {g.name}, so gpt-oss cannot run on it."
        for cause in ("torch.driver", "torch"):  # the driver, when it is to blame, is the root cause
            failed = next((r for r in results if r.id == cause and r.status == "fail"), None)
            if failed:
                reason = first_sentence(failed.message)
                break
    elif f.mxfp4.path == "none":
        path, reason = "none", f"transformers cannot load gpt-oss here: {first_sentence(f.mxfp4.reason)}"
    elif f.mxfp4.path == "mxfp4":
        tv = f" {f.mxfp4.transformers_version}" if f.mxfp4.transformers_version else ""
        path, reason = "mxfp4", f"transformers{tv} keeps the experts in MXFP4 on the {g.name}."
    elif f.mxfp4.path == "bf16":
        path, reason = "bf16", f"transformers will silently dequantize the experts to bf16: {first_sentence(f.mxfp4.reason)}"
    else:
        path, reason = "unknown", f"transformers' MXFP4 decision is unknown: {f.mxfp4.reason or f.mxfp4.error or 'no answer'}"

    def titles(rs: list[CheckResult]) -> str:
        return ", ".join(r.title for r in rs)

    if f.target:
        reason = "What-if, " + (f.target.get("label") or "another GPU") + ": " + reason
    if fails:
        summary = (f"{name} will not run here as things stand: {len(fails)} check(s) failed ({titles(fails)})"
                   + (f", {len(warns)} warning(s)." if warns else "."))
    elif warns:
        summary = f"{name} should run on the {PATH_WORDS[path]} path on {gpu_label(g)}, with {len(warns)} warning(s) ({titles(warns)})."
    else:
        summary = f"{name} will run on the {PATH_WORDS[path]} path on {gpu_label(g)}."
    return Verdict(status=status, path=path, reason=reason, summary=summary)
