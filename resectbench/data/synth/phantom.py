"""Voxelise one phantom: labels for every structure and a portal-venous CT in HU.

The tumor is built so that its contact with each vessel is exact by construction: around every
vessel a fat gap of ``gap`` mm is carved out of the tumor, except in an annular sector of the
chosen angle (in the vessel's own frame, over a chosen length) that the tumor fills right up to the
vessel wall. Contact angle = sector angle, whatever the vessel's course or the voxel grid; what a
measurement recovers from the voxels then differs only by discretisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..labels import INDEX
from .anatomy import TUMOR_SITES, Anatomy
from .scenario import Scenario
from .tubes import wrap_angle

#: which tube carries each ruled vessel, and the arc-length part of it
VESSEL_TUBES = {
    "sma": "sma",
    "celiac_trunk": "celiac_trunk",
    "common_hepatic_artery": "common_hepatic_artery",
    "smv": "smv_portal",
    "portal_vein": "smv_portal",
    "ivc": "ivc",
}
#: tubes the tumor must keep a fat plane from unless a sector says otherwise
GUARDED = (
    "aorta",
    "ivc",
    "celiac_trunk",
    "common_hepatic_artery",
    "proper_hepatic_artery",
    "gastroduodenal_artery",
    "splenic_artery",
    "sma",
    "smv_portal",
    "splenic_vein",
)
#: how far the tumor centre moves from its pancreas site towards the vessels it touches
SITE_PULL = 0.7
#: the vessels at both ends of the CHA: a CHA contact "reaches the CA or bifurcation" when it touches
#: the CHA right up to them (behind the thin fat plane every contact sector keeps from other vessels)
CHA_ENDS = ("celiac_trunk", "proper_hepatic_artery", "gastroduodenal_artery")
#: depth of the tumor's indentation of an irregular vein, as a share of its radius (reconstructable or not):
#: deep enough to show at 1.5-2.5 mm voxels on the ~3.5 mm SMV of the small-field-of-view phantoms
DENT_DEPTH = 0.65
#: the indentation keeps its full depth over the middle of the contact segment (sin ramp times this, capped at 1)
DENT_PLATEAU = 1.6
ARTERIES = (
    "aorta",
    "celiac_trunk",
    "common_hepatic_artery",
    "proper_hepatic_artery",
    "gastroduodenal_artery",
    "splenic_artery",
    "sma",
)


#: 26-neighbourhood: a tumor voxel sharing a face, an edge or a corner with a vessel voxel touches it
CUBE = np.ones((3, 3, 3), dtype=bool)


class PlacementError(RuntimeError):
    """The drawn anatomy could not host the scenario on this grid (the caller redraws the anatomy)."""


def _separate_untouched(labels: np.ndarray, sc: Scenario) -> None:
    """Where vessels crowd (a vein dent next to an artery, two vessels within a gap of each other), a
    tumor voxel can end up beside a vessel the scenario leaves untouched: give it to fat. ``labels`` may
    be a view of the region around the tumor."""
    tumor = labels == INDEX["tumor"]
    for vessel in VESSEL_TUBES:
        if sc.contacts.get(vessel, 0.0) > 0:
            continue
        vmask = labels == INDEX[vessel]
        if vmask.any():
            near_vessel = ndimage.binary_dilation(vmask, structure=CUBE) & tumor
            if near_vessel.any():
                labels[near_vessel] = 0
                tumor &= ~near_vessel


def _reject_encircling(
    near: dict, tumor_flat: np.ndarray, touched_tubes: set, gap: float, vox: float, max_deg: float = 210.0
) -> None:
    """A tumor that wraps an untouched vessel behind its thin fat plane would read as contact to any
    radiologist: refuse it (the caller redraws) when tumor lies around more than ``max_deg`` of it."""
    # the celiac trunk and the CHA branching from it are one site: a tumor at one may lie around the other
    skip = set(touched_tubes)
    if touched_tubes & {"celiac_trunk", "common_hepatic_artery"}:
        skip |= {"celiac_trunk", "common_hepatic_artery"}
    for tname in sorted({*VESSEL_TUBES.values(), "aorta"}):  # vessels the rules (or aortic involvement) read
        nv = near.get(tname)
        if tname in skip or nv is None:
            continue
        zone = (nv.dist >= nv.radius + gap) & (nv.dist <= nv.radius + gap + 2.0 * vox)
        hit = zone & tumor_flat[nv.flat]
        if not hit.any():
            continue
        # angular coverage per 2-voxel slab along the vessel; the worst slab counts
        slab = (nv.s[hit] // (2.0 * vox)).astype(np.int64)
        ang = ((nv.angle[hit] + np.pi) // np.deg2rad(10.0)).astype(np.int64)
        pairs = np.unique(slab * 64 + ang)
        worst = np.bincount(pairs // 64).max()
        if worst * 10.0 > max_deg:
            raise PlacementError(f"tumor encircles untouched {tname} behind its fat plane")


def _check_sector_coverage(
    labels: np.ndarray, near: dict, sectors: dict, vox: float, min_fraction: float = 0.7, bin_deg: float = 10.0
) -> None:
    """The tumor must show on the vessel wall over most of the chosen angle *in one cross-section*, as a
    measurement reads it (maximum over planes): in the ring just outside the vessel, per slab of 2 voxels
    along the contact segment, the angular bins holding tumor; the best slab must cover at least
    ``min_fraction`` of the sector (less means other vessels' fat planes or the grid ate it), more than
    180 degrees where the truth is > 180 and 320 where it is 360. Only tumor voxels 26-adjacent to the
    vessel count (what a measurement reads as touching). Bins pooled over the whole segment would accept a sector that shows a different part in every plane."""
    flat = labels.reshape(-1)
    slab_mm = 2.0 * vox
    # flat-index offsets of the 26 neighbours (ring voxels lie well inside the grid's margin or are skipped)
    strides = np.array(labels.strides) // labels.itemsize
    offsets = np.array(
        [
            dx * strides[0] + dy * strides[1] + dz * strides[2]
            for dx in (-1, 0, 1)
            for dy in (-1, 0, 1)
            for dz in (-1, 0, 1)
            if (dx, dy, dz) != (0, 0, 0)
        ]
    )
    for vessel, p in sectors.items():
        nv = near[p["tube"]]
        # tumor voxels up to 1.5 voxels beyond the wall, or inside it where the tumor indents a vein
        ring = (nv.dist <= nv.radius + 1.5 * vox) & (nv.s >= p["s0"]) & (nv.s <= p["s1"])
        hit = ring & (flat[nv.flat] == INDEX["tumor"])
        # only tumor voxels 26-adjacent to a voxel of this vessel show contact (not ones behind a voxel of fat)
        cand = nv.flat[hit]
        ijk = np.stack(np.unravel_index(cand, labels.shape), axis=1)
        inner = np.all((ijk > 0) & (ijk < np.array(labels.shape) - 1), axis=1)
        adjacent = np.zeros(len(cand), dtype=bool)
        adjacent[inner] = (flat[cand[inner, None] + offsets[None, :]] == INDEX[vessel]).any(axis=1)
        hit[np.flatnonzero(hit)[~adjacent]] = False
        rel = wrap_angle(nv.angle[hit] - p["phi0"])
        n_bins = int(round(360.0 / bin_deg))
        ang = np.clip(np.floor((rel + np.pi) / np.deg2rad(bin_deg)).astype(np.int64), 0, n_bins - 1)
        # slabs overlap by half (offset grids), so a contact straddling a slab border is not split
        covered = 0.0
        for shift in (0.0, 0.5):
            slab = np.floor((nv.s[hit] - p["s0"]) / slab_mm + shift).astype(np.int64)
            pairs = np.unique(slab * n_bins + ang)
            if len(pairs):
                covered = max(covered, float(np.bincount(pairs // n_bins).max()) * bin_deg)
        wanted = np.rad2deg(2 * p["half"])
        needed = min_fraction * wanted - bin_deg
        if wanted > 180.0:  # the mask must show more than 180 degrees where the truth says so ...
            needed = max(needed, 180.0 + bin_deg)
        if wanted >= 355.0:  # ... and an encasement where the truth is 360
            needed = max(needed, 320.0)
        if covered < needed:
            raise PlacementError(f"contact with {vessel} shows {covered:.0f} of {wanted:.0f} degrees in its best plane")


def _check_contacts(labels: np.ndarray, sc: Scenario) -> None:
    """The voxels must agree with the ground truth: a tumor exists, it touches (26-adjacent, as
    :func:`resectbench.geometry.measure_case` reads touching) every
    vessel with a contact angle and none without one. ``labels`` may be a view around the tumor."""
    tumor = labels == INDEX["tumor"]
    if tumor.sum() < 8:
        raise PlacementError("tumor vanished (outside the field of view or carved away)")
    grown = ndimage.binary_dilation(tumor, structure=CUBE)
    for vessel in VESSEL_TUBES:
        touched = bool((grown & (labels == INDEX[vessel])).any())
        if touched != (sc.contacts.get(vessel, 0.0) > 0):
            raise PlacementError(f"tumor {'touches' if touched else 'misses'} {vessel}")


@dataclass
class Grid:
    """A voxel grid centred on the world origin (canonical RAS axes)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]

    @property
    def origin(self) -> np.ndarray:
        return -(np.asarray(self.shape) - 1) / 2.0 * np.asarray(self.spacing)

    @property
    def affine(self) -> np.ndarray:
        aff = np.diag([*self.spacing, 1.0])
        aff[:3, 3] = self.origin
        return aff

    def axes(self) -> list[np.ndarray]:
        return [self.origin[k] + np.arange(self.shape[k]) * self.spacing[k] for k in range(3)]

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices of the voxels whose centres fall within [lo, hi] (None if outside the grid)."""
        sl = []
        for k in range(3):
            a = int(np.ceil((lo[k] - self.origin[k]) / self.spacing[k]))
            b = int(np.floor((hi[k] - self.origin[k]) / self.spacing[k])) + 1
            a, b = max(a, 0), min(b, self.shape[k])
            if a >= b:
                return None
            sl.append(slice(a, b))
        return tuple(sl)

    def points(self, box) -> np.ndarray:
        ax = self.axes()
        g = np.meshgrid(ax[0][box[0]], ax[1][box[1]], ax[2][box[2]], indexing="ij")
        return np.stack([c.ravel() for c in g], axis=1)


@dataclass
class Near:
    """Per-tube query results for the voxels close to it (``flat``: indices into the raveled grid)."""

    flat: np.ndarray
    dist: np.ndarray
    s: np.ndarray
    radius: np.ndarray
    angle: np.ndarray


def _near(tube, grid: Grid, margin: float, chunk_mm: float = 8.0) -> Near | None:
    """Query only voxels inside the bounding boxes of short pieces of the tube (a curved or oblique tube's
    overall box is mostly empty space)."""
    reach = float(tube.radius.max()) + margin
    lo, hi = tube.bounds(margin)
    outer = grid.box(lo, hi)
    if outer is None:
        return None
    start = np.array([s.start for s in outer])
    candidate = np.zeros(tuple(s.stop - s.start for s in outer), dtype=bool)
    step = max(int(chunk_mm / max(tube.step, 1e-6)), 1)
    for a in range(0, len(tube.points), step):
        piece = tube.points[a : a + step + 1]
        box = grid.box(piece.min(axis=0) - reach, piece.max(axis=0) + reach)
        if box is not None:
            candidate[tuple(slice(b.start - o, b.stop - o) for b, o in zip(box, start))] = True
    local = np.nonzero(candidate)
    if local[0].size == 0:
        return None
    ijk = [local[k] + start[k] for k in range(3)]
    pts = np.stack([grid.origin[k] + ijk[k] * grid.spacing[k] for k in range(3)], axis=1)
    dist, s, radius, angle = tube.query(pts, max_distance=reach)
    sel = np.isfinite(dist)
    flat = np.ravel_multi_index(tuple(i[sel] for i in ijk), grid.shape)
    return Near(flat, dist[sel], s[sel], radius[sel], angle[sel])


def _scatter(volume: np.ndarray, near: Near, where: np.ndarray, value) -> None:
    """volume[near voxels where mask] = value (volume must be C-contiguous)."""
    volume.reshape(-1)[near.flat[where]] = value


def _ellipsoid(grid: Grid, centre, radii, rotation=np.eye(3)):
    """(bounding-box slices, boolean inside mask over that box) of an ellipsoid, or None if out of view."""
    radii = np.asarray(radii, dtype=float)
    r = np.sqrt((np.asarray(rotation) ** 2) @ (radii**2))  # exact half-extents of the rotated ellipsoid
    box = grid.box(np.asarray(centre) - r, np.asarray(centre) + r)
    if box is None:
        return None
    d = (grid.points(box) - centre) @ rotation
    return box, (((d / radii) ** 2).sum(axis=1) <= 1.0).reshape(tuple(s.stop - s.start for s in box))


def _paint(volume: np.ndarray, ell, value, only=None) -> None:
    """volume[inside ellipsoid (and ``only``)] = value; ``only`` is a full-grid mask or a function of the box view."""
    if ell is None:
        return
    box, inside = ell
    view = volume[box]
    if only is not None:
        inside = inside & only(view)
    view[inside] = value


def _union(mask: np.ndarray, ell) -> None:
    if ell is not None:
        mask[ell[0]] |= ell[1]


def _texture(rng: np.random.Generator, grid: Grid, n: int = 4) -> np.ndarray:
    """Low-frequency tissue inhomogeneity (about unit SD): a sum of separable random cosines, cheap at any size."""
    ax = grid.axes()
    out = np.zeros(grid.shape, dtype=np.float32)
    for _ in range(n):
        f = [np.cos(2 * np.pi * a / rng.uniform(25.0, 70.0) + rng.uniform(0, 2 * np.pi)).astype(np.float32) for a in ax]
        out += f[0][:, None, None] * f[1][None, :, None] * f[2][None, None, :]
    return out * np.float32(np.sqrt(8.0 / n))


def _blurred_noise_factor(sigma_vox) -> float:
    """SD of white noise after a Gaussian blur with ``sigma_vox`` (measured on a probe, exact enough)."""
    probe = np.random.default_rng(0).standard_normal((24, 24, 24)).astype(np.float32)
    return float(ndimage.gaussian_filter(probe, sigma=sigma_vox, mode="wrap").std())


def _tumor_box(mask: np.ndarray, pad: int = 2):
    """Slices around the True voxels of ``mask`` (padded), or None when it is empty."""
    if not mask.any():
        return None
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(int(idx[0]) - pad, 0), min(int(idx[-1]) + pad + 1, mask.shape[axis])))
    return tuple(box)


#: tubes joined to each other (shared end points): their closeness is anatomy, not a crowding problem
JOINED = {
    "celiac_trunk": {"common_hepatic_artery", "splenic_artery", "aorta"},
    "common_hepatic_artery": {"celiac_trunk", "splenic_artery", "proper_hepatic_artery", "gastroduodenal_artery"},
    "sma": set(),
    "smv_portal": {"splenic_vein"},
    "ivc": set(),
}


def _clearance(anat: Anatomy, tname: str) -> np.ndarray:
    """Per centreline sample of ``tname``: distance to the nearest wall of any other (non-joined) vessel."""
    tube = anat.tubes[tname]
    out = np.full(len(tube.points), np.inf)
    for other in GUARDED:
        if other == tname or other in JOINED.get(tname, ()):
            continue
        o = anat.tubes[other]
        dist, idx = o._tree.query(tube.points)
        out = np.minimum(out, dist - o.radius[idx])
    return out


def _sector_params(
    anat: Anatomy,
    vessel: str,
    tumor_centre: np.ndarray,
    degrees: float,
    length: float,
    reaches_origin: bool,
    keep_off: float,
    clearance_needed: float = 0.0,
    grid: "Grid | None" = None,
):
    """(tube name, s0, s1, phi0, half-angle) of the contact sector of ``vessel`` (inside ``grid``'s field of
    view with room for the vessel and a few voxels: cross-sections at the border cannot be measured)."""
    tube = anat.tubes[VESSEL_TUBES[vessel]]
    lo, hi = 0.0, tube.length
    if grid is not None:
        room = tube.radius + keep_off
        lo_w = grid.origin + room[:, None]
        hi_w = grid.origin + (np.asarray(grid.shape) - 1) * np.asarray(grid.spacing) - room[:, None]
        in_view = np.flatnonzero(np.all((tube.points >= lo_w) & (tube.points <= hi_w), axis=1))
        if len(in_view) == 0:
            raise PlacementError(f"{vessel} is not in the field of view")
        lo, hi = float(tube.arclength[in_view[0]]), float(tube.arclength[in_view[-1]])
    if vessel == "smv":  # keep a contact on one vein segment away from the other
        hi = min(hi, anat.confluence_s - keep_off)
    elif vessel == "portal_vein":
        lo = max(lo, anat.confluence_s + keep_off)
    # closest centreline point to the tumor within the allowed part of the vessel, preferring parts
    # clear of other vessels (whose fat planes would eat the sector)
    elif vessel == "sma":
        # the SMA leaves the aorta: a contact at its origin would lie inside the aorta's fat plane, which
        # cuts the middle out of the sector (no cross-section shows the angle); start where it is clear
        aorta = anat.tubes["aorta"]
        dist, idx = aorta._tree.query(tube.points)
        clear_of_aorta = np.flatnonzero(dist - aorta.radius[idx] - tube.radius >= keep_off)
        if len(clear_of_aorta):
            lo = max(lo, float(tube.arclength[clear_of_aorta[0]]))
    elif vessel == "common_hepatic_artery" and not reaches_origin:
        # a contact that does not reach the celiac trunk or the hepatic bifurcation keeps off both ends
        lo, hi = max(lo, keep_off), min(hi, tube.length - keep_off)
    if hi - lo < 2.0:
        raise PlacementError(f"no room for a contact with {vessel}")
    d = np.linalg.norm(tube.points - tumor_centre, axis=1)
    allowed = (tube.arclength >= lo) & (tube.arclength <= hi)
    clear = allowed & (_clearance(anat, tube.name) >= clearance_needed)
    if clear.any() and not reaches_origin:
        allowed = clear
    s_mid = float(tube.arclength[np.flatnonzero(allowed)[np.argmin(d[allowed])]])
    if reaches_origin:
        s0, s1 = 0.0, min(length, hi)
    else:
        s0 = max(lo, s_mid - length / 2)
        s1 = min(hi, s0 + length)
        s0 = max(lo, s1 - length)
    phi0 = tube.angle_towards(0.5 * (s0 + s1), tumor_centre)
    return tube.name, s0, s1, phi0, np.deg2rad(degrees) / 2.0


@dataclass(frozen=True)
class _Clearances:
    """The distances one case keeps (mm), fixed before anything is painted."""

    vox: float  # largest voxel edge
    scale: float  # anatomy scale
    gap: float  # fat plane between the tumor and every vessel it does not touch
    margin: float  # >= the thickest contact sector (gap + 1.5 voxels, or half a small radius)
    reach_gap: float  # the wider plane a CHA contact keeps from the CHA's ends when it must not reach them
    touched: tuple[str, ...]  # vessels with contact > 0
    touched_tubes: frozenset[str]
    cha_clear: bool  # CHA contact that does not reach the celiac trunk / hepatic bifurcation

    @classmethod
    def of(cls, anat: Anatomy, sc: Scenario, grid: Grid, gap_vox: float) -> "_Clearances":
        vox = float(max(grid.spacing))
        gap = max(gap_vox * vox, 2.5 * anat.scale)
        touched = tuple(v for v, a in sc.contacts.items() if a > 0)
        return cls(
            vox=vox,
            scale=anat.scale,
            gap=gap,
            margin=gap + 2.5 * vox,
            # the tumor keeps this far from the CHA's ends (a thin fat plane like the other vessels' would read
            # as reaching them)
            reach_gap=gap + 2.0 * vox,
            touched=touched,
            touched_tubes=frozenset(VESSEL_TUBES[v] for v in touched),
            cha_clear=sc.contacts.get("common_hepatic_artery", 0.0) > 0 and not sc.cha_reaches_ca_or_bifurcation,
        )

    def reach(self, name: str) -> float:
        """How far around tube ``name`` voxels are queried: a touched vessel needs room for its contact
        sector, the others for the fat plane, organs for nothing."""
        if name in self.touched_tubes:
            return self.margin
        if self.cha_clear and name in CHA_ENDS:
            return self.reach_gap + self.vox
        return self.gap + 2.0 * self.vox if name in GUARDED else self.vox


def _body(anat: Anatomy, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """HU of the body wall, spine, muscles, organs and bowel loops (not segmentation structures)."""
    shape, scale = grid.shape, anat.scale
    ax = grid.axes()
    X, Y = np.meshgrid(ax[0], ax[1], indexing="ij")
    b = anat.body
    ry, rx = 120.0 * b["size"], 165.0 * b["size"]
    cy = b["skin_y"] - ry
    depth = (1.0 - np.sqrt((X / rx) ** 2 + ((Y - cy) / ry) ** 2)) * ry  # ~ mm below the skin (anterior wall)
    plane = np.full(X.shape, -100.0, dtype=np.float32)  # visceral fat
    plane[depth < b["subcut_mm"] + b["rectus_mm"]] = 45.0  # rectus / oblique muscles
    plane[depth < b["subcut_mm"]] = -110.0  # subcutaneous fat
    plane[depth < 1.5 * scale] = 20.0  # skin
    plane[depth < 0] = -1000.0  # air
    tissue = np.ascontiguousarray(np.broadcast_to(plane[:, :, None], shape), dtype=np.float32)
    for centre in b["kidney_centres"]:
        _paint(tissue, _ellipsoid(grid, centre, b["kidney_radii"], b["rotation"]), 160.0)
    _paint(tissue, _ellipsoid(grid, b["liver_centre"], b["liver_radii"], b["rotation"]), 110.0)
    for centre in b["psoas"]:
        _paint(tissue, _ellipsoid(grid, centre, (*b["psoas_radii"], 400.0), b["rotation"]), 50.0)
    sc_, sr = b["spine_centre"], b["spine_radii"]
    _paint(tissue, _ellipsoid(grid, sc_, (*sr, 400.0), b["rotation"]), 650.0)
    _paint(tissue, _ellipsoid(grid, sc_, (sr[0] - 3.0 * scale, sr[1] - 3.0 * scale, 400.0), b["rotation"]), 230.0)
    # a few small-bowel loops in front of the pancreas (fluid-filled, enhancing wall)
    for _ in range(4):
        c = np.array([rng.uniform(-60, 50), rng.uniform(35, 60), rng.uniform(-70, 50)]) * scale
        r = rng.uniform(9, 14) * scale
        _paint(tissue, _ellipsoid(grid, c, (r, r, 1.6 * r)), 45.0, only=lambda v: v > -500)
        _paint(
            tissue,
            _ellipsoid(grid, c, (r - 2.5 * scale, r - 2.5 * scale, 1.6 * r - 2.5 * scale)),
            15.0,
            only=lambda v: v > -500,
        )
    return tissue


def _paint_duodenum(tissue: np.ndarray, near: dict[str, Near | None], scale: float) -> None:
    duo = near["duodenum"]
    if duo is not None:
        _scatter(tissue, duo, duo.dist < duo.radius, 55.0)
        _scatter(tissue, duo, duo.dist < duo.radius - 2.5 * scale, 12.0)


def _paint_pancreas_and_ducts(labels: np.ndarray, near: dict[str, Near | None]) -> None:
    pan = near["pancreas"]
    if pan is not None:
        _scatter(labels, pan, pan.dist < pan.radius, INDEX["pancreas"])
    flat_labels = labels.reshape(-1)
    for duct in ("pancreatic_duct", "bile_duct"):
        nd = near[duct]
        if nd is not None:
            idx = nd.flat[nd.dist < nd.radius]
            if duct == "pancreatic_duct":
                idx = idx[flat_labels[idx] == INDEX["pancreas"]]
            flat_labels[idx] = INDEX[duct]


def _tumor_site(anat: Anatomy, sc: Scenario, c: _Clearances, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(centre, radius) of the tumor's main blob: at its pancreas site, pulled towards the vessels it
    involves so the tumor stays one mass."""
    site_idx, (r_lo, r_hi) = TUMOR_SITES[sc.location]
    ptube = anat.tubes["pancreas"]
    site = ptube.control[site_idx] + rng.normal(0, 2.0, 3) * c.scale
    if c.touched:
        nearest = []
        for vessel in c.touched:
            tube = anat.tubes[VESSEL_TUBES[vessel]]
            nearest.append(tube.points[np.argmin(np.linalg.norm(tube.points - site, axis=1))])
        site = site + SITE_PULL * (np.mean(nearest, axis=0) - site)
    big = any(a > 180 for a in sc.contacts.values()) or not sc.reconstructable
    radius = max(rng.uniform(r_lo, r_hi) * c.scale * (1.15 if big else 1.0), 2.5 * c.vox)
    return site, radius


def _grow_tumor(
    anat: Anatomy,
    sc: Scenario,
    grid: Grid,
    near: dict[str, Near | None],
    c: _Clearances,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, dict[str, dict]]:
    """(tumor, sector mask, sectors): an irregular blob at its site plus lobes reaching the contacted vessels,
    and for each contacted vessel the annular sector of its angle that the tumor fills up to the wall."""
    site, radius = _tumor_site(anat, sc, c, rng)
    tumor = np.zeros(grid.shape, dtype=bool)
    sector_mask = np.zeros(grid.shape, dtype=bool)
    tumor_flat, sector_flat = tumor.reshape(-1), sector_mask.reshape(-1)
    for _ in range(4):  # irregular: union of offset ellipsoids
        off = rng.normal(0, 0.35 * radius, 3)
        radii = radius * rng.uniform(0.55, 0.85, 3)
        q, _r = np.linalg.qr(rng.standard_normal((3, 3)))
        _union(tumor, _ellipsoid(grid, site + off, radii, q))
    _union(tumor, _ellipsoid(grid, site, (0.6 * radius,) * 3))
    sectors = {}
    for vessel in c.touched:
        degrees = sc.contacts[vessel]
        length = (rng.uniform(12.0, 22.0) if sc.reconstructable else rng.uniform(26.0, 34.0)) * c.scale
        reaches = vessel == "common_hepatic_artery" and sc.cha_reaches_ca_or_bifurcation
        if reaches:
            length = anat.tubes["common_hepatic_artery"].length * rng.uniform(0.55, 0.8)
        r_guess = float(anat.tubes[VESSEL_TUBES[vessel]].radius.max())
        keep_off = c.gap + 2.0 * c.vox
        if vessel == "common_hepatic_artery":  # off the ends by the branches' radius and the wider plane
            keep_off = c.reach_gap
        tname, s0, s1, phi0, half = _sector_params(
            anat,
            vessel,
            site,
            degrees,
            length,
            reaches,
            keep_off=keep_off,
            clearance_needed=r_guess + 2.0 * c.gap + 2.0 * c.vox,
            grid=grid,
        )
        tube = anat.tubes[tname]
        nv = near[tname]
        s_mid = 0.5 * (s0 + s1)
        r_v = float(tube.radius[tube.index_at(s_mid)])
        thick = min(max(0.5 * r_v, c.gap + 1.5 * c.vox), c.margin - 0.5 * c.vox)
        sectors[vessel] = dict(tube=tname, s0=s0, s1=s1, phi0=phi0, half=half, thick=thick, r_v=r_v)
        # lobe from the blob towards the contact: a chain of balls ending just outside the sector
        target = tube.point_at(s_mid, phi0, r_v + thick * 0.6)
        lobe_r = max(0.45 * radius, thick)
        for t in np.linspace(0.0, 1.0, 6):
            _union(tumor, _ellipsoid(grid, site + t * (target - site), (lobe_r,) * 3))
        if nv is None:
            continue
        # the sector itself, and lobe balls along it so long contacts stay attached
        in_seg = (nv.s >= s0) & (nv.s <= s1)
        in_ang = np.abs(wrap_angle(nv.angle - phi0)) <= half + 1e-9
        shell = (nv.dist >= nv.radius) & (nv.dist <= nv.radius + thick)
        idx = nv.flat[in_seg & in_ang & shell]
        sector_flat[idx] = True
        tumor_flat[idx] = True
        for s in np.linspace(s0, s1, 5):
            _union(tumor, _ellipsoid(grid, tube.point_at(s, phi0, r_v + thick + 0.5 * lobe_r), (lobe_r,) * 3))
    return tumor, sector_mask, sectors


def _carve_fat_planes(
    tumor: np.ndarray,
    sector_mask: np.ndarray,
    sectors: dict[str, dict],
    near: dict[str, Near | None],
    c: _Clearances,
) -> None:
    """Carve the fat plane around every vessel out of the tumor, except inside the contact sectors."""
    tumor_flat, sector_flat = tumor.reshape(-1), sector_mask.reshape(-1)
    for tname in GUARDED:
        nv = near[tname]
        if nv is None:
            continue
        # contact sectors of other vessels keep a thinner plane here (crowded anatomy would eat them)
        in_sector = sector_flat[nv.flat]
        carve = np.where(in_sector, nv.dist < nv.radius + max(0.5 * c.gap, 1.01 * c.vox), nv.dist < nv.radius + c.gap)
        for _vessel, p in sectors.items():
            if p["tube"] != tname:
                continue
            in_seg = (nv.s >= p["s0"]) & (nv.s <= p["s1"])
            in_ang = np.abs(wrap_angle(nv.angle - p["phi0"])) <= p["half"] + 1e-9
            carve &= ~(in_seg & in_ang & (nv.dist >= nv.radius))
        tumor_flat[nv.flat[carve]] = False
    if c.cha_clear:
        for tname in CHA_ENDS:
            nv = near[tname]
            if nv is not None:
                tumor_flat[nv.flat[nv.dist < nv.radius + c.reach_gap]] = False


def _drop_crumbs(tumor: np.ndarray, sector_mask: np.ndarray) -> None:
    """Drop the pieces carving cut off the tumor, but never a piece that carries a contact sector."""
    tbox = _tumor_box(tumor, pad=2)
    if tbox is None:
        raise PlacementError("tumor vanished (outside the field of view or carved away)")
    sub = tumor[tbox]
    lab, n = ndimage.label(sub)
    if n > 1:
        sizes = ndimage.sum(sub, lab, index=np.arange(1, n + 1))
        keep = ({1 + int(np.argmax(sizes))} | set(np.unique(lab[sector_mask[tbox] & sub]).tolist())) - {0}
        tumor[tbox] = np.isin(lab, sorted(keep))


#: tubes painted as vessels, in painting order (later ones win where they overlap)
VESSEL_PAINT_ORDER = (
    "aorta",
    "ivc",
    "splenic_vein",
    "splenic_artery",
    "celiac_trunk",
    "common_hepatic_artery",
    "proper_hepatic_artery",
    "gastroduodenal_artery",
    "sma",
    "smv_portal",
)


def _paint_vessels(
    labels: np.ndarray, near: dict[str, Near | None], sectors: dict[str, dict], anat: Anatomy, sc: Scenario
) -> None:
    """Vessels over everything; an irregular vein keeps a tumor indentation."""
    for tname in VESSEL_PAINT_ORDER:
        nv = near[tname]
        if nv is None:
            continue
        inside = nv.dist < nv.radius
        if tname == "smv_portal":
            is_smv = nv.s < anat.confluence_s
            _scatter(labels, nv, inside & is_smv, INDEX["smv"])
            _scatter(labels, nv, inside & ~is_smv, INDEX["portal_vein"])
        else:
            _scatter(labels, nv, inside, INDEX[tname])
        for vessel, p in sectors.items():
            if p["tube"] != tname or vessel not in ("smv", "portal_vein") or not sc.vein_contour_irregular:
                continue
            depth = DENT_DEPTH
            in_seg = (nv.s >= p["s0"]) & (nv.s <= p["s1"])
            in_ang = np.abs(wrap_angle(nv.angle - p["phi0"])) <= p["half"]
            # indentation at full depth over the middle of the segment, tapering to the ends
            taper = np.minimum(
                DENT_PLATEAU * np.sin(np.pi * np.clip((nv.s - p["s0"]) / max(p["s1"] - p["s0"], 1e-6), 0, 1)), 1.0
            )
            dent = inside & in_seg & in_ang & (nv.dist > nv.radius * (1.0 - depth * taper))
            _scatter(labels, nv, dent, INDEX["tumor"])


def _check_voxels(
    labels: np.ndarray,
    sc: Scenario,
    near: dict[str, Near | None],
    sectors: dict[str, dict],
    vox: float,
    min_visible_fraction: float,
) -> None:
    """Raise :class:`PlacementError` unless the voxels show the scenario's contacts (and only those)."""
    # all contact checks happen near the tumor (vessels farther away cannot be adjacent to it)
    tbox = _tumor_box(labels == INDEX["tumor"], pad=2)
    if tbox is None:
        raise PlacementError("tumor vanished (outside the field of view or carved away)")
    _separate_untouched(labels[tbox], sc)
    _check_contacts(labels[tbox], sc)
    if min_visible_fraction > 0:
        _check_sector_coverage(labels, near, sectors, vox, min_fraction=min_visible_fraction)


def _structure_hu(
    sc: Scenario, rng: np.random.Generator, hu_jitter: bool, hu_shift: dict[str, float] | None
) -> tuple[dict[str, float], float]:
    """(mean HU of every labelled structure, the pancreas HU before any shift): portal-venous phase,
    jittered per case, shifted per site."""
    j = (lambda sd: rng.normal(0.0, sd)) if hu_jitter else (lambda sd: 0.0)
    pancreas_hu = 100.0 + j(6)
    hu = {
        "pancreas": pancreas_hu,
        "tumor": pancreas_hu - (12.0 if sc.iso_attenuating else 42.0) + j(5),
        "aorta": 185.0 + j(12),
        "ivc": 130.0 + j(10),
        "smv": 175.0 + j(10),
        "splenic_vein": 170.0 + j(10),
        "pancreatic_duct": 12.0,
        "bile_duct": 10.0,
    }
    hu["portal_vein"] = hu["smv"] + 5.0
    for a in ARTERIES[1:]:
        hu[a] = hu["aorta"] - 5.0
    groups = {"arteries": ("aorta", *ARTERIES[1:]), "veins": ("smv", "portal_vein", "splenic_vein", "ivc")}
    for key, shift in (hu_shift or {}).items():
        for name in groups.get(key, (key,)):
            hu[name] += shift
    return hu, pancreas_hu


def _ct_image(
    labels: np.ndarray,
    tissue: np.ndarray,
    hu: dict[str, float],
    grid: Grid,
    rng: np.random.Generator,
    noise_sd_hu: tuple[float, float],
) -> tuple[np.ndarray, float]:
    """(image float32 HU, noise SD): structure HU over the tissue, soft-tissue texture, correlated noise."""
    lut = np.zeros(256, dtype=np.float32)
    for name, value in hu.items():
        lut[INDEX[name]] = value
    image = np.where(labels > 0, lut[labels], tissue)
    soft = (image > -300) & (image < 300)
    image += np.where(soft, 6.0 * _texture(rng, grid), 0.0).astype(np.float32)
    # noise is added before the blur, so it comes out spatially correlated like CT noise
    sigma = [0.8 / s for s in grid.spacing]
    noise_sd = rng.uniform(*noise_sd_hu)
    noise = rng.standard_normal(grid.shape, dtype=np.float32)
    image += noise * np.float32(noise_sd / _blurred_noise_factor(sigma))
    image = ndimage.gaussian_filter(image, sigma=sigma, mode="nearest").astype(np.float32)
    return image, noise_sd


def render(
    anat: Anatomy,
    sc: Scenario,
    grid: Grid,
    rng: np.random.Generator,
    hu_jitter: bool = True,
    gap_vox: float = 2.0,
    reject_encircling: bool = True,
    min_visible_fraction: float = 0.7,
    hu_shift: dict[str, float] | None = None,
    noise_sd_hu: tuple[float, float] = (10.0, 18.0),
):
    """(labels uint8 canonical indices, image float32 HU, details dict) for one case on ``grid``.

    ``gap_vox``: the fat plane kept between the tumor and every vessel it does not touch, in voxels
    (2 is wider than a 26-connected one-voxel dilation, so measured contact stays 0 there).
    ``reject_encircling``: refuse tumors that wrap an untouched vessel behind that fat plane.
    ``min_visible_fraction``: refuse contacts whose voxels show less of the chosen angle (0: no check).
    ``hu_shift``: HU added per structure name, or to every artery (``"arteries"``) / vein (``"veins"``): another
    contrast timing. ``noise_sd_hu``: range of the image noise SD (another scanner).
    Raises :class:`PlacementError` when the voxels cannot show the scenario (the caller redraws).

    The steps (each a helper, in this order, which is also the order ``rng`` is drawn from): body tissue,
    the voxels near every tube, duodenum, pancreas and ducts, the tumor with its contact sectors, fat
    planes carved out of it, crumbs dropped, vessels painted over everything, the voxels checked
    against the scenario, intensities.
    """
    c = _Clearances.of(anat, sc, grid, gap_vox)
    labels = np.zeros(grid.shape, dtype=np.uint8)
    tissue = _body(anat, grid, rng)
    near = {name: _near(tube, grid, c.reach(name)) for name, tube in anat.tubes.items()}
    _paint_duodenum(tissue, near, c.scale)
    _paint_pancreas_and_ducts(labels, near)

    tumor, sector_mask, sectors = _grow_tumor(anat, sc, grid, near, c, rng)
    _carve_fat_planes(tumor, sector_mask, sectors, near, c)
    if reject_encircling:
        _reject_encircling(near, tumor.reshape(-1), set(c.touched_tubes), c.gap, c.vox)
    _drop_crumbs(tumor, sector_mask)
    labels[tumor] = INDEX["tumor"]

    _paint_vessels(labels, near, sectors, anat, sc)
    _check_voxels(labels, sc, near, sectors, c.vox, min_visible_fraction)

    hu, pancreas_hu = _structure_hu(sc, rng, hu_jitter, hu_shift)
    image, noise_sd = _ct_image(labels, tissue, hu, grid, rng, noise_sd_hu)
    details = {
        "tumor_voxels": int((labels == INDEX["tumor"]).sum()),
        "noise_sd_hu": float(noise_sd),
        "tumor_hu": hu["tumor"],
        "pancreas_hu": pancreas_hu,
        "gap_mm": c.gap,
        "sectors": {
            k: {kk: (float(vv) if not isinstance(vv, str) else vv) for kk, vv in v.items()} for k, v in sectors.items()
        },
    }
    return labels, image, details
