"""Facts about the machine -> checks with a verdict and a fix -> an environment report.

Will gpt-oss run here, on which path (MXFP4 kernels or the silent bf16 fallback), and what
exactly to fix? Answered before a 13.8 GB download.

From a notebook (Colab, Jupyter)::

    from diagnostics import check
    check()                              # a rich HTML table; print(check()) for text
    check("openai/gpt-oss-120b")

From the shell: ``gptoss check [--model ID] [--json] [--online] [--strict]`` (exit 0 when nothing
fails, 1 when a check fails, with ``--strict`` also on a warning); ``--plan`` prints the pip
commands to the MXFP4 path; ``--target colab-t4`` (or ``--gpu NAME --driver VERSION``) checks the
installed packages against another GPU and driver (a what-if); ``--attn IMPL`` checks an
attention implementation.

From code (the bench embeds this in every results file)::

    from diagnostics import snapshot
    report = snapshot("openai/gpt-oss-20b")
    report.to_dict()       # JSON: diagnostics/schema/check-1.schema.json ("gptoss-harness/check/1")
    report.verdict.path    # "mxfp4" | "bf16" | "none" | "unknown"
    report.exit_code(strict=False)

How it works (one concern per module):

* ``sources``  every side effect (environ, sys.modules, NVML, importlib.metadata, the filesystem,
  a subprocess, the hub, PyPI) in one injectable record; tests pass canned answers.
* ``probes``   (with ``probe_base``) one function per fact, never raising: NVML (GPUs, driver, MIG, processes), package
  versions and pins, the installed transformers' source (kernels window, hub kernel repo), stale
  modules, disk and hub cache, LOCAL_KERNELS, and a fresh ``python -c`` that asks torch what it
  sees and transformers' own Mxfp4 quantizer whether it keeps MXFP4 or dequantizes to bf16.
* ``facts``    the typed records; ``checks`` (with ``gpu_checks`` and ``check_base``) pure functions
  facts -> pass/warn/fail/skip + fix, then the verdict; ``report`` the CheckReport and the JSON edge; ``render`` text and HTML.
* ``models``   gpt-oss-20b/120b shapes and sizes; ``gpus`` datasheet bandwidths of known GPUs.
* ``ecosystem`` the dated table of known-good pairs (kernels windows per transformers release,
  released versions, torch builds and their triton pins); ``ecosystem_probes`` the package index,
  the kernel's build variants and the chat template; ``ecosystem_checks`` the checks against them;
  ``targets`` what-if runtimes and the driver -> CUDA table; ``kernel_builds`` hub kernel build
  variants and which one torch loads; ``reasoning`` the chat template rendered per reasoning
  effort; ``plan`` the ``--plan`` commands.
* ``modelref`` the parsed ``--model`` (hub id, local folder, synthetic:NAME), shared with bench;
  ``errors`` the one user-error type and one-line error text; ``meta`` tool version, time stamps.

Without ``online=True`` nothing touches the network (with it: the hub and PyPI's JSON API); nothing ever downloads weights or kernels.
Secrets (variables named *TOKEN*, *KEY*, *SECRET*, *PASS*, *AUTH*, *CREDENTIAL*, and hf_... values)
are redacted in every output. Importing this package imports neither torch nor transformers.
"""

from __future__ import annotations

import importlib

# Loaded on first use, so that bench (which imports diagnostics.errors, .meta and .modelref)
# and `gptoss --help` do not pay for the checks.
_EXPORTS = {
    "CheckReport": "diagnostics.report", "SCHEMA_ID": "diagnostics.report", "check": "diagnostics.report",
    "snapshot": "diagnostics.report", "CheckResult": "diagnostics.checks", "Verdict": "diagnostics.checks",
    "Facts": "diagnostics.facts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'diagnostics' has no attribute {name!r}")
