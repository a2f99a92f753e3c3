"""Measurements from files, for the ``geometry`` CLI commands: a NIfTI mask or a cohort folder measured,
a contacts table read back, and measured cases classified by a rule set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ...errors import DataError
from ...geometry.nccn import RuleSet, load_rules
from .cache import CaseGeometry, GeometryCache, measure_mask
from .cohort import oracle_geometry
from .rules import RuleThresholds, rule_decision


def _parse_label_map(labels) -> dict[str, int] | None:
    """``None``, a dict, a JSON file path, or ``"tumor=2,sma=7"``."""
    if labels is None or isinstance(labels, dict):
        return labels
    text = str(labels)
    if Path(text).is_file():
        return {str(k): int(v) for k, v in json.loads(Path(text).read_text()).items()}
    try:
        return {k.strip(): int(v) for k, v in (item.split("=") for item in text.split(",") if item.strip())}
    except ValueError as exc:
        raise DataError(f"labels must be a JSON file or name=value pairs like 'tumor=2,sma=7', got {text!r}") from exc


def _case_rows(case_id: str, geom: CaseGeometry, rules: RuleSet | None = None) -> pd.DataFrame:
    table = geom.vessels.copy()
    table.insert(0, "case_id", case_id)
    for key in ("tumor_location", "tumor_volume_ml", "cha_reach_mm"):
        table[key] = geom.findings.get(key)
    if rules is not None:
        for key, value in _decision_row(case_id, geom, rules).items():
            if key != "case_id":
                table[key] = value
    return table


def _decision_row(
    case_id: str, geom: CaseGeometry, rules: RuleSet, thresholds: RuleThresholds = RuleThresholds()
) -> dict:
    try:
        d = rule_decision(geom, thresholds, rules)
    except ValueError as exc:  # an angle or location the rule engine cannot read
        raise DataError(str(exc), case_id=case_id) from None
    return {
        "case_id": case_id,
        "rule_set": rules.version,
        "rule_class": d.label,
        "rule_class_name": d.class_name,
        "decisive_rules": ";".join(d.decisive),
        "rules_fired": ";".join(d.rules),
        "reasons": " | ".join(d.reasons),
    }


#: columns of a contacts table that ``classify_table`` needs; the others default to "nothing found"
CONTACT_COLUMNS = ("case_id", "vessel", "contact_deg")


_OPTIONAL_COLUMNS = {
    "contact_length_mm": 0.0,
    "vein_deformity": float("nan"),
    "tumor_location": "head",
    "tumor_volume_ml": float("nan"),
    "cha_reach_mm": float("nan"),
}


def geometries_from_table(table: pd.DataFrame, where: str) -> dict[str, CaseGeometry]:
    """Case measurements back from a contacts table (``geometry measure`` output, or hand-written with at
    least ``case_id, vessel, contact_deg``; ``tumor_location`` head when absent)."""
    missing = [c for c in CONTACT_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(
            f"{where}: no column(s) {', '.join(missing)} (a contacts table as `resectbench geometry "
            f"measure` writes it: {', '.join(CONTACT_COLUMNS + tuple(_OPTIONAL_COLUMNS))})"
        )
    table = table.copy()
    for col, default in _OPTIONAL_COLUMNS.items():
        if col not in table.columns:
            table[col] = default
    out = {}
    for case_id, rows in table.groupby(table["case_id"].astype(str), sort=False):
        deg = pd.to_numeric(rows["contact_deg"], errors="coerce")
        bad = rows.loc[deg.isna() | (deg < 0) | (deg > 360), "contact_deg"]
        if len(bad):
            raise DataError(f"{where}: contact_deg {bad.iloc[0]!r} is not an angle of 0-360 degrees", case_id=case_id)
        location = rows["tumor_location"].iloc[0]
        findings = {
            "tumor_location": None if pd.isna(location) else str(location),
            "tumor_volume_ml": _number(rows["tumor_volume_ml"].iloc[0]),
            "cha_reach_mm": _number(rows["cha_reach_mm"].iloc[0]),
        }
        vessels = pd.DataFrame(
            {
                "vessel": rows["vessel"].astype(str).to_numpy(),
                "contact_deg": deg.to_numpy(float),
                "contact_length_mm": pd.to_numeric(rows["contact_length_mm"], errors="coerce").to_numpy(float),
                "vein_deformity": pd.to_numeric(rows["vein_deformity"], errors="coerce").to_numpy(float),
            }
        )
        out[case_id] = CaseGeometry(vessels, findings)
    return out


def _number(value) -> float | None:
    x = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return None if pd.isna(x) else float(x)


def classify_geometries(
    geoms: dict[str, CaseGeometry],
    rules: RuleSet | str | Path | None = None,
    thresholds: RuleThresholds = RuleThresholds(),
) -> pd.DataFrame:
    """One row per case: the rule set's class with the rules that fired and why."""
    rules = load_rules(rules)
    return pd.DataFrame(
        [_decision_row(c, g, rules, thresholds) for c, g in geoms.items()],
        columns=["case_id", "rule_set", "rule_class", "rule_class_name", "decisive_rules", "rules_fired", "reasons"],
    )


def measure_path(
    path: str | Path,
    *,
    image: str | Path | None = None,
    labels=None,
    on_progress: Callable[[int, int, str], None] | None = None,
    rules: RuleSet | str | Path | None = None,
) -> pd.DataFrame:
    """Contact per vessel of one NIfTI mask or of every case of a cohort (folder or manifest CSV).

    A single mask is read in RAS orientation with its own spacing; ``labels`` (dict, JSON file or
    ``"tumor=2,sma=7"``) names its voxel values (default: resectbench's canonical indices) and
    ``image``, when given, must share its grid. A cohort is read with
    :func:`resectbench.data.load_images` (images and masks only: its clinical table is not read, so a
    problem there never stops a measurement); every case needs a mask. Bad masks raise
    :class:`DataError` naming the case. With ``rules`` (a rule-set name or file) every row also gets
    its case's class under those rules (``rule_set``, ``rule_class``, ``rule_class_name``,
    ``decisive_rules``, ``rules_fired``, ``reasons``). Returns one row per case and vessel.
    """
    from ...data import load_images
    from ...data.nifti import read_volume

    rule_set = load_rules(rules) if rules is not None else None
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.is_file() and path.name.endswith((".nii", ".nii.gz")):
        case_id = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
        mask, affine = read_volume(path, case_id, "mask", np.float64)
        if image is not None:
            img, img_affine = read_volume(image, case_id, "image", np.float32)
            if img.shape != mask.shape:
                raise DataError(f"mask shape {mask.shape} differs from image shape {img.shape}", case_id=case_id)
            if not np.allclose(img_affine, affine, atol=1e-3, rtol=1e-4):
                raise DataError(
                    "mask affine differs from image affine (mask is not on the image grid)", case_id=case_id
                )
        if np.any(mask < 0) or np.any(mask != np.round(mask)):
            raise DataError(f"mask {path.name} has negative or non-integer values", case_id=case_id)
        spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        geom = measure_mask(mask.astype(np.int64), spacing, _parse_label_map(labels), case_id=case_id)
        if on_progress is not None:
            on_progress(1, 1, f"measured {case_id}")
        return _case_rows(case_id, geom, rule_set)
    if labels is not None:
        raise DataError("labels applies to a single mask file; a cohort's label map comes from its dataset.json")
    cohort = load_images(path)
    geoms = oracle_geometry(cohort, GeometryCache(None), on_progress)
    return pd.concat([_case_rows(c, geoms[c], rule_set) for c in cohort.case_ids], ignore_index=True)
