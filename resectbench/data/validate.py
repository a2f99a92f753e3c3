"""``validate_cohort``: check every case of a dataset without changing anything.

Cheap checks (ids, labels, clinical types and ranges, files present, headers agree, spacing
plausible) and voxel checks (readable to the last byte, no NaN voxels, mask values in the label map)
for every case; a report with class counts, missingness and spacing ranges; one line per failing case.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from .readers.assemble import CaseProblem, check_case_volumes
from .readers.load import read_cohort


@dataclass
class ValidationReport:
    path: str
    n_cases: int = 0
    problems: list[CaseProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    class_counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    missingness: dict[str, float] = field(default_factory=dict)
    spacing_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    orientations: dict[str, int] = field(default_factory=dict)
    label_map: dict[str, int] = field(default_factory=dict)
    unmapped_labels: dict[str, int] = field(default_factory=dict)
    clinical_kinds: dict[str, str] = field(default_factory=dict)
    has_masks: int = 0
    fingerprint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def failing_cases(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for p in self.problems:
            out.setdefault(p.case_id or "<dataset>", []).append(p.problem)
        return out

    def lines(self) -> list[str]:
        """One line per failing case (all of its problems joined)."""
        return [f"case {cid!r}: " + "; ".join(msgs) if cid != "<dataset>" else "; ".join(msgs)
                for cid, msgs in self.failing_cases.items()]

    def to_dict(self) -> dict:
        return {"path": self.path, "ok": self.ok, "n_cases": self.n_cases, "failing": self.lines(),
                "warnings": self.warnings, "class_counts": self.class_counts, "missingness": self.missingness,
                "spacing_range": {k: list(v) for k, v in self.spacing_range.items()},
                "orientations": self.orientations, "label_map": self.label_map,
                "unmapped_labels": self.unmapped_labels, "clinical_kinds": self.clinical_kinds,
                "cases_with_masks": self.has_masks, "fingerprint": self.fingerprint}


def validate_cohort(path: str | Path, on_progress: Callable[[int, int, str], None] | None = None,
                    label_column: str | None = None, allow_missing_variables=()) -> ValidationReport:
    """Check every case of the dataset at ``path``. Never writes anything."""
    import nibabel as nib

    report = ValidationReport(path=str(path))
    try:
        cohort, problems = read_cohort(path, label_column, allow_missing_variables)
    except DataError as exc:
        report.problems.append(CaseProblem(exc.case_id, str(exc) if exc.case_id is None else
                                           str(exc).split(": ", 1)[1]))
        return report
    report.problems += problems
    bad = {p.case_id for p in problems}
    ids = [c for c in cohort.case_ids if c not in bad]
    spacings, orient = [], {}
    for i, cid in enumerate(ids):
        found = check_case_volumes(cohort, cid)
        report.problems += found
        if not found:
            img = nib.load(str(cohort.table.loc[cid, "image"]))
            spacings.append(img.header.get_zooms()[:3])
            code = "".join(nib.aff2axcodes(img.affine))
            orient[code] = orient.get(code, 0) + 1
        if on_progress:
            on_progress(i + 1, len(ids), cid)
    failing = {p.case_id for p in report.problems}
    good = [c for c in cohort.case_ids if c not in failing]
    report.n_cases = len(set(cohort.case_ids) | {p.case_id for p in report.problems if p.case_id})
    labels = cohort.table.loc[good, "label"].to_numpy(dtype=int)
    report.class_counts = np.bincount(labels, minlength=3).tolist()
    for k, name in enumerate(("resectable", "borderline", "locally advanced")):
        if report.class_counts[k] == 0:
            report.warnings.append(f"no {name} (class {k}) cases among the valid ones")
    if spacings:
        arr = np.asarray(spacings, dtype=float)
        report.spacing_range = {ax: (float(arr[:, k].min()), float(arr[:, k].max())) for k, ax in enumerate("xyz")}
        if (arr.max(axis=1) / arr.min(axis=1)).max() > 3:
            report.warnings.append("some cases have voxels more than 3x longer in one axis (thick slices)")
    report.orientations = orient
    clinical = cohort.clinical
    report.missingness = {c: float(clinical[c].isna().mean()) for c in clinical.columns}
    for col, frac in report.missingness.items():
        if frac > 0.3:
            report.warnings.append(f"clinical variable {col!r} is missing in {frac:.0%} of cases")
    for var, why in cohort.info.get("missing_variables", {}).items():
        report.warnings.append(f"clinical variable {var!r} has no column ({why})")
    report.clinical_kinds = {c: s.kind for c, s in cohort.clinical_schema.items()}
    report.label_map = dict(cohort.label_map)
    report.unmapped_labels = dict(cohort.unmapped_labels)
    for name, value in cohort.unmapped_labels.items():
        report.warnings.append(f"label {name!r} (value {value}) is not a structure resectbench knows; "
                               "it is read as background")
    if "tumor" not in cohort.label_map and cohort.has_masks:
        report.warnings.append("the label map has no tumor structure")
    report.has_masks = int(cohort.table.loc[good, "mask"].notna().sum())
    if not report.problems:
        report.fingerprint = cohort.fingerprint
    return report
