"""Case-level findings from a label mask that the NCCN rules need besides contact angles.

* tumor location (head/uncinate vs body/tail): the tumor's centroid relative to the SMA/SMV axis -
  the pancreatic head lies to the patient's right of the SMV, the body and tail to the left of the
  SMA. Needs the mask in RAS orientation (axis 0 towards the patient's right), which is what
  :meth:`resectbench.data.Cohort.load_case` returns.
* CHA reach: distance (mm) from the CHA voxels the tumor touches to the celiac trunk and to the
  hepatic bifurcation (proper hepatic / gastroduodenal artery); a contact that reaches either makes
  CHA involvement locally advanced. "Reaches" means the tumor runs along the CHA right up to the
  vessel at its end, separated from it by at most a thin fat plane: the rules call it so when this
  distance is at most ``RuleThresholds.cha_reach_mm`` (4 mm, about a fat plane plus one voxel). The
  synthetic generator builds its ground-truth flag the same way (a reaching contact starts at the
  CHA's origin behind the thin plane every contact keeps from other vessels; a non-reaching one is
  kept the fat plane plus two voxels away from the celiac trunk, proper hepatic and GDA walls).
* tumor volume (ml).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..vocabulary import STRUCTURE_INDEX as INDEX, canonical_name

BRANCHES = ("celiac_trunk", "proper_hepatic_artery", "gastroduodenal_artery")


def _values(label_map: dict[str, int] | None) -> dict[str, int]:
    label_map = INDEX if label_map is None else label_map
    return {(canonical_name(k) or k): int(v) for k, v in label_map.items()}


def tumor_location(mask: np.ndarray, spacing, label_map: dict[str, int] | None = None) -> str | None:
    """ "head" or "body" (the guideline's two groups) for a RAS-oriented mask; None without a tumor.

    The dividing line is midway between the SMA and SMV (their voxels at the tumor's height, or all
    of them); without either vessel, the right-most 40 % of the pancreas counts as head.
    """
    values = _values(label_map)
    spacing = np.asarray(spacing, dtype=float)
    tumor = np.argwhere(mask == values["tumor"]) if "tumor" in values else np.zeros((0, 3))
    if len(tumor) == 0:
        return None
    tx, (z0, z1) = tumor[:, 0].mean() * spacing[0], (tumor[:, 2].min(), tumor[:, 2].max())
    pad = int(np.ceil(20.0 / spacing[2]))
    axis = []
    for vessel in ("sma", "smv"):
        if vessel in values:
            vox = np.argwhere(mask == values[vessel])
            if len(vox):
                level = vox[(vox[:, 2] >= z0 - pad) & (vox[:, 2] <= z1 + pad)]
                axis.append((level if len(level) else vox)[:, 0].mean() * spacing[0])
    if axis:
        return "head" if tx > float(np.mean(axis)) else "body"
    if "pancreas" in values:
        pan = np.argwhere(np.isin(mask, [values["pancreas"], values["tumor"]]))[:, 0] * spacing[0]
        lo, hi = pan.min(), pan.max()
        return "head" if tx >= hi - 0.4 * (hi - lo) else "body"
    return "head"


def cha_reach_mm(mask: np.ndarray, spacing, label_map: dict[str, int] | None = None) -> float:
    """Distance (mm) from the CHA voxels touching the tumor (26-adjacent) to the nearest voxel of the
    celiac trunk, proper hepatic or gastroduodenal artery, between voxel centres.

    Small (about the fat plane between tumor and those vessels plus a voxel) when the contact extends
    along the CHA to its origin at the celiac trunk or to the hepatic bifurcation; the rule inputs
    call that "reaches" at ``RuleThresholds.cha_reach_mm`` (4 mm) or less. Real masks that label the
    CHA up to its junctions read the same way. NaN when the tumor does not touch the CHA or none of
    those branches is labelled.
    """
    values = _values(label_map)
    if "tumor" not in values or "common_hepatic_artery" not in values:
        return float("nan")
    spacing = np.asarray(spacing, dtype=float)
    cha = mask == values["common_hepatic_artery"]
    if not cha.any():
        return float("nan")
    ring = ndimage.binary_dilation(mask == values["tumor"], structure=np.ones((3, 3, 3)))
    touched = np.argwhere(cha & ring)
    targets = [np.argwhere(mask == values[b]) for b in BRANCHES if b in values]
    targets = [t for t in targets if len(t)]
    if len(touched) == 0 or not targets:
        return float("nan")
    d, _ = cKDTree(np.concatenate(targets) * spacing).query(touched * spacing)
    return float(d.min())


def case_findings(mask: np.ndarray, spacing, label_map: dict[str, int] | None = None) -> dict:
    """tumor_location, tumor_volume_ml and cha_reach_mm of one RAS-oriented case."""
    values = _values(label_map)
    spacing = np.asarray(spacing, dtype=float)
    n_tumor = int((mask == values["tumor"]).sum()) if "tumor" in values else 0
    return {
        "tumor_location": tumor_location(mask, spacing, label_map),
        "tumor_volume_ml": n_tumor * float(np.prod(spacing)) / 1000.0,
        "cha_reach_mm": cha_reach_mm(mask, spacing, label_map),
    }
