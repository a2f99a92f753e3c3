"""Applying a benchmark's stored final model to new cases (``resectbench predict``).

``predict(RUN_DIR/models/MODEL, COHORT, OUT)`` loads the final model (:func:`.final.load_final`), reads
the cases through the same readers and checks as ``data validate`` (a bad case is refused with the
same named error), and writes ``OUT/predictions.csv`` (class probabilities per case). For a model
with an auxiliary segmentation it also writes each predicted mask as NIfTI on the input image's own
grid and affine (``OUT/masks/<case>.nii.gz``, canonical label values of ``resectbench.vocabulary``),
and ``OUT/findings.json``: the contact angle per vessel measured on the predicted mask, the tumour
location, and the NCCN class the rule table gives with every rule that fired and its reason. Where each
mask lies is the model's ``mask_grid`` (the preprocessed volume's grid, or a cascade's window around the
localiser's centre, placed back at its location with background outside it).

The cases are new patients: no label column and no masks are needed (an MSD folder's ``imagesTs/``
or a plain folder of NIfTI images is read too; ``clinical.csv`` only where the model uses clinical
variables). Labels, where given, are only used to score: ``OUT/scores.json`` on the labelled cases.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..models.base import FitContext
from ..vocabulary import CLASS_NAMES, PROB_COLUMNS, RunFiles as F, resolve_device
from .config import ExperimentConfig
from .errors import ProtocolError
from .events import RunListener
from .final import load_final, read_final_info
from .store import RunStore, csv_text, write_json_atomic, write_text_atomic


def model_dir_of(path: str | Path) -> Path:
    """``RUN_DIR/models/MODEL`` or the shorter ``RUN_DIR/MODEL``."""
    path = Path(path)
    for candidate in (path, path.parent / F.MODELS_DIR / path.name):
        if (candidate / F.FINAL_DIR).is_dir():
            return candidate
    raise ProtocolError(
        f"{path}: no final model there (looked for {path / F.FINAL_DIR} and "
        f"{path.parent / F.MODELS_DIR / path.name / F.FINAL_DIR}); run the benchmark with --final-model first"
    )


def resample_to(mask: np.ndarray, mask_affine: np.ndarray, shape, affine: np.ndarray) -> np.ndarray:
    """``mask`` (voxel -> world ``mask_affine``) sampled by nearest neighbour on the grid (``shape``,
    ``affine``); voxels outside the mask's grid are background."""
    from scipy.ndimage import affine_transform

    # input-grid voxel -> world -> mask voxel, rounded to the nearest (order 0); "grid-constant" rounds
    # points up to half a voxel outside the mask onto its edge voxels, like rounding the coordinates does
    m = np.linalg.inv(mask_affine) @ affine
    return affine_transform(
        np.asarray(mask, dtype=np.uint8),
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=tuple(shape),
        order=0,
        mode="grid-constant",
        cval=0,
    )


def predict(
    model_path,
    source,
    out,
    *,
    device: str = "auto",
    masks: str | Path | None = None,
    mask_labels: str | Path | None = None,
    data_dictionary: str | Path | None = None,
    allow_missing_variables=(),
    listener: RunListener | None = None,
) -> pd.DataFrame:
    """Class probabilities (and masks, contacts, NCCN rule for segmenting models) of every case of ``source``.

    ``masks``: a folder of another segmenter's label maps for these cases (``CASE_ID.nii.gz``; ``mask_labels``
    their label map), for the models that read masks at inference: one fitted on such masks (mask source
    ``external``) or an oracle. ``data_dictionary``: read the cases' table through this dictionary (the site's
    column names, units, codes) instead of their folder's; ``allow_missing_variables``: development variables
    the cases do not record, filled by the final model's imputer (fitted on development cases) and recorded."""
    from .assembly import load_data

    listener = listener or RunListener()
    model_dir = model_dir_of(model_path)
    run_dir = model_dir.parent.parent
    config = ExperimentConfig.from_toml(run_dir / F.CONFIG)
    config.run_dir = str(run_dir)
    config = config.resolved()
    info = read_final_info(model_dir)
    ctx = FitContext(
        seed=int(info["seed"]),
        device=resolve_device(device),
        profile=config.profile_spec,
        cache_dir=run_dir / F.CACHE_DIR,
    )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model, info = load_final(model_dir, ctx, development=lambda: load_data(config, listener))
    timings["load_seconds"] = time.perf_counter() - t0
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ProtocolError(f"--out {out}: is a file; predict writes a folder (predictions.csv, findings.json, masks/)")
    t0 = time.perf_counter()
    development = _development_variables(run_dir, model)
    cohort = _read_cases(source, data_dictionary, development)
    timings["read_seconds"] = time.perf_counter() - t0
    imputed = []
    if model.needs(ctx.profile).clinical:
        cohort, imputed = _fill_allowed(cohort, development, tuple(allow_missing_variables), info["label"])
    if masks is not None:
        cohort = _use_masks(model, cohort, masks, mask_labels, info["label"])
    _check_inference_needs(model, cohort, ctx, info["label"])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProtocolError(f"--out {out}: cannot create the output folder ({exc.strerror or exc})") from exc
    t0 = time.perf_counter()
    proba = np.asarray(model.predict_proba(cohort, ctx), dtype=float)
    timings["predict_seconds"] = time.perf_counter() - t0
    ids = list(cohort.case_ids)
    frame = pd.DataFrame({"case_id": ids})
    for j, col in enumerate(PROB_COLUMNS):
        frame[col] = proba[:, j]
    frame["pred"] = proba.argmax(axis=1)
    frame["pred_class"] = [CLASS_NAMES[i] for i in frame["pred"]]
    labelled = cohort.labelled
    if labelled.any():  # labels are only read to score; an unlabeled case's cell stays empty
        frame["label"] = pd.Series(cohort.labels, dtype="Int64").where(labelled)
    write_text_atomic(out / "predictions.csv", csv_text(frame))
    scores = _scores(cohort, proba)
    t0 = time.perf_counter()
    findings = _masks_and_findings(model, cohort, ctx, out)
    timings["masks_seconds"] = time.perf_counter() - t0
    write_json_atomic(
        out / "findings.json",
        {
            "model": info["label"],
            "recipe": info["recipe"],
            "run_dir": str(run_dir),
            "cases": findings,
            "imputed_variables": imputed,
            "data_dictionary": cohort.info.get("data_dictionary", {}).get("path")
            if cohort.info.get("data_dictionary")
            else None,
            "timings": timings,
        },
    )
    if scores is not None:
        write_json_atomic(out / "scores.json", scores)
    else:  # an earlier prediction's scores into the same folder would read as this one's
        (out / "scores.json").unlink(missing_ok=True)
    return frame


def _development_variables(run_dir: Path, model) -> list[str]:
    """The clinical variables the final model is fitted on: the run's record, else its fitted preprocessor's."""
    recorded = ((RunStore(run_dir).read_manifest() or {}).get("cohort") or {}).get("clinical_variables")
    if recorded is not None:
        return list(recorded)
    fitted = getattr(getattr(model, "preprocessor", None), "columns_", None) or {}
    return [c for cols in fitted.values() for c in cols]


def _read_cases(source, data_dictionary, development: list[str]):
    """The new cases through their dictionary; a development variable it lists but the table lacks is decided
    by :func:`_fill_allowed` (against the development cohort), not by the reader."""
    from ..data import load_cohort
    from ..data.readers.load import find_dictionary

    dictionary = find_dictionary(source, data_dictionary, require_labels=False)
    listed = [v for v in (dictionary.variables if dictionary is not None else ()) if v in development]
    cohort = load_cohort(
        source,
        check_volumes=True,
        require_labels=False,
        data_dictionary=data_dictionary,
        allow_missing_variables=listed,
    )
    return cohort


def _fill_allowed(cohort, development: list[str], allow: tuple[str, ...], label: str):
    """``cohort`` with the development variables it lacks and may lack added as missing (the final model's
    imputer fills them); one it may not lack, or an allowed name that is no development variable, is refused."""
    from dataclasses import replace

    from ..data.clinical import with_absent_columns

    unknown = [v for v in allow if v not in development]
    if unknown:
        raise ProtocolError(
            f"--allow-missing-variable {', '.join(unknown)}: not a development variable (model {label!r} is fitted "
            f"on {', '.join(development)})"
        )
    absent = [v for v in development if v not in cohort.clinical.columns]
    refused = [v for v in absent if v not in allow]
    if refused:
        raise ProtocolError(
            f"model {label!r} cannot predict these cases: their clinical table has no column for {', '.join(refused)}, "
            "which the model is fitted on (map a column of another name with `column` in a --data-dictionary, or let "
            "the model's imputer fill it: " + " ".join(f"--allow-missing-variable {v}" for v in refused) + ")"
        )
    if not absent:
        return cohort, []
    return replace(cohort, clinical=with_absent_columns(cohort.clinical, absent)), absent


def _use_masks(model, cohort, masks, mask_labels, label: str):
    """The new cases' masks from ``masks``: an external-mask model reads that folder instead of the one it was
    fitted with; an oracle reads them as the cases' own masks; a mask-free model has no use for them."""
    from ..data.readers.masks import with_masks_from

    source = getattr(model, "mask_source", "none")
    if source == "external":
        with_masks_from(cohort, masks, mask_labels)  # every case has its file, before any work
        model.masks, model.mask_labels = str(masks), mask_labels
        return cohort
    if source == "oracle":
        return with_masks_from(cohort, masks, mask_labels)
    raise ProtocolError(
        f"--masks: model {label!r} reads no masks at inference (mask source {source!r}); masks are for "
        "models fitted on another segmenter's masks (masks=FOLDER) or oracles"
    )


def _check_inference_needs(model, cohort, ctx, label: str) -> None:
    """New cases need what inference reads: images, clinical variables, and masks only for an oracle."""
    from dataclasses import replace

    from ..models.needs import unmet

    needs = model.needs(ctx.profile)
    why = unmet(replace(needs, masks="none" if needs.masks == "training" else needs.masks), cohort, ctx.device)
    if why:
        raise ProtocolError(f"model {label!r} cannot predict these cases: {' and '.join(why)}")


def _scores(cohort, proba: np.ndarray) -> dict | None:
    """Metrics on the labelled cases (None when none is labelled); a score on some cases says on how many."""
    from .metrics import classification_metrics

    labelled = cohort.labelled
    if not labelled.any():
        return None
    metrics = classification_metrics(cohort.labels[labelled], proba[labelled])
    return {**metrics, "n_labelled": int(labelled.sum()), "n_cases": len(cohort)}


def _masks_and_findings(model, cohort, ctx, out: Path) -> dict:
    """Masks on each input's grid + contact angles and the NCCN rule; {} for models that do not segment."""
    import nibabel as nib

    from ..data.nifti import write_volume
    from ..geometry import classify, measure_case
    from ..geometry.findings import case_findings

    predict_masks = getattr(model, "predict_masks", None)
    masks = predict_masks(cohort, ctx) if predict_masks is not None else {}
    if not masks:
        return {cid: {"segmentation": "this model does not segment"} for cid in cohort.case_ids}
    mask_grid = getattr(model, "mask_grid", None)
    # where each mask lies in the world: the preprocessed volume's grid (RAS, target spacing, ROI), or the
    # cascade's window around the localiser's centre
    grids = mask_grid(cohort, ctx) if mask_grid is not None else {}
    result = {}
    for cid, (mask, spacing) in masks.items():
        mask = np.asarray(mask, dtype=np.uint8)
        if cid in grids:
            source = nib.load(str(cohort.table.loc[cid, "image"]))
            on_input = resample_to(mask, grids[cid], source.shape[:3], source.affine)
            path = out / "masks" / f"{cid}.nii.gz"
            write_volume(path, on_input, source.affine)
            entry = {"mask": str(path.relative_to(out))}
            if getattr(model, "localiser", None) is not None:
                entry["segmentation"] = (
                    f"cascade: a {'x'.join(map(str, mask.shape))} window around the "
                    "localiser's tumour centre, placed in the input grid; background outside it"
                )
        else:
            entry = {
                "mask": None,
                "segmentation": f"{type(model).__name__} does not say where its masks lie "
                "(no mask_grid): no mask written; contacts measured on its own grid",
            }
        table = measure_case(mask, spacing, case_id=cid)
        contacts = {v: float(d) for v, d in zip(table["vessel"], table["contact_deg"]) if np.isfinite(d)}
        found = case_findings(mask, spacing)
        entry.update(contact_deg=contacts, **found)
        if found["tumor_location"] is None:
            entry["nccn"] = {"class": None, "reason": "no tumour in the predicted mask"}
        else:
            decision = classify(contacts, found["tumor_location"])
            entry["nccn"] = {
                "class": decision.class_name,
                "rules": [
                    {"rule": f.rule, "vessel": f.vessel, "contact_deg": f.contact_deg, "reason": f.reason}
                    for f in decision.firings
                ],
                "reason": decision.firings[0].reason if decision.firings else "no rule fired: resectable",
            }
        result[cid] = entry
    return result
