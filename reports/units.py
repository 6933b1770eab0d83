"""Numbers for people: one display unit per column or axis, and a readable number of digits.

Values in the results file are SI (seconds, bytes, tokens/s, fractions). A table column or a plot
axis picks one display unit for all its values (``ms`` when every value is under a second,
``GiB`` for memory, ``%`` for fractions), so values in one column compare at a glance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from bench.results import METRICS

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class DisplayUnit:
    label: str  # what the header or axis says: "ms", "GiB", "tok/s", "%"
    scale: float  # display value = SI value * scale

    def __call__(self, value: float) -> float:
        return value * self.scale


def display_unit(unit: str, values: Iterable[float | None] = ()) -> DisplayUnit:
    """The display unit for a metric unit ("s", "bytes", "tok/s", "tokens", "fraction")."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    biggest = max(finite, default=0.0)
    if unit == "s":
        return DisplayUnit("ms", 1e3) if biggest < 1 else DisplayUnit("s", 1.0)
    if unit == "bytes":
        return DisplayUnit("MiB", 1 / MIB) if 0 < biggest < GIB else DisplayUnit("GiB", 1 / GIB)
    if unit == "fraction":
        return DisplayUnit("%", 100.0)
    return DisplayUnit(unit, 1.0)


def metric_unit(metric: str, values: Iterable[float | None] = ()) -> DisplayUnit:
    return display_unit(METRICS[metric].unit if metric in METRICS else "", values)


def decimals_for(value: float | None) -> int:
    """About three significant digits, never more than four decimals."""
    if value is None or not math.isfinite(value) or value == 0:
        return 0
    magnitude = math.floor(math.log10(abs(value)))
    return max(0, min(4, 2 - magnitude))


def fmt(value: float | None, decimals: int | None = None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if decimals is None:
        decimals = decimals_for(value)
    return f"{value:.{decimals}f}"


def fmt_spread(median: float | None, stdev: float | None, n: int | None = None) -> str:
    """``median ± stdev`` with the same decimals for both; a single value when n < 2."""
    if median is None:
        return "—"
    d = decimals_for(median)
    if stdev is None or (n is not None and n < 2):
        return fmt(median, d)
    return f"{fmt(median, d)} ± {fmt(stdev, d)}"


def fmt_value(value: float | None, unit: str) -> str:
    """One value of a metric unit ("s", "bytes", "tok/s", "fraction", "tokens") with its display unit."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if unit == "tok/s":
        return f"{fmt(value)} tok/s"
    if unit == "tokens":
        return fmt(value)
    shown = display_unit(unit, [value])
    return f"{fmt(shown(value))} {shown.label}".rstrip()


def fmt_bandwidth(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1e12:
        return f"{fmt(value / 1e12)} TB/s"
    return f"{fmt(value / 1e9)} GB/s"


def fmt_count(value: int | float | None) -> str:
    if value is None:
        return "—"
    if value >= 1e9:
        return f"{value / 1e9:.2f} B"
    if value >= 1e6:
        return f"{value / 1e6:.1f} M"
    return f"{int(value):,}"
