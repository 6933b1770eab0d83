"""Version strings and requirement pins, compared the way pip does (PEP 440).

Uses ``packaging`` when importable (it ships with pip, transformers and huggingface_hub); falls
back to a small numeric parser so that the checks never crash on a machine without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

try:  # pragma: no cover - the fallback is exercised by a test that hides packaging
    from packaging.markers import default_environment as _default_env
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    HAVE_PACKAGING = True
except ImportError:  # pragma: no cover
    HAVE_PACKAGING = False


def _fallback_key(v: str) -> tuple:
    v = v.split("+", 1)[0]
    nums = [int(x) for x in re.findall(r"\d+", v.split("rc")[0].split("a")[0].split("b")[0].split("dev")[0])[:4]]
    pre = 0 if re.search(r"(a|b|rc|dev)\d*", v) else 1
    return tuple(nums + [0] * (4 - len(nums))) + (pre,)


def parse(v: str | None):
    """A comparable version, or None for None/unparseable input."""
    if not v:
        return None
    if HAVE_PACKAGING:
        try:
            return Version(v)
        except InvalidVersion:
            return None
    try:
        return _fallback_key(v)
    except ValueError:
        return None


def compare(a: str | None, b: str | None) -> int | None:
    """-1, 0 or 1; None when either side is missing or unparseable."""
    pa, pb = parse(a), parse(b)
    if pa is None or pb is None:
        return None
    return (pa > pb) - (pa < pb)


def at_least(v: str | None, minimum: str) -> bool | None:
    c = compare(v, minimum)
    return None if c is None else c >= 0


def in_window(v: str | None, low: str | None, high: str | None) -> bool | None:
    """``low <= v < high`` (either bound may be None: open)."""
    if parse(v) is None:
        return None
    if low and compare(v, low) == -1:
        return False
    if high and compare(v, high) != -1:
        return False
    return True


def base_version(v: str | None) -> str | None:
    """``2.8.0+cu126`` -> ``2.8.0``."""
    return v.split("+", 1)[0] if v else v


def major_minor(v: str | None) -> tuple[int, int] | None:
    if not v:
        return None
    m = re.match(r"\s*(\d+)\.(\d+)", v)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class Pin:
    """One ``Requires-Dist`` entry that applies to this machine: ``triton==3.4.0``."""

    name: str  # normalized distribution name
    specifier: str  # "==3.4.0", ">=2.0,<3"

    def __str__(self) -> str:
        return f"{self.name}{self.specifier}"

    def exact(self) -> str | None:
        """The version of an ``==X`` pin, else None."""
        m = re.fullmatch(r"===?\s*([^,;\s]+)", self.specifier.strip())
        return m.group(1) if m else None

    def satisfied_by(self, version: str | None) -> bool | None:
        if version is None:
            return None
        if HAVE_PACKAGING:
            try:
                return SpecifierSet(self.specifier).contains(version, prereleases=True)
            except (InvalidSpecifier, InvalidVersion):
                return None
        want = self.exact()  # pragma: no cover - fallback
        return None if want is None else compare(base_version(version), base_version(want)) == 0  # pragma: no cover


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins_for(requires: list[str] | None, names: set[str], environment: dict | None = None) -> list[Pin]:
    """The requirements among ``requires`` (Requires-Dist lines) on one of ``names`` whose environment
    markers hold here (extras excluded)."""
    out: list[Pin] = []
    wanted = {normalize_name(n) for n in names}
    for line in requires or []:
        if HAVE_PACKAGING:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            name = normalize_name(req.name)
            if name not in wanted:
                continue
            if req.marker is not None:
                env = dict(_default_env())
                env.update(environment or {})
                env.setdefault("extra", "")
                try:
                    if not req.marker.evaluate(env):
                        continue
                except Exception:  # noqa: BLE001 - an odd marker must not crash the check
                    continue
            out.append(Pin(name, str(req.specifier)))
        else:  # pragma: no cover - fallback
            m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*([^;]*)(;.*)?$", line)
            if not m or normalize_name(m.group(1)) not in wanted or (m.group(3) and "extra" in m.group(3)):
                continue
            out.append(Pin(normalize_name(m.group(1)), m.group(2).strip().strip("()")))
    return out
