"""Every side effect the probes have, in one injectable record.

``Sources()`` reads the real machine: ``os.environ``, ``sys.modules``, NVML through ``pynvml``
(nvidia-ml-py), ``importlib.metadata``, the filesystem, a fresh Python subprocess and, only with
``--online``, the Hugging Face Hub and the package index (PyPI). Tests build ``Sources(...)``
with canned answers instead (an NVML double, a dict of package versions, a fake runner), so every
branch of every check runs without a GPU, a network or transformers.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping


@dataclass
class RunResult:
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False


Runner = Callable[[list, Mapping[str, str], float], RunResult]


def run_subprocess(argv: list, env: Mapping[str, str], timeout: float) -> RunResult:
    """Run ``argv`` with ``env``; never raises (a failure to start is a RunResult too)."""
    try:
        proc = subprocess.run(
            argv, env=dict(env), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return RunResult(None, out, err, timed_out=True)
    except OSError as e:
        return RunResult(None, "", f"{type(e).__name__}: {e}")
    return RunResult(proc.returncode, proc.stdout, proc.stderr)


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _dist_requires(name: str) -> list[str] | None:
    try:
        return importlib.metadata.requires(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _module_available(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it (its parent package may be)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def _package_dir(name: str) -> str | None:
    """The folder of an installed top-level package, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(list(spec.submodule_search_locations)[0])  # a live package may list a Path here


def _load_nvml() -> Any:
    import pynvml  # nvidia-ml-py

    return pynvml


def _hub_check(repo_id: str, timeout: float) -> None:
    """Raise unless the hub answers for the kernel repo ``repo_id`` (only called with --online).

    Kernel repos have their own repo type on recent hubs; older huggingface_hub clients only
    know them as model repos."""
    from huggingface_hub import HfApi

    api = HfApi()
    kernel_info = getattr(api, "kernel_info", None)
    if kernel_info is not None:
        try:
            kernel_info(repo_id, timeout=timeout)
            return
        except Exception:  # noqa: BLE001 - fall back to the model-repo view below
            pass
    try:
        api.model_info(repo_id, timeout=timeout)
    except TypeError:  # very old huggingface_hub without timeout
        api.model_info(repo_id)


def _pypi_json(name: str, timeout: float) -> dict:
    """PyPI's JSON API for one project (only called with --online)."""
    import urllib.request

    req = urllib.request.Request(f"https://pypi.org/pypi/{name}/json", headers={"Accept": "application/json",
                                                                              "User-Agent": "gptoss-harness check"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
        return json.loads(resp.read().decode("utf-8"))


def _hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _hub_get(url: str, timeout: float) -> bytes:
    import urllib.request

    req = urllib.request.Request(url, headers={"User-Agent": "gptoss-harness check"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the hub endpoint
        return resp.read()


def _hub_list_build(repo_id: str, revision: str | None, timeout: float) -> list[str]:
    """The folder names under ``build/`` of a hub kernel repo (only called with --online).

    Plain HTTP with a timeout (the hub's tree API), kernel repos first, then the model-repo view
    older hubs give them; the ref ``v<N>`` for a kernel version, else main."""
    from urllib.parse import quote

    last: Exception | None = None
    for kind in ("kernels", "models"):
        for rev in [r for r in (revision, "main") if r]:
            url = f"{_hub_endpoint()}/api/{kind}/{repo_id}/tree/{quote(rev, safe='')}/build"
            try:
                items = json.loads(_hub_get(url, timeout).decode("utf-8"))
                return sorted({str(i["path"]).split("/")[-1] for i in items if i.get("type") == "directory"})
            except Exception as e:  # noqa: BLE001 - unknown repo kind or ref: try the next
                last = e
    raise last or RuntimeError("no answer")


def _hub_download(repo_id: str, filename: str, timeout: float) -> str:
    """One small file of a model repo into a temporary folder (only called with --online)."""
    import tempfile

    data = _hub_get(f"{_hub_endpoint()}/{repo_id}/resolve/main/{filename}", timeout)
    folder = Path(tempfile.mkdtemp(prefix="gptoss-template-"))
    (folder / filename).write_bytes(data)
    return str(folder / filename)


def _process_name(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def cpu_model(cpuinfo: str | None) -> str | None:
    """The first ``model name`` in /proc/cpuinfo's text (x86 and most arm64 kernels write one)."""
    for line in (cpuinfo or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return " ".join(value.split())
    return None


def _platform_info() -> dict:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        cpuinfo = None
    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": cpu_model(cpuinfo) or platform.processor() or "",
        "cpu_count": os.cpu_count(),
    }


@dataclass
class Sources:
    """The outside world as the probes see it. Every field has a real default."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    modules: Mapping[str, Any] = field(default_factory=lambda: sys.modules)
    nvml: Any = None  # a pynvml-like module; None = import pynvml lazily
    load_nvml: Callable[[], Any] = _load_nvml
    dist_version: Callable[[str], str | None] = _dist_version
    dist_requires: Callable[[str], list[str] | None] = _dist_requires
    module_available: Callable[[str], bool] = _module_available
    package_dir: Callable[[str], str | None] = _package_dir
    run: Runner = run_subprocess
    python: str = field(default_factory=lambda: sys.executable)
    disk_usage: Callable[[str], Any] = shutil.disk_usage
    hub_check: Callable[[str, float], None] = _hub_check
    hub_list_build: Callable[[str, str | None, float], list[str]] = _hub_list_build
    hub_download: Callable[[str, str, float], str] = _hub_download
    pypi_json: Callable[[str, float], dict] = _pypi_json
    process_name: Callable[[int], str | None] = _process_name
    platform_info: Callable[[], dict] = _platform_info
    pid: int = field(default_factory=os.getpid)
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    runtime_timeout_s: float = 90.0
    hub_timeout_s: float = 5.0
    index_timeout_s: float = 5.0

    def get_nvml(self) -> Any:
        return self.nvml if self.nvml is not None else self.load_nvml()
