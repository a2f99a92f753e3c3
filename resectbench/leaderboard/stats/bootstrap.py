"""Patient-level stratified bootstrap of pooled out-of-fold metrics (percentile intervals).

Resampling units are patients (the cohort's ``group`` when it has one, else the case), drawn with
replacement within each class so every resample keeps the cohort's class counts; all rows of a
drawn patient (several repeats, several scans) come along. A resample is a vector of
multiplicities, so every metric is computed for all resamples at once from weighted confusion
matrices and weighted rank statistics (no per-resample loop over scikit-learn calls). With all
weights equal to one the metrics equal scikit-learn's (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = ("auc_ovr_macro", "macro_f1", "accuracy", "balanced_accuracy")


def stratified_weights(units, strata, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_rows) multiplicities of each row under a stratified bootstrap of ``units``.

    ``units[i]`` names the patient of row i; ``strata[i]`` its class (constant within a patient:
    a patient's stratum is taken from its first row).
    """
    units = np.asarray(units)
    strata = np.asarray(strata)
    uniq, first, row_unit = np.unique(units, return_index=True, return_inverse=True)
    unit_stratum = strata[first]
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, len(uniq)))
    for s in np.unique(unit_stratum):
        members = np.flatnonzero(unit_stratum == s)
        draws = rng.integers(0, len(members), size=(n_boot, len(members)))
        for b in range(n_boot):
            counts[b] += np.bincount(members[draws[b]], minlength=len(uniq))
    return counts[:, row_unit]


def weighted_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Binary ROC AUC (ties count one half) under each row of ``weights`` (B, n); NaN without both classes."""
    order = np.argsort(scores, kind="mergesort")
    s, pos, w = scores[order], positive[order].astype(bool), weights[:, order]
    _, tie_group = np.unique(s, return_inverse=True)
    onehot = np.zeros((len(s), tie_group.max() + 1))
    onehot[np.arange(len(s)), tie_group] = 1.0
    neg_g = (w * ~pos) @ onehot  # (B, groups) negative weight per tied score group
    pos_g = (w * pos) @ onehot
    below = np.cumsum(neg_g, axis=1) - neg_g
    num = np.sum(pos_g * (below + 0.5 * neg_g), axis=1)
    den = pos_g.sum(axis=1) * neg_g.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def weighted_metrics(y: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """The headline metrics under each weight vector (rows of ``weights``), with the protocol's
    conventions: macro-F1 over all classes (0 when a class is never predicted nor present),
    balanced accuracy and macro AUC over the classes present."""
    y = np.asarray(y, dtype=int)
    proba = np.asarray(proba, dtype=float)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    k = proba.shape[1]
    pred = proba.argmax(axis=1)
    cells = np.zeros((len(y), k * k))
    cells[np.arange(len(y)), y * k + pred] = 1.0
    cm = (w @ cells).reshape(len(w), k, k)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    support = cm.sum(axis=2)
    predicted = cm.sum(axis=1)
    total = cm.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = support + predicted
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
        recall = np.where(support > 0, tp / np.where(support > 0, support, 1), np.nan)
        aucs = np.stack([weighted_auc(proba[:, c], y == c, w) for c in range(k)], axis=1)
        return {
            "auc_ovr_macro": np.nanmean(np.where(np.isfinite(aucs), aucs, np.nan), axis=1)
            if np.isfinite(aucs).any()
            else np.full(len(w), np.nan),
            "macro_f1": f1.mean(axis=1),
            "accuracy": tp.sum(axis=1) / total,
            "balanced_accuracy": np.nanmean(recall, axis=1),
        }


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def bootstrap_intervals(
    y, proba, units, n_boot: int = 2000, seed: int = 0, level: float = 0.95, strata=None
) -> dict[str, Interval]:
    """Point estimate (all rows) and percentile ``level`` interval of each pooled metric."""
    y = np.asarray(y, dtype=int)
    point = {m: float(v[0]) for m, v in weighted_metrics(y, proba, np.ones((1, len(y)))).items()}
    w = stratified_weights(units, y if strata is None else strata, n_boot, seed)
    boot = weighted_metrics(y, proba, w)
    alpha = (1 - level) / 2
    out = {}
    for m in METRICS:
        values = boot[m][np.isfinite(boot[m])]
        low, high = np.quantile(values, [alpha, 1 - alpha]) if len(values) else (np.nan, np.nan)
        out[m] = Interval(point[m], float(low), float(high))
    return out


@dataclass(frozen=True)
class PairedBootstrapTest:
    difference: float  # metric(a) - metric(b) on all rows
    low: float  # percentile interval of the difference
    high: float
    p_value: float  # two-sided: 2 * min(P*(diff <= 0), P*(diff >= 0)), at most 1


def paired_bootstrap_test(
    y,
    proba_a,
    proba_b,
    units,
    metric: str = "auc_ovr_macro",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    strata=None,
) -> PairedBootstrapTest:
    """Paired stratified bootstrap of the difference of a pooled metric between two models
    scored on the same rows (the same resamples are applied to both)."""
    y = np.asarray(y, dtype=int)
    ones = np.ones((1, len(y)))
    diff = float(weighted_metrics(y, proba_a, ones)[metric][0] - weighted_metrics(y, proba_b, ones)[metric][0])
    w = stratified_weights(units, y if strata is None else strata, n_boot, seed)
    d = weighted_metrics(y, proba_a, w)[metric] - weighted_metrics(y, proba_b, w)[metric]
    d = d[np.isfinite(d)]
    alpha = (1 - level) / 2
    low, high = np.quantile(d, [alpha, 1 - alpha])
    p = min(1.0, 2.0 * min(np.mean(d <= 0), np.mean(d >= 0)))
    return PairedBootstrapTest(diff, float(low), float(high), float(p))
