"""``load_cohort``: MSD / nnU-Net folders and plain manifest CSVs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ...errors import DataError
from ..cohort import Cohort
from .assemble import (CaseProblem, assemble, check_case_volumes, default_label_map, parse_label_map,
                       read_case_table)

NIFTI_ENDINGS = (".nii.gz", ".nii")
_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def _strip_ending(name: str) -> str | None:
    for ending in NIFTI_ENDINGS:
        if name.endswith(ending):
            return name[: -len(ending)]
    return None


def _scan_images(folder: Path) -> tuple[dict[str, Path], list[CaseProblem]]:
    """case_id -> image file for both ``case_0000.nii.gz`` (nnU-Net) and ``case.nii.gz`` (MSD) naming."""
    found: dict[str, Path] = {}
    problems = []
    channels: dict[str, set[str]] = {}
    for p in sorted(folder.iterdir()):
        stem = _strip_ending(p.name)
        if stem is None or p.name.startswith("."):
            continue
        m = _CHANNEL.match(stem)
        case, channel = (m["case"], m["channel"]) if m else (stem, None)
        channels.setdefault(case, set()).add(channel or "0000")
        if channel in (None, "0000"):
            if case in found:
                problems.append(CaseProblem(case, f"two image files for one case: {found[case].name} and {p.name}"))
                continue
            found[case] = p
    for case, chans in channels.items():
        if chans - {"0000"}:
            problems.append(CaseProblem(case, f"has extra image channels {sorted(chans - {'0000'})}; "
                                              "resectbench reads one CT channel (_0000)"))
    return found, problems


def _find_mask(folder: Path, case_id: str) -> Path | None:
    for ending in NIFTI_ENDINGS:
        p = folder / f"{case_id}{ending}"
        if p.exists():
            return p
    return None


def _read_info(meta: dict) -> dict:
    extra = meta.get("resectbench", {}) if isinstance(meta.get("resectbench"), dict) else {}
    info = {"source": extra.get("source", "dataset"), "profile": extra.get("profile"),
            "bayes_optimal_accuracy": extra.get("bayes_optimal_accuracy"),
            "description": meta.get("description", "")}
    info.update({k: v for k, v in extra.items() if k not in info})
    return info


def _read_ground_truth(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    gt = pd.read_csv(path)
    if "case_id" not in gt.columns:
        raise DataError(f"{path.name}: no 'case_id' column")
    gt["case_id"] = gt["case_id"].astype(str)
    return gt.set_index("case_id")


def _load_msd(root: Path, label_column: str | None):
    ds_path = root / "dataset.json"
    try:
        meta = json.loads(ds_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{ds_path}: not valid JSON ({exc})") from exc
    label_map, unmapped = parse_label_map(meta.get("labels", {"background": 0}), str(ds_path))
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    problems: list[CaseProblem] = []
    cases = []
    if isinstance(meta.get("training"), list) and meta["training"]:
        for entry in meta["training"]:            # MSD v1: explicit pairs
            img = (root / entry["image"]).resolve()
            stem = _strip_ending(img.name) or img.name
            m = _CHANNEL.match(stem)
            case = m["case"] if m else stem
            if not img.exists() and m is None:      # MSD lists 'case.nii.gz' even when files are 'case_0000'
                alt = img.with_name(f"{case}_0000.nii.gz")
                img = alt if alt.exists() else img
            mask = entry.get("label")
            mask_path = (root / mask).resolve() if mask else None
            if mask_path is not None and not mask_path.exists():
                problems.append(CaseProblem(case, f"mask file not found: {mask_path}"))
                mask_path = None
            cases.append((case, img, mask_path))
    else:
        if not images_dir.is_dir():
            raise DataError(f"{root}: no imagesTr/ folder")
        found, problems = _scan_images(images_dir)
        for case, img in found.items():
            cases.append((case, img, _find_mask(labels_dir, case) if labels_dir.is_dir() else None))
    table_path = root / "clinical.csv"
    if not table_path.exists():
        raise DataError(f"{root}: no clinical.csv (a table keyed by case_id with the NCCN label column and "
                        "the clinical variables)")
    table = read_case_table(table_path)
    cohort, more = assemble(meta.get("name") or root.name, root, cases, table, "clinical.csv", label_map, unmapped,
                            _read_info(meta), _read_ground_truth(root / "ground_truth.csv"), label_column)
    return cohort, problems + more


def _load_manifest(csv_path: Path, label_column: str | None):
    table = read_case_table(csv_path)
    base = csv_path.parent
    if "image" not in table.columns:
        raise DataError(f"{csv_path.name}: no 'image' column")
    mask_col = next((c for c in ("mask", "label_path", "seg", "segmentation") if c in table.columns), None)
    cases = []
    for _, row in table.iterrows():
        img = Path(row["image"])
        img = img if img.is_absolute() else (base / img)
        mask = None
        if mask_col and str(row[mask_col]).strip():
            mask = Path(row[mask_col])
            mask = mask if mask.is_absolute() else (base / mask)
        cases.append((row["case_id"], img.resolve(), mask.resolve() if mask else None))
    ds = base / "dataset.json"
    meta = json.loads(ds.read_text()) if ds.exists() else {}
    if "labels" in meta:
        label_map, unmapped = parse_label_map(meta["labels"], str(ds))
    else:
        label_map, unmapped = default_label_map(), {}
    info = _read_info(meta)
    info["source"] = info.get("source") or "manifest"
    return assemble(csv_path.stem, base, cases, table, csv_path.name, label_map, unmapped, info,
                    _read_ground_truth(base / "ground_truth.csv"), label_column)


def read_cohort(path: str | Path, label_column: str | None = None) -> tuple[Cohort, list[CaseProblem]]:
    """The cohort of every case that passed the cheap checks, plus all problems found (nothing raised per case)."""
    path = Path(path).expanduser()
    if path.is_file() and path.suffix.lower() == ".csv":
        return _load_manifest(path, label_column)
    if path.is_dir() and (path / "dataset.json").exists():
        return _load_msd(path, label_column)
    if path.is_dir():
        raise DataError(f"{path}: neither an MSD/nnU-Net folder (dataset.json, imagesTr/) nor a manifest CSV")
    raise DataError(f"{path}: no such dataset folder or manifest CSV")


def load_cohort(path: str | Path, skip_invalid: bool = False, label_column: str | None = None,
                check_volumes: bool | None = None, on_progress=None) -> Cohort:
    """Load an MSD/nnU-Net folder (``dataset.json``, ``imagesTr/``, ``labelsTr/``, ``clinical.csv``) or a
    manifest CSV (``case_id, image, mask, label, [group], clinical...``).

    Cheap checks (ids, labels, clinical types and ranges, files present, headers agree) always run.
    By default any problem raises :class:`DataError` naming the case; voxel-level problems (truncated
    files, NaN voxels, unknown mask values) then surface when a case is read. With ``skip_invalid``
    every volume is also read (``check_volumes`` defaults to True then) and failing cases are excluded;
    what was excluded and why is in ``cohort.info["excluded"]``. Nothing is dropped silently.
    ``on_progress(done, total, message)`` reports the volume checks.
    """
    cohort, problems = read_cohort(path, label_column)
    check_volumes = skip_invalid if check_volumes is None else check_volumes
    if check_volumes:
        total = len(cohort)
        for i, cid in enumerate(cohort.case_ids):
            problems += check_case_volumes(cohort, cid)
            if on_progress:
                on_progress(i + 1, total, cid)
    global_problems = [p for p in problems if p.case_id is None]
    if global_problems:
        raise DataError(global_problems[0].problem)
    if problems and not skip_invalid:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems; run `resectbench data validate {path}` for all)" \
            if len(problems) > 1 else ""
        raise DataError(first.problem + more, case_id=first.case_id)
    if problems:
        bad = []
        for p in problems:
            if p.case_id not in bad:
                bad.append(p.case_id)
        keep = [c for c in cohort.case_ids if c not in bad]
        excluded = [{"case_id": p.case_id, "problem": p.problem} for p in problems]
        cohort = cohort.subset(keep)
        cohort.info["excluded"] = excluded
    else:
        cohort.info.setdefault("excluded", [])
    if len(cohort) == 0:
        raise DataError(f"{path}: no valid cases")
    return cohort
