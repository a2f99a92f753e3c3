"""``validate_cohort``: check every case of a dataset without changing anything.

Cheap checks (ids, labels, clinical types and ranges, files present, headers agree, spacing
plausible) and voxel checks (readable to the last byte, no NaN voxels, mask values in the label map)
for every case; a report with class counts, missingness and spacing ranges; one line per failing case;
warnings for what is legal but changes what resectbench computes (:data:`CASE_NOTES`).
When clinical values fail, :func:`dictionary_stub` proposes the data-dictionary rows that would read
them (value maps, units, missing-value tokens) for the user to check and save; nothing is written.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import DataError
from ..vocabulary import vessel_group
from .nifti import header_warnings
from .readers.assemble import CaseProblem, check_case_volumes, read_case_table, split_table
from .readers.load import find_dictionary, read_cohort
from .schema import (
    UNIT_CONVERSIONS,
    Coding,
    DataDictionary,
    VariableSpec,
    _is_missing,
    _normalise_category,
    type_clinical_table,
    unit_conversion,
)

#: per-case warnings (header_warnings' kinds, "empty mask") -> what resectbench does with such a case
CASE_NOTES = {
    "oblique grid": "read in the closest RAS axes (nib.as_closest_canonical) without rotating the voxels back, "
    "and resampling to the target spacing (MONAI Spacing) keeps the tilt, so models see the anatomy rotated by "
    "that angle and the tumor head/body location is taken along the tilted left-right axis; contact angles and "
    "distances are measured in mm on the voxel grid, which a rotation does not distort",
    "sheared grid": "models get the image resampled onto an orthogonal grid (MONAI Spacing drops the shear), but "
    "geometry measured on these masks (contact angles and lengths, distances, tumor location) treats the voxel "
    "axes as if they met at right angles, so it is distorted by up to that angle",
    "negative pixdim": "ignored: the sform gives the geometry (NIfTI voxel sizes are positive; axis directions "
    "belong in the sform)",
    "empty mask": "no structure is labelled, yet the case counts as having a mask: the auxiliary segmentation "
    "learns 'nothing here' from it, and geometry finds no tumor or vessel in it (zero contact)",
}


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
    #: proposed data dictionary (CSV text) when clinical values failed; None otherwise
    dictionary_stub: str | None = None
    data_dictionary: str | None = None
    #: the valid cases, for callers that check more (which models they can feed); not in to_dict
    cohort: Any = field(default=None, repr=False)
    #: registered model -> why the cohort cannot feed it ([] when it can); filled by the CLI
    models: dict[str, list[str]] = field(default_factory=dict)

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
        return [
            f"case {cid!r}: " + "; ".join(msgs) if cid != "<dataset>" else "; ".join(msgs)
            for cid, msgs in self.failing_cases.items()
        ]

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "ok": self.ok,
            "n_cases": self.n_cases,
            "failing": self.lines(),
            "warnings": self.warnings,
            "class_counts": self.class_counts,
            "missingness": self.missingness,
            "spacing_range": {k: list(v) for k, v in self.spacing_range.items()},
            "orientations": self.orientations,
            "label_map": self.label_map,
            "unmapped_labels": self.unmapped_labels,
            "clinical_kinds": self.clinical_kinds,
            "cases_with_masks": self.has_masks,
            "fingerprint": self.fingerprint,
            "data_dictionary": self.data_dictionary,
            "dictionary_stub": self.dictionary_stub,
            "models": self.models,
        }


def validate_cohort(
    path: str | Path,
    on_progress: Callable[[int, int, str], None] | None = None,
    label_column: str | None = None,
    allow_missing_variables=(),
    data_dictionary: str | Path | None = None,
) -> ValidationReport:
    """Check every case of the dataset at ``path`` (clinical values read through ``data_dictionary``, or the
    dataset's own ``data_dictionary.csv``). Never writes anything."""
    import nibabel as nib

    report = ValidationReport(path=str(path))
    try:
        cohort, problems = read_cohort(path, label_column, allow_missing_variables, data_dictionary)
    except DataError as exc:
        report.problems.append(
            CaseProblem(exc.case_id, str(exc) if exc.case_id is None else str(exc).split(": ", 1)[1])
        )
        return report
    report.problems += problems
    report.data_dictionary = (cohort.info.get("data_dictionary") or {}).get("path")
    if any(p.problem.startswith("clinical variable ") for p in problems):
        report.dictionary_stub = dictionary_stub(path, data_dictionary, label_column)
    bad = {p.case_id for p in problems}
    ids = [c for c in cohort.case_ids if c not in bad]
    spacings, orient = [], {}
    noted: dict[str, list[str]] = {}  # CASE_NOTES kind -> the cases it applies to
    for i, cid in enumerate(ids):
        found = check_case_volumes(cohort, cid)
        report.problems += found
        if not found:
            image, mask = cohort.table.loc[cid, ["image", "mask"]]
            affine = nib.load(image).affine
            spacings.append(np.linalg.norm(affine[:3, :3], axis=0))  # what the readers use, not pixdim
            code = "".join(nib.aff2axcodes(affine))
            orient[code] = orient.get(code, 0) + 1
            for kind, detail in header_warnings(image):
                noted.setdefault(kind, []).append(f"{cid!r} ({detail})")
            # read again (check_case_volumes keeps no voxels); label maps are small
            if isinstance(mask, str) and not np.asarray(nib.load(mask).dataobj).any():
                noted.setdefault("empty mask", []).append(repr(cid))
        if on_progress:
            on_progress(i + 1, len(ids), cid)
    for kind, cases in noted.items():
        report.warnings.append(f"{kind} in {len(cases)} case(s): {', '.join(cases)}: {CASE_NOTES[kind]}")
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
    for col, why in cohort.info.get("ignored_columns", {}).items():
        report.warnings.append(f"column {col!r} is ignored: {why}")
    report.clinical_kinds = {c: s.kind for c, s in cohort.clinical_schema.items()}
    report.label_map = dict(cohort.label_map)
    report.unmapped_labels = dict(cohort.unmapped_labels)
    for name, value in cohort.unmapped_labels.items():
        group = vessel_group(name)
        report.warnings.append(
            f"label {name!r} (value {value}) lumps {', '.join(group)} in one label; it is read as background, "
            "so models that read these vessels by name cannot use these masks (listed below)"
            if group
            else f"label {name!r} (value {value}) is not a structure resectbench knows; it is read as background"
        )
    if "tumor" not in cohort.label_map and cohort.has_masks:
        report.warnings.append("the label map has no tumor structure")
    report.has_masks = int(cohort.table.loc[good, "mask"].notna().sum())
    report.cohort = cohort.subset(good)
    if not report.problems:
        report.fingerprint = cohort.fingerprint
    return report


# -- the dictionary stub -------------------------------------------------------------------------------
#: cells that mean "not recorded" in many codebooks (compared case-insensitively)
MISSING_WORDS = {
    "unknown",
    "unk",
    "unbekannt",
    "inconnu",
    "onbekend",
    "n/a",
    "n.a.",
    "na.",
    "nd",
    "n.d.",
    "not done",
    "not available",
    "not known",
    "?",
    ".",
    "-",
    "--",
    "x",
    "missing",
}
#: numeric sentinels: 9, 99, -99, 999, 8888, 7777, -1 ...
_SENTINEL = re.compile(r"^(-?(9+|8{2,}|7{2,})|-1)(\.0+)?$")
_YES = {"yes", "y", "true", "ja", "j", "oui", "si", "ya", "positive", "pos", "+"}
_NO = {"no", "n", "false", "nein", "non", "nee", "negative", "neg"}
_MALE = {"m", "male", "man", "mann", "maennlich", "m\u00e4nnlich", "homme", "h", "masculin", "masculino", "hombre"}
_FEMALE = {"f", "female", "woman", "w", "frau", "weiblich", "femme", "feminin", "femenino", "mujer", "vrouw", "v"}
STUB_COLUMNS = ("variable", "required", "values", "unit", "missing", "note")


def _number(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if np.isfinite(x) else None


def _in_range(x: float, spec: VariableSpec) -> bool:
    return (spec.low is None or x >= spec.low) and (spec.high is None or x <= spec.high)


def _code(text: str) -> str:
    x = _number(text)
    return f"{x:g}" if x is not None else text


def _propose(variable: str, raw: list[str], spec: VariableSpec, coding: Coding) -> dict:
    """Coding changes that would read the failing cells of one column: values, unit, missing, note."""
    from .schema import _decode

    tokens = dict.fromkeys(coding.missing)
    decoded = [_decode(v, tuple(tokens), dict(coding.values)) for v in raw]
    cells = [str(v).strip() for v in decoded if not _is_missing(v)]
    values = dict(coding.values)
    notes: list[str] = []
    if spec.kind == "categorical":
        bad = [c for c in cells if _normalise_category(c, spec.categories) is None]
    elif spec.kind == "binary":
        bad = [c for c in cells if _number(c) not in (0.0, 1.0)]
    else:
        bad = [c for c in cells if _number(c) is None or not _in_range(_number(c), spec)]
    if spec.kind == "continuous":
        # non-numeric text in a numeric column is most likely a missing code; out-of-range numbers only
        # when they look like one (-1, -99 below a range starting at 0; 999, 8888 above it), not 9 or 12:
        # those may be values in another unit
        sentinels = sorted(
            {
                _code(c)
                for c in bad
                if _number(c) is None
                or (
                    _SENTINEL.match(c) and ((_number(c) < 0 <= (spec.low or 0)) or re.match(r"^(9{3,}|8{3,}|7{3,})", c))
                )
            }
        )
    else:
        sentinels = sorted({_code(c) for c in bad if c.lower() in MISSING_WORDS or _SENTINEL.match(c)})
    for t in sentinels:
        tokens[t] = None
    if sentinels:
        notes.append(f"{', '.join(sentinels)} read as missing")
    codes = sorted({_code(c) for c in bad} - set(sentinels), key=lambda c: (_number(c) is None, _number(c) or 0, c))
    numeric = all(_number(c) is not None for c in codes)
    if codes and spec.kind == "categorical":
        cats = tuple(spec.categories)
        if set(cats) == {"female", "male"} and numeric and set(codes) <= {"1", "2"}:
            values.update({"1": "male", "2": "female"})
            notes.append("sex 1=male, 2=female as in ISO/IEC 5218: check your codebook")
        elif set(cats) == {"female", "male"} and numeric and set(codes) <= {"0", "1"}:
            values.update({"0": "female", "1": "male"})
            notes.append("sex 0/1 has no standard coding: check your codebook (0=female, 1=male assumed)")
        elif set(cats) == {"female", "male"} and all(c.lower() in _MALE | _FEMALE for c in codes):
            values.update({c: "male" if c.lower() in _MALE else "female" for c in codes})
        elif numeric and len(codes) <= len(cats):
            values.update(dict(zip(codes, cats)))
            notes.append(f"codes {', '.join(codes)} mapped in order to {', '.join(map(str, cats))}: check")
        else:
            values.update({c: "?" for c in codes})
            notes.append(f"replace each ? with one of {', '.join(map(str, cats))}")
    elif codes and spec.kind == "binary":
        if all(c.lower() in _YES | _NO for c in codes):
            values.update({c: 1 if c.lower() in _YES else 0 for c in codes})
        elif set(codes) <= {"1", "2"}:
            values.update({"1": 1, "2": 0})
            notes.append("1=yes, 2=no assumed: check your codebook")
        else:
            values.update({c: "?" for c in codes})
            notes.append("replace each ? with 0 or 1")
    unit = coding.unit
    if spec.kind == "continuous" and spec.unit:
        numbers = [x for c in cells if c not in tokens and (x := _number(c)) is not None and _code(c) not in tokens]

        def fits(conv) -> bool:
            f, o = conv or (1.0, 0.0)
            return all(
                (spec.low is None or x * f + o >= spec.low) and (spec.high is None or x * f + o <= spec.high)
                for x in numbers
            )

        try:
            current = unit_conversion(variable, spec, coding.unit)
        except ValueError:
            current = (np.nan, np.nan)
        if numbers and not fits(current):
            known = {spec.unit: None, **UNIT_CONVERSIONS.get(variable, {})}
            good = [u for u, conv in known.items() if fits(conv)]
            if good:
                unit = good[0]
                notes.append(
                    f"values fit the plausible range {spec.low:g}-{spec.high:g} {spec.unit} when read as {unit}: check"
                )
            else:
                notes.append(
                    f"values outside {spec.low:g}-{spec.high:g} {spec.unit} in every known unit "
                    f"({', '.join(known)}): check the data"
                )
    return {"values": values, "unit": unit, "missing": list(tokens), "note": "; ".join(notes)}


def _format_values(values: dict) -> str:
    return "; ".join(f"{k}={v}" for k, v in values.items())


def dictionary_stub(
    path: str | Path, data_dictionary: str | Path | None = None, label_column: str | None = None
) -> str | None:
    """A data dictionary (CSV text, ``data_dictionary.csv`` format) that would read every failing clinical
    column: the dictionary in use with proposed value maps, units and missing-value tokens added, each
    proposal explained in ``note``. None when no change is proposed or the table cannot be read."""
    path = Path(path).expanduser()
    try:
        dictionary = find_dictionary(path, data_dictionary) or DataDictionary(path="data_dictionary.csv")
        table_path = path if path.is_file() else path / "clinical.csv"
        table = read_case_table(table_path)
        _, _, columns = split_table(table, table_path.name, label_column)
    except DataError:
        return None
    frame = table.set_index("case_id")
    rows: dict[str, dict] = {}
    for var, coding in dictionary.variables.items():
        rows[var] = {
            "variable": var,
            "required": "" if coding.required else "false",
            "values": _format_values(dict(coding.values)),
            "unit": coding.unit,
            "missing": "; ".join(coding.missing),
            "note": "",
        }
    changed = False
    for col in columns:
        _, inference = type_clinical_table(frame[[col]], dictionary=dictionary)
        if not any(cid is not None for cid, _ in inference.problems):
            continue
        coding = dictionary.variables.get(col, Coding())
        proposal = _propose(col, frame[col].tolist(), inference.schema[col], coding)
        row = rows.setdefault(
            col, {"variable": col, "required": "", "values": "", "unit": "", "missing": "", "note": ""}
        )
        row.update(
            values=_format_values(proposal["values"]),
            unit=proposal["unit"],
            missing="; ".join(proposal["missing"]),
            note=proposal["note"],
        )
        changed = True
    if not changed:
        return None
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=STUB_COLUMNS, lineterminator="\n")
    writer.writeheader()
    if dictionary.missing:
        writer.writerow(
            {
                "variable": "*",
                "missing": "; ".join(dictionary.missing),
                "note": "missing-value tokens of every variable",
            }
        )
    writer.writerows(rows.values())
    return out.getvalue()
