"""The clinical data dictionary: the 17 routine variables of the paper, with units and plausible ranges,
and how a cohort's own table codes them.

Readers type a cohort's clinical columns through this dictionary (a column whose name is known here
gets its kind, unit and range checked); variables a cohort's own dictionary adds are typed by
inspection, and columns neither knows are ignored with a warning (:func:`clinical_columns`). The
synthetic generator draws exactly these variables. A cohort's ``data_dictionary.csv`` (or a file given
with ``--data-dictionary``; :class:`DataDictionary`) says how its table codes them: value maps
(``sex``: ``0=female;1=male``), the unit a column is recorded in (converted to the unit here, e.g.
glucose in mmol/L -> mg/dL; :data:`UNIT_CONVERSIONS`), missing-value tokens (``NA``, ``-99``) and the
table's own name for a variable (``column``: ``blood_glucose`` for ``glucose``).
Nothing in the user's files is rewritten: the coding is applied while reading.
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
    "charlson_index": VariableSpec(
        "continuous", "points", 0, 20, description="Charlson comorbidity index (age-unadjusted)"
    ),
    "asa_score": VariableSpec(
        "categorical", "", categories=(1, 2, 3, 4), description="American Society of Anesthesiologists physical status"
    ),
    "diabetes": VariableSpec("binary", "", 0, 1, description="diabetes mellitus (any type)"),
    "nicotine": VariableSpec("binary", "", 0, 1, description="current or former smoker"),
    "alcohol": VariableSpec("binary", "", 0, 1, description="regular alcohol use"),
    "ca19_9_baseline": VariableSpec("continuous", "U/mL", 0, 100000, description="CA 19-9 at diagnosis"),
    "ca19_9_change": VariableSpec(
        "continuous", "%", -100, 1000, description="relative change of CA 19-9 from diagnosis to restaging"
    ),
    "ca19_9_post_neoadjuvant": VariableSpec(
        "continuous",
        "U/mL",
        0,
        100000,
        description="CA 19-9 at restaging (after neoadjuvant therapy when given, otherwise before surgery)",
    ),
    "cea": VariableSpec("continuous", "ng/mL", 0, 2000, description="carcinoembryonic antigen"),
    "glucose": VariableSpec("continuous", "mg/dL", 30, 700, description="fasting blood glucose"),
    "hba1c": VariableSpec("continuous", "%", 3, 18, description="glycated haemoglobin"),
    "bilirubin": VariableSpec("continuous", "mg/dL", 0, 40, description="total bilirubin at diagnosis"),
    "grade": VariableSpec(
        "categorical", "", categories=("G1", "G2", "G3"), description="histopathological grade", leak_risk=True
    ),
    "neoadjuvant": VariableSpec("binary", "", 0, 1, description="neoadjuvant (radio)chemotherapy given"),
}

#: Column names in clinical.csv / manifests that are not clinical variables.
ID_COLUMNS = ("case_id",)
LABEL_COLUMNS = ("label", "nccn_label", "nccn_class", "resectability", "class")
GROUP_COLUMNS = ("group", "site", "center", "centre")
PATH_COLUMNS = ("image", "mask", "label_path", "seg", "segmentation")

#: Label spellings accepted in tables, besides 0/1/2.
LABEL_NAMES = {
    "resectable": 0,
    "r": 0,
    "rpc": 0,
    "borderline": 1,
    "borderline_resectable": 1,
    "br": 1,
    "brpc": 1,
    "locally_advanced": 2,
    "la": 2,
    "lapc": 2,
    "unresectable": 2,
}


#: Units a column may be recorded in, per variable, as (factor, offset) into the unit of
#: :data:`CLINICAL_SCHEMA`: value_here = value * factor + offset. Unit spellings are compared after
#: :func:`normalise_unit` (case, spaces, mu/u, ^). 1 kU/L = 1000 U / 1000 mL = 1 U/mL.
_CA19_9 = {"kU/L": (1.0, 0.0), "U/L": (0.001, 0.0)}
UNIT_CONVERSIONS: dict[str, dict[str, tuple[float, float]]] = {
    "age": {"months": (1 / 12, 0.0)},
    "ca19_9_baseline": _CA19_9,
    "ca19_9_post_neoadjuvant": _CA19_9,
    "ca19_9_change": {"fraction": (100.0, 0.0)},
    "cea": {"ug/L": (1.0, 0.0), "ng/L": (0.001, 0.0)},
    "glucose": {"mmol/L": (18.016, 0.0), "g/L": (100.0, 0.0)},  # glucose 180.16 g/mol
    "bilirubin": {"umol/L": (1 / 17.104, 0.0), "mg/L": (0.1, 0.0)},  # bilirubin 584.66 g/mol
    "hba1c": {"mmol/mol": (0.09148, 2.152)},  # IFCC -> NGSP master equation
}


def normalise_unit(unit) -> str:
    text = "" if unit is None else str(unit).strip()
    text = text.replace("\u00b5", "u").replace("\u03bc", "u").replace("mcg", "ug").replace("^", "").replace(" ", "")
    return text.lower()


def unit_conversion(variable: str, spec: VariableSpec, unit) -> tuple[float, float] | None:
    """(factor, offset) from ``unit`` into ``spec.unit``; None when they are the same unit (or ``unit`` is
    empty); ValueError naming the units known for ``variable`` otherwise."""
    given = normalise_unit(unit)
    if not given or given == normalise_unit(spec.unit):
        return None
    known = UNIT_CONVERSIONS.get(variable, {})
    for name, conv in known.items():
        if normalise_unit(name) == given:
            return conv
    options = ", ".join([spec.unit, *known]) if spec.unit else "none (the variable has no unit)"
    raise ValueError(
        f"unit {str(unit).strip()!r} cannot be converted to {spec.unit or 'a unitless value'} (known units: {options})"
    )


@dataclass(frozen=True)
class Coding:
    """How one column of a cohort's table is coded (a row of its data dictionary)."""

    required: bool = True
    #: (code as written in the table, value resectbench reads) pairs
    values: tuple[tuple[str, object], ...] = ()
    #: the unit the column is recorded in ("" = resectbench's unit)
    unit: str = ""
    #: cells meaning "missing" in this column (besides empty, NA, NaN, none, null, missing)
    missing: tuple[str, ...] = ()
    #: the table's name for the variable when it differs (``charlson_comorbidity_index`` for ``charlson_index``)
    column: str = ""


@dataclass
class DataDictionary:
    """A cohort's data dictionary: which variables it has (``required``) and how they are coded.

    ``missing`` tokens apply to every variable (the ``*`` row); ``problems`` are those of the file itself
    (each message names the file).
    """

    path: str
    variables: dict[str, Coding] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        from pathlib import Path

        return Path(self.path).name

    def summary(self) -> dict:
        """What the dictionary changes while reading (recorded with the cohort)."""
        return {
            "path": self.path,
            "missing": list(self.missing),
            "variables": {
                v: {
                    k: val
                    for k, val in (
                        ("values", {c: x for c, x in cd.values}),
                        ("unit", cd.unit),
                        ("missing", list(cd.missing)),
                    )
                    if val
                }
                for v, cd in self.variables.items()
                if cd.values or cd.unit or cd.missing
            },
        }


#: a dictionary's ``column`` for a variable the cohort does not record, though a column of its name exists
#: (a site's ``ca19_9_change`` holding an absolute change, not the percentage): the column is not read
NOT_RECORDED = "-"


def _plain(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def clinical_columns(columns, dictionary: DataDictionary | None = None, where: str = "the clinical table"):
    """Which table columns are clinical variables: ``(renames, ignored, problems)``.

    A column is used when it names a variable of :data:`CLINICAL_SCHEMA` or of the cohort's dictionary,
    or is the ``column`` the dictionary gives for one (``renames``: table column -> variable). Any other
    column is ``ignored`` (column -> why): never silently fed to a model - an exported index column sorted
    by label (``Unnamed: 0``) would be a label leak - and the reason suggests the variable it may be.
    """
    from difflib import get_close_matches

    declared = dictionary.variables if dictionary is not None else {}
    by_column = {
        coding.column: var for var, coding in declared.items() if coding.column and coding.column != NOT_RECORDED
    }
    dropped = {var for var, coding in declared.items() if coding.column == NOT_RECORDED}
    known = {*CLINICAL_SCHEMA, *declared}
    renames, ignored, problems = {}, {}, []
    for col in columns:
        if col in dropped:
            ignored[col] = f"the data dictionary says this cohort does not record it (column = {NOT_RECORDED!r})"
            continue
        var = by_column.get(col, col if col in known and col not in by_column.values() else None)
        if var is not None:
            if col != var and var in columns:
                problems.append(f"{where}: column {col!r} is mapped to {var!r}, and the table also has {var!r}")
            renames[col] = var
            continue
        guess = get_close_matches(_plain(col), {_plain(v): v for v in known}, n=1, cutoff=0.6)
        hint = {_plain(v): v for v in known}.get(guess[0]) if guess else None
        dictionary_name = dictionary.name if dictionary is not None else "data_dictionary.csv"
        maybe = f"if it is variable {hint!r}, give it column = {col!r} in {dictionary_name}; " if hint else ""
        ignored[col] = (
            f"not a variable of the data dictionary ({maybe}to use it as a variable of its own, declare it there)"
        )
    return renames, ignored, problems


@dataclass
class SchemaInference:
    """Specs for every clinical column of a table plus the problems typing found (per case; None for
    problems of the data dictionary itself)."""

    schema: dict[str, VariableSpec] = field(default_factory=dict)
    problems: list[tuple[str | None, str]] = field(default_factory=list)  # (case_id, message)


def _same_code(cell, code: str) -> bool:
    """A table cell equals a dictionary code: same text (case-insensitive), or the same number (1 == 1.0)."""
    text, code = str(cell).strip().lower(), str(code).strip().lower()
    if text == code:
        return True
    try:
        return float(text) == float(code)
    except ValueError:
        return False


def _valid_target(value, spec: VariableSpec) -> bool:
    if spec.kind == "categorical":
        return _normalise_category(value, spec.categories) is not None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return False
    return x in (0.0, 1.0) if spec.kind == "binary" else x == x


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


def type_clinical_table(frame, schema: dict[str, VariableSpec] | None = None, dictionary: DataDictionary | None = None):
    """Type the clinical columns of ``frame`` (indexed by case_id).

    Returns ``(typed, inference)``: ``typed`` holds floats for continuous and binary variables and the
    category values for categorical ones (NaN/None = missing); ``inference.problems`` lists every cell
    that is not of its column's type or is out of its plausible range, naming the case. Columns not in
    ``schema`` are typed by inspection: all non-missing values numeric -> continuous (or binary when
    only 0/1), none numeric -> categorical, a mix -> the non-numeric cells are problems (a numeric
    column with a typo). ``dictionary`` codings are applied first: missing tokens, value maps, then
    the unit conversion of numbers (ranges are checked in resectbench's unit); a code mapped to a
    value its variable cannot take, or a unit that cannot be converted, is a problem of the dictionary.
    """
    import numpy as np
    import pandas as pd

    schema = CLINICAL_SCHEMA if schema is None else schema
    typed = pd.DataFrame(index=frame.index)
    out = SchemaInference()
    for col in frame.columns:
        coding = dictionary.variables.get(col, Coding()) if dictionary is not None else Coding()
        tokens = (*coding.missing, *(dictionary.missing if dictionary is not None else ()))
        codes = dict(coding.values)
        values = frame[col].map(lambda v: _decode(v, tokens, codes))  # noqa: B023 - map runs here, in this iteration
        where = f"{dictionary.name}: variable {col!r}" if dictionary is not None else ""
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
        for code, target in coding.values:
            if not _valid_target(target, spec):
                allowed = (
                    ", ".join(map(str, spec.categories))
                    if spec.kind == "categorical"
                    else ("0 or 1" if spec.kind == "binary" else "a number")
                )
                out.problems.append(
                    (
                        None,
                        f"{where}: value map sends {code!r} to {target!r}, which is not "
                        f"{'one of ' if spec.kind == 'categorical' else ''}{allowed}",
                    )
                )
        try:
            conversion = unit_conversion(col, spec, coding.unit) if spec.kind == "continuous" else None
        except ValueError as exc:
            out.problems.append((None, f"{where}: {exc}"))
            conversion = None
        hint = (
            f" (the value map in {dictionary.name} has {', '.join(c for c, _ in coding.values)})"
            if coding.values
            else ""
        )
        if spec.kind == "categorical":
            cells = []
            for cid, v in values.items():
                if _is_missing(v):
                    cells.append(None)
                    continue
                cat = _normalise_category(v, spec.categories)
                if cat is None:
                    out.problems.append(
                        (
                            str(cid),
                            f"clinical variable {col!r}: value {v!r} is not one of "
                            f"{', '.join(map(str, spec.categories))}{hint}",
                        )
                    )
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
                out.problems.append((str(cid), f"clinical variable {col!r}: value {v!r} is not numeric{hint}"))
                cells.append(np.nan)
                continue
            if not np.isfinite(x):
                out.problems.append((str(cid), f"clinical variable {col!r}: value {v!r} is not finite"))
                cells.append(np.nan)
                continue
            shown = f"{x:g}"
            if conversion is not None:
                x = x * conversion[0] + conversion[1]
                shown = f"{shown} {coding.unit.strip()} (= {x:g} {spec.unit})"
            if spec.kind == "binary" and x not in (0.0, 1.0):
                out.problems.append((str(cid), f"clinical variable {col!r}: value {v!r} is not 0 or 1{hint}"))
            elif (spec.low is not None and x < spec.low) or (spec.high is not None and x > spec.high):
                unit = f" {spec.unit}" if spec.unit else ""
                out.problems.append(
                    (
                        str(cid),
                        f"clinical variable {col!r}: value {shown} outside the plausible "
                        f"range {spec.low:g}-{spec.high:g}{unit}",
                    )
                )
            cells.append(x)
        typed[col] = np.asarray(cells, dtype=float)
    return typed, out


def _decode(value, tokens: tuple[str, ...], codes: dict[str, object]):
    """A cell after the dictionary: None for a missing token, the mapped value for a code, else itself."""
    if _is_missing(value):
        return None
    if any(_same_code(value, t) for t in tokens):
        return None
    for code, target in codes.items():
        if _same_code(value, code):
            return target
    return value


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
