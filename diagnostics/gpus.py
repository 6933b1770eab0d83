"""Known NVIDIA GPUs: peak memory bandwidth, compute capability and memory, by NVML name.

The bench divides peak memory bandwidth by the bytes read per decoded token
(``diagnostics.models.ModelSpec.bytes_per_token``) for its decode roofline; the check uses the
compute capability when torch cannot tell. Bandwidths are the vendor's datasheet peaks in bytes/s
(decimal: 1 GB/s = 1e9 B/s), so a measured fraction of them is comparable across machines; they are
peaks, not what a kernel reaches. Memory is the nominal size; what counts for fitting a model is
the free memory NVML reports.

``known_gpu(nvml_name, memory_total_bytes=None)`` matches the names NVML gives ("Tesla T4",
"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB", "NVIDIA A100 80GB PCIe", ...) and returns None
for a GPU it does not know or cannot tell apart (e.g. an A100 80GB without its form factor), rather
than guess.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

GB = 10**9


@dataclass(frozen=True)
class GpuSpec:
    name: str  # canonical, e.g. "H100 SXM 80GB"
    memory_bandwidth_bytes_s: float
    compute_capability: str  # "9.0"
    memory_gb: int  # nominal
    source: str  # where the bandwidth comes from

    @property
    def cc_tuple(self) -> tuple[int, int]:
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)

    def to_dict(self) -> dict:
        return asdict(self)


def _g(name: str, gbs: float, cc: str, mem: int, sheet: str) -> GpuSpec:
    return GpuSpec(name, gbs * GB, cc, mem, f"datasheet: {sheet}")


T4 = _g("T4", 320, "7.5", 16, "NVIDIA T4 Tensor Core GPU datasheet")
L4 = _g("L4", 300, "8.9", 24, "NVIDIA L4 Tensor Core GPU datasheet")
A10 = _g("A10", 600, "8.6", 24, "NVIDIA A10 Tensor Core GPU datasheet")
A10G = _g("A10G", 600, "8.6", 24, "AWS EC2 G5 instance specification (A10G)")
A30 = _g("A30", 933, "8.0", 24, "NVIDIA A30 Tensor Core GPU datasheet")
A40 = _g("A40", 696, "8.6", 48, "NVIDIA A40 datasheet")
A100_40_PCIE = _g("A100 PCIe 40GB", 1555, "8.0", 40, "NVIDIA A100 Tensor Core GPU datasheet")
A100_40_SXM = _g("A100 SXM 40GB", 1555, "8.0", 40, "NVIDIA A100 Tensor Core GPU datasheet")
A100_80_PCIE = _g("A100 PCIe 80GB", 1935, "8.0", 80, "NVIDIA A100 Tensor Core GPU datasheet")
A100_80_SXM = _g("A100 SXM 80GB", 2039, "8.0", 80, "NVIDIA A100 Tensor Core GPU datasheet")
H100_SXM = _g("H100 SXM 80GB", 3350, "9.0", 80, "NVIDIA H100 Tensor Core GPU datasheet")
H100_PCIE = _g("H100 PCIe 80GB", 2000, "9.0", 80, "NVIDIA H100 Tensor Core GPU datasheet")
H100_NVL = _g("H100 NVL 94GB", 3900, "9.0", 94, "NVIDIA H100 Tensor Core GPU datasheet")
H200 = _g("H200 SXM 141GB", 4800, "9.0", 141, "NVIDIA H200 Tensor Core GPU datasheet")
H200_NVL = _g("H200 NVL 141GB", 4800, "9.0", 141, "NVIDIA H200 Tensor Core GPU datasheet")
B200 = _g("B200 180GB", 8000, "10.0", 180, "NVIDIA HGX B200 datasheet (8 TB/s per GPU)")
L40 = _g("L40", 864, "8.9", 48, "NVIDIA L40 datasheet")
L40S = _g("L40S", 864, "8.9", 48, "NVIDIA L40S datasheet")
V100_16 = _g("V100 16GB", 900, "7.0", 16, "NVIDIA V100 Tensor Core GPU datasheet")
V100_32 = _g("V100 32GB", 900, "7.0", 32, "NVIDIA V100 Tensor Core GPU datasheet")
V100S = _g("V100S 32GB", 1134, "7.0", 32, "NVIDIA V100S datasheet")
P100_16 = _g("P100 16GB", 732, "6.0", 16, "NVIDIA Tesla P100 datasheet")
P100_12 = _g("P100 12GB", 549, "6.0", 12, "NVIDIA Tesla P100 datasheet")
RTX_3090 = _g("GeForce RTX 3090", 936, "8.6", 24, "NVIDIA GeForce RTX 3090 specifications")
RTX_3090_TI = _g("GeForce RTX 3090 Ti", 1008, "8.6", 24, "NVIDIA GeForce RTX 3090 Ti specifications")
RTX_4090 = _g("GeForce RTX 4090", 1008, "8.9", 24, "NVIDIA GeForce RTX 4090 specifications")
RTX_5090 = _g("GeForce RTX 5090", 1792, "12.0", 32, "NVIDIA GeForce RTX 5090 specifications")
RTX_A6000 = _g("RTX A6000", 768, "8.6", 48, "NVIDIA RTX A6000 datasheet")
RTX_6000_ADA = _g("RTX 6000 Ada", 960, "8.9", 48, "NVIDIA RTX 6000 Ada Generation datasheet")
RTX_PRO_6000 = _g("RTX PRO 6000 Blackwell", 1792, "12.0", 96, "NVIDIA RTX PRO 6000 Blackwell datasheet")

ALL: tuple[GpuSpec, ...] = (
    T4, L4, A10, A10G, A30, A40, A100_40_PCIE, A100_40_SXM, A100_80_PCIE, A100_80_SXM,
    H100_SXM, H100_PCIE, H100_NVL, H200, H200_NVL, B200, L40, L40S, V100_16, V100_32, V100S,
    P100_16, P100_12, RTX_3090, RTX_3090_TI, RTX_4090, RTX_5090, RTX_A6000, RTX_6000_ADA, RTX_PRO_6000,
)

_GIB = 1024**3


def _normalize(name: str) -> str:
    n = name.upper().replace("_", " ")
    for word in ("NVIDIA", "TESLA", "GEFORCE", "QUADRO"):
        n = re.sub(rf"\b{word}\b", " ", n)
    return " " + re.sub(r"\s+", " ", n).strip() + " "


def _size_gb(n: str, memory_total_bytes: int | None) -> int | None:
    """The memory size written in the name ("80GB"), else from NVML's total, else None."""
    m = re.search(r"(\d+)\s*GB", n)
    if m:
        return int(m.group(1))
    if memory_total_bytes:
        return round(memory_total_bytes / _GIB)
    return None


def known_gpu(nvml_name: str | None, memory_total_bytes: int | None = None) -> GpuSpec | None:
    """The spec of the GPU NVML calls ``nvml_name``; None when unknown or ambiguous.

    ``memory_total_bytes`` (from NVML) tells 40GB from 80GB A100s, 16 from 32GB V100s when the name
    does not."""
    if not nvml_name:
        return None
    n = _normalize(nvml_name)
    size = _size_gb(n, memory_total_bytes)

    def has(pattern: str) -> bool:
        return re.search(pattern, n) is not None

    if has(r"\bGH200\b"):
        return None  # H100/H200 in a Grace Hopper module: bandwidth differs by variant
    if has(r"\bH200\b"):
        return H200_NVL if has(r"\bNVL\b") else H200
    if has(r"\bH100\b"):
        if has(r"\bNVL\b"):
            return H100_NVL
        if has(r"\bPCIE\b"):
            return H100_PCIE
        if has(r"\bHBM3\b|\bSXM\d?\b"):
            return H100_SXM
        return None
    if has(r"\bB200\b"):
        return B200
    if has(r"\bA100\b"):
        if size is None:
            return None
        big = size > 50
        if has(r"\bSXM\d?\b"):
            return A100_80_SXM if big else A100_40_SXM
        if has(r"\bPCIE\b"):
            return A100_80_PCIE if big else A100_40_PCIE
        return None if big else A100_40_SXM  # both 40GB forms share 1,555 GB/s
    if has(r"\bA10G\b"):
        return A10G
    if has(r"\bA10\b"):
        return A10
    if has(r"\bA30\b"):
        return A30
    if has(r"\bA40\b"):
        return A40
    if has(r"\bL40S\b"):
        return L40S
    if has(r"\bL40\b"):
        return L40
    if has(r"\bL4\b"):
        return L4
    if has(r"\bT4\b"):
        return T4
    if has(r"\bV100S\b"):
        return V100S
    if has(r"\bV100\b"):
        if size is None:
            return V100_16  # bandwidth is the same; only the nominal memory differs
        return V100_32 if size > 20 else V100_16
    if has(r"\bP100\b"):
        return P100_12 if size is not None and size < 14 else P100_16
    if has(r"\bRTX PRO 6000\b"):
        return RTX_PRO_6000
    if has(r"\bRTX 6000 ADA\b"):
        return RTX_6000_ADA
    if has(r"\bRTX A6000\b"):
        return RTX_A6000
    if has(r"\bRTX 3090 TI\b"):
        return RTX_3090_TI
    if has(r"\bRTX 3090\b"):
        return RTX_3090
    if has(r"\bRTX 4090\b") and not has(r"\b4090 D\b"):
        return RTX_4090
    if has(r"\bRTX 5090\b") and not has(r"\b5090 D\b"):
        return RTX_5090
    return None
