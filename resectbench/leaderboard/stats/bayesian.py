"""Bayesian correlated t-test (Corani & Benavoli 2015, Machine Learning 100:285-304).

The posterior of the mean fold-score difference is a Student t with ``J - 1`` degrees of
freedom, location = mean difference and scale ``sqrt((1/J + rho/(1-rho)) * s^2)``, where
``rho = n_test / (n_test + n_train)`` is the correlation between folds (so ``rho/(1-rho)`` is the
same test/train ratio as in the Nadeau-Bengio correction). Probabilities are read off this
posterior against a region of practical equivalence (ROPE) ``[-rope, rope]``. This is the
formula baycomp's ``CorrelatedTTest`` implements; written here because baycomp is not a
dependency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class BayesianComparison:
    p_left: float  # P(mean difference < -rope): b is practically better
    p_rope: float  # P(|mean difference| <= rope): practically equivalent
    p_right: float  # P(mean difference > rope): a is practically better
    mean: float
    scale: float
    df: int


def correlated_bayesian_ttest(a, b, test_train_ratio: float, rope: float = 0.01) -> BayesianComparison:
    """Posterior probabilities that ``a`` is worse / equivalent / better than ``b`` (paired fold scores)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired fold scores must be two 1-d arrays of equal length, got {a.shape} and {b.shape}")
    if rope < 0:
        raise ValueError(f"rope must be non-negative, got {rope}")
    d = a - b
    d = d[np.isfinite(d)]
    j = len(d)
    if j < 2:
        nan = float("nan")
        return BayesianComparison(nan, nan, nan, float(np.mean(d)) if j else nan, nan, max(j - 1, 0))
    mean = float(d.mean())
    scale = float(np.sqrt((1.0 / j + test_train_ratio) * d.var(ddof=1)))
    if scale == 0.0:  # every fold agrees: the posterior is a point mass at the mean
        left, right = float(mean < -rope), float(mean > rope)
        return BayesianComparison(left, 1.0 - left - right, right, mean, 0.0, j - 1)
    posterior = stats.t(df=j - 1, loc=mean, scale=scale)
    left = float(posterior.cdf(-rope))
    right = float(posterior.sf(rope))
    return BayesianComparison(left, max(0.0, 1.0 - left - right), right, mean, scale, j - 1)
