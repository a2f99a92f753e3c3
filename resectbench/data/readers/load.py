"""``load_cohort``: MSD / nnU-Net folders and plain manifest CSVs."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pandas as pd

from ...errors import DataError, InvalidCohortError
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


def read_dataset_json(path: Path) -> dict:
    """``dataset.json`` as a dict, with the fields resectbench reads type-checked (a named error, never a
    traceback, for any other JSON value or shape)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise DataError(f"{path}: must be a JSON object with a 'labels' block, got a JSON {_json_kind(meta)}")
    if "labels" in meta and not isinstance(meta["labels"], dict):
        raise DataError(f"{path}: 'labels' must be an object (name -> value or value -> name), got a JSON "
                        f"{_json_kind(meta['labels'])}")
    if "name" in meta and not isinstance(meta["name"], str):
        raise DataError(f"{path}: 'name' must be a string, got a JSON {_json_kind(meta['name'])}")
    training = meta.get("training")
    if training is not None:
        if not isinstance(training, list):
            raise DataError(f"{path}: 'training' must be a list of {{\"image\": ..., \"label\": ...}} entries, got a "
                            f"JSON {_json_kind(training)}")
        for i, entry in enumerate(training):
            if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or not entry["image"].strip():
                raise DataError(f"{path}: training entry {i} must be an object with an 'image' path, got {entry!r}")
            if entry.get("label") is not None and not isinstance(entry["label"], str):
                raise DataError(f"{path}: training entry {i}: 'label' must be a path or null, got {entry['label']!r}")
    return meta


def _json_kind(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


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
    try:
        gt = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for broken CSVs
        raise DataError(f"{path.name}: not a readable CSV ({type(exc).__name__}: {exc})") from exc
    if "case_id" not in gt.columns:
        raise DataError(f"{path.name}: no 'case_id' column")
    gt["case_id"] = gt["case_id"].astype(str)
    if gt["case_id"].duplicated().any():
        raise DataError(f"{path.name}: case id(s) {', '.join(sorted(set(gt.case_id[gt.case_id.duplicated()])))} "
                        "appear more than once")
    return gt.set_index("case_id")


DICTIONARY = "data_dictionary.csv"
_NO = ("0", "false", "no", "n", "optional")


def read_dictionary(path: Path) -> dict[str, bool] | None:
    """variable -> required, from a dataset's ``data_dictionary.csv`` (None when it has none).

    A variable is required unless its row says ``required`` = false/no/0/optional.
    """
    if not path.exists():
        return None
    table = read_case_table(path, key="variable")
    required = table["required"] if "required" in table.columns else pd.Series("", index=table.index)
    return {v: str(r).strip().lower() not in _NO for v, r in zip(table["variable"], required) if v}


def missing_variables(cohort: Cohort, dictionary: dict[str, bool] | None, allow: tuple[str, ...] = ()
                      ) -> tuple[dict[str, str], list[CaseProblem]]:
    """Variables of the data dictionary with no column in the table: ``(allowed -> why, problems)``.

    A whole missing column is not missingness to impute: it changes what every model sees, so it is a
    problem unless the dictionary marks the variable optional or ``allow`` names it; either way it is
    recorded (``cohort.info["missing_variables"]``).
    """
    unknown = [v for v in allow if dictionary is None or v not in dictionary]
    if unknown:
        raise DataError(f"--allow-missing-variable {', '.join(unknown)}: not in the data dictionary "
                        f"({DICTIONARY} {'has ' + ', '.join(dictionary) if dictionary else 'is absent'})")
    allowed, problems = {}, []
    for var, required in (dictionary or {}).items():
        if var in cohort.clinical.columns:
            continue
        if var in allow:
            allowed[var] = "allowed by --allow-missing-variable"
        elif not required:
            allowed[var] = f"optional in {DICTIONARY}"
        else:
            problems.append(CaseProblem(None, f"the clinical table has no column for variable {var!r} of {DICTIONARY}"
                                              f" (add the column, mark it required=false in {DICTIONARY}, or pass "
                                              f"--allow-missing-variable {var})"))
    return allowed, problems


def _load_msd(root: Path, label_column: str | None):
    ds_path = root / "dataset.json"
    meta = read_dataset_json(ds_path)
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
    meta = read_dataset_json(ds) if ds.exists() else {}
    if "labels" in meta:
        label_map, unmapped = parse_label_map(meta["labels"], str(ds))
    else:
        label_map, unmapped = default_label_map(), {}
    info = _read_info(meta)
    info["source"] = info.get("source") or "manifest"
    return assemble(csv_path.stem, base, cases, table, csv_path.name, label_map, unmapped, info,
                    _read_ground_truth(base / "ground_truth.csv"), label_column)


def read_cohort(path: str | Path, label_column: str | None = None, allow_missing_variables=()
                ) -> tuple[Cohort, list[CaseProblem]]:
    """The cohort of every case that passed the cheap checks, plus all problems found (nothing raised per case)."""
    path = Path(path).expanduser()
    if path.is_file() and path.suffix.lower() == ".csv":
        cohort, problems = _load_manifest(path, label_column)
        folder = path.parent
    elif path.is_dir() and (path / "dataset.json").exists():
        cohort, problems = _load_msd(path, label_column)
        folder = path
    elif path.is_dir():
        raise DataError(f"{path}: neither an MSD/nnU-Net folder (dataset.json, imagesTr/) nor a manifest CSV")
    else:
        raise DataError(f"{path}: no such dataset folder or manifest CSV")
    allowed, more = missing_variables(cohort, read_dictionary(folder / DICTIONARY), tuple(allow_missing_variables))
    cohort.info["missing_variables"] = allowed
    return cohort, more + problems


#: bump when check_case_volumes checks something new, so cached verdicts are redone
VOLUME_CHECKS_VERSION = 1


def volume_problems(cohort: Cohort, on_progress=None, cache_dir: Path | None = None) -> list[CaseProblem]:
    """Read every case's voxels (the checks of ``data validate``); with ``cache_dir`` the verdict is kept per
    cohort content (fingerprint, label map, unmapped labels), so a resumed run does not read them again."""
    path = None
    if cache_dir is not None:
        key = hashlib.blake2b(json.dumps([cohort.fingerprint, sorted(cohort.unmapped_labels.items()),
                                          VOLUME_CHECKS_VERSION]).encode(), digest_size=16).hexdigest()
        path = Path(cache_dir) / f"{key}.json"
        try:
            cached = json.loads(path.read_text())
            found = [CaseProblem(c, p) for c, p in cached["problems"]]
            if on_progress:
                on_progress(len(cohort), len(cohort), "verdict cached")
            return found
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no (readable) verdict yet
    found = []
    for i, cid in enumerate(cohort.case_ids):
        found += check_case_volumes(cohort, cid)
        if on_progress:
            on_progress(i + 1, len(cohort), cid)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"n_cases": len(cohort), "problems": [[p.case_id, p.problem] for p in found]}))
        os.replace(tmp, path)
    return found


def load_cohort(path: str | Path, skip_invalid: bool = False, label_column: str | None = None,
                check_volumes: bool | None = None, on_progress=None, allow_missing_variables=(),
                validation_cache: str | Path | None = None) -> Cohort:
    """Load an MSD/nnU-Net folder (``dataset.json``, ``imagesTr/``, ``labelsTr/``, ``clinical.csv``) or a
    manifest CSV (``case_id, image, mask, label, [group], clinical...``).

    Cheap checks (ids, labels, clinical types and ranges, files present, headers agree) always run.
    By default any problem raises :class:`DataError` naming the case; voxel-level problems (truncated
    files, NaN voxels, unknown mask values) then surface when a case is read. With ``skip_invalid``
    every volume is also read (``check_volumes`` defaults to True then) and failing cases are excluded;
    what was excluded and why is in ``cohort.info["excluded"]``. Nothing is dropped silently.
    ``check_volumes=True`` without ``skip_invalid`` runs every check of ``data validate`` and refuses the
    cohort with all problems listed (:class:`InvalidCohortError`); ``validation_cache`` keeps the voxel
    verdict per cohort content. A variable of the dataset's ``data_dictionary.csv`` without a column is a
    problem unless ``allow_missing_variables`` names it (recorded in ``cohort.info["missing_variables"]``).
    ``on_progress(done, total, message)`` reports the volume checks.
    """
    cohort, problems = read_cohort(path, label_column, allow_missing_variables)
    check_volumes = skip_invalid if check_volumes is None else check_volumes
    if check_volumes:
        problems += volume_problems(cohort, on_progress, Path(validation_cache) if validation_cache else None)
    global_problems = [p for p in problems if p.case_id is None]
    if global_problems or (problems and not skip_invalid):
        hint = "" if global_problems else "fix these cases, or pass --skip-invalid to exclude them (and list them)"
        raise InvalidCohortError(str(path), [(p.case_id, p.problem) for p in global_problems or problems], hint)
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
