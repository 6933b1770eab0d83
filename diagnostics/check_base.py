"""What every check is made of: the result and verdict records, the context a check reads, and
the readers and fix texts several checks share. Pure: facts in, text out."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date

from diagnostics import ecosystem
from diagnostics.facts import Facts, GpuFact
from diagnostics.modelref import DEFAULT_MODEL
from diagnostics.models import GiB, ModelSpec
from diagnostics.versions import major_minor

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

    model: str = DEFAULT_MODEL
    spec: ModelSpec | None = None
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    memory: MemoryEstimate | None = field(default=None)
    attn: str | None = None  # the requested attn_implementation; None: transformers' default
    today: date | None = None  # for the age of the version table; None: today


# --------------------------------------------------------------------------------------------
# Readers and fixes several checks share
# --------------------------------------------------------------------------------------------


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


def primary_cc(f: Facts) -> tuple[int, int] | None:
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


def unreleased_note(f: Facts) -> str:
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
        return torch_command(choice[0].version, choice[1])
    tag = torch_index_tag(f.driver.cuda_version)
    if tag:
        return f"pip install --force-reinstall torch --index-url {ecosystem.TORCH_INDEX_URL.format(tag=tag)}"
    return "pip install --force-reinstall torch  (a CUDA build: https://pytorch.org/get-started/locally/)"


def torch_command(version: str, tag: str | None, *extra: str) -> str:
    """``pip install "torch==X" [extra ...]`` from PyPI (``tag`` None) or a CUDA index (``cu128``)."""
    where = [f"--index-url {ecosystem.TORCH_INDEX_URL.format(tag=tag)}"] if tag else []
    return " ".join([f'pip install "torch=={version}"', *extra, *where])


def restart_fix(f: Facts) -> str:
    if f.platform.colab:
        return "Restart the runtime (Colab: Runtime > Restart session), then run the check again."
    if f.platform.notebook:
        return "Restart the notebook kernel, then run the check again."
    return "Restart the Python process, then run the check again."


def result(id_: str, title: str, status: str, message: str, fix: str | None = None) -> CheckResult:
    assert status in STATUSES, status
    return CheckResult(id_, title, status, message, fix)



NO_GPU_FIX = (
    "In Colab: Runtime > Change runtime type > a GPU (T4 or better), then run this again. "
    "Elsewhere: use a machine with an NVIDIA GPU and driver (`nvidia-smi` must list it)."
)
