"""Classification and calibration metrics of one set of predictions (pure functions).

Conventions (documented in docs/protocol.md):
- ``auc_ovr_macro``: one-vs-rest ROC AUC per class, unweighted mean over the classes present in
  ``y_true`` (a class absent from a fold has no defined AUC and is left out of the mean; NaN when
  fewer than two classes are present).
- ``ece``: expected calibration error of the top-class confidence, 10 equal-width bins.
- ``brier``: multi-class Brier score, mean over cases of the squared distance between the
  probability vector and the one-hot label (0 = perfect, 2 = worst).
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score

from ..vocabulary import CLASS_NAMES, N_CLASSES, macro_f1, metric_sign

LABELS = list(range(N_CLASSES))


def _check(y_true, proba) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape != (len(y), N_CLASSES):
        raise ValueError(f"probabilities must have shape ({len(y)}, {N_CLASSES}), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities contain NaN or infinite values")
    return y, p


def auc_ovr_macro(y_true, proba) -> float:
    """One-vs-rest ROC AUC, macro mean over the classes present in ``y_true``."""
    y, p = _check(y_true, proba)
    aucs = [roc_auc_score(y == c, p[:, c]) for c in LABELS if 0 < np.sum(y == c) < len(y)]
    return float(np.mean(aucs)) if aucs else float("nan")


def per_class_f1(y_true, y_pred) -> dict[str, float]:
    scores = f1_score(y_true, y_pred, labels=LABELS, average=None, zero_division=0)
    return {f"f1_{name}": float(s) for name, s in zip(CLASS_NAMES, scores)}


def expected_calibration_error(y_true, proba, n_bins: int = 10) -> float:
    """ECE of the top-class confidence over ``n_bins`` equal-width bins."""
    y, p = _check(y_true, proba)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    # bin i holds confidences in (edges[i], edges[i+1]]; confidence 0 cannot occur for a distribution
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def brier_score(y_true, proba) -> float:
    y, p = _check(y_true, proba)
    onehot = np.eye(N_CLASSES)[y]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def classification_metrics(y_true, proba) -> dict:
    """Every per-set metric of the results format (predicted class = argmax probability)."""
    y, p = _check(y_true, proba)
    pred = p.argmax(axis=1)
    with warnings.catch_warnings():  # a small fold may lack a class: the conventions above apply
        warnings.simplefilter("ignore", UserWarning)
        return _all_metrics(y, p, pred)


def _all_metrics(y: np.ndarray, p: np.ndarray, pred: np.ndarray) -> dict:
    return {
        "n_cases": int(len(y)),
        "auc_ovr_macro": auc_ovr_macro(y, p),
        "macro_f1": macro_f1(y, pred),
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if len(y) else float("nan"),
        **per_class_f1(y, pred),
        "confusion_matrix": confusion_matrix(y, pred, labels=LABELS).tolist(),
        "ece": expected_calibration_error(y, p),
        "brier": brier_score(y, p),
    }


#: metrics that can select a configuration (all "higher is better" after the sign below)
SELECTION_METRICS = {
    m: metric_sign(m) for m in ("macro_f1", "auc_ovr_macro", "accuracy", "balanced_accuracy", "brier", "ece")
}


def selection_score(metric: str, y_true, proba) -> float:
    """The tuning objective: ``metric`` oriented so that higher is better (brier/ece negated)."""
    if metric not in SELECTION_METRICS:
        raise ValueError(f"unknown selection metric {metric!r}; choose one of {', '.join(SELECTION_METRICS)}")
    y, p = _check(y_true, proba)
    pred = p.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        value = {
            "macro_f1": lambda: macro_f1(y, pred),
            "auc_ovr_macro": lambda: auc_ovr_macro(y, p),
            "accuracy": lambda: float(np.mean(pred == y)),
            "balanced_accuracy": lambda: float(balanced_accuracy_score(y, pred)),
            "brier": lambda: brier_score(y, p),
            "ece": lambda: expected_calibration_error(y, p),
        }[metric]()
    return SELECTION_METRICS[metric] * value


def dice_by_structure(dice: object, case_ids: Sequence[str] | None = None) -> dict[str, float]:
    """Mean Dice per structure from a recipe's ``extra_outputs()["dice"]``.

    Accepted shapes: ``{structure: value}`` (already averaged), ``{case_id: {structure: value}}``,
    or a pandas DataFrame with one row per case and one column per structure. NaN (structure
    absent in a case) is left out of that structure's mean.
    """
    import pandas as pd

    if dice is None:
        return {}
    if isinstance(dice, pd.DataFrame):
        frame = dice
    elif isinstance(dice, Mapping) and dice and all(isinstance(v, Mapping) for v in dice.values()):
        frame = pd.DataFrame.from_dict(dict(dice), orient="index")
    elif isinstance(dice, Mapping):
        return {f"dice_{k}": float(v) for k, v in dice.items() if v is not None and np.isfinite(float(v))}
    else:
        raise ValueError(f"unsupported dice output of type {type(dice).__name__}")
    if case_ids is not None:
        frame = frame.loc[[c for c in case_ids if c in frame.index]]
    means = frame.apply(pd.to_numeric, errors="coerce").mean(axis=0, skipna=True)
    return {f"dice_{k}": float(v) for k, v in means.items() if np.isfinite(v)}
