"""Helpers for data tests: hand-made MSD / nnU-Net datasets with known voxels (import, don't collect)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from resectbench.data.labels import INDEX

SHAPE = (12, 10, 8)
SPACING = (1.5, 1.5, 2.0)


def ras_affine(spacing=SPACING) -> np.ndarray:
    aff = np.diag([*spacing, 1.0])
    aff[:3, 3] = (-9.0, -7.5, -8.0)
    return aff


def canonical_volumes(seed: int = 0):
    """(image HU float32, mask canonical uint8) in RAS with an asymmetric marker: the tumor sits in the
    patient's right-anterior-superior corner, so any flip moves it."""
    rng = np.random.default_rng(seed)
    image = rng.normal(40, 10, SHAPE).astype(np.float32)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[2:8, 2:8, 1:6] = INDEX["pancreas"]
    mask[8:11, 6:9, 5:7] = INDEX["tumor"]  # high x (right), high y (anterior), high z (superior)
    mask[3:5, 1:3, :] = INDEX["sma"]
    image[mask == INDEX["tumor"]] = -300.0
    return image, mask


def store(data: np.ndarray, affine: np.ndarray, codes: str):
    """Store a RAS array in axis order ``codes`` (e.g. 'LPS'), adjusting the affine."""
    if codes == "RAS":
        return data, affine
    ornt = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt("RAS"), nib.orientations.axcodes2ornt(tuple(codes))
    )
    return (
        np.ascontiguousarray(nib.orientations.apply_orientation(data, ornt)),
        affine @ nib.orientations.inv_ornt_aff(ornt, data.shape),
    )


def write_msd(
    root: Path,
    n: int = 3,
    naming: str = "nnunet",
    numbering: dict[str, int] | None = None,
    orientation: str = "RAS",
    msd_v1: bool = False,
    clinical: dict | None = None,
    label_names: dict[str, str] | None = None,
) -> Path:
    """A small dataset: ``naming`` 'nnunet' (case_0000.nii.gz) or 'msd' (case.nii.gz); ``numbering`` maps
    canonical names to the voxel values written; ``label_names`` renames structures in dataset.json."""
    root = Path(root)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    numbering = numbering or {"background": 0, "pancreas": 1, "tumor": 2, "sma": 3}
    label_names = label_names or {}
    rows, training = [], []
    for i in range(n):
        cid = f"case{i:02d}"
        image, mask = canonical_volumes(i)
        values = np.zeros_like(mask)
        for name, v in numbering.items():
            values[mask == INDEX[name]] = v
        img, aff = store(image, ras_affine(), orientation)
        lab, _ = store(values, ras_affine(), orientation)
        img_name = f"{cid}_0000.nii.gz" if naming == "nnunet" else f"{cid}.nii.gz"
        nib.save(nib.Nifti1Image(img, aff), str(root / "imagesTr" / img_name))
        nib.save(nib.Nifti1Image(lab, aff), str(root / "labelsTr" / f"{cid}.nii.gz"))
        training.append({"image": f"./imagesTr/{img_name}", "label": f"./labelsTr/{cid}.nii.gz"})
        row = {
            "case_id": cid,
            "label": i % 3,
            "age": 60 + i,
            "sex": "female" if i % 2 else "male",
            "ca19_9_baseline": 100.0 * (i + 1),
        }
        row.update((clinical or {}).get(cid, {}))
        rows.append(row)
    named = {label_names.get(k, k): v for k, v in numbering.items()}
    if msd_v1:
        meta = {"name": "test", "labels": {str(v): k for k, v in named.items()}, "training": training}
    else:
        meta = {"name": "test", "labels": named, "channel_names": {"0": "CT"}, "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(meta))
    pd.DataFrame(rows).to_csv(root / "clinical.csv", index=False)
    return root
