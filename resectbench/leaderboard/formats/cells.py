"""Text of table cells: mean +- SD, intervals, p-values, sizes and times (shared by all formats)."""

from __future__ import annotations

import math


def finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def number(x, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if finite(x) else "-"


def mean_sd(mean, sd, digits: int = 3, pm: str = " ± ") -> str:
    if not finite(mean):
        return "-"
    return f"{mean:.{digits}f}{pm}{sd:.{digits}f}" if finite(sd) else f"{mean:.{digits}f}"


def interval(iv, digits: int = 3) -> str:
    if iv is None or not finite(iv.estimate):
        return "-"
    if not (finite(iv.low) and finite(iv.high)):
        return f"{iv.estimate:.{digits}f}"
    return f"{iv.estimate:.{digits}f} [{iv.low:.{digits}f}, {iv.high:.{digits}f}]"


def p_value(p) -> str:
    if not finite(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def signed(x, digits: int = 3) -> str:
    return f"{x:+.{digits}f}" if finite(x) else "-"


def count(n) -> str:
    """Parameter counts: 1234 -> 1.2k, 12_345_678 -> 12.3M."""
    if not finite(n):
        return "-"
    n = float(n)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{int(n)}"


def seconds(s) -> str:
    if not finite(s):
        return "-"
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s"


def millis(s) -> str:
    return f"{s * 1000:.1f}" if finite(s) else "-"
