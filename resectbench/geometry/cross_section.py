"""Cross-sections orthogonal to a vessel centerline and the tumor contact in each of them.

In every plane rays leave the centre every ``360 / n_angles`` degrees. Along each ray the vessel
mask is sampled by trilinear interpolation (``scipy.ndimage.map_coordinates``, real spacing) and
the wall is where it drops below 0.5. The ray counts as in contact when the tumor mask reaches
0.5 within ``tol_factor`` voxels beyond the wall (measured in the ray's own voxel step, so a
2.5 mm slice counts as one voxel just like a 0.8 mm pixel). Because label masks partition space,
a tumor voxel next to a vessel voxel puts both 0.5 levels on the shared face; one background voxel
between them is a gap and no contact. The plane's contact is the contacted share of the wall's
perimeter times 360 (perimeter-weighted, so an off-centre centre point or an oval vein is not
biased). Planes are re-centred once on the cross-section's centroid before the final measurement.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError


@dataclass
class PlaneMeasurements:
    contact_deg: np.ndarray   # (M,) contacted share of the perimeter x 360; NaN where the plane is invalid
    radius_mm: np.ndarray     # (M,) median wall distance from the (re-centred) centre
    solidity: np.ndarray      # (M,) cross-section area / convex hull area (1 = convex contour)
    valid: np.ndarray         # (M,) bool
    area_mm2: np.ndarray = None  # (M,) cross-section area


def _frames(tangents: np.ndarray):
    t = tangents / np.linalg.norm(tangents, axis=1, keepdims=True)
    helper = np.eye(3)[np.argmin(np.abs(t), axis=1)]
    u = np.cross(t, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(t, u)
    return u, v


def _walls(vessel: np.ndarray, spacing: np.ndarray, centers: np.ndarray, dirs: np.ndarray, radii: np.ndarray):
    """Wall distance per ray (M, A) and ray validity (wall found inside the array)."""
    m, a = dirs.shape[:2]
    pts = centers[:, None, None, :] + radii[None, None, :, None] * dirs[:, :, None, :]
    coords = (pts / spacing).reshape(-1, 3).T
    vals = ndimage.map_coordinates(vessel, coords, order=1, mode="constant", cval=0.0, output=np.float32)
    vals = vals.reshape(m, a, len(radii))
    upper = (np.array(vessel.shape) - 1)[:, None]
    inside_array = np.all((coords >= 0) & (coords <= upper), axis=0).reshape(m, a, len(radii))
    outside = vals < 0.5
    k = np.argmax(outside, axis=2)                        # first sample outside the vessel
    found = outside.any(axis=2) & (k > 0)
    # rays that leave the array before reaching the wall (field of view, crop) are not measured
    reached = np.take_along_axis(inside_array, k[..., None], axis=2)[..., 0]
    kk = np.clip(k, 1, len(radii) - 1)
    v0 = np.take_along_axis(vals, (kk - 1)[..., None], axis=2)[..., 0]
    v1 = np.take_along_axis(vals, kk[..., None], axis=2)[..., 0]
    step = radii[1] - radii[0]
    frac = np.clip((v0 - 0.5) / np.maximum(v0 - v1, 1e-6), 0.0, 1.0)
    wall = radii[kk - 1] + frac * step
    return wall, found & reached


def _polygon(wall: np.ndarray, ok: np.ndarray, cos: np.ndarray, sin: np.ndarray):
    x, y = wall[ok] * cos[ok], wall[ok] * sin[ok]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2.0
    if abs(area) < 1e-9:
        return x, y, 0.0, 0.0, 0.0
    cx = ((x + xn) * cross).sum() / (6 * area)
    cy = ((y + yn) * cross).sum() / (6 * area)
    return x, y, abs(area), cx, cy


def measure_planes(vessel: np.ndarray, tumor: np.ndarray, spacing, centers_mm: np.ndarray, tangents: np.ndarray,
                   *, max_radius_mm: float, n_angles: int = 180, tol_factor: float = 0.6,
                   min_valid_share: float = 0.9) -> PlaneMeasurements:
    """Contact of ``tumor`` with ``vessel`` (uint8/bool arrays of one grid) in planes orthogonal to
    ``tangents`` at ``centers_mm`` (mm relative to the array origin)."""
    spacing = np.asarray(spacing, dtype=float)
    m = len(centers_mm)
    out = PlaneMeasurements(np.full(m, np.nan), np.full(m, np.nan), np.full(m, np.nan), np.zeros(m, dtype=bool),
                            np.full(m, np.nan))
    if m == 0:
        return out
    vessel = vessel.astype(np.uint8, copy=False)
    tumor = tumor.astype(np.uint8, copy=False)
    theta = np.arange(n_angles) * (2 * np.pi / n_angles)
    cos, sin = np.cos(theta), np.sin(theta)
    u, v = _frames(tangents)
    dirs = cos[None, :, None] * u[:, None, :] + sin[None, :, None] * v[:, None, :]      # (M, A, 3)
    step = float(spacing.min()) / 3.0
    radii = np.arange(0.0, max_radius_mm + 2 * step, step)

    # pass 1: walls around the skeleton point, then move the centre to the cross-section's centroid
    wall, ok = _walls(vessel, spacing, centers_mm, dirs, radii)
    centers = centers_mm.copy()
    for i in range(m):
        if ok[i].mean() >= min_valid_share:
            _, _, area, cx, cy = _polygon(wall[i], ok[i], cos, sin)
            if area > 0:
                centers[i] = centers_mm[i] + cx * u[i] + cy * v[i]
    # pass 2: walls around the centroid, and the tumor just beyond each wall point
    wall, ok = _walls(vessel, spacing, centers, dirs, radii)
    ray_voxel = 1.0 / np.linalg.norm(dirs / spacing, axis=2)                             # mm per voxel step
    offsets = np.array([1 / 3, 2 / 3, 1.0]) * tol_factor
    probe_r = wall[..., None] + offsets[None, None, :] * ray_voxel[..., None]
    pts = centers[:, None, None, :] + probe_r[..., None] * dirs[:, :, None, :]
    tum = ndimage.map_coordinates(tumor, (pts / spacing).reshape(-1, 3).T, order=1, mode="constant",
                                  cval=0.0, output=np.float32).reshape(m, n_angles, len(offsets))
    touched = (tum >= 0.5).any(axis=2)
    for i in range(m):
        if ok[i].mean() < min_valid_share:
            continue
        x, y, area, _, _ = _polygon(wall[i], ok[i], cos, sin)
        if area <= 0:
            continue
        seg = np.hypot(np.roll(x, -1) - x, np.roll(y, -1) - y)
        weight = (seg + np.roll(seg, 1)) / 2.0                                            # arc per ray
        out.contact_deg[i] = 360.0 * float((weight * touched[i][ok[i]]).sum() / weight.sum())
        out.radius_mm[i] = float(np.median(wall[i][ok[i]]))
        out.area_mm2[i] = area
        try:
            out.solidity[i] = area / ConvexHull(np.column_stack([x, y])).volume
        except QhullError:
            out.solidity[i] = 1.0
        out.valid[i] = True
    return out
