"""``gptoss check --plan``: one consistent set of pip commands from this runtime to the MXFP4 path.

Reads the same facts as the checks (a what-if target's too) and decides, in order:

1. torch: kept when its CUDA build runs on the driver (same CUDA major; newer minors through
   minor-version compatibility) and, when the kernel's builds are known, the kernel has one for it.
   Otherwise the newest release in ``diagnostics.ecosystem.TORCH_BUILDS`` the driver runs, pinned
   with ``==`` on the CUDA index of the driver's major, so pip cannot pick one past what the driver
   supports; torchvision/torchaudio, when installed, go in the same command so pip matches them.
2. triton: torch's own pin (a new torch brings its pinned triton as a dependency); a kept torch
   whose pin the installed triton breaks gets the newest released triton inside the pin.
3. transformers + kernels: the installed transformers is kept when a released kernels lies in
   its window; otherwise the newest pair whose window holds a released kernels. accelerate joins
   that command when missing.
4. ``pip check``, then in Colab (or a notebook, or after a stale import) the restart, then the
   check again.

What pip cannot fix (no GPU, compute capability < 7.5, a driver no listed torch runs on) is a
blocker: the plan still lists the package steps, and says the MXFP4 path stays out of reach.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from diagnostics import ecosystem
from diagnostics.check_base import (
    GPT_OSS_MIN_TRANSFORMERS,
    MXFP4_CC75_MIN_TRANSFORMERS,
    TRITON_MIN_DEFAULT,
    Context,
    index_words,
    kernels_window,
    pair_command,
    primary_gpu,
    torch_command,
    working_pair,
)
from diagnostics.ecosystem_checks import has_kernel_build, release_has_kernel_build
from diagnostics.facts import Facts
from diagnostics.targets import torch_runs_on
from diagnostics.versions import Pin, at_least, base_version, in_window, major_minor


@dataclass
class PlanStep:
    command: str
    why: str


@dataclass
class Plan:
    steps: list[PlanStep] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)  # package -> version once applied
    notes: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)  # what pip cannot fix
    reaches_mxfp4: bool = False
    what_if: str | None = None  # the target described, when the plan is for one

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def commands(self) -> list[str]:
        return [s.command for s in self.steps]


def _plan_torch(f: Facts, plan: Plan) -> ecosystem.TorchBuild | None:
    """Keep torch, or add the step that replaces it; returns the new torch's table row."""
    drv = f.driver.cuda_version
    tv, build = f.torch.version or f.version("torch"), f.torch.cuda_build
    if drv is None:
        if tv:
            plan.notes.append(f"torch {tv} is kept: there is no NVIDIA driver here to check its CUDA build against "
                              "(pass --target or --gpu/--driver to plan for a GPU runtime).")
            plan.expected["torch"] = tv
        else:
            plan.blockers.append("torch is not installed and there is no NVIDIA driver here to choose a CUDA build for.")
        return None
    runs = torch_runs_on(build, drv) if (tv and build) else False
    has_build = has_kernel_build(f, tv, build) if runs else None
    if runs and has_build is not False:
        mm_b, mm_d = major_minor(build), major_minor(drv)
        how = " (a newer CUDA minor: it runs through CUDA minor-version compatibility)" if mm_b and mm_d and mm_b > mm_d else ""
        plan.notes.append(f"torch {tv} is kept: its CUDA {build} build runs on driver {f.driver.version} (CUDA {drv}){how}.")
        plan.expected["torch"] = tv
        return None
    if not tv:
        why = "torch is not installed"
    elif not build:
        why = f"torch {tv} is a CPU-only build"
    elif not runs:
        why = f"torch {tv} is built for CUDA {build}, newer than driver {f.driver.version} supports (CUDA {drv})"
    else:
        why = f"{f.kernel.repo_id} has no build for torch {tv} (CUDA {build})"

    choice = ecosystem.torch_for_driver(drv, accept=lambda b: release_has_kernel_build(f, b))
    if choice is None:
        plan.blockers.append(f"{why}, and no torch release in the table of {ecosystem.TABLE_DATE} runs on driver "
                             f"{f.driver.version} (CUDA {drv})" + (" with a kernel build" if f.kernel.variants else "")
                             + ": upgrade the NVIDIA driver (CUDA 12 or newer).")
        return None
    b, tag = choice
    companions = [n for n in ("torchvision", "torchaudio") if f.package(n).installed]
    cuda = ecosystem.tag_cuda(tag) if tag else b.pypi_cuda
    also = f"; {' and '.join(companions)} in the same command, so pip picks the builds that match it" if companions else ""
    plan.steps.append(PlanStep(
        torch_command(b.version, tag, *companions),
        f"{why}: torch {b.version} (CUDA {cuda}) runs on it and brings the triton it pins (triton{b.triton}){also}."))
    plan.expected["torch"] = f"{b.version}+{tag}" if tag else b.version
    return b


def _plan_triton(f: Facts, plan: Plan, new_torch: ecosystem.TorchBuild | None) -> None:
    triton = f.package("triton")
    minimum = f.transformers.triton_min or TRITON_MIN_DEFAULT
    if new_torch is not None:
        pin = new_torch.triton
    else:
        pins = f.package("torch").pins
        pin = pins.get("triton") or next(iter(pins.values()), None)
    released = ecosystem.released(f.index, "triton")
    want = ecosystem.newest_matching(released, pin) if pin else None
    if pin and want is None:
        want = Pin("triton", pin).exact()
    if new_torch is not None:
        if want:
            plan.expected["triton"] = want
    elif pin:
        if Pin("triton", pin).satisfied_by(triton.version) is False or not triton.installed:
            state = f"triton {triton.version} is installed" if triton.installed else "triton is not installed"
            plan.steps.append(PlanStep(f'pip install "triton=={want}"' if want else f'pip install "triton{pin}"',
                                       f"{state}, but torch {f.version('torch')} pins triton{pin}."))
        plan.expected["triton"] = want if (not triton.installed or Pin("triton", pin).satisfied_by(triton.version) is False) \
            else triton.version
    elif primary_gpu(f) is not None and (not triton.installed or at_least(base_version(triton.version), minimum) is False):
        newest = released[-1] if released else None
        plan.steps.append(PlanStep(f'pip install "triton=={newest}"' if newest else f'pip install "triton>={minimum}"',
                                   f"torch declares no triton, and MXFP4 needs triton >= {minimum}."))
        plan.expected["triton"] = newest or f">={minimum}"
    elif triton.installed:
        plan.expected["triton"] = triton.version
    final = plan.expected.get("triton")
    if final and at_least(base_version(final), minimum) is False:
        plan.blockers.append(f"torch pins triton {final}, older than the {minimum} MXFP4 needs: that takes a newer torch, "
                             "which this driver must support.")


def _plan_transformers(f: Facts, plan: Plan) -> None:
    tv, kv = f.version("transformers"), f.version("kernels")
    low, high = kernels_window(f)
    g = primary_gpu(f)
    cc75 = g is not None and g.cc == (7, 5)
    tf_ok = bool(tv) and at_least(tv, GPT_OSS_MIN_TRANSFORMERS) is not False and not (
        cc75 and at_least(tv, MXFP4_CC75_MIN_TRANSFORMERS) is False)
    k_released = ecosystem.released(f.index, "kernels")
    k_inside = ecosystem.newest_in(k_released, low, high) if (low or high) else (k_released[-1] if k_released else None)
    accelerate = [] if f.package("accelerate").installed else ["accelerate"]
    acc_note = " accelerate is missing, and MXFP4 loading needs it." if accelerate else ""
    if tf_ok and k_inside:
        plan.expected["transformers"] = tv
        window = ecosystem.window_text(low, high)
        if kv and in_window(kv, low, high) is not False:
            plan.expected["kernels"] = kv
            if accelerate:
                plan.steps.append(PlanStep("pip install accelerate", acc_note.strip()))
            return
        state = f"kernels {kv} is outside" if kv else "kernels is not installed; it must be inside"
        plan.steps.append(PlanStep(" ".join([f'pip install "kernels=={k_inside}"', *accelerate]),
                                   f"{state} the window transformers {tv} declares (kernels{window}); {k_inside} is the "
                                   f"newest release inside it (per {index_words(f)}).{acc_note}"))
        plan.expected["kernels"] = k_inside
        return
    pair = working_pair(f)
    if pair is None:
        plan.blockers.append("No transformers + kernels pair in the table has a released kernels inside its window.")
        return
    if not tv:
        why = "transformers is not installed"
    elif not tf_ok:
        why = f"transformers {tv} cannot run gpt-oss on the MXFP4 path here"
    else:
        newest = k_released[-1] if k_released else "?"
        why = (f"transformers {tv} declares kernels{ecosystem.window_text(low, high)}, and no such kernels is released "
               f"(newest: {newest}, per {index_words(f)})")
    plan.steps.append(PlanStep(
        pair_command(pair, *accelerate),
        f"{why}: transformers {pair.transformers} declares kernels{ecosystem.window_text(*pair.window)} and kernels "
        f"{pair.kernels} is released: the newest pair that works.{acc_note}"))
    plan.expected["transformers"], plan.expected["kernels"] = pair.transformers, pair.kernels


def make_plan(f: Facts, ctx: Context, check_command: str = "gptoss check") -> Plan:
    plan = Plan()
    if f.target:
        from diagnostics.targets import Target

        plan.what_if = Target(**f.target).describe()
    g = primary_gpu(f)
    if g is None:
        plan.blockers.append("No NVIDIA GPU here: the MXFP4 path needs one (pass --target colab-t4 or --gpu/--driver to "
                             "plan for another runtime).")
    elif g.cc is not None and g.cc < (7, 5):
        plan.blockers.append(f"{g.name} has compute capability {g.compute_capability}: MXFP4 needs >= 7.5, no package "
                             "changes that.")
    new_torch = _plan_torch(f, plan)
    _plan_triton(f, plan, new_torch)
    _plan_transformers(f, plan)
    changed = bool(plan.steps)
    if changed:
        plan.steps.append(PlanStep("pip check", "Verify: pip finds no broken requirement."))
    if f.platform.colab or (f.target or {}).get("colab"):
        plan.steps.append(PlanStep("Runtime > Restart session",
                                   "Colab: modules imported before the installs stay loaded until the runtime restarts."))
    elif changed and (f.platform.notebook or f.stale_modules):
        plan.steps.append(PlanStep("Restart the notebook kernel", "Modules imported before the installs stay loaded."))
    elif f.stale_modules:
        plan.steps.append(PlanStep("Restart the Python process", "Modules imported before an upgrade stay loaded."))
    plan.steps.append(PlanStep(check_command, "Confirm: the verdict should say path: mxfp4."))
    if f.kernel.variants is None and f.kernel.repo_id:
        how = "the hub did not list them" if f.kernel.online_checked else "run with --online to list them"
        plan.notes.append(f"{f.kernel.repo_id}'s builds are not known ({how}): the plan cannot tell whether the "
                          "kernel has a build for the planned torch.")
    plan.reaches_mxfp4 = not plan.blockers
    return plan


def render_plan(plan: Plan, model: str, header: str) -> str:
    """A copy-pasteable script: comments say why, lines are the commands."""
    lines = [f"# gptoss check --plan · {model} · {header}"]
    if plan.what_if:
        lines.append(f"# WHAT-IF: this environment's packages on {plan.what_if}")
    lines.append("")
    n = 0
    for step in plan.steps:
        n += 1
        lines.append(f"# {n}. {step.why}")
        lines.append(step.command)
    if plan.expected:
        lines += ["", "# Then: " + ", ".join(f"{k} {v}" for k, v in plan.expected.items())]
    for note in plan.notes:
        lines.append(f"# note: {note}")
    for b in plan.blockers:
        lines.append(f"# BLOCKED: {b}")
    lines.append("# " + ("These steps lead to the MXFP4 path." if plan.reaches_mxfp4
                         else "These steps make the packages consistent, but the MXFP4 path stays out of reach here."))
    return "\n".join(lines) + "\n"
