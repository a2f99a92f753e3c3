"""DeLong's test for paired ROC AUCs, via the fast midrank algorithm of Sun & Xu (2014).

DeLong, DeLong & Clarke-Pearson (1988, Biometrics 44:837-845) estimate the covariance of
correlated AUCs from *structural components* (placement values): for a positive case,
``V10 = fraction of negatives it outranks`` (ties count one half); for a negative case,
``V01 = fraction of positives that outrank it``. ``Var(AUC) = S10/m + S01/n`` with ``S10``,
``S01`` the sample (co)variances of the components over the ``m`` positives and ``n`` negatives.
Sun & Xu (2014, IEEE Signal Processing Letters 21:1389-1393) compute the components from
midranks in O((m+n) log(m+n)).

One-vs-rest macro AUC (the leaderboard's AUC): each class's AUC is a U-statistic over the same
cases, so the per-case components of all classes combine into one influence value per case,
``h(k) = mean over classes c of (V_c(k) - AUC_c) / sqrt(size_c(size_c - 1))`` (``size_c`` = the
number of positives or negatives of class c that case ``k`` belongs to), and
``Var(macro AUC_A - macro AUC_B) = sum_k (h_A(k) - h_B(k))^2``. For one class this is exactly
DeLong's paired variance; across classes it is the first-order (Hoeffding) covariance of the
per-class U-statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def midrank(x: np.ndarray) -> np.ndarray:
    """Midranks (1-based; tied values share the mean of their ranks)."""
    x = np.asarray(x, dtype=float)
    return stats.rankdata(x, method="average")


def structural_components(scores: np.ndarray, positive: np.ndarray):
    """Fast DeLong components of one or more score vectors against one binary truth.

    ``scores`` is (k, N) (k models) or (N,); returns ``auc`` (k,), ``v10`` (k, m) for the positives
    and ``v01`` (k, n) for the negatives, in the order the cases appear.
    """
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    pos = np.asarray(positive, dtype=bool)
    m, n = int(pos.sum()), int((~pos).sum())
    if m == 0 or n == 0:
        raise ValueError("DeLong needs at least one positive and one negative case")
    x, y = s[:, pos], s[:, ~pos]
    tx = np.vstack([midrank(row) for row in x])
    ty = np.vstack([midrank(row) for row in y])
    tz = np.vstack([midrank(row) for row in np.hstack([x, y])])
    auc = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return auc, v10, v01


def delong_covariance(scores: np.ndarray, positive: np.ndarray):
    """AUCs (k,) and their DeLong covariance matrix (k, k) for k score vectors on the same cases."""
    auc, v10, v01 = structural_components(scores, positive)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(auc), len(auc)))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((len(auc), len(auc)))
    return auc, s10 / m + s01 / n


@dataclass(frozen=True)
class DeLongTest:
    auc_a: float
    auc_b: float
    difference: float  # auc_a - auc_b
    se: float
    z: float
    p_value: float  # two-sided, normal approximation


def _test(auc_a: float, auc_b: float, var: float) -> DeLongTest:
    diff = auc_a - auc_b
    se = float(np.sqrt(max(var, 0.0)))
    if se == 0.0:
        return DeLongTest(
            auc_a, auc_b, diff, 0.0, 0.0 if diff == 0 else float(np.sign(diff) * np.inf), 1.0 if diff == 0 else 0.0
        )
    z = diff / se
    return DeLongTest(auc_a, auc_b, diff, se, float(z), float(2.0 * stats.norm.sf(abs(z))))


def delong_test(scores_a, scores_b, positive) -> DeLongTest:
    """DeLong's paired test of two binary AUCs on the same cases."""
    auc, cov = delong_covariance(np.vstack([scores_a, scores_b]), positive)
    return _test(float(auc[0]), float(auc[1]), float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]))


def _ovr_influence(proba: np.ndarray, y: np.ndarray, classes) -> tuple[float, np.ndarray]:
    """Macro one-vs-rest AUC and each case's influence value h(k) (see the module docstring)."""
    h = np.zeros(len(y))
    aucs = []
    for c in classes:
        pos = y == c
        m, n = int(pos.sum()), int((~pos).sum())
        auc, v10, v01 = structural_components(proba[:, c], pos)
        a = float(auc[0])
        aucs.append(a)
        if m > 1:
            h[pos] += (v10[0] - a) / np.sqrt(m * (m - 1))
        if n > 1:
            h[~pos] += (v01[0] - a) / np.sqrt(n * (n - 1))
    return float(np.mean(aucs)), h / len(classes)


def delong_ovr_macro_test(proba_a, proba_b, y_true) -> DeLongTest:
    """Paired DeLong-type test of two one-vs-rest macro AUCs (classes present in ``y_true`` with
    at least one case on each side; the same convention as the protocol's ``auc_ovr_macro``)."""
    pa, pb = np.asarray(proba_a, dtype=float), np.asarray(proba_b, dtype=float)
    y = np.asarray(y_true, dtype=int)
    if pa.shape != pb.shape or pa.ndim != 2 or pa.shape[0] != len(y):
        raise ValueError(
            f"probabilities must be two (n, k) arrays for the same {len(y)} cases, got {pa.shape} and {pb.shape}"
        )
    classes = [c for c in range(pa.shape[1]) if 0 < np.sum(y == c) < len(y)]
    if not classes:
        raise ValueError("DeLong needs at least one class with cases on both sides")
    auc_a, ha = _ovr_influence(pa, y, classes)
    auc_b, hb = _ovr_influence(pb, y, classes)
    return _test(auc_a, auc_b, float(np.sum((ha - hb) ** 2)))
