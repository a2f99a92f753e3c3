"""Vessels whose label the tumor interrupts: continue the centerline and the lumen through the tumor.

Most real label maps paint the tumor over the lumen of an encased vessel, so the vessel label stops
on one side of the tumor and starts again on the other. Measured as it is, the encased stretch has no
vessel and hence no contact. ``bridge_gaps`` pairs free centerline ends of different vessel
components that face each other across tumor, joins each pair by a cubic Hermite curve with the end
tangents (the vessel's course continued), gives it the radius interpolated between the two stumps
(each measured as cross-section area / length over a few mm behind the end), fits that course to the
painted lumen's free wall (``_refine_course``: where the tumor does not surround the vessel, tumor-or-
vessel ends against fat at the vessel's radius from its axis) and voxelises the tube back into the
vessel (taken out of the tumor), one voxel step into each stump. Contact is then measured on the
reconstructed cross-sections like on any other vessel.

The stumps alone fix the course to about a voxel and a few degrees: on 2.5 mm slices a 7.5 mm vessel
bending through a 16 mm tumor was bridged 2.4 mm and 20 degrees off its axis, leaving painted lumen as
tumor inside the tube (207 degrees measured for 90). Fitted to the free wall the course is within
0.8 mm (one in-plane voxel) of the axis, and the copy of a case stored with flipped axes gives the
same course (thinning, which places the stumps' ends, is not flip-symmetric).

The tube is one voxel wider than the stumps' radius so that it covers every painted-over lumen
voxel even with sub-voxel errors of the course and radius (a lumen voxel left as tumor inside it
would read as contact all round); a circle of any radius about the right centre gives the same angle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .centerline import Centerline
from .cross_section import _frames, _walls

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
    vessel: np.ndarray  # vessel mask with the reconstructed lumen
    tumor: np.ndarray  # tumor mask without it
    radius_mm: np.ndarray  # (N,) radius of the bridge points (NaN for the vessel's own points)
    length_mm: float  # total bridged centerline length


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


def _stump_axis(
    path: np.ndarray,
    pts: np.ndarray,
    vessel: np.ndarray,
    vox_mm: np.ndarray,
    spacing: np.ndarray,
    radius: float,
    length_mm: float = 8.0,
):
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
    if sel.sum() < 3:  # thick slices: few points; take the next three behind
        sel = np.zeros_like(sel)
        sel[np.searchsorted(arc, skip) :][:3] = True
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
    ds = float(np.abs(t * spacing).max())  # voxel step along the axis: slabs hold >= 2 slices
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


def _stump_radius(
    vox_mm: np.ndarray, p: np.ndarray, t: np.ndarray, r0: float, spacing: np.ndarray, length_mm: float = 6.0
) -> float:
    """Radius of the stump behind end ``p`` (outward tangent ``t``): voxel volume / slab length as a disc.

    The slab is a whole number of voxel steps along the axis (a 6 mm slab of a vessel running along
    2.5 mm slices would hold 2 or 3 slices depending on where it starts: +-20 % of the area)."""
    ds = float(np.abs(t * spacing).max())
    behind = 1.0 + 0.5 * ds  # the last voxels are cut obliquely
    length_mm = ds * np.ceil(length_mm / ds)
    rel = vox_mm - p
    along = rel @ t
    perp = np.linalg.norm(rel - np.outer(along, t), axis=1)
    sel = (along < -behind) & (along >= -behind - length_mm) & (perp <= 2.0 * r0 + spacing.max())
    if sel.sum() < 3:
        return r0
    area = sel.sum() * float(np.prod(spacing)) / length_mm
    return float(np.sqrt(area / np.pi))


def bridge_gaps(
    line: Centerline,
    vessel: np.ndarray,
    tumor: np.ndarray,
    others: np.ndarray,
    spacing: np.ndarray,
    components: np.ndarray,
    depth: np.ndarray,
) -> Bridged | None:
    """Join the vessel's stumps across the tumor (arrays of one box; ``components`` labels the vessel's
    connected components, ``depth`` is its distance transform in mm). None when nothing is bridged."""
    ends = _free_ends(line)
    if len(ends) < 2:
        return None
    pts = line.points_mm
    comp_of = components[tuple(np.round(pts / spacing).astype(int).T)]
    vox_mm = np.argwhere(vessel) * spacing
    r_max = float(depth.max())
    axes = [
        _stump_axis(
            path, pts, vessel, vox_mm, spacing, float(depth[tuple(np.round(pts[path] / spacing).astype(int).T)].max())
        )
        for path in ends
    ]
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
    occupied = (tumor | vessel).astype(np.uint8)
    tangents = line.tangents.copy()
    new_pts, new_tan, new_w, new_r, branches = [], [], [], [], list(line.branches)
    tube_pts, tube_r = [], []
    n = len(pts)
    total = 0.0
    step = float(spacing.min())
    seg = [np.linalg.norm(np.diff(pts[path], axis=0), axis=1) for path in line.branches if len(path) > 1]
    spaced = max(step, float(np.median(np.concatenate(seg)))) if seg else step
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
        deriv = (
            (6 * s**2 - 6 * s) * pa
            + (3 * s**2 - 4 * s + 1) * gap * ta
            + (-6 * s**2 + 6 * s) * pb
            + (3 * s**2 - 2 * s) * gap * tb
        )
        deriv /= np.linalg.norm(deriv, axis=1, keepdims=True)
        radius = ra + (rb - ra) * s[:, 0]
        curve, deriv = _refine_course(curve, deriv, radius, occupied, spacing)
        # the stumps' last radius or so: thinning bends the skeleton towards the cut face, and planes
        # across those tangents cut the tube obliquely; they take the course's direction at the end
        for path, r_end, t_end in ((ends[a], ra, deriv[0]), (ends[b], rb, deriv[-1])):
            along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts[path], axis=0), axis=1))])
            tangents[path[along <= r_end + float(np.abs(t_end * spacing).max())]] = t_end
        # the tube reaches one voxel step (along the axis) into each stump: an end placed a little into
        # the gap would otherwise leave a ring of painted lumen at the cut face (contact all round there)
        caps = []
        for p0, t0, r0 in ((curve[0], -deriv[0], radius[0]), (curve[-1], deriv[-1], radius[-1])):
            reach = float(np.abs(t0 * spacing).max()) + 0.5
            caps.append((p0 + np.outer(np.arange(0.25 * step, reach, 0.25 * step), t0), r0))
        tube_pts += [curve] + [c for c, _ in caps]
        tube_r += [radius] + [np.full(len(c), r0) for c, r0 in caps]
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
        total += float(arc[-1])
        # centerline points as far apart as the stumps' own (ends excluded): the contact is a running
        # median over consecutive planes, which should span the same length on the bridge as elsewhere
        k = np.searchsorted(arc, np.arange(spaced, arc[-1] - spaced / 2, spaced))
        new_pts.append(curve[k])
        new_tan.append(deriv[k])
        new_w.append(np.full(len(k), spaced))
        new_r.append(radius[k])
        branches.append(np.concatenate([[ea], np.arange(n, n + len(k)), [eb]]))
        n += len(k)
    if not tube_pts:
        return None
    curve, radius = np.concatenate(tube_pts), np.concatenate(tube_r)
    margin = step
    lo = np.maximum(np.floor((curve.min(axis=0) - radius.max() * (1 + REL_MARGIN) - margin) / spacing).astype(int), 0)
    hi = np.minimum(
        np.ceil((curve.max(axis=0) + radius.max() * (1 + REL_MARGIN) + margin) / spacing).astype(int) + 1, vessel.shape
    )
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), axis=-1)
    reach = float(radius.max()) * (1 + REL_MARGIN) + margin
    dist, nearest = cKDTree(curve).query(grid.reshape(-1, 3) * spacing, distance_upper_bound=reach + 1e-6)
    inside = np.isfinite(dist)
    inside[inside] = dist[inside] <= radius[nearest[inside]] * (1 + REL_MARGIN) + margin
    tube = np.zeros(vessel.shape, dtype=bool)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    tube[box] = inside.reshape(grid.shape[:-1])
    tube &= ~others
    line = Centerline(
        np.concatenate([pts, *new_pts]),
        np.concatenate([tangents, *new_tan]),
        branches,
        np.concatenate([line.weights_mm, *new_w]),
    )
    r_all = np.concatenate([np.full(len(pts), np.nan), *new_r])
    return Bridged(line, vessel | tube, tumor & ~tube, r_all, total)


def _fit_fixed_circles(x: np.ndarray, y: np.ndarray, valid: np.ndarray, radius: np.ndarray, taus: np.ndarray):
    """Centres (M, 2) of circles of the given radii (M,) through the points (M, A) that lie near them,
    and the points kept (M, A): a robust fit whose tolerance band shrinks through ``taus`` (M, T) -
    points farther from the circle than the band (the tumor's outer boundary beyond a contacted arc)
    are left out. Each step moves the centre to the mean of (point - radius * its unit direction)."""
    c = np.zeros((len(x), 2))
    keep = valid.copy()
    for j in range(taus.shape[1]):
        for _ in range(4):
            dx, dy = x - c[:, :1], y - c[:, 1:]
            d = np.maximum(np.hypot(dx, dy), 1e-9)
            keep = valid & (np.abs(d - radius[:, None]) <= taus[:, j : j + 1])
            n = np.maximum(keep.sum(axis=1), 1)
            c = np.column_stack(
                [
                    ((x - radius[:, None] * dx / d) * keep).sum(axis=1) / n,
                    ((y - radius[:, None] * dy / d) * keep).sum(axis=1) / n,
                ]
            )
    return c, keep


def _longest_run(keep: np.ndarray) -> np.ndarray:
    """Per row of ``keep`` (M, A), the longest circular run of True after closing gaps of one."""
    closed = keep | (np.roll(keep, 1, axis=1) & np.roll(keep, -1, axis=1))
    out = np.zeros(len(keep), dtype=int)
    for i, row in enumerate(closed):
        if row.all():
            out[i] = len(row)
            continue
        if not row.any():
            continue
        start = int(np.argmin(row))  # a False: unroll the circle there
        seq = np.concatenate([np.roll(row, -start), [False]]).astype(int)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], seq])))
        out[i] = int((edges[1::2] - edges[0::2]).max())
    return out


def _refine_course(
    curve: np.ndarray,
    deriv: np.ndarray,
    radius: np.ndarray,
    occupied: np.ndarray,
    spacing: np.ndarray,
    n_rays: int = 48,
    every_mm: float = 1.5,
    min_arc: float = 0.25,
):
    """Move the bridged course onto the lumen that the tumor label paints over.

    The stumps fix the course only to a voxel or so, and a degree or two of their direction is
    millimetres across a long gap (a strongly curved vessel on 2.5 mm slices was 2.4 mm off). Where
    the tumor does not surround the vessel, the painted lumen still shows its free wall: the tumor
    (or the stump) ends against fat there, at the vessel's radius from its true axis. In planes across
    the course, rays find where tumor-or-vessel ends; a circle of the stumps' radius is fitted to the
    exits that lie near it (robustly - exits through a contacted arc end at the tumor's far side), and
    the course is moved to the fitted centres (smoothed along it; planes with less than ``min_arc`` of
    the turn as free wall, or whose circle would reach beyond where tumor-or-vessel ends, take their
    neighbours' offsets). Two passes, the second across the refined tangents (skipped when the first
    moved the course by less than a quarter voxel). Returns the refined curve and its unit tangents."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    if arc[-1] <= 0:
        return curve, deriv
    theta = np.arange(n_rays) * (2 * np.pi / n_rays)
    cos, sin = np.cos(theta), np.sin(theta)
    sample_at = np.linspace(0.0, arc[-1], max(int(np.ceil(arc[-1] / every_mm)), 1) + 1)
    k = np.clip(np.searchsorted(arc, sample_at), 0, len(curve) - 1)
    vox = float(spacing.max())
    sigma = max(2.0, float(spacing.max())) / every_mm  # smoothing of the offsets, in samples
    for _ in range(2):  # the second pass across the refined tangents
        centres, tangents, r = curve[k], deriv[k], radius[k]
        u, v = _frames(tangents)
        dirs = cos[None, :, None] * u[:, None, :] + sin[None, :, None] * v[:, None, :]
        wall, ok = _walls(occupied, spacing, centres, dirs, 2.0 * float(r.max()) + 2.0 * vox)
        x, y = wall * cos, wall * sin
        taus = np.column_stack([np.maximum(0.5 * r, 2.0), np.maximum(0.25 * r, 1.0), np.maximum(0.1 * r, 0.5)])
        c, keep = _fit_fixed_circles(x, y, ok, r, taus)
        # the painted lumen fills the fitted circle: no ray may leave tumor-or-vessel well inside it
        # (a circle locked onto the radial edges of a contacted arc sticks out through the free wall)
        b = cos * c[:, :1] + sin * c[:, 1:]
        to_circle = b + np.sqrt(np.maximum(b * b - (c[:, :1] ** 2 + c[:, 1:] ** 2 - r[:, None] ** 2), 0.0))
        early = ok & (wall < to_circle - np.maximum(0.15 * r[:, None], vox))
        # and the free wall is one arc: the rays kept must run on (gaps of one ray closed) over min_arc
        # of the turn - a circle inside a heavily encased lumen can also touch the two edges of its notch
        accept = (
            (_longest_run(keep) >= min_arc * n_rays)
            & (np.hypot(c[:, 0], c[:, 1]) <= 0.6 * r + vox)
            & (early.sum(axis=1) <= 0.05 * n_rays)
        )
        offset = np.where(accept[:, None], c[:, :1] * u + c[:, 1:] * v, np.nan)
        good = np.isfinite(offset[:, 0])
        if not good.any():
            break
        # planes without a free wall take the offsets of their neighbours (interpolated along the course)
        for ax in range(3):
            offset[:, ax] = np.interp(sample_at, sample_at[good], offset[good, ax])
        offset = ndimage.gaussian_filter1d(offset, sigma=sigma, axis=0, mode="nearest")
        full = np.column_stack([np.interp(arc, sample_at, offset[:, ax]) for ax in range(3)])
        curve = curve + full
        if np.linalg.norm(offset, axis=1).max() < 0.25 * float(spacing.min()):
            break  # already on the lumen: no second pass
        # tangents of the refined course (smoothed over one sample spacing: offsets are interpolated linearly)
        per_sample = arc[-1] / (len(arc) - 1)
        d = np.gradient(ndimage.gaussian_filter1d(curve, sigma=every_mm / per_sample, axis=0, mode="nearest"), axis=0)
        deriv = d / np.linalg.norm(d, axis=1, keepdims=True)
    return curve, deriv
