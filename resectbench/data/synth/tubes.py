"""Curved tubes in world millimetres: a centreline with a radius profile and a smooth local frame.

A vessel (or the pancreas) is a :class:`Tube`. :meth:`Tube.query` gives, for world points near it,
the distance to the centreline, the arc length of the closest centreline point and the angle
around the centreline in the tube's own orthonormal frame, which is what lets the generator wrap a
tumor around a vessel by an exact angle whatever the vessel's course.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial import cKDTree


def _parallel_transport(tangents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation-minimising normals/binormals along a polyline (no twist, unlike Frenet frames)."""
    t0 = tangents[0]
    helper = np.array([0.0, 1.0, 0.0]) if abs(t0[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    n = np.cross(t0, helper)
    n /= np.linalg.norm(n)
    normals = np.empty_like(tangents)
    for i, t in enumerate(tangents):
        n = n - np.dot(n, t) * t
        n /= np.linalg.norm(n)
        normals[i] = n
    return normals, np.cross(tangents, normals)


@dataclass
class Tube:
    """A tube through ``control`` points (mm, RAS) with radius ``radius(s)`` interpolated from ``radii``.

    The centreline is a cubic spline through the control points, resampled every ``step`` mm.
    ``radii`` gives one radius per control point (linear in arc length between them).
    """

    name: str
    control: np.ndarray
    radii: np.ndarray
    step: float = 0.3
    points: np.ndarray = field(init=False, repr=False)
    arclength: np.ndarray = field(init=False, repr=False)
    radius: np.ndarray = field(init=False, repr=False)
    tangent: np.ndarray = field(init=False, repr=False)
    normal: np.ndarray = field(init=False, repr=False)
    binormal: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        control = np.asarray(self.control, dtype=float)
        radii = np.broadcast_to(np.asarray(self.radii, dtype=float), (len(control),))
        chord = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(control, axis=0), axis=1))]
        spline = CubicSpline(chord, control, bc_type="natural")
        fine = np.linspace(0.0, chord[-1], max(int(chord[-1] / (self.step / 4)), 8))
        pts = spline(fine)
        seg = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
        n = max(int(seg[-1] / self.step), 4)
        s = np.linspace(0.0, seg[-1], n)
        self.points = np.stack([np.interp(s, seg, pts[:, k]) for k in range(3)], axis=1)
        self.arclength = s
        self.radius = np.interp(np.interp(s, seg, fine), chord, radii)
        tan = np.gradient(self.points, axis=0)
        self.tangent = tan / np.linalg.norm(tan, axis=1, keepdims=True)
        self.normal, self.binormal = _parallel_transport(self.tangent)
        self._tree = cKDTree(self.points)

    @property
    def length(self) -> float:
        return float(self.arclength[-1])

    def bounds(self, margin: float) -> tuple[np.ndarray, np.ndarray]:
        r = float(self.radius.max()) + margin
        return self.points.min(axis=0) - r, self.points.max(axis=0) + r

    def index_at(self, s: float) -> int:
        return int(np.clip(np.searchsorted(self.arclength, s), 0, len(self.arclength) - 1))

    def query(self, xyz: np.ndarray, max_distance: float | None = None):
        """For points (N, 3): distance to the centreline, arc length, local radius and angle (radians).

        The angle is measured around the tangent from the local normal towards the binormal. Points
        farther than ``max_distance`` get distance ``inf``.
        """
        ub = np.inf if max_distance is None else max_distance
        dist, idx = self._tree.query(xyz, distance_upper_bound=ub)
        ok = np.isfinite(dist)
        idx = np.where(ok, idx, 0)
        d = xyz - self.points[idx]
        angle = np.arctan2(np.einsum("ij,ij->i", d, self.binormal[idx]), np.einsum("ij,ij->i", d, self.normal[idx]))
        return dist, self.arclength[idx], self.radius[idx], angle

    def angle_towards(self, s: float, target: np.ndarray) -> float:
        """Angle (radians, this tube's frame at arc length ``s``) of the direction towards ``target``."""
        i = self.index_at(s)
        d = np.asarray(target, dtype=float) - self.points[i]
        return float(np.arctan2(np.dot(d, self.binormal[i]), np.dot(d, self.normal[i])))

    def point_at(self, s: float, angle: float = 0.0, offset: float = 0.0) -> np.ndarray:
        """World point at arc length ``s``, ``offset`` mm from the centreline in direction ``angle``."""
        i = self.index_at(s)
        return self.points[i] + offset * (np.cos(angle) * self.normal[i] + np.sin(angle) * self.binormal[i])


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Angles folded into (-pi, pi]."""
    return (a + np.pi) % (2 * np.pi) - np.pi
