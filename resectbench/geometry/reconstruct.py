"""Vessels whose label the tumor interrupts: continue the centerline and the lumen through the tumor.

Most real label maps paint the tumor over the lumen of an encased vessel, so the vessel label stops
on one side of the tumor and starts again on the other. Measured as it is, the encased stretch has no
vessel and hence no contact. ``bridge_gaps`` pairs free centerline ends of different vessel
components that face each other across tumor, joins each pair by a cubic Hermite curve with the end
tangents (the vessel's course continued), gives it the radius interpolated between the two stumps
(each measured as cross-section area / length over a few mm behind the end) and voxelises that tube
back into the vessel (taken out of the tumor). Contact is then measured on the reconstructed
cross-sections like on any other vessel.

The tube is one voxel wider than the stumps' radius so that it covers every painted-over lumen
voxel even with sub-voxel errors of the course and radius (a lumen voxel left as tumor inside it
would read as contact all round); a circle of any radius about the right centre gives the same angle.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .centerline import Centerline

#: stumps must point at each other within this angle (degrees) to be joined
MAX_TURN_DEG = 45.0
#: longest gap joined (mm)
MAX_GAP_MM = 80.0
#: share of the straight segment between two ends that must be tumor or vessel
MIN_FILLED_SHARE = 0.8
#: the tube is this much (relative) + one voxel wider than the stumps (see module docstring)
REL_MARGIN = 0.15


@dataclass
class Bridged:
    line: Centerline
    vessel: np.ndarray     # vessel mask with the reconstructed lumen
    tumor: np.ndarray      # tumor mask without it
    radius_mm: np.ndarray  # (N,) radius of the bridge points (NaN for the vessel's own points)
    length_mm: float       # total bridged centerline length


def _free_ends(line: Centerline) -> list[np.ndarray]:
    """Every free end of the centerline as its branch's point indices ordered from the end inwards."""
    counts: dict[int, int] = {}
    for path in line.branches:
        if len(path) > 1:
            for e in (int(path[0]), int(path[-1])):
                counts[e] = counts.get(e, 0) + 1
    ends = []
    for path in line.branches:
        if len(path) > 1:
            ends += [path if counts[int(path[0])] == 1 else None, path[::-1] if counts[int(path[-1])] == 1 else None]
    return [e for e in ends if e is not None]


def _stump_axis(path: np.ndarray, pts: np.ndarray, vessel: np.ndarray, vox_mm: np.ndarray, spacing: np.ndarray,
                radius: float, length_mm: float = 8.0):
    """End point and outward direction of a stump.

    A line fitted to its centerline between one radius and one radius + ``length_mm`` behind the end
    (thinning bends the last radius towards the cut face) finds the stump's last voxel; the end point
    and direction are then taken from the centroids of two slabs of the stump's voxels (each two voxel
    steps + 1 mm thick) just behind it and one slab further back (on the axis also for a curved vessel).
    """
    p = pts[path]
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    skip = min(max(radius, 2.0 * float(spacing.max())), 0.5 * arc[-1])
    sel = (arc >= skip) & (arc <= skip + length_mm)
    if sel.sum() < 3:   # thick slices: few points; take the next three behind
        sel = np.zeros_like(sel)
        sel[np.searchsorted(arc, skip):][:3] = True
    if sel.sum() < 3:
        sel = arc >= 0
    q = p[sel]
    centre = q.mean(axis=0)
    _, _, vt = np.linalg.svd(q - centre, full_matrices=False)
    t = vt[0] * np.sign(np.dot(vt[0], p[0] - centre) or 1.0)
    step = 0.25 * float(spacing.min())
    k = np.arange(0, int((arc[-1] + 4 * radius) / step) + 1)
    walk = centre + np.outer(k * step, t)
    inside = _lookup(vessel, walk, spacing)
    end = walk[max(int(np.argmin(inside)) - 1 if not inside.all() else len(inside) - 1, 0)]
    rel = vox_mm - end
    along = rel @ t
    perp = np.linalg.norm(rel - np.outer(along, t), axis=1)
    near_axis = perp <= 1.5 * radius + spacing.max()
    ds = float(np.abs(t * spacing).max())        # voxel step along the axis: slabs hold >= 2 slices
    behind, width = 0.5 * ds + 0.5, 2.0 * ds + 1.0
    slabs = [near_axis & (along < -behind - off) & (along >= -behind - off - width) for off in (0.0, width)]
    if min(sl.sum() for sl in slabs) < 3:
        return end, t
    c_near, c_far = (vox_mm[sl].mean(axis=0) for sl in slabs)
    direction = c_near - c_far
    if np.dot(direction, t) <= 0:
        return end, t
    direction /= np.linalg.norm(direction)
    return c_near + np.dot(end - c_near, direction) * direction, direction


def _lookup(mask: np.ndarray, pts_mm: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    idx = np.round(pts_mm / spacing).astype(int)
    inside = np.all((idx >= 0) & (idx < np.array(mask.shape)), axis=1)
    out = np.zeros(len(pts_mm), dtype=bool)
    out[inside] = mask[tuple(idx[inside].T)]
    return out


def _stump_radius(vox_mm: np.ndarray, p: np.ndarray, t: np.ndarray, r0: float, spacing: np.ndarray,
                  length_mm: float = 6.0) -> float:
    """Radius of the stump behind end ``p`` (outward tangent ``t``): voxel volume / slab length as a disc.

    The slab is a whole number of voxel steps along the axis (a 6 mm slab of a vessel running along
    2.5 mm slices would hold 2 or 3 slices depending on where it starts: +-20 % of the area)."""
    ds = float(np.abs(t * spacing).max())
    behind = 1.0 + 0.5 * ds   # the last voxels are cut obliquely
    length_mm = ds * np.ceil(length_mm / ds)
    rel = vox_mm - p
    along = rel @ t
    perp = np.linalg.norm(rel - np.outer(along, t), axis=1)
    sel = (along < -behind) & (along >= -behind - length_mm) & (perp <= 2.0 * r0 + spacing.max())
    if sel.sum() < 3:
        return r0
    area = sel.sum() * float(np.prod(spacing)) / length_mm
    return float(np.sqrt(area / np.pi))


def bridge_gaps(line: Centerline, vessel: np.ndarray, tumor: np.ndarray, others: np.ndarray, spacing: np.ndarray,
                components: np.ndarray, depth: np.ndarray) -> Bridged | None:
    """Join the vessel's stumps across the tumor (arrays of one box; ``components`` labels the vessel's
    connected components, ``depth`` is its distance transform in mm). None when nothing is bridged."""
    ends = _free_ends(line)
    if len(ends) < 2:
        return None
    pts = line.points_mm
    comp_of = components[tuple(np.round(pts / spacing).astype(int).T)]
    vox_mm = np.argwhere(vessel) * spacing
    r_max = float(depth.max())
    axes = [_stump_axis(path, pts, vessel, vox_mm, spacing, float(depth[tuple(np.round(pts[path] / spacing).astype(int).T)].max()))
            for path in ends]
    cos_max = np.cos(np.deg2rad(MAX_TURN_DEG))
    candidates = []
    for a in range(len(ends)):
        for b in range(a + 1, len(ends)):
            if comp_of[ends[a][0]] == comp_of[ends[b][0]]:
                continue
            (pa, ta), (pb, tb) = axes[a], axes[b]
            d = pb - pa
            gap = float(np.linalg.norm(d))
            if gap < 1e-6 or gap > MAX_GAP_MM:
                continue
            u = d / gap
            if np.dot(ta, u) < cos_max or np.dot(tb, -u) < cos_max:
                continue
            seg = pa + np.linspace(0, 1, max(int(gap / 0.5), 2))[:, None] * d
            in_tumor = _lookup(tumor, seg, spacing)
            if not in_tumor.any() or (in_tumor | _lookup(vessel, seg, spacing)).mean() < MIN_FILLED_SHARE:
                continue
            candidates.append((gap, a, b))
    used: set[int] = set()
    new_pts, new_tan, new_w, new_r, branches = [], [], [], [], list(line.branches)
    tube_pts, tube_r = [], []
    n = len(pts)
    total = 0.0
    step = float(spacing.min())
    for gap, a, b in sorted(candidates):
        if a in used or b in used:
            continue
        used |= {a, b}
        ea, eb = int(ends[a][0]), int(ends[b][0])
        (pa, out_a), (pb, out_b) = axes[a], axes[b]
        ta, tb = out_a, -out_b
        ra = _stump_radius(vox_mm, pa, out_a, r_max, spacing)
        rb = _stump_radius(vox_mm, pb, out_b, r_max, spacing)
        # cubic Hermite curve from end a to end b with the stumps' directions as tangents
        s = np.linspace(0.0, 1.0, max(int(np.ceil(gap / (0.25 * step))), 4) + 1)[:, None]
        h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
        curve = h00 * pa + h10 * gap * ta + h01 * pb + h11 * gap * tb
        deriv = ((6 * s**2 - 6 * s) * pa + (3 * s**2 - 4 * s + 1) * gap * ta + (-6 * s**2 + 6 * s) * pb
                 + (3 * s**2 - 2 * s) * gap * tb)
        deriv /= np.linalg.norm(deriv, axis=1, keepdims=True)
        radius = ra + (rb - ra) * s[:, 0]
        tube_pts.append(curve)
        tube_r.append(radius)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
        total += float(arc[-1])
        # centerline points every voxel step, ends excluded (the stumps' own points)
        k = np.searchsorted(arc, np.arange(step, arc[-1] - step / 2, step))
        new_pts.append(curve[k])
        new_tan.append(deriv[k])
        new_w.append(np.full(len(k), step))
        new_r.append(radius[k])
        branches.append(np.concatenate([[ea], np.arange(n, n + len(k)), [eb]]))
        n += len(k)
    if not tube_pts:
        return None
    curve, radius = np.concatenate(tube_pts), np.concatenate(tube_r)
    margin = step
    lo = np.maximum(np.floor((curve.min(axis=0) - radius.max() * (1 + REL_MARGIN) - margin) / spacing).astype(int), 0)
    hi = np.minimum(np.ceil((curve.max(axis=0) + radius.max() * (1 + REL_MARGIN) + margin) / spacing).astype(int) + 1, vessel.shape)
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), axis=-1)
    dist, nearest = cKDTree(curve).query(grid.reshape(-1, 3) * spacing)
    tube = np.zeros(vessel.shape, dtype=bool)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    tube[box] = (dist <= radius[nearest] * (1 + REL_MARGIN) + margin).reshape(grid.shape[:-1])
    tube &= ~others
    line = Centerline(np.concatenate([pts, *new_pts]), np.concatenate([line.tangents, *new_tan]), branches,
                      np.concatenate([line.weights_mm, *new_w]))
    r_all = np.concatenate([np.full(len(pts), np.nan), *new_r])
    return Bridged(line, vessel | tube, tumor & ~tube, r_all, total)
