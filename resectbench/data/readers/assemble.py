"""Shared by every reader: build a Cohort from a case list, a clinical table and a label map, checking
everything cheap (ids, labels, clinical types and ranges, files present, headers agree) up front."""

from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ..cohort import UNLABELED, Cohort, class_counts
from ..labels import INDEX, canonical_name
from ..nifti import read_header
from ..schema import (
    GROUP_COLUMNS,
    LABEL_COLUMNS,
    PATH_COLUMNS,
    DataDictionary,
    SchemaInference,
    clinical_columns,
    parse_label,
    type_clinical_table,
)

#: voxel sizes outside this range (mm) are almost certainly a broken header
PLAUSIBLE_SPACING_MM = (0.2, 10.0)


@dataclass(frozen=True)
class CaseProblem:
    case_id: str | None  # None for problems of the whole dataset
    problem: str

    def line(self) -> str:
        return f"case {self.case_id!r}: {self.problem}" if self.case_id else self.problem


def parse_label_map(labels: dict, where: str) -> tuple[dict[str, int], dict[str, int]]:
    """Canonical name -> voxel value from a dataset.json ``labels`` block (MSD v1 or nnU-Net v2 style).

    MSD v1 maps "value" -> name, nnU-Net v2 maps name -> value. Names are matched to canonical
    structures through :data:`resectbench.data.labels.ALIASES`; names it does not know are returned
    separately (loaded as background, reported by ``data validate``).
    """
    pairs: list[tuple[str, int]] = []
    for key, val in labels.items():
        if isinstance(val, (list, tuple)):
            raise DataError(
                f"{where}: label {key!r} is an nnU-Net region (list of values); "
                "resectbench needs one voxel value per structure"
            )
        if str(key).strip().lstrip("-").isdigit() and not str(val).strip().lstrip("-").isdigit():
            name, value = str(val), int(key)  # MSD v1: "1": "pancreas"
        else:
            if isinstance(val, bool) or (isinstance(val, float) and not val.is_integer()):
                raise DataError(f"{where}: label {key!r} has value {val!r}; voxel values are whole numbers")
            try:
                name, value = str(key), int(val)  # nnU-Net v2: "pancreas": 1
            except (TypeError, ValueError) as exc:
                raise DataError(f"{where}: cannot read label entry {key!r}: {val!r}") from exc
        if value < 0 or value > 65535:
            raise DataError(f"{where}: label {name!r} has value {value}; voxel values must be 0-65535")
        pairs.append((name, value))
    label_map: dict[str, int] = {}
    unmapped: dict[str, int] = {}
    for name, value in pairs:
        canon = canonical_name(name)
        if canon is None:
            unmapped[name] = value
        elif canon in label_map and label_map[canon] != value:
            raise DataError(f"{where}: labels {canon!r} given twice (values {label_map[canon]} and {value})")
        else:
            label_map[canon] = value
    values = [v for v in label_map.values()] + list(unmapped.values())
    if len(values) != len(set(values)):
        raise DataError(f"{where}: two label names share one voxel value")
    label_map.setdefault("background", 0)
    return label_map, unmapped


def split_table(frame: pd.DataFrame, where: str, label_column: str | None = None, require_labels: bool = True):
    """(label column name, group column name or None, clinical column names) of a clinical/manifest table.

    Without ``require_labels`` a table with no label column is one of unlabeled cases (label column None);
    a label column named by ``label_column`` must exist either way."""
    cols = list(frame.columns)
    lower = {c.lower(): c for c in cols}
    named = label_column is not None
    if label_column is None:
        label_column = next((lower[c] for c in LABEL_COLUMNS if c in lower), None)
    if label_column is None and not require_labels:
        pass
    elif label_column is None or label_column not in cols:
        missing = f"no label column {label_column!r}" if named else "no label column"
        raise DataError(f"{where}: {missing} (expected one of {', '.join(LABEL_COLUMNS)})")
    group_column = next((lower[c] for c in GROUP_COLUMNS if c in lower), None)
    skip = {"case_id", label_column, group_column, *[lower[c] for c in PATH_COLUMNS if c in lower]}
    return label_column, group_column, [c for c in cols if c not in skip]


def read_case_table(path: Path, key: str = "case_id") -> pd.DataFrame:
    """A CSV keyed by ``key``, every cell as text (typing happens in the schema); any other shape is a
    DataError naming the file (unreadable, unnamed or repeated columns, no key column)."""
    if not path.exists():
        raise DataError(f"table not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path.name}: not a readable CSV ({type(exc).__name__}: {exc})") from exc
    names = [h.strip() for h in (rows[0] if rows else [])]
    long = next((i for i, row in enumerate(rows[1:], start=2) if len(row) > len(names)), None)
    if long is not None:  # pandas would silently shift the columns or drop the extra cells
        raise DataError(
            f"{path.name}: row {long} (the header is row 1) has {len(rows[long - 1])} fields, the header {len(names)}"
        )
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", index_col=False)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for broken files
        raise DataError(f"{path.name}: not a readable CSV ({type(exc).__name__}: {exc})") from exc
    if "" in names:
        raise DataError(f"{path.name}: column {names.index('') + 1} of the header has no name")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{path.name}: column(s) {', '.join(map(repr, repeated))} appear more than once in the header")
    frame.columns = [str(c).strip() for c in frame.columns]
    if key not in frame.columns:
        raise DataError(f"{path.name}: no {key!r} column (columns: {', '.join(frame.columns)})")
    frame = frame.fillna("")  # short rows: missing cells are empty, like blank ones
    frame[key] = frame[key].str.strip()
    return frame


def unsafe_case_id(case_id: str) -> str | None:
    """Why ``case_id`` cannot name files (plugins and caches may use it in paths), or None when it is safe."""
    if not case_id:
        return "empty case id"
    if "/" in case_id or "\\" in case_id:
        return "case id contains a path separator"
    if ".." in case_id:
        return "case id contains '..'"
    if any(unicodedata.category(ch) == "Cc" for ch in case_id):
        return "case id contains control characters"
    return None


def check_case_files(case_id: str, image: Path, mask: Path | None) -> list[CaseProblem]:
    """Headers only: files present and readable, CT-like (3D, real numbers, plausible size, a usable affine
    and voxel sizes: :func:`resectbench.data.nifti.read_header`), mask on the image grid, spacing plausible."""
    problems = []
    try:
        shape, affine, _ = read_header(image, case_id, "image")
    except DataError as exc:
        return [CaseProblem(case_id, str(exc).split(": ", 1)[1])]
    # the spacing every reader uses (the affine's column lengths, as in Cohort.load_case), not pixdim,
    # which nibabel ignores when an sform is set
    zooms = np.linalg.norm(affine[:3, :3], axis=0).tolist()
    lo, hi = PLAUSIBLE_SPACING_MM
    if not all(lo <= z <= hi for z in zooms):
        problems.append(
            CaseProblem(
                case_id, f"implausible voxel spacing {tuple(round(z, 3) for z in zooms)} mm (expected {lo}-{hi} mm)"
            )
        )
    if mask is not None:
        try:
            mshape, maffine, _ = read_header(mask, case_id, "mask")
        except DataError as exc:
            return problems + [CaseProblem(case_id, str(exc).split(": ", 1)[1])]
        if mshape != shape:
            problems.append(CaseProblem(case_id, f"mask shape {mshape} differs from image shape {shape}"))
        elif not np.allclose(maffine, affine, atol=1e-3, rtol=1e-4):
            problems.append(
                CaseProblem(case_id, "mask affine differs from image affine (mask is not on the image grid)")
            )
    return problems


def check_case_volumes(cohort: Cohort, case_id: str) -> list[CaseProblem]:
    """Read the voxels: truncated files, NaN voxels and unknown mask values show up only here."""
    try:
        cohort.load_case(case_id)
    except DataError as exc:
        return [CaseProblem(case_id, str(exc).split(": ", 1)[1] if exc.case_id else str(exc))]
    return []


def assemble(
    name: str,
    root: Path,
    cases: list[tuple[str, Path, Path | None]],
    table: pd.DataFrame,
    table_name: str,
    label_map: dict[str, int],
    unmapped: dict[str, int],
    info: dict,
    ground_truth: pd.DataFrame | None,
    label_column: str | None = None,
    check_files: bool = True,
    dictionary: DataDictionary | None = None,
    images_only: bool = False,
    require_labels: bool = True,
) -> tuple[Cohort, list[CaseProblem]]:
    """Join the case list with the table and type everything (clinical columns through ``dictionary``).

    Returns the cohort of all cases that passed the cheap checks and the problems found; the caller
    decides whether problems are fatal (the default) or excluded (``skip_invalid``). ``images_only``:
    ``table`` only lists case ids; no label or clinical column is read (labels -1, no clinical columns).
    Without ``require_labels`` (new patients for ``predict``) the label column may be absent and a blank
    label cell means unlabeled (-1); a label that is there must still be valid.
    """
    problems: list[CaseProblem] = []
    unsafe = {c: why for c in {*table["case_id"], *(c for c, _, _ in cases)} if (why := unsafe_case_id(c))}
    problems += [
        CaseProblem(c, f"{why} (case ids name files, so no path separators, '..' or control characters)")
        for c, why in sorted(unsafe.items())
    ]
    table = table[~table["case_id"].isin(list(unsafe))]
    cases = [case for case in cases if case[0] not in unsafe]
    ids = table["case_id"].tolist()
    dup = sorted({c for c in ids if ids.count(c) > 1})
    for c in dup:
        problems.append(CaseProblem(c, f"case id appears {ids.count(c)} times in {table_name}"))
    table = table.drop_duplicates("case_id", keep=False)
    case_ids = [c for c, _, _ in cases]
    dup_files = sorted({c for c in case_ids if case_ids.count(c) > 1})
    for c in dup_files:
        problems.append(CaseProblem(c, "case id appears more than once among the image files"))
    files = {c: (img, mask) for c, img, mask in cases if c not in dup_files}
    table = table.set_index("case_id")
    for c in table.index:
        if c not in files and c not in dup_files:
            problems.append(CaseProblem(c, f"listed in {table_name} but its image file is missing"))
    for c in files:
        if c not in table.index and c not in dup:
            problems.append(CaseProblem(c, f"has an image but no row in {table_name} (label unknown)"))
    keep = [c for c in table.index if c in files]
    table = table.loc[keep]

    if images_only:
        group_col, labels = None, {c: UNLABELED for c in keep}
        clinical, inference = pd.DataFrame(index=table.index), SchemaInference()
    else:
        label_col, group_col, clinical_cols = split_table(table.reset_index(), table_name, label_column, require_labels)
        cells = table[label_col] if label_col is not None else pd.Series("", index=table.index)
        labels = {}
        for c, v in cells.items():
            lab = parse_label(v)
            if lab is None and not require_labels and not str(v).strip():
                labels[c] = UNLABELED
            elif lab is None:
                problems.append(
                    CaseProblem(
                        c, f"label {v!r} is not 0/1/2 or a class name (resectable, borderline, locally_advanced)"
                    )
                )
            else:
                labels[c] = lab
        renames, ignored, more = clinical_columns(clinical_cols, dictionary, table_name)
        problems += [CaseProblem(None, msg) for msg in more]
        info = {**info, "ignored_columns": ignored}
        clinical, inference = type_clinical_table(table[list(renames)].rename(columns=renames), dictionary=dictionary)
        problems += [CaseProblem(c, msg) for c, msg in inference.problems]
    if check_files:
        for c in keep:
            problems += check_case_files(c, *files[c])
    bad = {p.case_id for p in problems if p.case_id}
    good = [c for c in keep if c not in bad]
    frame = pd.DataFrame(
        {
            "image": [str(files[c][0]) for c in good],
            "mask": [str(files[c][1]) if files[c][1] is not None else None for c in good],
            "label": [labels[c] for c in good],
            "group": [(table.loc[c, group_col] or None) if group_col else None for c in good],
        },
        index=pd.Index(good, name="case_id"),
    )
    if ground_truth is not None:
        ground_truth = ground_truth.reindex(good)
    info = dict(info)
    info.setdefault("name", name)
    info["class_counts"] = None if images_only else class_counts(frame["label"])
    cohort = Cohort(
        name=name,
        table=frame,
        clinical=clinical.loc[good],
        clinical_schema=inference.schema,
        label_map=label_map,
        ground_truth=ground_truth,
        info=info,
        root=root,
        unmapped_labels=unmapped,
    )
    return cohort, problems


def default_label_map() -> dict[str, int]:
    """Canonical numbering (used by manifests without a dataset.json beside them)."""
    return dict(INDEX)
