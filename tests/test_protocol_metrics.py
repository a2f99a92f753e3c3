"""Metrics: values checked against hand computations and scikit-learn conventions."""

import math

import numpy as np
import pandas as pd
import pytest

from resectbench.protocol import metrics as M


def onehot(y, p=1.0):
    out = np.full((len(y), 3), (1 - p) / 2)
    out[np.arange(len(y)), y] = p
    return out


def test_perfect_predictions_score_one():
    y = np.array([0, 1, 2, 0, 1, 2])
    m = M.classification_metrics(y, onehot(y, 0.9))
    assert m["macro_f1"] == m["accuracy"] == m["balanced_accuracy"] == m["auc_ovr_macro"] == 1.0
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert m["f1_resectable"] == m["f1_borderline"] == m["f1_locally_advanced"] == 1.0


def test_majority_guess_scores_chance():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    p = np.tile([0.5, 0.25, 0.25], (len(y), 1))
    m = M.classification_metrics(y, p)
    assert m["auc_ovr_macro"] == 0.5
    assert m["balanced_accuracy"] == pytest.approx(1 / 3)
    assert m["accuracy"] == 0.5
    # F1 of class 0: precision 0.5, recall 1 -> 2/3; the others 0
    assert m["macro_f1"] == pytest.approx((2 / 3) / 3)


def test_auc_leaves_out_a_class_absent_from_the_fold():
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1]])
    assert M.auc_ovr_macro(y, p) == 1.0  # class 2 absent: mean over classes 0 and 1
    assert math.isnan(M.auc_ovr_macro(np.array([1, 1]), p[:2]))


def test_brier_and_ece_by_hand():
    y = np.array([0, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])
    # Brier: ((0.3^2 + 0.2^2 + 0.1^2) + (0.6^2 + 0.7^2 + 0.1^2)) / 2
    assert M.brier_score(y, p) == pytest.approx(((0.09 + 0.04 + 0.01) + (0.36 + 0.49 + 0.01)) / 2)
    # both top-class confidences fall in bin (0.6, 0.7] ... no: 0.7 -> bin 6, 0.6 -> bin 5; accuracy 1 and 0
    assert M.expected_calibration_error(y, p) == pytest.approx(0.5 * abs(1 - 0.7) + 0.5 * abs(0 - 0.6))


def test_selection_score_orients_losses():
    y = np.array([0, 1, 2])
    p = onehot(y, 0.8)
    assert M.selection_score("brier", y, p) == pytest.approx(-M.brier_score(y, p))
    with pytest.raises(ValueError, match="unknown selection metric"):
        M.selection_score("f2", y, p)


def test_bad_probabilities_are_refused():
    with pytest.raises(ValueError, match="shape"):
        M.classification_metrics([0, 1], np.ones((2, 2)) / 2)
    with pytest.raises(ValueError, match="NaN"):
        M.classification_metrics([0, 1], np.array([[np.nan, 0.5, 0.5], [1, 0, 0]]))


def test_dice_by_structure_accepts_per_case_and_frame():
    per_case = {"a": {"tumor": 0.5, "pancreas": 0.8}, "b": {"tumor": 0.7, "pancreas": float("nan")}}
    assert M.dice_by_structure(per_case) == {"dice_tumor": pytest.approx(0.6), "dice_pancreas": pytest.approx(0.8)}
    frame = pd.DataFrame(per_case).T
    assert M.dice_by_structure(frame, ["a"]) == {"dice_tumor": 0.5, "dice_pancreas": 0.8}
    assert M.dice_by_structure({"tumor": 0.4}) == {"dice_tumor": 0.4}


@pytest.mark.parametrize("metric", sorted(M.SELECTION_METRICS))
def test_selection_score_matches_the_reported_metric(metric):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 30)
    p = rng.dirichlet(np.ones(3), 30)
    assert M.selection_score(metric, y, p) == pytest.approx(
        M.SELECTION_METRICS[metric] * M.classification_metrics(y, p)[metric]
    )
