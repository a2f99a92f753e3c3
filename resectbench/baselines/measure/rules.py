"""Measurements -> NCCN rule inputs and decisions, and thresholds fitted to training labels."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ...geometry.nccn import RuleSet, classify, load_rules
from ...vocabulary import MEASURED_RULE_VESSELS, VEINS
from .cache import CaseGeometry


@dataclass(frozen=True)
class RuleThresholds:
    """How measurements become the rule engine's inputs (the defaults are resectbench's choices)."""

    min_contact_deg: float = 0.0  # measured contact at or below this counts as none
    deformity: float = 0.08  # vein_deformity above this = contour irregularity
    encased_deg: float = 300.0  # vein contact at least this and ...
    unreconstructable_length_mm: float = 24.0  # ... at least this long = not reconstructable
    cha_reach_mm: float = 4.0  # CHA contact this close to the CA or bifurcation reaches it


def rule_inputs(geom: CaseGeometry, thresholds: RuleThresholds = RuleThresholds()) -> dict:
    """Keyword arguments of :func:`resectbench.geometry.nccn.classify` for one measured case."""
    contacts = {}
    irregular, reconstructable = False, True
    for vessel in MEASURED_RULE_VESSELS:
        row = geom.row(vessel)
        deg = float(row.get("contact_deg") or 0.0)
        contacts[vessel] = deg if deg > thresholds.min_contact_deg else 0.0
        if vessel in VEINS and contacts[vessel] > 0:
            if float(row.get("vein_deformity") or 0.0) > thresholds.deformity:
                irregular = True
            if (
                deg >= thresholds.encased_deg
                and float(row.get("contact_length_mm") or 0.0) >= thresholds.unreconstructable_length_mm
            ):
                reconstructable = False
    reach = geom.findings.get("cha_reach_mm")
    reaches = (
        contacts["common_hepatic_artery"] > 0
        and reach is not None
        and np.isfinite(reach)
        and reach <= thresholds.cha_reach_mm
    )
    return {
        "contact_deg": contacts,
        "tumor_location": geom.findings.get("tumor_location") or "head",
        "vein_contour_irregular": irregular,
        "reconstructable": reconstructable,
        "cha_reaches_ca_or_bifurcation": bool(reaches),
    }


def rule_decision(
    geom: CaseGeometry, thresholds: RuleThresholds = RuleThresholds(), rules: RuleSet | str | Path | None = None
):
    """The rule set's decision (default ``nccn-2019``; a name or a rule file) on one measured case."""
    inputs = rule_inputs(geom, thresholds)
    return classify(inputs.pop("contact_deg"), inputs.pop("tumor_location"), rules=rules, **inputs)


def rule_labels(
    geoms: dict[str, CaseGeometry],
    ids,
    thresholds: RuleThresholds = RuleThresholds(),
    rules: RuleSet | str | Path | None = None,
) -> np.ndarray:
    rules = load_rules(rules)
    return np.array([rule_decision(geoms[c], thresholds, rules).label for c in ids], dtype=int)


#: candidate values tried per threshold by :func:`fit_thresholds`
THRESHOLD_GRID = {
    "min_contact_deg": (0.0, 10.0, 20.0),
    "deformity": (0.03, 0.05, 0.08, 0.12),
    "cha_reach_mm": (2.0, 4.0, 8.0, 15.0),
}


def fit_thresholds(
    geoms: dict[str, CaseGeometry],
    ids,
    y,
    start: RuleThresholds = RuleThresholds(),
    rules: RuleSet | str | Path | None = None,
) -> RuleThresholds:
    """Thresholds that make the rules agree best with labels ``y`` of cases ``ids`` (training part only).

    Coordinate search, two sweeps, starting from ``start``; a candidate must beat the current accuracy
    strictly, so ties keep the documented defaults. The unreconstructable-length candidates are the
    midpoints between the encased vein contact lengths seen in training (scale-free: phantoms of a
    small field of view are shrunk).
    """
    y = np.asarray(y, dtype=int)
    rules = load_rules(rules)
    lengths = sorted(
        {
            float(geoms[c].row(v).get("contact_length_mm") or 0.0)
            for c in ids
            for v in VEINS
            if float(geoms[c].row(v).get("contact_deg") or 0.0) >= start.encased_deg
        }
    )
    grid = dict(THRESHOLD_GRID)
    grid["unreconstructable_length_mm"] = tuple([(a + b) / 2 for a, b in zip(lengths, lengths[1:])] + [np.inf])
    best = start
    best_acc = float(np.mean(rule_labels(geoms, ids, best, rules) == y))
    for _ in range(2):
        for name, values in grid.items():
            for value in values:
                cand = replace(best, **{name: float(value)})
                acc = float(np.mean(rule_labels(geoms, ids, cand, rules) == y))
                if acc > best_acc + 1e-12:
                    best, best_acc = cand, acc
    return best
