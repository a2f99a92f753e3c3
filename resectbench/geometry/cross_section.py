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
    contact_deg: np.ndarray  # (M,) contacted share of the perimeter x 360; NaN where the plane is invalid
    radius_mm: np.ndarray  # (M,) median wall distance from the (re-centred) centre
    solidity: np.ndarray  # (M,) cross-section area / convex hull area (1 = convex contour)
    valid: np.ndarray  # (M,) bool
    area_mm2: np.ndarray = None  # (M,) cross-section area
    filled: np.ndarray = None  # (M,) share of contacted rays whose wall was reconstructed (tumor over the wall)


def _frames(tangents: np.ndarray):
    t = tangents / np.linalg.norm(tangents, axis=1, keepdims=True)
    helper = np.eye(3)[np.argmin(np.abs(t), axis=1)]
    u = np.cross(t, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(t, u)
    return u, v


def _sample(volume: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Trilinear samples of ``volume`` at voxel coordinates ``coords`` (..., 3); 0 outside."""
    flat = coords.reshape(-1, 3).T
    return ndimage.map_coordinates(volume, flat, order=1, mode="constant", cval=0.0, output=np.float32).reshape(
        coords.shape[:-1]
    )


def _walls(
    vessel: np.ndarray,
    spacing: np.ndarray,
    centers: np.ndarray,
    dirs: np.ndarray,
    max_radius_mm: float,
    refine: int = 5,
):
    """Wall distance per ray (M, A) in mm and ray validity (wall found inside the array).

    Coarse to fine: samples every 0.75 of the smallest voxel (a first exit below 0.5 cannot hide
    between two samples: trilinear values change by at most one per voxel), then ``refine``
    bisections of the bracketing step (1/43 voxel) - the same wall as dense sampling at a third of
    the cost.
    """
    m, a = dirs.shape[:2]
    step = 0.75 * float(spacing.min())
    radii = np.arange(0.0, max_radius_mm + 2 * step, step)
    c_vox = (centers / spacing)[:, None, None, :]
    d_vox = (dirs / spacing)[:, :, None, :]
    vals = _sample(vessel, c_vox + radii[None, None, :, None] * d_vox)
    outside = vals < 0.5
    k = np.argmax(outside, axis=2)  # first sample outside the vessel
    found = outside.any(axis=2) & (k > 0)
    kk = np.clip(k, 1, len(radii) - 1)
    lo, hi = radii[kk - 1], radii[kk]
    d_vox = d_vox[:, :, 0, :]
    for _ in range(refine):
        mid = (lo + hi) / 2
        inside = _sample(vessel, c_vox[:, 0] + mid[..., None] * d_vox) >= 0.5
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    wall = (lo + hi) / 2
    # rays that leave the array before reaching the wall (field of view, crop) are not measured
    end = c_vox[:, 0] + wall[..., None] * d_vox
    reached = np.all((end >= 0) & (end <= np.array(vessel.shape) - 1), axis=-1)
    return wall, found & reached


def _ray_circle(cos: np.ndarray, sin: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    """Distance from the plane centre to the circle along each ray (NaN where the centre is outside)."""
    b = cos * cx + sin * cy
    disc = b * b - (cx * cx + cy * cy - r * r)
    return np.where(disc >= 0, b + np.sqrt(np.maximum(disc, 0.0)), np.nan)


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


def measure_planes(
    vessel: np.ndarray,
    tumor: np.ndarray,
    spacing,
    centers_mm: np.ndarray,
    tangents: np.ndarray,
    *,
    max_radius_mm: float,
    n_angles: int = 180,
    tol_factor: float = 0.6,
    min_valid_share: float = 0.9,
    min_free_share: float = 0.25,
) -> PlaneMeasurements:
    """Contact of ``tumor`` with ``vessel`` (uint8/bool arrays of one grid) in planes orthogonal to
    ``tangents`` at ``centers_mm`` (mm relative to the array origin).

    Where the tumor label covers part of the wall (overlapping masks, or a tumor indenting the
    vessel) the contacted rays end short of the vessel's own contour, which would shrink their share
    of the perimeter. The vessel's free contour in a contacted plane is a circle of its free radius
    (``_free_radii``) fitted to the plane's free rays when they span ``min_free_share`` of the turn,
    else about the plane's centre. When the contacted rays of all planes pooled end short of it by more
    than half a voxel step (median), the mask covers the wall: every contacted ray's wall is moved out
    by the cover's thickness (the median shortfall in mm, pooled), no farther than the free contour.
    """
    spacing = np.asarray(spacing, dtype=float)
    m = len(centers_mm)
    out = PlaneMeasurements(
        np.full(m, np.nan),
        np.full(m, np.nan),
        np.full(m, np.nan),
        np.zeros(m, dtype=bool),
        np.full(m, np.nan),
        np.zeros(m),
    )
    if m == 0:
        return out
    vessel = vessel.astype(np.uint8, copy=False)
    tumor = tumor.astype(np.uint8, copy=False)
    theta = np.arange(n_angles) * (2 * np.pi / n_angles)
    cos, sin = np.cos(theta), np.sin(theta)
    u, v = _frames(tangents)
    dirs = cos[None, :, None] * u[:, None, :] + sin[None, :, None] * v[:, None, :]  # (M, A, 3)

    # pass 1 (every other ray): walls around the skeleton point, then move the centre to the
    # cross-section's centroid
    wall, ok = _walls(vessel, spacing, centers_mm, dirs[:, ::2], max_radius_mm)
    centers = centers_mm.copy()
    for i in np.flatnonzero(ok.mean(axis=1) >= min_valid_share):
        _, _, area, cx, cy = _polygon(wall[i], ok[i], cos[::2], sin[::2])
        if area > 0:
            centers[i] = centers_mm[i] + cx * u[i] + cy * v[i]
    # pass 2: walls around the centroid (no farther out than pass 1 found them, plus the centre's
    # move and two voxels), and the tumor just beyond each wall point
    if ok.any():
        moved = np.linalg.norm(centers - centers_mm, axis=1).max()
        max_radius_mm = min(max_radius_mm, float(wall[ok].max()) + moved + 2.0 * float(spacing.max()))
    wall, ok = _walls(vessel, spacing, centers, dirs, max_radius_mm)
    ray_voxel = 1.0 / np.linalg.norm(dirs / spacing, axis=2)  # mm per voxel step
    offsets = np.array([1 / 3, 2 / 3, 1.0]) * tol_factor
    probe_r = wall[..., None] + offsets[None, None, :] * ray_voxel[..., None]
    pts = centers[:, None, None, :] + probe_r[..., None] * dirs[:, :, None, :]
    touched = (_sample(tumor, pts / spacing) >= 0.5).any(axis=2)
    planes = np.flatnonzero(ok.mean(axis=1) >= min_valid_share)
    contacted = planes[(touched[planes] & ok[planes]).any(axis=1)]
    free_radii = _free_radii(wall, ok, touched, planes, contacted, centers)
    # the convention is the mask's, not a plane's: decided on the contacted rays of all planes pooled
    # (one plane's few rays cannot tell a one-voxel cover of a small vessel from partial-voxel noise)
    refs, gaps = {}, []
    for i in contacted:
        refs[i] = _free_contour(wall[i], ok[i], touched[i], ray_voxel[i], cos, sin, free_radii[i], min_free_share)
        use = touched[i] & ok[i] & np.isfinite(refs[i])
        gaps.append(np.column_stack([refs[i][use] - wall[i][use], ray_voxel[i][use]]))
    gaps = np.concatenate(gaps) if gaps else np.zeros((0, 2))
    overlapping = len(gaps) > 0 and float(np.median(gaps[:, 0] / gaps[:, 1])) > 0.5
    # the cover's thickness is the mask's too: pooled, it is not thrown by one plane's misfitted circle
    cover_mm = float(np.median(gaps[:, 0])) if overlapping else 0.0
    for i in planes:
        x, y, area, _, _ = _polygon(wall[i], ok[i], cos, sin)
        if area <= 0:
            continue
        contour, hit = wall[i], touched[i] & ok[i]
        if overlapping and i in refs:
            ref = refs[i]
            contour = _lift(wall[i], ref, hit, cover_mm)
            # rays at the ends of the covered arc: the label's wall ends short of the contour and tumor
            # lies between them (partial voxels kept it from the probes just beyond the label's wall)
            short = np.flatnonzero(ok[i] & ~hit & np.isfinite(ref) & (ref - wall[i] > 0.25 * ray_voxel[i]))
            if len(short):
                reach = ref[short] - wall[i][short] + tol_factor * ray_voxel[i][short]
                radii = wall[i][short, None] + np.linspace(0.0, 1.0, 5)[None, :] * reach[:, None]
                probe = centers[i] + radii[..., None] * dirs[i, short, None, :]
                covered = short[(_sample(tumor, probe / spacing) >= 0.5).any(axis=1)]
                hit = hit.copy()
                hit[covered] = True
                contour = _lift(wall[i], ref, hit, cover_mm)
            out.filled[i] = float((contour[hit] > wall[i][hit]).sum() / hit.sum())
        c_ok, h_ok = contour[ok[i]], hit[ok[i]]
        cx_, cy_ = c_ok * cos[ok[i]], c_ok * sin[ok[i]]
        seg = np.hypot(np.roll(cx_, -1) - cx_, np.roll(cy_, -1) - cy_)
        if overlapping and i in refs:
            # the step between a moved and an unmoved ray at the ends of the covered arc is no perimeter
            step = h_ok != np.roll(h_ok, -1)
            seg = np.where(step, (c_ok + np.roll(c_ok, -1)) / 2 * (2 * np.pi / n_angles), seg)
        weight = (seg + np.roll(seg, 1)) / 2.0  # arc per ray
        out.contact_deg[i] = 360.0 * float((weight * h_ok).sum() / weight.sum())
        out.radius_mm[i] = float(np.median(wall[i][ok[i]]))
        out.area_mm2[i] = area
        try:
            out.solidity[i] = area / ConvexHull(np.column_stack([x, y])).volume
        except QhullError:
            out.solidity[i] = 1.0
        out.valid[i] = True
    return out


def _free_radii(wall, ok, touched, planes, contacted, centers, n_near: int = 6) -> dict:
    """The vessel's free radius for each contacted plane: the median wall of the ``n_near`` nearest
    planes that the tumor does not touch (the local calibre; those planes are centred on their own
    centroid, while in a contacted plane of an overlapping mask the centroid moves off the covered arc
    and pulls the free rays in). Without such planes, the median of the free rays of all planes."""
    clear = np.setdiff1d(planes, contacted)
    if len(clear) == 0:
        free = (ok & ~touched)[planes]
        radius = float(np.median(wall[planes][free])) if free.any() else np.nan
        return {i: radius for i in contacted}
    # median wall of each clear plane over its valid rays (sorted, invalid ones last)
    srt = np.sort(np.where(ok[clear], wall[clear], np.inf), axis=1)
    cnt, rows = ok[clear].sum(axis=1), np.arange(len(clear))
    own = (srt[rows, (cnt - 1) // 2] + srt[rows, cnt // 2]) / 2.0
    dist = np.linalg.norm(centers[contacted][:, None, :] - centers[clear][None, :, :], axis=2)
    near = np.argsort(dist, axis=1)[:, :n_near]
    return dict(zip(contacted.tolist(), np.median(own[near], axis=1).tolist()))


def _centre_fit(x: np.ndarray, y: np.ndarray, radius: float, iterations: int = 3):
    """Centre of the circle of the given radius closest (least squares) to the points, or None. With the
    radius known, half a turn of free wall fixes the centre; fitting the radius too trades it against the
    centre along the arc's axis and misplaced the far (covered) side by up to a voxel either way."""
    c = np.zeros(2)
    for _ in range(iterations):
        dx, dy = x - c[0], y - c[1]
        d = np.hypot(dx, dy)
        if not np.all(d > 0):
            return None
        ux, uy, r = dx / d, dy / d, d - radius
        # Gauss-Newton: moving the centre by s shortens each distance by (ux, uy) . s
        a, b, e = (ux * ux).sum(), (ux * uy).sum(), (uy * uy).sum()
        det = a * e - b * b
        if det <= 1e-9 * (a + e) ** 2:
            return None
        fx, fy = (ux * r).sum(), (uy * r).sum()
        c = c + np.array([e * fx - b * fy, a * fy - b * fx]) / det
    return (float(c[0]), float(c[1])) if np.hypot(*c) < radius else None


def _free_contour(wall, ok, touched, ray_voxel, cos, sin, radius: float, min_free_share: float) -> np.ndarray:
    """Distance from the plane centre to the vessel's free contour along each ray (NaN where unknown): the
    circle of ``radius`` fitted to the free rays that are more than half a voxel (of arc) from a contacted
    one, or centred on the plane's centre when those span less than ``min_free_share`` of the turn."""
    if not np.isfinite(radius):
        return np.full_like(wall, np.nan)
    free = ok & ~touched
    hit = touched & ok
    # free rays within half a voxel (of arc at the wall) of a contacted one are left out of the fit:
    # next to the arc that the tumor covers, the label's wall is still pulled in (partial voxels)
    n = len(wall)
    if hit.any() and free.any():
        arc_per_ray = float(np.median(wall[ok])) * 2 * np.pi / n
        k = min(int(np.ceil(0.5 * np.median(ray_voxel[ok]) / max(arc_per_ray, 1e-6))), n // 4)
        wrapped = np.concatenate([hit[n - k :], hit, hit[:k]]).astype(float)
        clean = free & ~(np.convolve(wrapped, np.ones(2 * k + 1), mode="valid") > 0)
    else:
        clean = free
    centre = None
    if clean.mean() >= min_free_share:
        centre = _centre_fit(wall[clean] * cos[clean], wall[clean] * sin[clean], radius)
    return _ray_circle(cos, sin, *(centre or (0.0, 0.0)), radius)


def _lift(wall, ref, hit, cover_mm: float) -> np.ndarray:
    """Contacted rays' wall moved out by the cover's thickness, no farther than the free contour ``ref``
    (the ends of the covered arc, where partial voxels pulled the label's wall in only part of the way)."""
    room = np.where(np.isfinite(ref), np.maximum(ref - wall, 0.0), cover_mm)
    return np.where(hit, wall + np.minimum(cover_mm, room), wall)
