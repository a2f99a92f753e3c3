"""Tumor-vessel geometry of whole cohorts for the geometric baselines: masks -> measurements,
cached per case by content, turned into NCCN rule inputs or a feature table.

The code lives in :mod:`resectbench.baselines.measure`, one module per concern: ``cache`` (one
case's measurements and the cache keyed by mask content: file digest for files, byte hash for
predicted arrays, plus the measurement version and settings, so nested cross-validation measures
every case once per cache directory), ``cohort`` (the ``oracle`` and ``predicted`` mask sources),
``rules`` (rule inputs, decisions, fitted thresholds), ``features`` (feature table), ``agreement``
(rules vs a synthetic cohort's truth) and ``files`` (masks and contacts tables for the CLI). This
module keeps the names importable from one place.
"""

from __future__ import annotations

from .measure.agreement import cohort_rule_agreement
from .measure.cache import MEASURE_VERSION, MEMORY_ENTRIES, CaseGeometry, GeometryCache, measure_mask
from .measure.cohort import MASK_SOURCES, array_geometry, cohort_label_map, oracle_geometry
from .measure.features import FAR_MM, FEATURE_VESSELS, feature_table
from .measure.files import CONTACT_COLUMNS, classify_geometries, geometries_from_table, measure_path
from .measure.rules import (
    THRESHOLD_GRID,
    RuleThresholds,
    fit_thresholds,
    rule_decision,
    rule_inputs,
    rule_labels,
)

__all__ = [
    "CONTACT_COLUMNS",
    "FAR_MM",
    "FEATURE_VESSELS",
    "MASK_SOURCES",
    "MEASURE_VERSION",
    "MEMORY_ENTRIES",
    "THRESHOLD_GRID",
    "CaseGeometry",
    "GeometryCache",
    "RuleThresholds",
    "array_geometry",
    "classify_geometries",
    "cohort_label_map",
    "cohort_rule_agreement",
    "feature_table",
    "fit_thresholds",
    "geometries_from_table",
    "measure_mask",
    "measure_path",
    "oracle_geometry",
    "rule_decision",
    "rule_inputs",
    "rule_labels",
]
