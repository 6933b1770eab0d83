"""Build variants of a hub kernel, and which one the installed torch would load.

A kernel repo on the hub holds one folder per build under ``build/``. The names, and the rules
the ``kernels`` library applies to pick one (``kernels.variants.resolve_variant`` in
huggingface/kernels), are:

* arch builds ``torch{major}{minor}[-cxx11|-cxx98]-{backend}-{cpu}-{os}``, e.g.
  ``torch211-cxx11-cu128-x86_64-linux``: torch's major.minor must be equal, the C++ ABI tag (when
  present) must match torch's, CPU and OS must match, and a CUDA build ``cuXY`` needs the same
  CUDA major as torch's build and a minor no newer than it;
* stable-ABI builds ``torch-stable-abi{major}{minor}-{backend}-{cpu}-{os}``: any torch at least
  that version;
* Python-only builds ``torch-cuda``, ``torch-rocm``, ``torch-xpu``, ``torch-cpu`` and the older
  ``torch-universal``: any torch with that backend (universal: any).

Python is not part of the names: arch builds use CPython's stable ABI (free-threaded Pythons
before 3.15 cannot load them). ``match()`` returns the accepted builds, best first, and one
reason per rejected build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TORCH = re.compile(r"torch(\d)(\d+)(?:-(cxx11|cxx98))?$")
_STABLE = re.compile(r"torch-stable-abi(\d)(\d+)$")
_BACKEND = re.compile(r"(cu|rocm|xpu)(\d+)$|(cpu|metal|npu)$")


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # arch | stable | noarch
    torch: tuple[int, int] | None = None
    cxx11: bool | None = None
    backend: str | None = None  # cuda | rocm | xpu | cpu | metal | npu | universal
    backend_version: tuple[int, int] | None = None  # (12, 8) for cu128
    cpu: str | None = None
    os: str | None = None


def _backend(tag: str) -> tuple[str, tuple[int, int] | None]:
    m = _BACKEND.fullmatch(tag)
    if not m:
        raise ValueError(tag)
    if m.group(3):
        return m.group(3), None
    kind, digits = m.group(1), m.group(2)
    if kind == "cu":
        return "cuda", (int(digits[:-1]), int(digits[-1]))  # cu128 -> 12.8, cu130 -> 13.0
    if kind == "rocm":
        return "rocm", (int(digits[0]), int(digits[1:] or 0))
    return "xpu", (int(digits[:4]), int(digits[4:] or 0))


def parse_variant(name: str) -> Variant | None:
    """A build folder name -> Variant; None for a name that is not a build variant."""
    parts = name.split("-")
    try:
        if name.startswith("torch-stable-abi"):
            m = _STABLE.fullmatch("-".join(parts[:3]))
            if not m or len(parts) != 6:
                return None
            backend, bv = _backend(parts[3])
            return Variant(name, "stable", torch=(int(m.group(1)), int(m.group(2))), backend=backend,
                           backend_version=bv, cpu=parts[4], os=parts[5])
        if parts[0] == "torch":
            if len(parts) != 2:
                return None
            return Variant(name, "noarch", backend=parts[1])
        if len(parts) >= 2 and parts[1] in ("cxx11", "cxx98"):
            fw, rest = f"{parts[0]}-{parts[1]}", parts[2:]
        else:
            fw, rest = parts[0], parts[1:]
        m = _TORCH.fullmatch(fw)
        if not m or len(rest) != 3:
            return None
        backend, bv = _backend(rest[0])
        cxx = None if m.group(3) is None else m.group(3) == "cxx11"
        return Variant(name, "arch", torch=(int(m.group(1)), int(m.group(2))), cxx11=cxx, backend=backend,
                       backend_version=bv, cpu=rest[1], os=rest[2])
    except ValueError:
        return None


@dataclass(frozen=True)
class System:
    """What the installed torch asks for: its version, CUDA build, C++ ABI, and the platform."""

    torch: tuple[int, int] | None
    cuda: tuple[int, int] | None  # torch.version.cuda as (major, minor); None: not a CUDA build
    cxx11: bool | None
    cpu: str  # x86_64, aarch64
    os: str  # linux, darwin, windows

    def wanted(self) -> str | None:
        """The arch build name the kernels library looks for first."""
        if self.torch is None or self.cuda is None:
            return None
        abi = "" if self.cxx11 is None or self.os != "linux" else ("-cxx11" if self.cxx11 else "-cxx98")
        return f"torch{self.torch[0]}{self.torch[1]}{abi}-cu{self.cuda[0]}{self.cuda[1]}-{self.cpu}-{self.os}"


def system_of(torch_version: str | None, cuda_build: str | None, cxx11: bool | None, machine: str | None,
              system: str | None) -> System:
    def mm(v: str | None) -> tuple[int, int] | None:
        m = re.match(r"\s*(\d+)\.(\d+)", v or "")
        return (int(m.group(1)), int(m.group(2))) if m else None

    cpu = (machine or "").lower()
    cpu = {"amd64": "x86_64", "arm64": "aarch64"}.get(cpu, cpu)
    return System(torch=mm(torch_version), cuda=mm(cuda_build), cxx11=cxx11, cpu=cpu, os=(system or "").lower())


def match(names: list[str], sys_: System) -> tuple[list[str], dict[str, str]]:
    """(accepted build names, best first; {rejected name: why}) for a CUDA torch."""
    accepted: list[tuple[tuple, str]] = []
    rejected: dict[str, str] = {}
    for name in names:
        v = parse_variant(name)
        if v is None:
            rejected[name] = "not a build variant name"
            continue
        if v.kind == "noarch":
            if v.backend in ("cuda", "universal") and sys_.cuda is not None:
                accepted.append(((2, 1 if v.backend == "universal" else 0), name))
            else:
                rejected[name] = f"backend {v.backend} does not match this torch"
            continue
        if v.cpu != sys_.cpu or v.os != sys_.os:
            rejected[name] = f"built for {v.cpu}-{v.os}, this is {sys_.cpu}-{sys_.os}"
            continue
        if v.backend != "cuda" or sys_.cuda is None:
            rejected[name] = f"backend {v.backend} does not match this torch's CUDA build"
            continue
        bv = v.backend_version or (0, 0)
        if bv[0] != sys_.cuda[0] or bv[1] > sys_.cuda[1]:
            rejected[name] = f"CUDA {bv[0]}.{bv[1]} build, torch is built for CUDA {sys_.cuda[0]}.{sys_.cuda[1]}"
            continue
        if v.kind == "stable":
            if sys_.torch is None or v.torch > sys_.torch:
                rejected[name] = f"needs torch >= {v.torch[0]}.{v.torch[1]}"
                continue
            accepted.append(((0, -v.torch[0], -v.torch[1], -bv[1]), name))
            continue
        if v.torch != sys_.torch:
            want = f"{sys_.torch[0]}.{sys_.torch[1]}" if sys_.torch else "?"
            rejected[name] = f"built for torch {v.torch[0]}.{v.torch[1]}, torch is {want}"
            continue
        if v.cxx11 is not None and sys_.cxx11 is not None and v.cxx11 != sys_.cxx11:
            rejected[name] = "C++ ABI differs from torch's"
            continue
        accepted.append(((1, 0 if v.cxx11 is None else 1, -bv[1]), name))
    return [n for _, n in sorted(accepted)], rejected


def torch_versions_built(names: list[str]) -> list[str]:
    """The torch major.minor versions the arch builds cover, e.g. ['2.10', '2.11']."""
    seen = {parse_variant(n).torch for n in names if parse_variant(n) and parse_variant(n).kind == "arch"}
    return [f"{a}.{b}" for a, b in sorted(t for t in seen if t)]
