"""``load_cohort``: MSD / nnU-Net folders and plain manifest CSVs."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pandas as pd
import tomllib

from ...errors import DataError, InvalidCohortError
from ..cohort import Cohort
from ..schema import Coding, DataDictionary
from .assemble import CaseProblem, assemble, check_case_volumes, default_label_map, parse_label_map, read_case_table

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
            problems.append(
                CaseProblem(
                    case,
                    f"has extra image channels {sorted(chans - {'0000'})}; resectbench reads one CT channel (_0000)",
                )
            )
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
        raise DataError(
            f"{path}: 'labels' must be an object (name -> value or value -> name), got a JSON "
            f"{_json_kind(meta['labels'])}"
        )
    if "name" in meta and not isinstance(meta["name"], str):
        raise DataError(f"{path}: 'name' must be a string, got a JSON {_json_kind(meta['name'])}")
    training = meta.get("training")
    if training is not None:
        if not isinstance(training, list):
            raise DataError(
                f'{path}: \'training\' must be a list of {{"image": ..., "label": ...}} entries, got a '
                f"JSON {_json_kind(training)}"
            )
        for i, entry in enumerate(training):
            if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or not entry["image"].strip():
                raise DataError(f"{path}: training entry {i} must be an object with an 'image' path, got {entry!r}")
            if entry.get("label") is not None and not isinstance(entry["label"], str):
                raise DataError(f"{path}: training entry {i}: 'label' must be a path or null, got {entry['label']!r}")
    return meta


def _json_kind(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _read_info(meta: dict) -> dict:
    extra = meta.get("resectbench", {}) if isinstance(meta.get("resectbench"), dict) else {}
    info = {
        "source": extra.get("source", "dataset"),
        "profile": extra.get("profile"),
        "bayes_optimal_accuracy": extra.get("bayes_optimal_accuracy"),
        "description": meta.get("description", ""),
    }
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
        raise DataError(
            f"{path.name}: case id(s) {', '.join(sorted(set(gt.case_id[gt.case_id.duplicated()])))} "
            "appear more than once"
        )
    return gt.set_index("case_id")


DICTIONARY = "data_dictionary.csv"
_NO = ("0", "false", "no", "n", "optional")
_DICTIONARY_FIELDS = ("required", "values", "unit", "missing", "column")


def _split_cell(text: str) -> list[str]:
    """``"NA; -99, unknown"`` -> ["NA", "-99", "unknown"] (separators ; or ,; quotes and braces stripped)."""
    text = str(text).strip().strip("{}[]")
    return [item.strip().strip("'\"").strip() for item in re.split(r"[;,]", text) if item.strip()]


def _parse_values(cell, where: str, problems: list[str]) -> tuple[tuple[str, object], ...]:
    """A value map: ``"0=female; 1=male"`` (also ``0: female``), or a dict from TOML/JSON."""
    if isinstance(cell, dict):
        items = [(str(k).strip(), v.strip() if isinstance(v, str) else v) for k, v in cell.items()]
    else:
        items = []
        for item in _split_cell(cell):
            parts = re.split(r"\s*[=:]\s*", item, maxsplit=1)
            if len(parts) != 2 or not parts[0] or not parts[1]:
                problems.append(f"{where}: value map entry {item!r} is not CODE=VALUE (e.g. '0=female; 1=male')")
                continue
            items.append((parts[0].strip("'\""), parts[1].strip("'\"")))
    seen: set[str] = set()
    for code, _ in items:
        if code.lower() in seen:
            problems.append(f"{where}: code {code!r} appears twice in the value map")
        seen.add(code.lower())
    return tuple(items)


def _parse_tokens(cell, where: str, problems: list[str]) -> tuple[str, ...]:
    if isinstance(cell, list):
        if not all(isinstance(t, (str, int, float)) and not isinstance(t, bool) for t in cell):
            problems.append(f"{where}: missing-value tokens must be strings or numbers, got {cell!r}")
            return ()
        return tuple(str(t).strip() for t in cell if str(t).strip())
    return tuple(_split_cell(cell))


def _coding(var: str, fields: dict, name: str, problems: list[str]) -> Coding:
    where = f"{name}: variable {var!r}"
    required = fields.get("required", "")
    if isinstance(required, bool):
        req = required
    else:
        req = str(required).strip().lower() not in _NO
    unit = fields.get("unit", "")
    if not isinstance(unit, str):
        problems.append(f"{where}: unit must be text, got {unit!r}")
        unit = ""
    values = fields.get("values", "")
    if not isinstance(values, (str, dict)):
        problems.append(f"{where}: values must be a map of codes (e.g. '0=female; 1=male'), got {values!r}")
        values = ""
    column = fields.get("column", "")
    if not isinstance(column, str):
        problems.append(f"{where}: column must be the table's column name (text), got {column!r}")
        column = ""
    return Coding(
        required=req,
        values=_parse_values(values, where, problems),
        unit=unit.strip(),
        missing=_parse_tokens(fields.get("missing", ""), where, problems),
        column=column.strip(),
    )


def read_dictionary(path: Path) -> DataDictionary | None:
    """A dataset's data dictionary (None when ``path`` does not exist): ``data_dictionary.csv`` or, given
    with ``--data-dictionary``, a CSV, TOML or JSON file.

    CSV: one row per variable, columns ``variable`` and any of ``required`` (false/no/0/optional: the
    table may lack the column), ``values`` (``0=female; 1=male``), ``unit`` (the unit the column is
    recorded in), ``missing`` (``NA; -99; unknown``) and ``column`` (the table's name for the variable); a row with variable ``*`` gives missing tokens
    for every variable; other columns (kind, description, ...) are not read. TOML/JSON: ``missing =
    [...]`` and one table per variable with the same keys (``sex = {values = {0 = "female", 1 = "male"}}``).
    Problems of the file are collected in ``problems``, each naming the file.
    """
    path = Path(path)
    if not path.exists():
        return None
    name = path.name
    problems: list[str] = []
    entries: list[tuple[str, dict]] = []
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = read_case_table(path, key="variable")
        for _, row in table.iterrows():
            entries.append((row["variable"], {k: row[k] for k in _DICTIONARY_FIELDS if k in table.columns}))
    elif suffix in (".toml", ".json"):
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{name}: cannot be read ({exc})") from exc
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise DataError(f"{name}: not valid {suffix[1:].upper()} ({exc})") from exc
        if not isinstance(data, dict):
            raise DataError(f"{name}: must be an object of variables, got {_json_kind(data)}")
        for var, fields in data.items():
            if var == "missing":
                entries.append(("*", {"missing": fields}))
            elif not isinstance(fields, dict):
                problems.append(
                    f"{name}: variable {var!r} must be a table (required, values, unit, missing), got {fields!r}"
                )
            else:
                unknown = set(fields) - {*_DICTIONARY_FIELDS, "description", "kind"}
                if unknown:
                    problems.append(
                        f"{name}: variable {var!r}: unknown key(s) {', '.join(sorted(unknown))}; "
                        f"valid: {', '.join(_DICTIONARY_FIELDS)}, description"
                    )
                entries.append((var, fields))
    else:
        raise DataError(f"{path}: a data dictionary must be a .csv, .toml or .json file")
    dictionary = DataDictionary(path=str(path), problems=problems)
    for var, fields in entries:
        var = str(var).strip()
        if not var:
            continue
        if var == "*":
            if any(str(fields.get(k, "")).strip() for k in ("values", "unit")):
                problems.append(
                    f"{name}: the '*' row gives missing-value tokens for every variable; "
                    "its values and unit must be empty"
                )
            dictionary.missing += _parse_tokens(fields.get("missing", ""), f"{name}: row '*'", problems)
        elif var in dictionary.variables:
            problems.append(f"{name}: variable {var!r} is listed twice")
        else:
            dictionary.variables[var] = _coding(var, fields, name, problems)
    return dictionary


def missing_variables(
    cohort: Cohort, dictionary: DataDictionary | None, allow: tuple[str, ...] = ()
) -> tuple[dict[str, str], list[CaseProblem]]:
    """Variables of the data dictionary with no column in the table: ``(allowed -> why, problems)``.

    A whole missing column is not missingness to impute: it changes what every model sees, so it is a
    problem unless the dictionary marks the variable optional or ``allow`` names it; either way it is
    recorded (``cohort.info["missing_variables"]``).
    """
    name = dictionary.name if dictionary is not None else DICTIONARY
    known = dictionary.variables if dictionary is not None else {}
    unknown = [v for v in allow if v not in known]
    if unknown:
        raise DataError(
            f"--allow-missing-variable {', '.join(unknown)}: not in the data dictionary "
            f"({name} {'has ' + ', '.join(known) if known else 'is absent'})"
        )
    allowed, problems = {}, []
    for var, coding in known.items():
        if var in cohort.clinical.columns:
            continue
        if var in allow:
            allowed[var] = "allowed by --allow-missing-variable"
        elif not coding.required:
            allowed[var] = f"optional in {name}"
        else:
            near = [c for c, why in cohort.info.get("ignored_columns", {}).items() if f"variable {var!r}" in why]
            rename = f"give its column ({near[0]!r}?) as its 'column' in {name}, " if near else ""
            problems.append(
                CaseProblem(
                    None,
                    f"the clinical table has no column for variable {var!r} of {name}"
                    f" (add the column, {rename}mark it required=false in {name}, or pass "
                    f"--allow-missing-variable {var})",
                )
            )
    return allowed, problems


def _load_msd(
    root: Path, label_column: str | None, dictionary: DataDictionary | None, images_only: bool, require_labels=True
):
    ds_path = root / "dataset.json"
    meta = read_dataset_json(ds_path) if ds_path.exists() else {}  # a plain folder of images has none
    label_map, unmapped = parse_label_map(meta.get("labels", {"background": 0}), str(ds_path))
    if not ds_path.exists():
        label_map = default_label_map()
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    if not require_labels and not images_dir.is_dir():
        # new patients: MSD's test folder, or images straight in the folder (nnU-Net's inference input)
        images_dir = root / "imagesTs" if (root / "imagesTs").is_dir() else root
    problems: list[CaseProblem] = []
    cases = []
    if isinstance(meta.get("training"), list) and meta["training"]:
        for entry in meta["training"]:  # MSD v1: explicit pairs
            img = (root / entry["image"]).resolve()
            stem = _strip_ending(img.name) or img.name
            m = _CHANNEL.match(stem)
            case = m["case"] if m else stem
            if not img.exists() and m is None:  # MSD lists 'case.nii.gz' even when files are 'case_0000'
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
    if images_only or (not require_labels and not table_path.exists()):
        table = pd.DataFrame({"case_id": [c for c, _, _ in cases]})
        cohort, more = assemble(
            meta.get("name") or root.name,
            root,
            cases,
            table,
            "imagesTr",
            label_map,
            unmapped,
            _read_info(meta),
            None,
            images_only=images_only,
            require_labels=require_labels,
            dictionary=dictionary,
        )
        return cohort, problems + more
    if not table_path.exists():
        raise DataError(
            f"{root}: no clinical.csv (a table keyed by case_id with the NCCN label column and the clinical variables)"
        )
    table = read_case_table(table_path)
    cohort, more = assemble(
        meta.get("name") or root.name,
        root,
        cases,
        table,
        "clinical.csv",
        label_map,
        unmapped,
        _read_info(meta),
        _read_ground_truth(root / "ground_truth.csv"),
        label_column,
        dictionary=dictionary,
        require_labels=require_labels,
    )
    return cohort, problems + more


def _load_manifest(
    csv_path: Path, label_column: str | None, dictionary: DataDictionary | None, images_only: bool, require_labels=True
):
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
    if images_only:
        return assemble(
            csv_path.stem,
            base,
            cases,
            table[["case_id"]],
            csv_path.name,
            label_map,
            unmapped,
            info,
            None,
            images_only=True,
        )
    return assemble(
        csv_path.stem,
        base,
        cases,
        table,
        csv_path.name,
        label_map,
        unmapped,
        info,
        _read_ground_truth(base / "ground_truth.csv"),
        label_column,
        dictionary=dictionary,
        require_labels=require_labels,
    )


def _dataset_kind(path: Path, require_labels: bool = True) -> str:
    if path.is_file() and path.suffix.lower() == ".csv":
        return "manifest"
    if path.is_dir() and (path / "dataset.json").exists():
        return "msd"
    if path.is_dir() and not require_labels and _has_images(path):
        return "msd"  # new patients: imagesTs/ or images straight in the folder, clinical.csv optional
    if path.is_dir():
        also = "" if require_labels else ", imagesTs/ or NIfTI images in the folder itself"
        raise DataError(f"{path}: neither an MSD/nnU-Net folder (dataset.json, imagesTr/{also}) nor a manifest CSV")
    raise DataError(f"{path}: no such dataset folder or manifest CSV")


def _has_images(folder: Path) -> bool:
    return any(
        _strip_ending(p.name)
        for sub in (folder, folder / "imagesTr", folder / "imagesTs")
        if sub.is_dir()
        for p in sub.iterdir()
    )


def find_dictionary(
    path: str | Path, data_dictionary: str | Path | None = None, require_labels: bool = True
) -> DataDictionary | None:
    """The data dictionary that applies to the dataset at ``path``: ``data_dictionary`` when given (a
    CSV/TOML/JSON file; it must exist), else the dataset folder's ``data_dictionary.csv``, else None."""
    if data_dictionary is not None and str(data_dictionary).strip():
        given = Path(data_dictionary).expanduser()
        if not given.is_file():
            raise DataError(f"data dictionary {given} does not exist (or is not a file)")
        return read_dictionary(given)
    path = Path(path).expanduser()
    folder = path.parent if _dataset_kind(path, require_labels) == "manifest" else path
    return read_dictionary(folder / DICTIONARY)


def read_cohort(
    path: str | Path,
    label_column: str | None = None,
    allow_missing_variables=(),
    data_dictionary: str | Path | None = None,
    require_labels: bool = True,
) -> tuple[Cohort, list[CaseProblem]]:
    """The cohort of every case that passed the cheap checks, plus all problems found (nothing raised per case).

    ``data_dictionary``: a dictionary file used instead of the dataset's own ``data_dictionary.csv``.
    ``require_labels=False`` reads new patients (for ``predict``): no label column needed (labels -1), an
    MSD folder's ``imagesTs/`` or a plain folder of NIfTI images, ``clinical.csv`` optional."""
    path = Path(path).expanduser()
    kind = _dataset_kind(path, require_labels)
    dictionary = find_dictionary(path, data_dictionary, require_labels)
    loader = _load_manifest if kind == "manifest" else _load_msd
    cohort, problems = loader(path, label_column, dictionary, False, require_labels)
    allowed, more = missing_variables(cohort, dictionary, tuple(allow_missing_variables))
    cohort.info["missing_variables"] = allowed
    if dictionary is not None:
        cohort.info["data_dictionary"] = dictionary.summary()
        more = [CaseProblem(None, p) for p in dictionary.problems] + more
    return cohort, more + problems


def load_images(path: str | Path) -> Cohort:
    """The images and masks of a dataset (MSD/nnU-Net folder or manifest CSV), for commands that need only
    those (``geometry measure``): the clinical table, the labels and the data dictionary are not read, so
    a problem there never stops them (``cohort.labels`` are -1, ``cohort.clinical`` has no columns).
    Problems of the case list or the file headers refuse it with every one listed
    (:class:`InvalidCohortError`); voxel problems surface when a case is read."""
    path = Path(path).expanduser()
    loader = _load_manifest if _dataset_kind(path) == "manifest" else _load_msd
    cohort, problems = loader(path, None, None, True)
    if problems:
        raise InvalidCohortError(str(path), [(p.case_id, p.problem) for p in problems])
    if len(cohort) == 0:
        raise DataError(f"{path}: no cases")
    return cohort


#: bump when check_case_volumes checks something new, so cached verdicts are redone
VOLUME_CHECKS_VERSION = 1


def volume_problems(cohort: Cohort, on_progress=None, cache_dir: Path | None = None) -> list[CaseProblem]:
    """Read every case's voxels (the checks of ``data validate``); with ``cache_dir`` the verdict is kept per
    cohort content (fingerprint, label map, unmapped labels), so a resumed run does not read them again."""
    path = None
    if cache_dir is not None:
        key = hashlib.blake2b(
            json.dumps([cohort.fingerprint, sorted(cohort.unmapped_labels.items()), VOLUME_CHECKS_VERSION]).encode(),
            digest_size=16,
        ).hexdigest()
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


def load_cohort(
    path: str | Path,
    skip_invalid: bool = False,
    label_column: str | None = None,
    check_volumes: bool | None = None,
    on_progress=None,
    allow_missing_variables=(),
    validation_cache: str | Path | None = None,
    data_dictionary: str | Path | None = None,
    require_labels: bool = True,
) -> Cohort:
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
    The dictionary's codings (value maps, units, missing tokens) are applied while reading; ``data_dictionary``
    names a CSV/TOML/JSON dictionary to use instead of the dataset's own (recorded in
    ``cohort.info["data_dictionary"]``). ``on_progress(done, total, message)`` reports the volume checks.
    ``require_labels=False``: new patients, see :func:`read_cohort`.
    """
    cohort, problems = read_cohort(path, label_column, allow_missing_variables, data_dictionary, require_labels)
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
