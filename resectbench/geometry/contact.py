"""Tumor-vessel contact per vessel of one case: ``measure_case(mask, spacing, label_map)``.

For each vessel: the maximum circumferential contact in planes orthogonal to its centerline
(degrees, 0-360), the length of centerline along which the tumor touches it (mm), the minimum
tumor-vessel distance (mm, 0 when touching) and, for the SMV and portal vein, a contour-deformity
score (1 - solidity of the contacted cross-sections: 0 for a convex contour, larger for a vein
pulled into a teardrop or indented by the tumor).

Work is confined to a crop around the tumor (``margin_mm``) and only vessels that touch the tumor
are skeletonised and sampled, so a whole case costs well under a second. A vessel is measured when a
voxel of it is 26-adjacent to a tumor voxel (``min_distance_mm`` 0); its contact angle needs the
tumor within ``tol_factor`` voxel steps beyond the wall, which labels meeting only at a voxel edge or
corner across fat do not give (contact 0 at distance 0). Several tumor components are measured together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from ..errors import DataError
from ..vocabulary import STRUCTURE_INDEX as INDEX, canonical_name
from .centerline import centerline
from .cross_section import measure_planes
from .reconstruct import bridge_gaps

#: Structures of a label map that are not vessels (everything else in it is measured as a vessel).
NON_VESSELS = frozenset({"background", "tumor", "pancreas", "pancreatic_duct", "bile_duct"})
#: Veins whose contour deformity the NCCN rules use.
DEFORMITY_VESSELS = frozenset({"smv", "portal_vein"})
COLUMNS = (
    "vessel",
    "present",
    "contact_deg",
    "contact_length_mm",
    "min_distance_mm",
    "vein_deformity",
    "radius_mm",
    "n_planes",
    "convention",
    "reconstructed_mm",
)
#: how the labels met where the tumor touches (column ``convention``; "" without contact)
CONVENTIONS = ("disjoint", "overlapping", "engulfing")


@dataclass(frozen=True)
class MeasureConfig:
    """How contact is measured; the defaults are what benchmarks/geometry.py validates."""

    margin_mm: float = 20.0  # crop around the tumor; vessels are skeletonised inside it only
    n_angles: int = 180  # rays per cross-section (2 degree steps)
    tol_factor: float = 0.55  # tumor must lie within this many voxel steps beyond the wall (< 0.59:
    # voxels that share only an edge across fat are no contact)
    window_mm: float = 6.0  # centerline span used for tangents
    smooth: int = 3  # running median over this many consecutive planes before the max
    bridge: bool = True  # continue vessels whose label the tumor interrupts (engulfing masks)


def _validate(mask, spacing, label_map, case_id):
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise DataError(f"mask must be a 3D array, got shape {mask.shape}", case_id=case_id)
    if not np.issubdtype(mask.dtype, np.integer):
        if not np.all(np.mod(mask, 1) == 0):
            raise DataError("mask holds non-integer values; expected integer labels", case_id=case_id)
        mask = mask.astype(np.int64)
    spacing = np.asarray(spacing, dtype=float).ravel()
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise DataError(f"spacing must be three positive numbers in mm, got {spacing.tolist()}", case_id=case_id)
    label_map = dict(INDEX if label_map is None else label_map)
    if "tumor" not in label_map:
        raise DataError(f"label map has no 'tumor' entry (labels: {sorted(label_map)})", case_id=case_id)
    if mask.min(initial=0) < 0:
        raise DataError("mask holds negative labels", case_id=case_id)
    counts = np.bincount(mask.ravel().astype(np.int64, copy=False))
    present = set(np.flatnonzero(counts).tolist())
    unknown = sorted(present - set(int(v) for v in label_map.values()) - {0})
    if unknown:
        raise DataError(f"mask holds labels {unknown} that the label map {label_map} does not name", case_id=case_id)
    return mask, spacing, label_map, counts


def _box_gap(a_mm: np.ndarray, b_mm: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Distance between voxel boxes centred at a and b (0 when they share a face, edge or corner)."""
    return np.linalg.norm(np.maximum(np.abs(a_mm - b_mm) - spacing, 0.0), axis=-1)


def _smoothed_max(values: np.ndarray, branches: list[np.ndarray], width: int) -> float:
    """Max over planes after a running median along each ordered branch (kills single-plane outliers)."""
    best = 0.0
    for path in branches:
        seq = values[path]
        seq = seq[~np.isnan(seq)]
        if len(seq) == 0:
            continue
        if width > 1 and len(seq) >= width:
            seq = ndimage.median_filter(seq, size=width, mode="nearest")
        best = max(best, float(seq.max()))
    return best


def _row(vessel: str, present: bool, **values) -> dict:
    row = {
        "vessel": vessel,
        "present": present,
        "contact_deg": 0.0,
        "contact_length_mm": 0.0,
        "min_distance_mm": np.nan,
        "vein_deformity": 0.0 if vessel in DEFORMITY_VESSELS else np.nan,
        "radius_mm": np.nan,
        "n_planes": 0,
        "convention": "",
        "reconstructed_mm": 0.0,
    }
    row.update(values)
    return row


def _measure_touching(
    vessel_crop: np.ndarray,
    tumor_crop: np.ndarray,
    others_crop: np.ndarray,
    tumor_ring: np.ndarray,
    tumor_surface_mm: cKDTree,
    spacing: np.ndarray,
    config: MeasureConfig,
    deformity: bool,
) -> dict:
    """Contact of one vessel that touches the tumor (arrays of the crop around the tumor; ``others_crop``:
    voxels of other structures, which a reconstructed lumen never takes)."""
    comps, _ = ndimage.label(vessel_crop, structure=np.ones((3, 3, 3)))
    touching = np.unique(comps[tumor_ring & (comps > 0)])
    sub = np.isin(comps, touching)
    # two or more pieces may be bridged through the tumor: the tube is wider than the stumps (and a
    # bending course bulges beyond them), so leave it room - a tube cut flat at the box edge reads as
    # a lumen the tumor covers
    pad = 2 if len(touching) < 2 else np.maximum(np.ceil(5.0 / spacing).astype(int), 2)
    lo = np.maximum(np.argwhere(sub).min(axis=0) - pad, 0)
    hi = np.minimum(np.argwhere(sub).max(axis=0) + pad + 1, sub.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    sub = sub[box]
    origin = lo * spacing
    line = centerline(sub, spacing, window_mm=config.window_mm)
    if len(line) == 0:
        return {}
    depth = ndimage.distance_transform_edt(sub, sampling=spacing)
    local_r = depth[tuple(np.round(line.points_mm / spacing).astype(int).T)]
    on_bridge = np.zeros(len(line), dtype=bool)
    bridged = None
    if config.bridge:
        bridged = bridge_gaps(
            line, sub, tumor_crop[box], others_crop[box], spacing, np.where(sub, comps[box], 0), depth
        )
    if bridged is not None:
        line = bridged.line
        on_bridge = np.isfinite(bridged.radius_mm)
        local_r = np.concatenate([local_r, bridged.radius_mm[on_bridge]])
        vessel_crop = vessel_crop.copy()
        vessel_crop[box] |= bridged.vessel
        tumor_crop = tumor_crop.copy()
        tumor_crop[box] = bridged.tumor
    pts = line.points_mm + origin
    dist, _ = tumor_surface_mm.query(pts)
    near = (dist <= local_r + 3 * spacing.max() + 2.0) | on_bridge
    if not near.any():
        return {}
    # veins: every plane of the crop, so the contacted calibre can be compared with the vein's own
    sampled = np.ones_like(near) if deformity else near
    planes = measure_planes(
        vessel_crop,
        tumor_crop,
        spacing,
        pts[sampled],
        line.tangents[sampled],
        max_radius_mm=2.0 * float(local_r[sampled].max()) + 3.0 * spacing.max(),
        n_angles=config.n_angles,
        tol_factor=config.tol_factor,
    )
    where = np.flatnonzero(sampled)
    deg = np.full(len(line), np.nan)
    deg[where] = planes.contact_deg
    contacted = np.nan_to_num(deg) > 0
    filled = np.full(len(line), np.nan)
    filled[where] = planes.filled
    out = {
        "contact_deg": _smoothed_max(deg, line.branches, config.smooth),
        "contact_length_mm": float(line.weights_mm[contacted].sum()),
        "radius_mm": float(np.nanmedian(planes.radius_mm[~on_bridge[sampled]])) if planes.valid.any() else np.nan,
        "n_planes": int(planes.valid[near[sampled]].sum()),
        "reconstructed_mm": bridged.length_mm if bridged is not None else 0.0,
    }
    if out["contact_deg"] == 0.0 and contacted.any():
        # the tumor touches in fewer consecutive planes than the median window: keep the smallest touch
        out["contact_deg"] = float(np.nanmin(deg[contacted]))
    if bridged is not None:
        out["convention"] = "engulfing"
    elif contacted.any():
        out["convention"] = "overlapping" if np.nanmedian(filled[contacted]) >= 0.5 else "disjoint"
    if deformity:
        out["vein_deformity"] = _deformity(line, where, planes, contacted, config.smooth)
    return out


def _deformity(line, where: np.ndarray, planes, contacted: np.ndarray, smooth: int) -> float:
    """Contour deformity of a vein where the tumor touches it: the larger of its concavity
    (1 - solidity of the cross-section) and its narrowing (1 - equivalent radius / the vein's
    median equivalent radius in untouched planes)."""
    if not contacted.any():
        return 0.0
    n = len(line)
    sol = np.full(n, np.nan)
    sol[where] = planes.solidity
    r_eq = np.full(n, np.nan)
    r_eq[where] = np.sqrt(planes.area_mm2 / np.pi)
    free = ~contacted & np.isfinite(r_eq)
    reference = np.nanmedian(r_eq[free]) if free.sum() >= 3 else np.nanmedian(r_eq)
    concavity = _smoothed_max(np.where(contacted, 1.0 - sol, np.nan), line.branches, smooth)
    narrowing = _smoothed_max(np.where(contacted, 1.0 - r_eq / reference, np.nan), line.branches, smooth)
    return float(max(concavity, narrowing, 0.0))


def measure_case(
    mask,
    spacing,
    label_map: dict[str, int] | None = None,
    *,
    case_id: str | None = None,
    config: MeasureConfig = MeasureConfig(),
) -> pd.DataFrame:
    """One row per vessel of ``label_map`` (default: the canonical structures) with its contact.

    ``mask`` is an integer label volume (X, Y, Z) and ``spacing`` its voxel size in mm. Names in
    ``label_map`` may be canonical names or aliases (``"SMA"``, ``"pv"``); names that are not vessels
    (tumor, pancreas, ducts) are not rows. An empty tumor or vessel gives zero contact and a NaN
    distance; bad input raises :class:`resectbench.errors.DataError` naming ``case_id``.
    """
    mask, spacing, label_map, counts = _validate(mask, spacing, label_map, case_id)
    names = {name: (canonical_name(name) or name) for name in label_map}
    tumor_value = label_map["tumor"]
    vessels = [(canon, label_map[name]) for name, canon in names.items() if canon not in NON_VESSELS]

    def count(value):
        return int(counts[value]) if value < len(counts) else 0

    if count(tumor_value) == 0:
        return pd.DataFrame([_row(v, count(val) > 0) for v, val in vessels], columns=list(COLUMNS))

    tumor_full = mask == tumor_value
    t_idx = np.argwhere(tumor_full)
    pad = np.ceil(config.margin_mm / spacing).astype(int)
    lo = np.maximum(t_idx.min(axis=0) - pad, 0)
    hi = np.minimum(t_idx.max(axis=0) + pad + 1, mask.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    mask_crop = mask[crop]
    tumor_crop = tumor_full[crop]
    surface = tumor_crop & ~ndimage.binary_erosion(tumor_crop)
    surface_mm = (np.argwhere(surface) + lo) * spacing
    surface_tree = cKDTree(surface_mm)
    ring = ndimage.binary_dilation(tumor_crop, structure=np.ones((3, 3, 3))) & ~tumor_crop
    labelled = mask_crop != 0

    rows = []
    for vessel, value in vessels:
        if count(value) == 0:
            rows.append(_row(vessel, False))
            continue
        vessel_crop = mask_crop == value
        in_crop = np.argwhere(vessel_crop)
        if len(in_crop):
            d, j = surface_tree.query((in_crop + lo) * spacing)
            best = int(np.argmin(d))
            gap = float(_box_gap((in_crop[best] + lo) * spacing, surface_mm[j[best]], spacing))
        else:
            gap = np.inf
        if gap > config.margin_mm:  # nothing close in the crop: the exact distance needs the whole vessel
            far = np.argwhere(mask == value) * spacing
            d, j = surface_tree.query(far)
            best = int(np.argmin(d))
            gap = float(_box_gap(far[best], surface_mm[j[best]], spacing))
        gap = 0.0 if gap < 1e-6 else gap
        values = {"min_distance_mm": gap}
        if gap == 0.0 and (ring & vessel_crop).any():
            others = labelled & ~tumor_crop & ~vessel_crop
            values.update(
                _measure_touching(
                    vessel_crop,
                    tumor_crop,
                    others,
                    ring,
                    surface_tree_crop(surface_mm, lo, spacing),
                    spacing,
                    config,
                    vessel in DEFORMITY_VESSELS,
                )
            )
        rows.append(_row(vessel, True, **values))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def surface_tree_crop(surface_mm: np.ndarray, lo: np.ndarray, spacing: np.ndarray) -> cKDTree:
    """KD-tree of the tumor surface in the crop's own mm frame."""
    return cKDTree(surface_mm - lo * spacing)
