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

from typing import Callable

from diagnostics.check_base import (  # noqa: F401  (the records and shared readers are part of this module's surface)
    CUDA_CONTEXT_BYTES,
    DEFAULT_CONTEXT_TOKENS,
    DISK_HEADROOM_BYTES,
    DISK_MARGIN,
    GPT_OSS_MIN_TRANSFORMERS,
    MXFP4_CC75_MIN_TRANSFORMERS,
    NO_GPU_FIX,
    PATH_WORDS,
    TRITON_MIN_DEFAULT,
    CheckResult,
    Context,
    MemoryEstimate,
    Verdict,
    first_sentence,
    gpu_label,
    gpu_present,
    kernels_fix,
    kernels_window,
    pair_command,
    primary_cc,
    primary_gpu,
    restart_fix,
    result,
    torch_index_tag,
    torch_install_fix,
    triton_fix,
    unreleased_note,
    visible_gpus,
    working_pair,
)
from diagnostics.ecosystem_checks import check_attention, check_index, check_kernel_build, check_reasoning
from diagnostics.facts import Facts
from diagnostics.gpu_checks import check_bf16, check_compute_capability, check_gpu, check_mig, check_processes
from diagnostics.models import gb, gib
from diagnostics.versions import Pin, at_least, base_version, in_window, major_minor

# --------------------------------------------------------------------------------------------
# torch, driver, triton
# --------------------------------------------------------------------------------------------


def check_torch(f: Facts, ctx: Context) -> CheckResult:
    t = "torch"
    tf = f.torch
    if not tf.installed:
        return result("torch", t, "fail", "torch is not installed (or not importable): transformers cannot run gpt-oss.",
                  torch_install_fix(f) if gpu_present(f) else "pip install torch")
    if tf.error and not tf.version:
        return result("torch", t, "fail", f"torch fails to import in a fresh Python: {tf.error}", torch_install_fix(f))
    build = f"CUDA {tf.cuda_build}" if tf.cuda_build else ("ROCm " + tf.hip_build if tf.hip_build else "CPU-only build")
    label = f"torch {tf.version} ({build})"
    nvml_gpu = bool(visible_gpus(f))
    if not nvml_gpu and not tf.cuda_available:
        return result("torch", t, "skip", f"{label}; no GPU to use.")
    if not tf.cuda_build and not tf.hip_build:
        return result("torch", t, "fail", f"{label} cannot use the GPU: it is a CPU-only build.", torch_install_fix(f))
    if not tf.cuda_available:
        why = tf.cuda_warning or tf.error or "torch.cuda.is_available() is False"
        return result("torch", t, "fail", f"{label} cannot use the GPU: {why}",
                  "See the driver check below; if it passes, check CUDA_VISIBLE_DEVICES and reinstall torch: "
                  + torch_install_fix(f))
    names = ", ".join(f"{d.get('name')} ({d.get('compute_capability')})" for d in tf.devices) or "?"
    return result("torch", t, "pass", f"{label} sees {tf.device_count} GPU(s): {names}.")


def check_driver(f: Facts, ctx: Context) -> CheckResult:
    t = "Driver vs torch's CUDA"
    drv, build = f.driver.cuda_version, f.torch.cuda_build
    if not gpu_present(f):
        return result("torch.driver", t, "skip", "No GPU.")
    if not build:
        return result("torch.driver", t, "skip", "torch has no CUDA build to compare.")
    if not drv:
        return result("torch.driver", t, "skip", f"The driver's CUDA version is unknown ({f.driver.error or 'NVML unavailable'}).")
    d, b = major_minor(drv), major_minor(build)
    if d is None or b is None:
        return result("torch.driver", t, "skip", f"Cannot compare driver CUDA {drv!r} with torch's {build!r}.")
    older = f"Upgrade the NVIDIA driver to one that supports CUDA {build}, or install a torch build this driver runs: "
    if d[0] < b[0]:
        return result("torch.driver", t, "fail",
                  f"Driver {f.driver.version} supports CUDA {drv}, but torch {f.torch.version} is built for CUDA {build}: "
                  "torch cannot use the GPU with this driver.",
                  older + torch_install_fix(f))
    if d < b:
        return result("torch.driver", t, "warn",
                  f"Driver {f.driver.version} supports CUDA {drv}, older than torch's CUDA {build}: torch runs through "
                  "CUDA minor-version compatibility, but Triton-compiled kernels (MXFP4, torch.compile) can fail "
                  "with 'unsupported toolchain'.",
                  older + torch_install_fix(f, exact_only=True))
    return result("torch.driver", t, "pass", f"Driver {f.driver.version} supports CUDA {drv} >= torch's CUDA {build}.")


def check_triton(f: Facts, ctx: Context) -> CheckResult:
    t = "triton"
    torch_pkg, triton = f.package("torch"), f.package("triton")
    minimum = f.transformers.triton_min or TRITON_MIN_DEFAULT
    if not torch_pkg.installed:
        return result("triton", t, "skip", "torch is not installed.")
    pin_name, pin = next(iter(torch_pkg.pins.items()), (None, None))
    if pin:
        p = Pin(pin_name, pin)
        if not triton.installed:
            return result("triton", t, "fail",
                      f"torch {torch_pkg.version} requires {pin_name}{pin}, which is not installed: torch.compile and "
                      "the MXFP4 kernels cannot run.",
                      triton_fix(pin_name, pin, f))
        if p.satisfied_by(triton.version) is False:
            return result("triton", t, "fail",
                      f"triton {triton.version} is installed but torch {torch_pkg.version} requires {pin_name}{pin}: "
                      "a mismatched triton breaks torch.compile and the MXFP4 kernels.",
                      triton_fix(pin_name, pin, f))
        if at_least(base_version(triton.version), minimum) is False:
            return result("triton", t, "warn",
                      f"triton {triton.version} matches torch {torch_pkg.version}, but MXFP4 needs triton >= {minimum}: "
                      "the experts fall back to bf16.",
                      "pip install -U torch   # a newer torch brings its matching triton")
        return result("triton", t, "pass",
                  f"triton {triton.version}: the version torch {torch_pkg.version} requires ({pin_name}{pin}); MXFP4 needs >= {minimum}.")
    # torch declares no triton (CPU build, macOS, Windows)
    if not gpu_present(f):
        state = f"triton {triton.version}" if triton.installed else "triton is not installed"
        return result("triton", t, "skip", f"{state}; torch {torch_pkg.version} does not require it; not needed without a GPU.")
    if not triton.installed:
        return result("triton", t, "warn",
                  f"triton is not installed: MXFP4 needs triton >= {minimum}, so the experts fall back to bf16.",
                  f'pip install "triton>={minimum}"')
    if at_least(base_version(triton.version), minimum) is False:
        return result("triton", t, "warn", f"triton {triton.version} < {minimum}: the experts fall back to bf16.",
                  f'pip install "triton>={minimum}"')
    return result("triton", t, "pass", f"triton {triton.version} (torch declares no pin); MXFP4 needs >= {minimum}.")


# --------------------------------------------------------------------------------------------
# transformers, accelerate, kernels, the MXFP4 verdict, the kernel repo
# --------------------------------------------------------------------------------------------


def check_transformers(f: Facts, ctx: Context) -> CheckResult:
    t = "transformers"
    v = f.version("transformers")
    pair = working_pair(f)
    fix = pair_command(pair) if pair else "pip install -U transformers"
    if not v:
        return result("transformers", t, "fail", "transformers is not installed.", fix)
    if at_least(v, GPT_OSS_MIN_TRANSFORMERS) is False:
        return result("transformers", t, "fail",
                  f"transformers {v} predates gpt-oss (it needs >= {GPT_OSS_MIN_TRANSFORMERS}).", fix)
    cc = primary_cc(f)
    if cc == (7, 5) and at_least(v, MXFP4_CC75_MIN_TRANSFORMERS) is False:
        return result("transformers", t, "warn",
                  f"transformers {v} has no MXFP4 kernels for compute capability 7.5 (added in "
                  f"{MXFP4_CC75_MIN_TRANSFORMERS}): the experts fall back to bf16 on this GPU.", fix)
    return result("transformers", t, "pass", f"transformers {v} supports gpt-oss (>= {GPT_OSS_MIN_TRANSFORMERS}).")


def check_accelerate(f: Facts, ctx: Context) -> CheckResult:
    t = "accelerate"
    v = f.version("accelerate")
    if not v:
        return result("accelerate", t, "fail",
                  "accelerate is not installed: from_pretrained(device_map='auto') and the MXFP4 quantizer need it.",
                  "pip install -U accelerate")
    return result("accelerate", t, "pass", f"accelerate {v}.")


def check_kernels(f: Facts, ctx: Context) -> CheckResult:
    t = "kernels version"
    v = f.version("kernels")
    low, high = kernels_window(f)
    tv = f.version("transformers") or "?"
    window = f"{low} <= kernels < {high}" if low and high else (f"kernels >= {low}" if low else None)
    has_gpu = gpu_present(f)
    if not v:
        msg = "kernels is not installed" + (f"; transformers {tv} wants {window}" if window else "") + unreleased_note(f)
        if not has_gpu:
            return result("kernels", t, "skip", msg + "; not needed without a GPU.")
        return result("kernels", t, "warn", msg + ": the MXFP4 experts are silently dequantized to bf16.", kernels_fix(f))
    if not window:
        return result("kernels", t, "pass", f"kernels {v}; transformers {tv} declares no version window.")
    inside = in_window(v, low, high)
    if inside is False:
        msg = f"kernels {v} is outside the window transformers {tv} declares ({window})" + unreleased_note(f)
        if not has_gpu:
            return result("kernels", t, "skip", msg + "; not needed without a GPU.", kernels_fix(f))
        return result("kernels", t, "warn", msg + ": the MXFP4 experts are silently dequantized to bf16.", kernels_fix(f))
    return result("kernels", t, "pass", f"kernels {v} is inside the window transformers {tv} declares ({window}).")


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
        return result("mxfp4", t, "skip",
                  f"No GPU here: transformers {tv} would put gpt-oss on the {m.path} path on {m.device or 'the CPU'}.{said}")
    if m.path == "mxfp4":
        kernel = f" with the hub kernel {f.kernel.repo_id}" if f.kernel.repo_id else ""
        return result("mxfp4", t, "pass", f"transformers {tv} keeps the experts in MXFP4 on {m.device or 'cuda'}{kernel}.")
    if m.path == "bf16":
        size = f" (~{gib(ctx.spec.load_bytes('bf16'))} for {ctx.spec.name})" if ctx.spec else ""
        return result("mxfp4", t, "warn",
                  f"transformers {tv} will silently dequantize the experts to bf16{size}. It says: {m.reason}",
                  _fallback_fix(f, ctx))
    if m.path == "none":
        fix = _fallback_fix(f, ctx)
        if fix is None and not f.torch.cuda_available:
            fix = "Fix torch first (see the torch and driver checks): " + torch_install_fix(f)
        return result("mxfp4", t, "fail", f"transformers cannot load gpt-oss here: {m.reason}",
                  fix or "pip install -U transformers accelerate")
    return result("mxfp4", t, "warn", f"Could not ask transformers: {m.reason or m.error or 'no answer'}",
              'python -c "import torch, transformers"   # shows the import error')


def check_kernel_repo(f: Facts, ctx: Context) -> CheckResult:
    k = f.kernel
    t = "MXFP4 kernel"
    name = k.repo_id or "the MXFP4 kernel"
    if k.local_kernels and k.local_ok is False:
        return result("kernel.hub", t, "fail",
                  f"LOCAL_KERNELS maps {name} to {k.local_path}, but {k.local_error}: loading the kernel will fail.",
                  f"export LOCAL_KERNELS={k.repo_id}=/folder/with/metadata.json   # the folder holding metadata.json "
                  "and the package folder")
    if f.mxfp4.path != "mxfp4":
        return result("kernel.hub", t, "skip", f"{name}: not used, the experts will not run on MXFP4 kernels.")
    if not k.repo_id:
        return result("kernel.hub", t, "warn", k.error or "The installed transformers names no kernel repo.")
    if k.local_ok:
        return result("kernel.hub", t, "pass", f"LOCAL_KERNELS points {name} at {k.local_path} (metadata.json found).")
    if k.cached:
        return result("kernel.hub", t, "pass", f"{name} is cached at {k.cache_path}.")
    if k.online_checked:
        if k.online_ok:
            return result("kernel.hub", t, "pass", f"{name} is not cached; the hub serves it, and transformers downloads it on first load.")
        return result("kernel.hub", t, "fail",
                  f"{name} is not cached, and the hub does not answer for it ({k.online_error}): loading the MXFP4 path will fail.",
                  f"Check the network (and HF_ENDPOINT), or copy the kernel here and export LOCAL_KERNELS={k.repo_id}=/path")
    if f.disk.offline:
        return result("kernel.hub", t, "fail",
                  f"HF_HUB_OFFLINE is set and {name} is neither cached nor in LOCAL_KERNELS: loading the MXFP4 path will fail.",
                  f"unset HF_HUB_OFFLINE   # or: export LOCAL_KERNELS={k.repo_id}=/path/to/local/copy")
    return result("kernel.hub", t, "skip",
              f"{name} is not cached yet; transformers downloads it from the hub on first load (not verified: run with --online).")


# --------------------------------------------------------------------------------------------
# The Python process, companion packages
# --------------------------------------------------------------------------------------------


def check_stale(f: Facts, ctx: Context) -> CheckResult:
    t = "Stale modules"
    if not f.stale_modules:
        return result("stale", t, "pass", "No imported package changed on disk since it was imported.")
    items = "; ".join(
        f"{s.module} {s.loaded_version} is loaded but {s.installed_version or 'no version'} is installed" for s in f.stale_modules
    )
    return result("stale", t, "fail", f"{items}: this process keeps running the old code.", restart_fix(f))


def _companion(name: str) -> Callable[[Facts, Context], CheckResult]:
    def check(f: Facts, ctx: Context) -> CheckResult:
        t = f"{name} matches torch"
        pkg, torch_v = f.package(name), f.version("torch")
        if not pkg.installed:
            return result(name, t, "skip", f"{name} is not installed (not needed).")
        pin = pkg.pins.get("torch")
        if not pin or not torch_v:
            return result(name, t, "pass", f"{name} {pkg.version} declares no torch pin.")
        if Pin("torch", pin).satisfied_by(torch_v) is False:
            return result(name, t, "fail",
                      f"{name} {pkg.version} is built for torch{pin}, but torch {torch_v} is installed: importing "
                      f"transformers can fail (e.g. 'operator torchvision::nms does not exist').",
                      f'pip install "torch=={base_version(torch_v)}" {name}   # or: pip uninstall -y {name}')
        return result(name, t, "pass", f"{name} {pkg.version} is built for torch{pin} (installed: {torch_v}).")

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
        return result("memory", t, "skip", f"{ctx.model} is not a gpt-oss model this tool knows the size of.")
    est = ctx.memory or estimate_memory(f, ctx)
    g = primary_gpu(f)
    if g is None or est is None:
        return result("memory", t, "skip", "No GPU.")
    assumed = "" if f.mxfp4.path in ("mxfp4", "bf16") else " (path unknown: assuming MXFP4)"
    breakdown = (
        f"{spec.name} on the {est.path} path{assumed} needs ~{gib(est.needed_bytes)} (weights {gib(est.weights_bytes)} + "
        f"KV cache {gib(est.kv_cache_bytes)} for {est.context_tokens:,} tokens + CUDA context {gib(est.cuda_context_bytes)})"
    )
    free = est.free_bytes
    if free is None:
        return result("memory", t, "warn", breakdown + f"; the free memory of {g.name} is unknown.")
    kind = "free" if g.memory_free_bytes is not None else "total"
    if est.needed_bytes > free:
        shown = visible_gpus(f)
        total_free = sum(x.memory_free_bytes or 0 for x in shown)
        if len(shown) > 1 and est.needed_bytes <= total_free:
            return result("memory", t, "warn",
                      f"{breakdown}; GPU {g.index} has {gib(free)} {kind}, so it fits only spread over {len(shown)} GPUs "
                      f"({gib(total_free)} free together).",
                      "from_pretrained(..., device_map='auto') spreads the layers over the GPUs.")
        fix = None
        if est.path == "bf16":
            mx = estimate_memory(f, ctx, "mxfp4")
            if mx is not None and mx.needed_bytes <= free:
                how = (_fallback_fix(f, ctx) or "see the kernels and triton checks").split("   #")[0]
                fix = f"Get the MXFP4 path working ({how}): it needs ~{gib(mx.needed_bytes)}."
        held = sum(p.used_bytes or 0 for p in g.processes)
        if fix is None and held and est.needed_bytes <= free + held:
            fix = "Free the memory other processes hold on the GPU (see above), then run the check again."
        if fix is None:
            fix = (f"Use a GPU with more memory (~{gib(est.load_peak_bytes)} free to be safe)"
                   + (", or the smaller openai/gpt-oss-20b." if spec.name != "gpt-oss-20b" else "."))
        return result("memory", t, "fail", f"{breakdown}, but {g.name} has {gib(free)} {kind}.", fix)
    left = free - est.needed_bytes
    if est.load_peak_bytes > free:
        return result("memory", t, "warn",
                  f"{breakdown}; {g.name} has {gib(free)} {kind}, {gib(left)} to spare, but loading peaked "
                  f"{gib(est.load_transient_bytes)} higher on an H100: the load may run out of memory here.",
                  "Load with nothing else on the GPU (restart the runtime first) and keep contexts short.")
    return result("memory", t, "pass", f"{breakdown}; {g.name} has {gib(free)} {kind} ({gib(left)} to spare).")


def check_disk(f: Facts, ctx: Context) -> CheckResult:
    t = "Disk space for the download"
    d = f.disk
    if d.model_cached:
        size = f" ({gb(d.model_cached_bytes)})" if d.model_cached_bytes else ""
        return result("disk", t, "pass", f"{ctx.model} is already on disk at {d.model_cache_path}{size}.")
    if not d.model_repo:
        return result("disk", t, "skip", f"{ctx.model} is not downloaded from the hub (synthetic or local).")
    if d.offline:
        return result("disk", t, "fail",
                  f"HF_HUB_OFFLINE is set and {d.model_repo} is not in the cache at {d.cache_dir}: from_pretrained will fail.",
                  f"unset HF_HUB_OFFLINE   # or download it first: hf download {d.model_repo}")
    if d.free_bytes is None:
        return result("disk", t, "warn", f"Free space in {d.cache_dir} is unknown ({d.error or 'no answer'}).")
    need = round(ctx.spec.checkpoint_bytes * DISK_MARGIN) if ctx.spec else None
    where = d.cache_dir + (" (the default location)" if d.cache_dir_from == "default" else f" (set by {d.cache_dir_from})")
    if need is None:
        return result("disk", t, "pass", f"{gb(d.free_bytes)} free in {where}; the size of {d.model_repo} is not known here.")
    if d.free_bytes < need:
        return result("disk", t, "fail",
                  f"{d.model_repo} needs ~{gb(need)} in {where}, but only {gb(d.free_bytes)} are free.",
                  "Free disk space, or put the cache on a bigger disk: export HF_HOME=/path/with/space")
    if d.free_bytes < need + DISK_HEADROOM_BYTES:
        return result("disk", t, "warn",
                  f"{d.model_repo} needs ~{gb(need)} in {where}; {gb(d.free_bytes)} are free: little room left after it.",
                  "Free disk space, or export HF_HOME=/path/with/space")
    return result("disk", t, "pass", f"{d.model_repo} is not cached yet: ~{gb(need)} to download, {gb(d.free_bytes)} free in {where}.")


# --------------------------------------------------------------------------------------------
# Platform and environment
# --------------------------------------------------------------------------------------------


def check_platform(f: Facts, ctx: Context) -> CheckResult:
    t = "Platform"
    p = f.platform
    if p.error:
        return result("platform", t, "warn", f"Platform unknown: {p.error}")
    where = "Google Colab" + (f" ({p.colab_release})" if p.colab_release else "") if p.colab else ("Kaggle" if p.kaggle else "not Colab")
    msg = f"{p.system} {p.release} {p.machine}, Python {p.python}, {where}."
    if p.system == "Windows":
        return result("platform", t, "warn", msg + " triton (MXFP4 kernels) has no official Windows build.",
                  "Use Linux or WSL2 for the MXFP4 path.")
    return result("platform", t, "pass", msg)


def check_environment(f: Facts, ctx: Context) -> CheckResult:
    t = "Environment variables"
    v = f.environment.variables
    if f.environment.error:
        return result("env", t, "warn", f"Could not read the environment: {f.environment.error}")
    if str(v.get("CUDA_LAUNCH_BLOCKING", "")).strip() == "1":
        return result("env", t, "warn", "CUDA_LAUNCH_BLOCKING=1 serialises every kernel launch: generation is much slower.",
                  "unset CUDA_LAUNCH_BLOCKING")
    if not v:
        return result("env", t, "pass", "No relevant variable is set.")
    shown = ", ".join(f"{k}={val}" for k, val in v.items())
    return result("env", t, "pass", f"{len(v)} set: {shown}")


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
            out.append(result(name, name, "warn", f"This check crashed ({type(e).__name__}: {e}); please report it."))
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
