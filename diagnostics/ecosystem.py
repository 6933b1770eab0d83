"""Which versions exist, and which go together: the dated table of known-good pairs.

A fix must name versions a user can install. ``--online`` asks the package index (PyPI's JSON
API) for the released versions of kernels, transformers and triton; offline, and whenever the
index does not answer, the table below stands in, and the check says how old it is.

What the table holds, all read on ``TABLE_DATE`` from the registry and from the wheels themselves
(``KERNELS_MIN_VERSION`` / ``KERNELS_MAX_VERSION`` in ``transformers/utils/import_utils.py`` of
each release; ``Requires-Dist`` and the CUDA toolkit pin of each torch wheel):

* ``KERNELS_WINDOWS``: transformers release range -> the kernels window it declares;
* ``RELEASED``: the released (not yanked) versions of kernels, transformers and triton;
* ``TORCH_BUILDS``: per torch release, the triton it pins on Linux, the CUDA version of its PyPI
  wheel, and the CUDA wheel indexes of download.pytorch.org known to carry it.

The functions here are pure: ``released()`` merges the index's answer (``IndexFacts``) with the
table, ``window_for()`` finds a transformers release's kernels window, ``newest_in()`` the newest
released version inside a window, ``newest_working_pair()`` the newest transformers + kernels
whose window is satisfiable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from diagnostics.versions import Pin, compare, in_window, parse

TABLE_DATE = "2026-11-30"
TABLE_STALE_DAYS = 60  # older than this, the check warns that fixes may miss newer releases


@dataclass(frozen=True)
class WindowRow:
    """transformers ``low <= v <= high`` declares ``kernels_min <= kernels < kernels_max``."""

    transformers_low: str
    transformers_high: str  # inclusive: the last release of the range on TABLE_DATE
    kernels_min: str
    kernels_max: str | None


# Read from each release's import_utils.py (5.21.x between 5.20 and 5.22 by range).
KERNELS_WINDOWS: tuple[WindowRow, ...] = (
    WindowRow("5.10.0", "5.12.1", "0.10.2", None),
    WindowRow("5.13.0", "5.14.1", "0.15.2", "0.16.0"),
    WindowRow("5.15.0", "5.17.0", "0.16.0", "0.17.0"),
    WindowRow("5.18.0", "5.19.0", "0.17.0", "0.18.0"),
    WindowRow("5.20.0", "5.22.2", "0.17.2", "0.18.0"),
    WindowRow("5.23.0", "5.24.0", "0.18.2", "0.19.0"),
)

RELEASED: dict[str, tuple[str, ...]] = {
    "kernels": (
        "0.9.0", "0.9.1", "0.10.0", "0.10.1", "0.10.2", "0.10.3", "0.10.4", "0.10.5", "0.11.0", "0.11.1",
        "0.11.2", "0.11.3", "0.11.4", "0.11.5", "0.11.6", "0.11.7", "0.12.0", "0.12.1", "0.12.2", "0.12.3",
        "0.13.0", "0.14.0", "0.14.1", "0.15.1", "0.15.2", "0.16.0", "0.16.1", "0.16.2", "0.17.0", "0.17.1",
        "0.17.2",
    ),
    "transformers": (  # final releases since gpt-oss (4.55.0), none yanked but 5.10.0
        "4.55.0", "4.55.1", "4.55.2", "4.55.3", "4.55.4", "4.56.0", "4.56.1", "4.56.2", "4.57.1",
        "4.57.2", "4.57.3", "4.57.4", "4.57.5", "4.57.6", "5.0.0", "5.1.0", "5.2.0", "5.3.0", "5.4.0",
        "5.5.0", "5.5.1", "5.5.2", "5.5.3", "5.5.4", "5.6.0", "5.6.1", "5.6.2", "5.7.0", "5.8.0",
        "5.8.1", "5.9.0", "5.10.1", "5.10.2", "5.10.4", "5.11.0", "5.12.0", "5.12.1", "5.13.0",
        "5.13.1", "5.14.0", "5.14.1", "5.15.0", "5.15.1", "5.16.0", "5.16.1", "5.17.0", "5.18.0",
        "5.19.0", "5.20.0", "5.20.1", "5.20.2", "5.21.0", "5.21.1", "5.22.0", "5.22.1", "5.22.2",
        "5.23.0", "5.24.0",
    ),
    "triton": ("3.2.0", "3.3.0", "3.3.1", "3.4.0", "3.5.0", "3.5.1", "3.6.0", "3.7.0", "3.7.1", "3.8.0", "3.9.0"),
}
INDEX_PACKAGES: tuple[str, ...] = ("kernels", "transformers", "triton")


@dataclass(frozen=True)
class TorchBuild:
    version: str
    triton: str  # the Linux Requires-Dist pin: "==3.6.0", "~=3.9.0"
    pypi_cuda: str  # CUDA of the default (PyPI) Linux wheel
    cuda_indexes: tuple[str, ...]  # download.pytorch.org/whl/<tag> known to carry it

    @property
    def cudas(self) -> list[str]:
        """Every CUDA it is built for: PyPI's wheel first, then the indexes' (``12.8``)."""
        return [self.pypi_cuda] + [tag_cuda(t) for t in self.cuda_indexes]


# PyPI metadata read on TABLE_DATE. The CUDA 12 indexes: 2.11.0+cu128 is Colab's default torch
# (googlecolab/backend-info, August 2026); cu126/cu128 for 2.9-2.10 are PyTorch's published
# install matrix. Not re-read from download.pytorch.org, which this project's machines cannot reach.
TORCH_BUILDS: tuple[TorchBuild, ...] = (
    TorchBuild("2.9.1", "==3.5.1", "12.8", ("cu126", "cu128")),
    TorchBuild("2.10.0", "==3.6.0", "12.8", ("cu126", "cu128")),
    TorchBuild("2.11.0", "==3.6.0", "13.0", ("cu128",)),
    TorchBuild("2.12.0", "==3.7.0", "13.0", ()),
    TorchBuild("2.12.1", "==3.7.1", "13.0", ()),
    TorchBuild("2.13.0", "==3.7.1", "13.0", ()),
    TorchBuild("2.14.0", "~=3.8.0", "13.0", ()),
    TorchBuild("2.14.1", "~=3.8.0", "13.0", ()),
    TorchBuild("2.15.0", "~=3.9.0", "13.2", ()),
)
TORCH_INDEX_URL = "https://download.pytorch.org/whl/{tag}"


def table_age_days(today: date | None = None) -> int:
    today = today or date.today()
    return (today - date.fromisoformat(TABLE_DATE)).days


def _sorted(versions) -> list[str]:
    good = [v for v in versions if parse(v) is not None]
    return sorted(set(good), key=parse)


def released(index, name: str) -> list[str]:
    """Released versions of ``name``: the index's answer when it gave one, else the table's."""
    versions = (getattr(index, "versions", None) or {}).get(name) if index is not None else None
    if versions:
        return _sorted(versions)
    return _sorted(RELEASED.get(name, ()))


def source_of(index, name: str) -> str:
    """``pypi`` when the index answered for ``name``, else ``table``."""
    if index is not None and (getattr(index, "versions", None) or {}).get(name):
        return "pypi"
    return "table"


def window_for(transformers_version: str | None) -> tuple[str, str | None] | None:
    """The kernels window a transformers release declares, from the table; None when unknown."""
    for row in KERNELS_WINDOWS:
        if in_window(transformers_version, row.transformers_low, None) and compare(
                transformers_version, row.transformers_high) in (-1, 0):
            return row.kernels_min, row.kernels_max
    return None


def newest_in(versions: list[str], low: str | None, high: str | None) -> str | None:
    """The newest of ``versions`` (sorted or not) with ``low <= v < high``; final releases only."""
    inside = [v for v in versions if in_window(v, low, high) and not getattr(parse(v), "is_prerelease", False)]
    return _sorted(inside)[-1] if inside else None


def newest_matching(versions: list[str], specifier: str) -> str | None:
    """The newest of ``versions`` a pin (``==3.6.0``, ``~=3.9.0``) accepts."""
    pin = Pin("x", specifier)
    ok = [v for v in versions if pin.satisfied_by(v)]
    return _sorted(ok)[-1] if ok else None


@dataclass(frozen=True)
class Pair:
    transformers: str
    kernels: str
    window: tuple[str, str | None]


def newest_working_pair(index, at_least: str | None = None) -> Pair | None:
    """The newest released transformers whose kernels window holds a released kernels, with the
    newest kernels inside it (``at_least``: a lower bound on transformers, e.g. 4.55.2 for a T4)."""
    tf_released = released(index, "transformers")
    k_released = released(index, "kernels")
    best: Pair | None = None
    for row in KERNELS_WINDOWS:
        tfs = [v for v in tf_released
               if in_window(v, row.transformers_low, None) and compare(v, row.transformers_high) in (-1, 0)
               and (at_least is None or compare(v, at_least) != -1)
               and not getattr(parse(v), "is_prerelease", False)]
        k = newest_in(k_released, row.kernels_min, row.kernels_max)
        if not tfs or not k:
            continue
        pair = Pair(tfs[-1], k, (row.kernels_min, row.kernels_max))
        if best is None or compare(pair.transformers, best.transformers) == 1:
            best = pair
    return best


def torch_build(version: str | None) -> TorchBuild | None:
    base = (version or "").split("+", 1)[0]
    return next((b for b in TORCH_BUILDS if b.version == base), None)


def window_text(low: str | None, high: str | None) -> str:
    if low and high:
        return f">={low},<{high}"
    if low:
        return f">={low}"
    return ""


def _mm(v: str | None) -> tuple[int, int] | None:
    p = parse(v)
    rel = getattr(p, "release", None)
    return (rel[0], rel[1] if len(rel) > 1 else 0) if rel else None


def _tag_cuda(tag: str) -> tuple[int, int]:
    digits = tag[2:]
    return int(digits[:-1]), int(digits[-1])


def tag_cuda(tag: str) -> str:
    """A CUDA wheel index tag as a CUDA version: ``cu128`` -> ``12.8``."""
    major, minor = _tag_cuda(tag)
    return f"{major}.{minor}"


def torch_for_driver(driver_cuda: str | None, exact_only: bool = False,
                     accept=None) -> tuple[TorchBuild, str | None] | None:
    """A torch release (and CUDA index tag; None: PyPI's own wheel) that a driver supporting CUDA
    ``driver_cuda`` runs: builds for a CUDA no newer than the driver first, then (unless
    ``exact_only``) newer minors of the same major (CUDA minor-version compatibility, as Colab runs
    torch 2.11+cu128 on CUDA 12.4); the newest torch among them. ``accept(build)`` can veto a
    release (e.g. no kernel build for it)."""
    d = _mm(driver_cuda)
    if d is None:
        return None
    options = []  # (exact, version, -distance, build, tag)
    for b in TORCH_BUILDS:
        if accept is not None and not accept(b):
            continue
        tags = [(t, _tag_cuda(t)) for t in b.cuda_indexes] + [(None, _mm(b.pypi_cuda))]
        for tag, cuda in tags:
            if cuda is None or cuda[0] != d[0]:
                continue
            exact = cuda <= d
            if exact_only and not exact:
                continue
            distance = abs(cuda[1] - d[1])
            options.append((exact, parse(b.version), -distance, b, tag))
    if not options:
        return None
    best = max(options, key=lambda o: (o[0], o[1], o[2]))
    return best[3], best[4]
