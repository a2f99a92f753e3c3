"""Holm's step-down correction across the comparisons of one family (statsmodels)."""

from __future__ import annotations

import numpy as np
from statsmodels.stats.multitest import multipletests


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (NaN entries stay NaN and do not count towards the family size)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out
