"""The clinical data dictionary: the 17 routine variables of the paper, with units and plausible ranges.

Readers type a cohort's clinical columns through this dictionary (a column whose name is known here
gets its kind, unit and range checked); columns it does not know are typed by inspection. The
synthetic generator draws exactly these variables.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class VariableSpec:
    """How one clinical variable is typed and checked.

    ``kind`` is "continuous" (a number; KNN-imputed and z-scored), "binary" (0/1; mode-imputed) or
    "categorical" (one of ``categories``; mode-imputed and one-hot encoded). ``low``/``high`` bound
    plausible values (inclusive); values outside are a data error, not an outlier to clip.
    """
    kind: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    categories: tuple = ()
    description: str = ""
    #: known only after biopsy or resection: a possible label leak worth flagging in reports
    leak_risk: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["categories"] = list(self.categories)
        return d


CLINICAL_SCHEMA: dict[str, VariableSpec] = {
    "age": VariableSpec("continuous", "years", 18, 100, description="age at diagnosis"),
    "sex": VariableSpec("categorical", "", categories=("female", "male"), description="sex"),
    "bmi": VariableSpec("continuous", "kg/m^2", 12, 60, description="body-mass index"),
    "charlson_index": VariableSpec("continuous", "points", 0, 20,
                                   description="Charlson comorbidity index (age-unadjusted)"),
    "asa_score": VariableSpec("categorical", "", categories=(1, 2, 3, 4),
                              description="American Society of Anesthesiologists physical status"),
    "diabetes": VariableSpec("binary", "", 0, 1, description="diabetes mellitus (any type)"),
    "nicotine": VariableSpec("binary", "", 0, 1, description="current or former smoker"),
    "alcohol": VariableSpec("binary", "", 0, 1, description="regular alcohol use"),
    "ca19_9_baseline": VariableSpec("continuous", "U/mL", 0, 100000, description="CA 19-9 at diagnosis"),
    "ca19_9_change": VariableSpec("continuous", "%", -100, 1000,
                                  description="relative change of CA 19-9 from diagnosis to restaging"),
    "ca19_9_post_neoadjuvant": VariableSpec("continuous", "U/mL", 0, 100000,
                                            description="CA 19-9 at restaging (after neoadjuvant therapy "
                                                        "when given, otherwise before surgery)"),
    "cea": VariableSpec("continuous", "ng/mL", 0, 2000, description="carcinoembryonic antigen"),
    "glucose": VariableSpec("continuous", "mg/dL", 30, 700, description="fasting blood glucose"),
    "hba1c": VariableSpec("continuous", "%", 3, 18, description="glycated haemoglobin"),
    "bilirubin": VariableSpec("continuous", "mg/dL", 0, 40, description="total bilirubin at diagnosis"),
    "grade": VariableSpec("categorical", "", categories=("G1", "G2", "G3"),
                          description="histopathological grade", leak_risk=True),
    "neoadjuvant": VariableSpec("binary", "", 0, 1, description="neoadjuvant (radio)chemotherapy given"),
}

#: Column names in clinical.csv / manifests that are not clinical variables.
ID_COLUMNS = ("case_id",)
LABEL_COLUMNS = ("label", "nccn_label", "nccn_class", "resectability", "class")
GROUP_COLUMNS = ("group", "site", "center", "centre")
PATH_COLUMNS = ("image", "mask", "label_path", "seg", "segmentation")

#: Label spellings accepted in tables, besides 0/1/2.
LABEL_NAMES = {
    "resectable": 0, "r": 0, "rpc": 0,
    "borderline": 1, "borderline_resectable": 1, "br": 1, "brpc": 1,
    "locally_advanced": 2, "la": 2, "lapc": 2, "unresectable": 2,
}


@dataclass
class SchemaInference:
    """Specs for every clinical column of a table plus the problems typing found (per case)."""
    schema: dict[str, VariableSpec] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)   # (case_id, message)


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    return isinstance(value, str) and value.strip().lower() in ("", "na", "nan", "none", "null", "missing")


def _normalise_category(value, categories: tuple):
    """Match a table cell to one of ``categories`` (case-insensitive, 1 == "1" == 1.0)."""
    text = str(value).strip().lower()
    for cat in categories:
        if text == str(cat).lower():
            return cat
        try:
            if float(text) == float(cat):
                return cat
        except (TypeError, ValueError):
            pass
    aliases = {"f": "female", "w": "female", "m": "male"}
    if aliases.get(text) in categories:
        return aliases[text]
    return None


def type_clinical_table(frame, schema: dict[str, VariableSpec] | None = None):
    """Type the clinical columns of ``frame`` (indexed by case_id).

    Returns ``(typed, inference)``: ``typed`` holds floats for continuous and binary variables and the
    category values for categorical ones (NaN/None = missing); ``inference.problems`` lists every cell
    that is not of its column's type or is out of its plausible range, naming the case. Columns not in
    ``schema`` are typed by inspection: all non-missing values numeric -> continuous (or binary when
    only 0/1), none numeric -> categorical, a mix -> the non-numeric cells are problems (a numeric
    column with a typo).
    """
    import numpy as np
    import pandas as pd

    schema = CLINICAL_SCHEMA if schema is None else schema
    typed = pd.DataFrame(index=frame.index)
    out = SchemaInference()
    for col in frame.columns:
        values = frame[col]
        spec = schema.get(col)
        present = [(cid, v) for cid, v in values.items() if not _is_missing(v)]
        if spec is None:
            numeric = pd.to_numeric(pd.Series([v for _, v in present], dtype=object), errors="coerce")
            n_numeric = int(numeric.notna().sum())
            if present and n_numeric == 0:
                cats = tuple(sorted({str(v).strip() for _, v in present}))
                spec = VariableSpec("categorical", categories=cats, description="inferred from the table")
            else:
                finite = numeric.dropna()
                is_binary = len(finite) > 0 and set(finite.unique()) <= {0.0, 1.0}
                spec = VariableSpec("binary" if is_binary else "continuous", "", description="inferred from the table")
        out.schema[col] = spec
        if spec.kind == "categorical":
            cells = []
            for cid, v in values.items():
                if _is_missing(v):
                    cells.append(None)
                    continue
                cat = _normalise_category(v, spec.categories)
                if cat is None:
                    out.problems.append((str(cid), f"clinical variable {col!r}: value {v!r} is not one of "
                                                   f"{', '.join(map(str, spec.categories))}"))
                cells.append(cat)
            typed[col] = pd.Series(cells, index=frame.index, dtype=object)
            continue
        cells = []
        for cid, v in values.items():
            if _is_missing(v):
                cells.append(np.nan)
                continue
            try:
                x = float(v)
            except (TypeError, ValueError):
                out.problems.append((str(cid), f"clinical variable {col!r}: value {v!r} is not numeric"))
                cells.append(np.nan)
                continue
            if not np.isfinite(x):
                out.problems.append((str(cid), f"clinical variable {col!r}: value {v!r} is not finite"))
                cells.append(np.nan)
                continue
            if spec.kind == "binary" and x not in (0.0, 1.0):
                out.problems.append((str(cid), f"clinical variable {col!r}: value {v!r} is not 0 or 1"))
            elif (spec.low is not None and x < spec.low) or (spec.high is not None and x > spec.high):
                unit = f" {spec.unit}" if spec.unit else ""
                out.problems.append((str(cid), f"clinical variable {col!r}: value {x:g} outside the plausible "
                                               f"range {spec.low:g}-{spec.high:g}{unit}"))
            cells.append(x)
        typed[col] = np.asarray(cells, dtype=float)
    return typed, out


def parse_label(value) -> int | None:
    """0/1/2 from a table cell (numbers or class names); None when it is not a valid label."""
    if _is_missing(value):
        return None
    text = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    if text in LABEL_NAMES:
        return LABEL_NAMES[text]
    try:
        x = float(text)
    except ValueError:
        return None
    return int(x) if x in (0.0, 1.0, 2.0) else None
