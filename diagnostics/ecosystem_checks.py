"""Checks against today's ecosystem rather than this machine alone: the kernel build the installed
torch would load, the attention implementation on this GPU, the chat template's reasoning effort,
and where the released versions behind every fix come from (the package index or the dated table
of known-good pairs in ``diagnostics.ecosystem``). Pure: facts in, a ``CheckResult`` out.
"""

from __future__ import annotations

from diagnostics import ecosystem, kernel_builds
from diagnostics.check_base import CheckResult, Context, kernels_fix, kernels_window, primary_gpu, result, torch_command
from diagnostics.errors import UserError
from diagnostics.facts import Facts
from diagnostics.versions import at_least, in_window


def check_kernel_build(f: Facts, ctx: Context) -> CheckResult:
    """Does the kernel repo hold a build the installed torch would load?"""
    k, t = f.kernel, "Kernel build for this torch"
    name = k.repo_id or "the MXFP4 kernel"
    if not k.repo_id:
        return result("kernel.build", t, "skip", "The installed transformers names no hub kernel.")
    if not f.torch.installed or not f.torch.cuda_build:
        return result("kernel.build", t, "skip", f"torch {f.torch.version or '(none)'} is not a CUDA build: no kernel build applies.")
    p = f.platform
    system = kernel_builds.system_of(f.torch.version, f.torch.cuda_build, f.torch.cxx11_abi, p.machine, p.system)
    wanted = system.wanted()
    py = f"; Python {p.python} (builds are not per Python version)" if p.python else ""
    if k.variants is None:
        if k.local_ok and k.variants_source is None:
            return result("kernel.build", t, "pass",
                      f"LOCAL_KERNELS points at a package folder without build variants: loaded as is for torch "
                      f"{f.torch.version}{py}.")
        where = "its cached copy holds no build/ folder" if k.cached else "it is not cached"
        why = f"; {k.variants_error}" if k.variants_error else ""
        ask = "" if k.online_checked else " (run with --online to ask the hub)"
        return result("kernel.build", t, "skip",
                  f"{name}'s builds are not known here ({where}{why}); this torch looks for build/{wanted}{ask}.")
    accepted, _ = kernel_builds.match(k.variants, system)
    src = {"hub": "the hub lists", "cache": "the cached copy holds", "local": "LOCAL_KERNELS holds"}.get(
        k.variants_source or "", "there are")
    if accepted:
        return result("kernel.build", t, "pass",
                  f"{src} {len(k.variants)} build(s) of {name}; build/{accepted[0]} fits torch {f.torch.version} "
                  f"(CUDA {f.torch.cuda_build}){py}.")
    built = kernel_builds.torch_versions_built(k.variants)
    covers = f" (torch {', '.join(built)})" if built else ""
    msg = (f"{src} {len(k.variants)} build(s) of {name}{covers}, none for torch {f.torch.version} (CUDA "
           f"{f.torch.cuda_build}, looking for build/{wanted}): loading the MXFP4 path fails with 'does not have build'.")
    choice = ecosystem.torch_for_driver(f.driver.cuda_version, accept=lambda b: release_has_kernel_build(f, b))
    fix = torch_command(choice[0].version, choice[1]) if choice else None
    status = "fail" if f.mxfp4.path == "mxfp4" else "warn"
    return result("kernel.build", t, status, msg, fix or "Install a torch the kernel has a build for (see the list above).")


def has_kernel_build(f: Facts, torch_version: str | None, cuda: str | None) -> bool | None:
    """Whether the kernel's known builds hold one for torch ``torch_version`` built for CUDA
    ``cuda`` on this platform; None when the builds are not known (offline, nothing cached)."""
    if f.kernel.variants is None or not cuda:
        return None
    p = f.platform
    system = kernel_builds.system_of(torch_version, cuda, f.torch.cxx11_abi, p.machine or "x86_64", p.system or "Linux")
    return bool(kernel_builds.match(f.kernel.variants, system)[0])


def release_has_kernel_build(f: Facts, b: ecosystem.TorchBuild) -> bool:
    """Whether any CUDA build of the torch release ``b`` has a kernel build (True when unknown)."""
    if f.kernel.variants is None:
        return True
    return any(has_kernel_build(f, b.version, cuda) for cuda in b.cudas)


# Attention implementations transformers maps to the Hopper-only flash attention 3 kernel for gpt-oss
FLASH_REQUESTS = ("flash_attention_2", "flash_attention_3", "kernels-community/vllm-flash-attn3")
FA3_REPO = "kernels-community/vllm-flash-attn3"
ATTN_CHOICES = ("eager", "sdpa", "flex_attention", *FLASH_REQUESTS)


def parse_attn(text: str | None) -> str | None:
    """``--attn``: one of ``ATTN_CHOICES`` or a hub kernel repo id (None: transformers' default);
    a UserError with one sentence for anything else."""
    if text is None:
        return None
    a = text.strip()
    if a in ATTN_CHOICES or (a.count("/") == 1 and all(a.split("/"))):
        return a
    raise UserError(f"--attn {text!r} is not an attention implementation; pass one of {', '.join(ATTN_CHOICES)} "
                    "or a hub kernel repo id.")


def check_attention(f: Facts, ctx: Context) -> CheckResult:
    """The requested (or default) attention implementation against the GPU."""
    t = "Attention"
    req = ctx.attn
    g = primary_gpu(f)
    low, high = kernels_window(f)
    kv = f.version("kernels")
    kernels_ok = kv is not None and in_window(kv, low, high) is not False
    hopper = g is not None and g.cc == (9, 0)
    if req == "sdpa":
        return result("attention", t, "fail",
                  "gpt-oss refuses attn_implementation='sdpa': its attention sinks are not supported by SDPA, and "
                  "from_pretrained raises.",
                  'attn_implementation="eager"' + (f'   # or on this Hopper GPU: "{FA3_REPO}"' if hopper and kernels_ok else ""))
    if req in FLASH_REQUESTS:
        asked = f"attn_implementation={req!r}" + (f" (transformers maps it to {FA3_REPO} for gpt-oss)" if req != FA3_REPO else "")
        if g is None:
            return result("attention", t, "skip", f"{asked}: needs a Hopper GPU; there is none here.")
        if not hopper:
            return result("attention", t, "fail",
                      f"{asked}: the kernel is built for Hopper (compute capability 9.0) only; {g.name} has "
                      f"{g.compute_capability or '?'}.", 'attn_implementation="eager"   # what runs on this GPU')
        if not kernels_ok:
            window = ecosystem.window_text(low, high)
            state = f"kernels {kv}" if kv else "kernels is not installed"
            return result("attention", t, "fail",
                      f"{asked}: transformers loads it through the kernels library, but {state} (transformers "
                      f"{f.version('transformers') or '?'} wants kernels{window}).", kernels_fix(f))
        return result("attention", t, "pass", f"{asked} on {g.name} (Hopper) with kernels {kv}.")
    if req and req not in ("eager", "flex_attention"):
        return result("attention", t, "warn", f"attn_implementation={req!r} is not one gpt-oss is known to run with.",
                  'attn_implementation="eager"')
    label = f"attn_implementation={req!r}" if req else "No attn_implementation requested: transformers uses eager for gpt-oss (it refuses SDPA)"
    if g is None:
        return result("attention", t, "pass", f"{label}; on the CPU eager is what runs.")
    if hopper and kernels_ok:
        return result("attention", t, "pass",
                  f"{label}. On this Hopper GPU attn_implementation=\"{FA3_REPO}\" (flash attention 3) is available too.")
    why = "not Hopper" if not hopper else "kernels is outside transformers' window"
    return result("attention", t, "pass", f"{label}; eager is what runs on {g.name} (flash attention 3 needs Hopper and "
                                      f"kernels in the window: {why}).")


def check_reasoning(f: Facts, ctx: Context) -> CheckResult:
    """The chat template says 'Reasoning: <effort>' for low, medium and high."""
    tk, t = f.tokenizer, "Reasoning effort"
    if tk.source is None:
        if tk.error:
            return result("reasoning", t, "warn", f"Could not read {ctx.model}'s chat template: {tk.error}")
        if ctx.model.startswith("synthetic:"):
            return result("reasoning", t, "skip",
                      f"{ctx.model} writes the project's own template; pass its folder (gptoss synthesize NAME --out DIR) "
                      "as --model to render it.")
        return result("reasoning", t, "skip",
                  f"{ctx.model}'s tokenizer is not in the local cache (run with --online to fetch only its chat template).")
    if tk.error:
        return result("reasoning", t, "fail", f"{tk.error} ({tk.path}).",
                  "Use the model's own chat template (re-download tokenizer_config.json / chat_template.jinja).")
    bad = [e for e, ok in tk.efforts.items() if not ok]
    where = {"local": "the model folder", "cache": "the hub cache", "hub": "the hub"}.get(tk.source, tk.source)
    if bad:
        found = "; ".join(f"{e}: {tk.system_lines.get(e) or 'no Reasoning line'}" for e in bad)
        return result("reasoning", t, "fail",
                  f"The chat template from {where} ignores reasoning_effort for {', '.join(bad)} ({found}): every "
                  "effort level runs the same.",
                  "Use the model's own chat template (re-download tokenizer_config.json / chat_template.jinja), or pass "
                  "the effort in the system prompt yourself.")
    return result("reasoning", t, "pass",
              f"The chat template from {where} says 'Reasoning: low|medium|high' in the system block for each effort.")


def check_index(f: Facts, ctx: Context) -> CheckResult:
    """Where the released versions behind every fix come from, and how old they are."""
    t = "Package versions"
    ix = f.index
    age = ecosystem.table_age_days(ctx.today)
    table = f"the table of known-good pairs of {ecosystem.TABLE_DATE} ({age} day{'s' if age != 1 else ''} old)"
    newest = ", ".join(f"{n} {ecosystem.released(ix, n)[-1]}" for n in ecosystem.INDEX_PACKAGES
                       if ecosystem.released(ix, n))
    asked = [n for n in ecosystem.INDEX_PACKAGES if ecosystem.source_of(ix, n) == "pypi"]
    if ix.online_checked and ix.online_error:
        part = f" (PyPI answered for {', '.join(asked)})" if asked else ""
        return result("index", t, "warn",
                  f"The package index did not answer ({ix.online_error}){part}; fixes use {table}: newest {newest}.",
                  "Check the network (or PIP_INDEX_URL), then run with --online again.")
    if asked:
        unknown = [v for v in ecosystem.released(ix, "transformers") if ecosystem.window_for(v) is None
                   and at_least(v, "5.13.0")]
        extra = (f" transformers {', '.join(unknown)} is newer than {table}: its kernels window is not known here."
                 if unknown else "")
        return result("index", t, "pass",
                  f"PyPI, asked {(ix.checked_at or '')[:10]}: newest {newest}; kernels windows from {table}.{extra}")
    if age > ecosystem.TABLE_STALE_DAYS:
        return result("index", t, "warn",
                  f"Fixes use {table}: newest {newest}; newer releases may exist.", "gptoss check --online")
    return result("index", t, "pass", f"Fixes use {table}: newest {newest} (--online asks PyPI).")


