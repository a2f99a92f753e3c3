"""Measurements of a whole cohort from a declared mask source: ``oracle`` (the cohort's ground-truth
masks, an upper bound), ``predicted`` (in-memory masks a segmenter trained on the training part predicts)
or ``external`` (another segmenter's mask files, measured like the cohort's own: :func:`oracle_geometry` on
:func:`resectbench.data.readers.masks.with_masks_from`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

from ...errors import DataError
from ...vocabulary import STRUCTURE_INDEX as INDEX
from .cache import CaseGeometry, GeometryCache, measure_mask

#: "external": label maps another segmenter wrote, for training and test cases alike (``masks=FOLDER``)
MASK_SOURCES = ("oracle", "predicted", "external")


def cohort_label_map(cohort) -> dict[str, int]:
    """Canonical label map of the structures a cohort annotates (load_case remaps to canonical indices)."""
    return {s: INDEX[s] for s in cohort.structures}


def oracle_geometry(
    cohort, cache: GeometryCache, on_progress: Callable[[int, int, str], None] | None = None
) -> dict[str, CaseGeometry]:
    """Measurements from the cohort's ground-truth masks (the ``oracle`` mask source)."""
    from ...data.nifti import file_digest

    label_map = cohort_label_map(cohort)
    if "tumor" not in label_map:
        raise DataError(f"cohort {cohort.name!r} has no tumor label; geometric baselines need tumor masks")
    out = {}
    for i, case_id in enumerate(cohort.case_ids):
        mask_path = cohort.table.loc[case_id].get("mask")
        if not isinstance(mask_path, (str, Path)) or not str(mask_path):
            raise DataError("no ground-truth mask: the oracle mask source needs one for every case", case_id=case_id)
        content = f"file:{file_digest(mask_path)}|labels:{sorted(cohort.label_map.items())}"

        def compute(case_id=case_id):
            case = cohort.load_case(case_id)
            return measure_mask(case.mask, case.spacing, label_map, case_id=case_id, config=cache.config)

        out[case_id] = cache.get_or_measure(content, compute)
        if on_progress is not None:
            on_progress(i + 1, len(cohort), f"measured {case_id}")
    return out


def array_geometry(
    masks: dict[str, tuple[np.ndarray, tuple]], cache: GeometryCache, label_map: dict[str, int] | None = None
) -> dict[str, CaseGeometry]:
    """Measurements of in-memory masks (the ``predicted`` mask source), keyed by their bytes."""
    out = {}
    for case_id, (mask, spacing) in masks.items():
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
        digest = hashlib.sha256(mask.tobytes()).hexdigest()
        content = f"array:{digest}|{mask.shape}|{np.round(np.asarray(spacing, float), 6).tolist()}"
        out[case_id] = cache.get_or_measure(
            content, lambda m=mask, s=spacing, c=case_id: measure_mask(m, s, label_map, case_id=c, config=cache.config)
        )
    return out
