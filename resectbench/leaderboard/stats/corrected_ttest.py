"""Nadeau & Bengio's corrected resampled t-test over cross-validation folds.

Fold scores of two models on the same folds are paired; their differences are not independent
(the training sets overlap), so the naive t-test is far too liberal. Nadeau & Bengio (2003,
Machine Learning 52:239-281) inflate the variance of the mean difference by the test/train size
ratio: ``var = (1/J + n_test/n_train) * s^2`` over ``J`` folds (all repeats pooled), with ``J - 1``
degrees of freedom (Bouckaert & Frank 2004 for the repeated k-fold form).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class CorrectedTTest:
    mean_difference: float  # mean of a - b over the folds
    t: float
    df: int
    p_value: float  # two-sided
    se: float  # corrected standard error of the mean difference


def corrected_resampled_ttest(a, b, test_train_ratio: float) -> CorrectedTTest:
    """Two-sided corrected resampled t-test of paired fold scores ``a`` vs ``b``.

    ``test_train_ratio`` is n_test / n_train of one fold (1/(k-1) for k-fold CV). Returns NaN
    statistics when fewer than two folds are given; when all differences are equal the test
    is degenerate: p = 1 for zero difference, p = 0 otherwise.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired fold scores must be two 1-d arrays of equal length, got {a.shape} and {b.shape}")
    if test_train_ratio <= 0:
        raise ValueError(f"test_train_ratio must be positive, got {test_train_ratio}")
    d = a - b
    keep = np.isfinite(d)
    d = d[keep]
    j = len(d)
    if j < 2:
        return CorrectedTTest(
            float(np.mean(d)) if j else float("nan"), float("nan"), max(j - 1, 0), float("nan"), float("nan")
        )
    mean = float(d.mean())
    var = float(d.var(ddof=1))
    se = float(np.sqrt((1.0 / j + test_train_ratio) * var))
    if se == 0.0:
        return CorrectedTTest(
            mean, 0.0 if mean == 0 else float(np.sign(mean) * np.inf), j - 1, 1.0 if mean == 0 else 0.0, 0.0
        )
    t = mean / se
    p = float(2.0 * stats.t.sf(abs(t), df=j - 1))
    return CorrectedTTest(mean, float(t), j - 1, p, se)
