"""Tumor-vessel geometry of whole cohorts for the geometric baselines: masks -> measurements,
cached per case by content, turned into NCCN rule inputs or a feature table.

Masks come from a declared source. ``oracle``: the cohort's ground-truth masks (an upper bound).
``predicted``: masks a segmenter trained on the training part predicts. The cache key is the
mask's content (file digest for files, byte hash for predicted arrays) plus the measurement
version and settings, so nested cross-validation measures every case once per cache directory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from ..geometry.nccn import RuleSet, classify, load_rules
from ..vocabulary import MEASURED_RULE_VESSELS, STRUCTURE_INDEX as INDEX, VEINS

# resectbench.geometry.contact / .findings (scipy, scikit-image) are imported where they are used:
# this module is imported whenever the models registry loads.

#: bump when measurement code changes what it returns (invalidates cached measurements)
MEASURE_VERSION = "geometry-5"
#: vessels whose measurements become features (the measured rule vessels, then aorta and splenic vein)
FEATURE_VESSELS = MEASURED_RULE_VESSELS + ("aorta", "splenic_vein")
MASK_SOURCES = ("oracle", "predicted")
#: distance features are clipped here (mm); absent vessels count as this far away
FAR_MM = 50.0


@dataclass
class CaseGeometry:
    """Measurements of one case: a per-vessel table and case-level findings."""

    vessels: pd.DataFrame
    findings: dict

    def to_json(self) -> str:
        return json.dumps(
            {"vessels": self.vessels.to_dict(orient="records"), "findings": self.findings},
            default=lambda x: None if x is None else float(x),
        )

    @classmethod
    def from_json(cls, text: str) -> "CaseGeometry":
        data = json.loads(text)
        return cls(pd.DataFrame(data["vessels"]), data["findings"])

    def row(self, vessel: str) -> dict:
        rows = self.__dict__.get("_rows")
        if rows is None:  # plain dict lookups: threshold fitting evaluates the rules thousands of times
            rows = self.__dict__["_rows"] = {r["vessel"]: r for r in self.vessels.to_dict(orient="records")}
        return rows.get(vessel, {})


def measure_mask(
    mask: np.ndarray, spacing, label_map: dict[str, int] | None = None, *, case_id: str | None = None, config=None
) -> CaseGeometry:
    """Contact per vessel plus tumor location, volume and CHA reach of one canonical RAS mask
    (``config``: a :class:`resectbench.geometry.contact.MeasureConfig`, default settings if None)."""
    from ..geometry.contact import MeasureConfig, measure_case
    from ..geometry.findings import case_findings

    config = MeasureConfig() if config is None else config
    vessels = measure_case(mask, spacing, label_map, case_id=case_id, config=config)
    findings = case_findings(mask, spacing, label_map)
    return CaseGeometry(vessels, findings)


class GeometryCache:
    """Measurements keyed by mask content: in memory, and on disk under ``cache_dir/geometry``."""

    _memory: dict[str, str] = {}

    def __init__(self, cache_dir: str | Path | None = None, config=None):
        from ..geometry.contact import MeasureConfig

        self.dir = Path(cache_dir) / "geometry" if cache_dir is not None else None
        self.config = MeasureConfig() if config is None else config
        self.hits = 0
        self.misses = 0

    def key(self, content: str) -> str:
        settings = json.dumps(asdict(self.config), sort_keys=True)
        return hashlib.sha256(f"{MEASURE_VERSION}|{settings}|{content}".encode()).hexdigest()[:32]

    def get_or_measure(self, content: str, compute: Callable[[], CaseGeometry]) -> CaseGeometry:
        key = self.key(content)
        text = self._memory.get(key)
        path = self.dir / f"{key}.json" if self.dir is not None else None
        if text is None and path is not None and path.exists():
            text = path.read_text()
        if text is not None:
            self.hits += 1
        else:
            self.misses += 1
            text = compute().to_json()
        self._memory[key] = text
        if path is not None and not path.exists():  # also persists what an earlier cache held in memory
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{id(self)}")
            tmp.write_text(text)
            tmp.replace(path)
        return CaseGeometry.from_json(text)


def cohort_label_map(cohort) -> dict[str, int]:
    """Canonical label map of the structures a cohort annotates (load_case remaps to canonical indices)."""
    return {s: INDEX[s] for s in cohort.structures}


def oracle_geometry(
    cohort, cache: GeometryCache, on_progress: Callable[[int, int, str], None] | None = None
) -> dict[str, CaseGeometry]:
    """Measurements from the cohort's ground-truth masks (the ``oracle`` mask source)."""
    from ..data.nifti import file_digest

    label_map = cohort_label_map(cohort)
    if "tumor" not in label_map:
        raise DataError(f"cohort {cohort.name!r} has no tumor label; geometric baselines need tumor masks")
    out = {}
    for i, case_id in enumerate(cohort.case_ids):
        mask_path = cohort.table.loc[case_id].get("mask")
        if not isinstance(mask_path, (str, Path)) or not str(mask_path):
            raise DataError("no ground-truth mask: the oracle mask source needs one for every case", case_id=case_id)
        content = f"file:{file_digest(mask_path)}|labels:{sorted(cohort.label_map.items())}"

        def compute(case_id=case_id):
            case = cohort.load_case(case_id)
            return measure_mask(case.mask, case.spacing, label_map, case_id=case_id, config=cache.config)

        out[case_id] = cache.get_or_measure(content, compute)
        if on_progress is not None:
            on_progress(i + 1, len(cohort), f"measured {case_id}")
    return out


def array_geometry(
    masks: dict[str, tuple[np.ndarray, tuple]], cache: GeometryCache, label_map: dict[str, int] | None = None
) -> dict[str, CaseGeometry]:
    """Measurements of in-memory masks (the ``predicted`` mask source), keyed by their bytes."""
    out = {}
    for case_id, (mask, spacing) in masks.items():
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
        digest = hashlib.sha256(mask.tobytes()).hexdigest()
        content = f"array:{digest}|{mask.shape}|{np.round(np.asarray(spacing, float), 6).tolist()}"
        out[case_id] = cache.get_or_measure(
            content, lambda m=mask, s=spacing, c=case_id: measure_mask(m, s, label_map, case_id=c, config=cache.config)
        )
    return out


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


def feature_table(geoms: dict[str, CaseGeometry], case_ids: list[str]) -> pd.DataFrame:
    """Per-vessel angle, length, distance, encasement (+ vein deformity) and case findings, one row per case."""
    rows = []
    for case_id in case_ids:
        g = geoms[case_id]
        row = {}
        for vessel in FEATURE_VESSELS:
            r = g.row(vessel)
            deg = float(r.get("contact_deg") or 0.0)
            dist = r.get("min_distance_mm")
            dist = FAR_MM if dist is None or not np.isfinite(dist) else min(float(dist), FAR_MM)
            row[f"{vessel}_contact_deg"] = deg
            row[f"{vessel}_contact_length_mm"] = float(r.get("contact_length_mm") or 0.0)
            row[f"{vessel}_min_distance_mm"] = dist
            row[f"{vessel}_gt180"] = float(deg > 180.0)
            row[f"{vessel}_encased"] = float(deg >= 300.0)
            if vessel in VEINS:
                row[f"{vessel}_deformity"] = float(r.get("vein_deformity") or 0.0)
        reach = g.findings.get("cha_reach_mm")
        row["cha_reach_mm"] = FAR_MM if reach is None or not np.isfinite(reach) else min(float(reach), FAR_MM)
        row["tumor_head"] = float((g.findings.get("tumor_location") or "head") == "head")
        row["tumor_volume_ml"] = float(g.findings.get("tumor_volume_ml") or 0.0)
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index(case_ids, name="case_id"))


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
    from ..data import load_images
    from ..data.nifti import read_volume

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
