"""A starting point for a cohort of one's own: ``clinical.csv`` and ``data_dictionary.csv`` for a folder
of images (``resectbench data template``).

``clinical.csv`` has one row per case the readers find, a blank ``label`` column and one blank column
per variable of :data:`CLINICAL_SCHEMA`; ``data_dictionary.csv`` is in the format
:func:`~resectbench.data.readers.load.read_dictionary` reads, with each variable's kind, unit and
plausible range spelt out (``kind`` and ``description`` are for the reader, not read back). Filled
in, they read as they are; nothing existing is overwritten unless asked.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError
from .readers.load import DICTIONARY, NIFTI_ENDINGS, _scan_images
from .schema import CLINICAL_SCHEMA, LABEL_NAMES, UNIT_CONVERSIONS, VariableSpec

CLINICAL = "clinical.csv"


def _label_spellings() -> str:
    by_class: dict[int, list[str]] = {}
    for name, value in LABEL_NAMES.items():
        by_class.setdefault(value, []).append(name)
    return ", ".join("|".join([str(value), *names]) for value, names in sorted(by_class.items()))


#: what a label cell may hold, any case: ``0|resectable|r|rpc, 1|borderline|..., 2|...``
LABEL_SPELLINGS = _label_spellings()


def image_folder(root: Path) -> Path:
    """Where the readers take a folder's images from: ``imagesTr/``, else ``imagesTs/`` (new patients),
    else the folder itself (nnU-Net's inference input)."""
    for sub in ("imagesTr", "imagesTs"):
        if (root / sub).is_dir():
            return root / sub
    return root


def _describe(name: str, spec: VariableSpec) -> str:
    if spec.kind == "categorical":
        what = (
            f"one of {', '.join(map(str, spec.categories))}; a table coding it otherwise needs a value map "
            "in values (CODE=VALUE; ...)"
        )
    elif spec.kind == "binary":
        what = "0 or 1; other codes need a value map in values (e.g. no=0; yes=1)"
    else:
        what = f"a number from {spec.low:g} to {spec.high:g}{' ' + spec.unit if spec.unit else ''}"
        if name in UNIT_CONVERSIONS:
            what += f"; recorded in another unit: set unit to {' or '.join(UNIT_CONVERSIONS[name])}"
    leak = "; known only after biopsy or resection: a possible label leak" if spec.leak_risk else ""
    return f"{spec.description}: {what}{leak}"


def template_frames(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(clinical, dictionary)`` for the images of ``folder`` (MSD/nnU-Net ``imagesTr/`` or ``imagesTs/``,
    or NIfTI files in the folder itself); every cell to fill is an empty string."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    # problems of the image files (a case stored twice, extra channels) are for `data validate` to
    # report; the case is listed once either way
    found, _ = _scan_images(image_folder(folder))
    if not found:
        raise DataError(
            f"{folder}: no NIfTI images ({', '.join(NIFTI_ENDINGS)}) in imagesTr/, imagesTs/ or the folder itself"
        )
    clinical = pd.DataFrame({"case_id": list(found), "label": "", **{var: "" for var in CLINICAL_SCHEMA}})
    blank = dict.fromkeys(("variable", "required", "values", "unit", "missing", "column", "kind", "description"), "")
    rows = [
        {
            **blank,
            "variable": "*",
            "description": "missing-value tokens used for every variable go in missing (e.g. NA; -99; unknown); "
            "blank cells are always missing",
        }
    ]
    rows += [
        {
            **blank,
            "variable": var,
            "required": "true",
            "unit": spec.unit,
            "kind": spec.kind,
            "description": _describe(var, spec),
        }
        for var, spec in CLINICAL_SCHEMA.items()
    ]
    return clinical, pd.DataFrame(rows)


def write_template(folder: str | Path, out: str | Path | None = None, force: bool = False) -> dict[Path, pd.DataFrame]:
    """Write ``clinical.csv`` and ``data_dictionary.csv`` for ``folder`` into ``out`` (default: ``folder``);
    returns each file written -> its content. An existing file is refused (nothing written) unless ``force``."""
    clinical, dictionary = template_frames(folder)
    out = Path(folder if out is None else out).expanduser()
    files = {out / CLINICAL: clinical, out / DICTIONARY: dictionary}
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise DataError(f"{' and '.join(existing)} already {verb}; nothing was written (--force overwrites)")
    out.mkdir(parents=True, exist_ok=True)
    for path, frame in files.items():
        frame.to_csv(path, index=False)
    return files
