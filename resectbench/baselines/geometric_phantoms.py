"""A tiny cohort of tube phantoms with exact contact angles, for testing the geometric baselines.

Nine (or more) cases, each one vessel (SMA or SMV) crossing a small field of view with a tumor
sector of known angle; the NCCN class follows from that angle alone (SMA <= 180 -> borderline,
SMA > 180 -> locally advanced, SMV <= 180 -> resectable, SMV > 180 -> borderline, no contact ->
resectable), whatever the tumor's location. Written as a manifest CSV (+ ground_truth.csv) that
:func:`resectbench.data.load_cohort` reads like any user dataset. Independent of the synthetic
cohort generator, so the baselines are tested against angles that are exact by construction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data.labels import INDEX
from ..geometry.nccn import classify
from ..geometry.phantoms import TUMOR_LABEL, VESSEL_LABEL, tube_phantom

#: (vessel, angle, orientation): angles kept >= 40 degrees away from the 180 threshold
CASES = (
    ("smv", 0.0, "straight"),
    ("smv", 70.0, "oblique30"),
    ("smv", 130.0, "curved"),
    ("sma", 90.0, "straight"),
    ("sma", 140.0, "oblique30"),
    ("smv", 240.0, "curved"),
    ("smv", 310.0, "straight"),
    ("sma", 230.0, "oblique30"),
    ("sma", 330.0, "curved"),
)


def write_phantom_cohort(
    out_dir: str | Path, *, cases=CASES, spacing=(1.0, 1.0, 1.0), size_mm: float = 36.0, seed: int = 0
) -> Path:
    """Write the cohort under ``out_dir`` and return the manifest CSV's path."""
    import nibabel as nib

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for i, (vessel, angle, orientation) in enumerate(cases):
        case_id = f"tube_{i:03d}"
        p = tube_phantom(
            angle,
            orientation=orientation,
            spacing=spacing,
            size_mm=size_mm,
            start_deg=float(rng.uniform(0, 360)),
            gap_mm=3.0 if angle == 0 else 0.0,
        )
        mask = np.zeros(p.mask.shape, dtype=np.uint8)
        mask[p.mask == VESSEL_LABEL] = INDEX[vessel]
        mask[p.mask == TUMOR_LABEL] = INDEX["tumor"]
        image = (rng.normal(40.0, 10.0, mask.shape) + 150.0 * (mask == INDEX[vessel])).astype(np.float32)
        affine = np.diag([*spacing, 1.0])
        nib.save(nib.Nifti1Image(image, affine), str(out / "images" / f"{case_id}.nii.gz"))
        nib.save(nib.Nifti1Image(mask, affine), str(out / "masks" / f"{case_id}.nii.gz"))
        label = classify({vessel: p.true_angle_deg}, "head").label
        rows.append(
            {
                "case_id": case_id,
                "image": f"images/{case_id}.nii.gz",
                "mask": f"masks/{case_id}.nii.gz",
                "label": label,
                "age": float(rng.integers(45, 85)),
                "ca19_9_baseline": float(rng.uniform(5, 900)),
            }
        )
        truth.append(
            {
                "case_id": case_id,
                **{
                    f"angle_{v}": (p.true_angle_deg if v == vessel else 0.0)
                    for v in ("sma", "celiac_trunk", "common_hepatic_artery", "smv", "portal_vein", "ivc")
                },
                "tumor_location": "head",
                "vein_contour_irregular": False,
                "reconstructable": True,
                "cha_reaches_ca_or_bifurcation": False,
                "mechanism": f"{vessel}-{angle:g}",
                "label_true": label,
                "label": label,
            }
        )
    manifest = out / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    pd.DataFrame(truth).to_csv(out / "ground_truth.csv", index=False)
    return manifest
