"""How well the rules on oracle-mask measurements agree with a synthetic cohort's noise-free class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ...geometry.nccn import RuleSet, load_rules
from ...vocabulary import MEASURED_RULE_VESSELS
from .cache import GeometryCache
from .cohort import oracle_geometry
from .rules import RuleThresholds, fit_thresholds, rule_decision, rule_inputs, rule_labels


def _explain(case_id, geom, decision, truth, gt, thresholds) -> dict:
    true_angles = {
        v: float(gt.loc[case_id, f"angle_{v}"])
        for v in MEASURED_RULE_VESSELS
        if f"angle_{v}" in gt and float(gt.loc[case_id, f"angle_{v}"]) > 0
    }
    inputs = rule_inputs(geom, thresholds)
    return {
        "case_id": case_id,
        "truth": truth,
        "rules": decision.label,
        "fired": decision.rules,
        "true_angles": true_angles,
        "measured_angles": {v: round(a, 1) for v, a in inputs["contact_deg"].items() if a > 0},
        "true_location": str(gt.loc[case_id].get("tumor_location")),
        "measured_location": geom.findings.get("tumor_location"),
        "true_flags": {
            k: bool(gt.loc[case_id][k])
            for k in ("vein_contour_irregular", "reconstructable", "cha_reaches_ca_or_bifurcation")
            if k in gt
        },
        "measured_flags": {
            k: inputs[k] for k in ("vein_contour_irregular", "reconstructable", "cha_reaches_ca_or_bifurcation")
        },
        "mechanism": str(gt.loc[case_id].get("mechanism", "")),
    }


def cohort_rule_agreement(
    cohort,
    cache_dir=None,
    thresholds: RuleThresholds = RuleThresholds(),
    rules: RuleSet | str | Path | None = None,
    folds: int = 5,
    seed: int = 0,
) -> dict:
    """Agreement of the rules on oracle-mask measurements with a synthetic cohort's noise-free class.

    Two settings: the default thresholds, and thresholds fitted on the other folds (stratified
    ``folds``-fold cross-validation, so no case is judged by thresholds fitted on itself). Every
    disagreement is listed with true and measured angles, location and flags.
    """
    from sklearn.model_selection import StratifiedKFold

    if cohort.ground_truth is None or "label_true" not in cohort.ground_truth:
        raise DataError(f"cohort {cohort.name!r} has no ground truth (label_true): only synthetic cohorts do")
    geoms = oracle_geometry(cohort, GeometryCache(cache_dir))
    rules = load_rules(rules)
    gt = cohort.ground_truth
    ids = np.array(cohort.case_ids)
    truth = gt.loc[ids, "label_true"].to_numpy(dtype=int)
    default = rule_labels(geoms, ids, thresholds, rules)
    fitted = default.copy()
    fitted_thresholds = {}
    n_splits = min(folds, int(np.bincount(truth).min())) if len(ids) else 0
    if n_splits >= 2:
        for train_idx, test_idx in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(ids, truth):
            th = fit_thresholds(geoms, ids[train_idx], truth[train_idx], thresholds, rules)
            fitted[test_idx] = rule_labels(geoms, ids[test_idx], th, rules)
            for c in ids[test_idx]:
                fitted_thresholds[c] = th
    errors = []
    for c in ids:
        for v in MEASURED_RULE_VESSELS:
            true = float(gt.loc[c, f"angle_{v}"]) if f"angle_{v}" in gt else 0.0
            measured = float(geoms[c].row(v).get("contact_deg") or 0.0)
            if true > 0 or measured > 0:
                errors.append({"vessel": v, "true": true, "measured": measured, "abs_error": abs(measured - true)})
    err = pd.DataFrame(errors, columns=["vessel", "true", "measured", "abs_error"])
    angle_errors = {
        v: {
            "n": int(len(g)),
            "mae_deg": float(g.abs_error.mean()),
            "median_abs_error_deg": float(g.abs_error.median()),
            "share_within_30_deg": float((g.abs_error <= 30).mean()),
        }
        for v, g in err.groupby("vessel")
    }
    out = {
        "n": len(ids),
        "agreement": float(np.mean(default == truth)) if len(ids) else 0.0,
        "angle_errors": angle_errors,
        "agreement_fitted_cv": float(np.mean(fitted == truth)) if len(ids) else 0.0,
        "disagreements": [],
        "disagreements_fitted_cv": [],
    }
    for i, c in enumerate(ids):
        if default[i] != truth[i]:
            out["disagreements"].append(
                _explain(str(c), geoms[c], rule_decision(geoms[c], thresholds, rules), int(truth[i]), gt, thresholds)
            )
        if fitted[i] != truth[i]:
            th = fitted_thresholds.get(c, thresholds)
            out["disagreements_fitted_cv"].append(
                _explain(str(c), geoms[c], rule_decision(geoms[c], th, rules), int(truth[i]), gt, th)
            )
    return out
