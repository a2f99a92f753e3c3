"""Masks another segmenter wrote (nnU-Net, TotalSegmentator ``--ml``, a MONAI bundle), put in place of a
cohort's own: ``FOLDER/<case_id>.nii.gz`` (or ``.nii``) on each image's grid, read through a label map."""

from __future__ import annotations

import json
from pathlib import Path

import tomllib

from ...errors import DataError
from ..cohort import Cohort
from .assemble import default_label_map, parse_label_map
from .load import NIFTI_ENDINGS, read_dataset_json


def read_label_map(folder: Path, labels: str | Path | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """(canonical name -> voxel value, unknown names -> value) of a mask folder: ``labels`` (a dataset.json,
    or a JSON/TOML map of label name -> value), else ``FOLDER/dataset.json`` (nnU-Net writes one beside its
    predictions), else resectbench's canonical numbering."""
    path = Path(labels).expanduser() if labels else folder / "dataset.json"
    if not path.is_file():
        if labels:
            raise DataError(f"mask label map {path} does not exist (or is not a file)")
        return default_label_map(), {}
    if path.suffix.lower() == ".toml":
        try:
            meta = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise DataError(f"mask label map {path}: not readable TOML ({exc})") from exc
    else:
        meta = read_dataset_json(path) if path.name == "dataset.json" else _read_json(path)
    block = meta.get("labels", meta)
    if not isinstance(block, dict) or not block:
        raise DataError(f"mask label map {path}: expected a map of label name -> voxel value")
    return parse_label_map(block, str(path))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"mask label map {path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DataError(f"mask label map {path}: must be a JSON object of label name -> voxel value")
    return data


def with_masks_from(cohort: Cohort, folder: str | Path, labels: str | Path | None = None) -> Cohort:
    """``cohort`` with every case's mask taken from ``folder`` (its own masks are not read), through the
    folder's label map (:func:`read_label_map`). A case without a file there is a named error; a file on
    another grid than its image is refused when the case is read, like a cohort's own mask."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"mask folder {folder} does not exist (or is not a folder)")
    label_map, unmapped = read_label_map(folder, labels)
    files, missing = {}, []
    for case_id in cohort.case_ids:
        found = next((folder / f"{case_id}{e}" for e in NIFTI_ENDINGS if (folder / f"{case_id}{e}").is_file()), None)
        files[case_id] = str(found) if found else None
        if found is None:
            missing.append(case_id)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataError(
            f"mask folder {folder} has no mask for {len(missing)} of {len(cohort)} case(s): {shown} "
            "(expected CASE_ID.nii.gz, as nnU-Net names its predictions)"
        )
    view = cohort.subset(cohort.case_ids)
    view.table["mask"] = [files[c] for c in view.case_ids]
    view.label_map, view.unmapped_labels = label_map, unmapped
    view.info["masks_from"] = str(folder)
    return view
