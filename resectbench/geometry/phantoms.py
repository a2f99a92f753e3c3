"""Tube-and-tumor phantoms whose contact angle is exact by construction.

A vessel is a tube of radius ``radius_mm`` around a centerline that is straight (along the slice
axis z), oblique (tilted from z by a given angle) or curved (an arc of a circle in the x-z plane).
The tumor is an annular sector around that same centerline: radial distance in
``[radius + gap, radius + gap + thickness]``, angle within ``[start, start + angle]`` of the local
cross-section frame, and a stretch of ``length_mm`` along the centerline. Its circumferential
contact is therefore exactly ``angle`` degrees (0 when ``gap_mm > 0``), in every plane orthogonal
to the centerline, independent of the voxel grid. Used by tests and benchmarks/geometry.py; it is
deliberately independent of the synthetic-cohort generator.

Label maps paint the tumor-vessel interface in three ways (``convention``), all with the same true angle:

- ``disjoint``: tumor and vessel labels meet at the vessel wall (the tumor stops at ``radius_mm``);
- ``overlapping``: the tumor label covers ``overlap_mm`` of the vessel wall inside its sector;
- ``engulfing``: the tumor is painted over the encased vessel's lumen along the whole contact
  stretch, so the vessel label is interrupted there (what most real label maps do).

``to_lps`` gives the same phantom as an array stored in LPS order (x and y reversed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ORIENTATIONS = ("straight", "oblique30", "oblique60", "curved")
CONVENTIONS = ("disjoint", "overlapping", "engulfing")
VESSEL_LABEL = 1
TUMOR_LABEL = 2


@dataclass
class TubePhantom:
    mask: np.ndarray  # uint8: 0 background, 1 vessel, 2 tumor
    spacing: tuple[float, float, float]
    true_angle_deg: float  # exact circumferential contact (0 if the tumor does not touch)
    true_length_mm: float  # length of the contact along the centerline (0 if no contact)
    true_gap_mm: float  # tumor-vessel distance (0 when touching)
    orientation: str
    radius_mm: float

    @property
    def label_map(self) -> dict[str, int]:
        return {"background": 0, "vessel": VESSEL_LABEL, "tumor": TUMOR_LABEL}


def _local_coordinates(
    points: np.ndarray, orientation: str, center: np.ndarray, azimuth: float, curve_radius_mm: float
):
    """(arc length s, radial distance rho, angle phi) of points (N,3 mm) w.r.t. the centerline."""
    q = points - center
    if orientation == "curved":
        # arc of radius R in the plane spanned by e1=(1,0,0), e3=(0,0,1), circle centre at center - R*e1,
        # so the arc passes through `center` heading along +z there.
        o = np.array([-curve_radius_mm, 0.0, 0.0])
        w0 = q - o
        psi = np.arctan2(w0[:, 2], w0[:, 0])
        e_r = np.stack([np.cos(psi), np.zeros_like(psi), np.sin(psi)], axis=1)
        c = o + curve_radius_mm * e_r
        w = q - c
        a = np.einsum("ij,ij->i", w, e_r)
        b = w[:, 1]
        return curve_radius_mm * psi, np.hypot(a, b), np.arctan2(b, a) + azimuth
    tilt = {"straight": 0.0, "oblique30": 30.0, "oblique60": 60.0}[orientation]
    t = np.deg2rad(tilt)
    d = np.array([np.sin(t), 0.0, np.cos(t)])  # tilted from the slice axis z towards x
    u = np.array([np.cos(t), 0.0, -np.sin(t)])  # orthonormal frame of the cross-section
    v = np.array([0.0, 1.0, 0.0])
    s = q @ d
    w = q - np.outer(s, d)
    a, b = w @ u, w @ v
    return s, np.hypot(a, b), np.arctan2(b, a) + azimuth


def tube_phantom(
    angle_deg: float,
    *,
    orientation: str = "straight",
    spacing=(1.0, 1.0, 1.0),
    size_mm: float = 48.0,
    radius_mm: float = 4.0,
    thickness_mm: float = 6.0,
    length_mm: float = 16.0,
    start_deg: float = 0.0,
    gap_mm: float = 0.0,
    curve_radius_mm: float = 40.0,
    azimuth_deg: float = 0.0,
    tumor_offset_mm: float = 0.0,
    indent_mm: float = 0.0,
    convention: str = "disjoint",
    overlap_mm: float = 1.0,
) -> TubePhantom:
    """A cubic field of view of ``size_mm`` with one vessel crossing it and one tumor sector.

    ``tumor_offset_mm`` moves the tumor along the centerline (towards the field of view's edge);
    ``indent_mm`` lets the tumor push into the vessel (a deformed, concave vein contour; the angle is
    then no longer exact and ``true_angle_deg`` is the sector angle). ``convention`` says how the
    labels meet (module docstring); ``overlap_mm`` is how much wall an ``overlapping`` tumor covers.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if not 0.0 <= angle_deg <= 360.0:
        raise ValueError(f"angle_deg must be within 0-360, got {angle_deg}")
    spacing = tuple(float(s) for s in spacing)
    shape = tuple(int(round(size_mm / s)) for s in spacing)
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij"), axis=-1)
    points = grid.reshape(-1, 3)
    center = (np.array(shape) - 1) * np.array(spacing) / 2.0
    s, rho, phi = _local_coordinates(points, orientation, center, np.deg2rad(azimuth_deg), curve_radius_mm)
    s = s - tumor_offset_mm
    rel = np.mod(phi - np.deg2rad(start_deg), 2 * np.pi)
    in_sector = rel <= np.deg2rad(angle_deg) if angle_deg < 360.0 else np.ones_like(rel, dtype=bool)
    along = np.abs(s) <= length_mm / 2.0
    touching = angle_deg > 0 and gap_mm <= 0
    if touching and convention == "overlapping":
        indent_mm = max(indent_mm, overlap_mm)
    inner = radius_mm - indent_mm if gap_mm <= 0 else radius_mm + gap_mm
    tumor = (rho > inner) & (rho <= radius_mm + gap_mm + thickness_mm) & in_sector & along
    if touching and convention == "engulfing":
        tumor |= (rho <= radius_mm) & along
    vessel = (rho <= radius_mm) & ~tumor
    if angle_deg == 0.0:  # a tumor that does not touch: a 90 degree sector held off by the gap
        if gap_mm <= 0:
            raise ValueError("angle_deg=0 needs gap_mm > 0 (a tumor that does not touch the vessel)")
        tumor = (rho > radius_mm + gap_mm) & (rho <= radius_mm + gap_mm + thickness_mm) & (rel <= np.pi / 2) & along
    mask = np.zeros(len(points), dtype=np.uint8)
    mask[vessel] = VESSEL_LABEL
    mask[tumor] = TUMOR_LABEL
    return TubePhantom(
        mask=mask.reshape(shape),
        spacing=spacing,
        true_angle_deg=float(angle_deg) if touching else 0.0,
        true_length_mm=float(length_mm) if touching else 0.0,
        true_gap_mm=float(max(gap_mm, 0.0)),
        orientation=orientation,
        radius_mm=float(radius_mm),
    )


def to_lps(mask: np.ndarray) -> np.ndarray:
    """The same volume stored in LPS voxel order (x and y reversed), as many DICOM-derived files are."""
    return np.ascontiguousarray(mask[::-1, ::-1, :])


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((points - a) @ ab) / float(ab @ ab), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


# (structure, start mm, end mm, radius mm) in a 160 mm field of view; a rough abdominal layout
_ANATOMY = (
    ("aorta", (95, 112, 0), (95, 112, 160), 11.0),
    ("ivc", (60, 112, 0), (60, 112, 160), 10.0),
    ("celiac_trunk", (95, 101, 125), (95, 82, 132), 3.5),
    ("common_hepatic_artery", (95, 82, 132), (55, 78, 134), 2.5),
    ("splenic_artery", (95, 82, 132), (140, 86, 130), 2.5),
    ("sma", (95, 101, 110), (95, 80, 95), 3.5),
    ("sma", (95, 80, 95), (92, 74, 20), 3.5),
    ("smv", (80, 74, 20), (80, 76, 100), 5.5),
    ("portal_vein", (80, 76, 100), (55, 80, 135), 7.5),
    ("splenic_vein", (80, 76, 100), (140, 88, 105), 4.5),
)


def abdomen_phantom(
    spacing=(1.0, 1.0, 1.0),
    size_mm: float = 160.0,
    tumor_radius_mm: float = 16.0,
    label_map: dict[str, int] | None = None,
) -> tuple[np.ndarray, tuple]:
    """A 160 mm abdomen-like label volume (canonical labels) with a tumor wrapping SMA and SMV.

    Used to time ``measure_case`` on a realistic number of vessels (benchmarks/geometry.py); the
    angles are not known exactly (use :func:`tube_phantom` for accuracy).
    """
    from ..vocabulary import STRUCTURE_INDEX as INDEX

    label_map = dict(INDEX if label_map is None else label_map)
    spacing = tuple(float(s) for s in spacing)
    shape = tuple(int(round(size_mm / s)) for s in spacing)
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij"), axis=-1)
    points = grid.reshape(-1, 3)
    mask = np.zeros(len(points), dtype=np.uint8)
    centre = np.array([88.0, 78.0, 70.0])
    tumor = np.linalg.norm((points - centre) / np.array([1.0, 0.8, 1.3]), axis=1) <= tumor_radius_mm
    mask[tumor] = label_map["tumor"]
    for name, a, b, r in _ANATOMY:
        mask[_segment_distance(points, np.array(a, float), np.array(b, float)) <= r] = label_map[name]
    return mask.reshape(shape), spacing
