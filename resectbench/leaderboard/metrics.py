"""Names, directions and display labels of the metrics a leaderboard shows.

Which way a metric is better (:func:`higher_is_better`) is defined in :mod:`resectbench.vocabulary`.
"""

from __future__ import annotations

from ..vocabulary import ARTERIES, STRUCTURE_INDEX as INDEX, VEINS, higher_is_better, per_class_metric  # noqa: F401 (re-exported)

HEADLINE = ("auc_ovr_macro", "macro_f1", "accuracy")  # the paper's Table 1 columns
SECONDARY = ("balanced_accuracy", *per_class_metric("f1"))
CALIBRATION = ("ece", "brier")
POOLED = ("auc_ovr_macro", "macro_f1", "accuracy", "balanced_accuracy")
COSTS = ("n_parameters", "train_seconds", "infer_seconds_per_case")
#: the NCCN-relevant vessels; "dice_vessels" is their mean Dice per fold (the paper's "major vessels")
VESSELS = (*ARTERIES, *VEINS)
DICE_SUMMARY = ("dice_pancreas", "dice_tumor", "dice_vessels")

LABELS = {
    "auc_ovr_macro": "AUC",
    "macro_f1": "macro-F1",
    "accuracy": "accuracy",
    "balanced_accuracy": "bal. acc.",
    "f1_resectable": "F1 res.",
    "f1_borderline": "F1 border.",
    "f1_locally_advanced": "F1 LA",
    "ece": "ECE",
    "brier": "Brier",
    "n_parameters": "params",
    "train_seconds": "train s/fold",
    "infer_seconds_per_case": "infer ms/case",
    "dice_vessels": "Dice vessels",
}


def label(metric: str) -> str:
    if metric in LABELS:
        return LABELS[metric]
    if metric.startswith("dice_"):
        return "Dice " + metric[5:].replace("_", " ")
    return metric.replace("_", " ")


def rankable() -> tuple[str, ...]:
    return (*HEADLINE, *SECONDARY, *CALIBRATION)


def structure_order(metric: str) -> tuple[int, str]:
    """Sort key of ``dice_<structure>`` columns: the canonical label order, unknown names last."""
    return INDEX.get(metric[5:], len(INDEX)), metric
