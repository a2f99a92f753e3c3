"""One patient's peri-pancreatic anatomy in world millimetres (RAS+: x to the patient's right,
y anterior, z cranial), before any voxel grid exists.

The layout follows shared NCCN.md: aorta left of midline in front of the spine, IVC to its right;
celiac trunk leaving the aorta ~15 mm above the SMA, splitting into the common hepatic artery
(to the right, continuing as the proper hepatic artery after the gastroduodenal artery) and the
splenic artery (to the left); the SMA leaving at ~50 degrees caudally then running down in front
of the aorta; the SMV to the right of the SMA, joining the splenic vein behind the pancreatic neck
to form the portal vein, which runs up and right to the liver hilum; pancreas head/uncinate right
of the SMV (uncinate tucked behind it), neck in front of the SMV/PV, body/tail to the left over the
splenic vein. Positions are drawn for a 160 mm field of view and multiplied by ``scale`` for smaller
ones; per-case jitter, a small rigid rotation and radius variation make every patient different and
every vessel curved and oblique to the voxel axes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .tubes import Tube

#: real-world vessel radii (mm): aorta ~22 mm diameter, PV 15.5, SMV 9-12, SMA 6-8, CA ~7, CHA 4.3-5.1, IVC ~20
RADII_MM = {
    "aorta": 11.0,
    "ivc": 10.0,
    "celiac_trunk": 3.5,
    "common_hepatic_artery": 2.4,
    "proper_hepatic_artery": 2.0,
    "gastroduodenal_artery": 1.6,
    "splenic_artery": 2.6,
    "sma": 3.5,
    "smv": 5.3,
    "portal_vein": 7.7,
    "splenic_vein": 4.3,
    "pancreatic_duct": 1.2,
    "bile_duct": 3.0,
}

#: centrelines for a 160 mm field of view (x right, y anterior, z cranial); jittered per case
LAYOUT = {
    "aorta": [(-8, -32, 85), (-8, -31, 40), (-7, -31, 0), (-6, -32, -40), (-5, -33, -85)],
    "ivc": [(24, -26, 85), (25, -27, 40), (25, -28, 0), (24, -29, -40), (23, -30, -85)],
    "celiac_trunk": [(-8, -21, 30), (-8, -13, 34), (-7, -6, 37)],
    "common_hepatic_artery": [(-7, -6, 37), (5, -4, 37), (18, -1, 35), (28, 1, 33)],
    "proper_hepatic_artery": [(28, 1, 33), (38, 1, 42), (48, 0, 55), (55, -1, 70)],
    "gastroduodenal_artery": [(28, 1, 33), (31, 8, 22), (32, 15, 8)],
    "splenic_artery": [(-7, -6, 37), (-25, -9, 36), (-45, -7, 33), (-65, -12, 30), (-85, -18, 28)],
    "sma": [(-8, -21, 15), (-7, -12, 7), (-5, -6, -6), (-4, -4, -30), (-3, -3, -60), (-2, -2, -85)],
    # SMV runs up to the confluence (z ~ 6); the portal vein continues the same tube to the liver hilum
    "smv_portal": [
        (11, 3, -85),
        (11, 4, -50),
        (10, 5, -20),
        (9, 5, 6),
        (16, 3, 25),
        (30, 0, 42),
        (42, -2, 55),
        (50, -4, 70),
    ],
    "splenic_vein": [(9, 5, 6), (-4, 3, 9), (-20, 1, 12), (-40, -2, 15), (-60, -6, 17), (-85, -12, 19)],
    "pancreas": [
        (40, 6, -32),
        (30, 8, -12),
        (16, 16, 2),
        (0, 16, 8),
        (-20, 12, 12),
        (-45, 6, 16),
        (-70, -2, 18),
        (-88, -8, 19),
    ],
    "pancreatic_duct": [(30, 8, -14), (16, 16, 3), (0, 16, 9), (-20, 12, 13), (-45, 6, 16), (-70, -2, 18)],
    "bile_duct": [(34, 6, 60), (36, 3, 30), (35, 2, 5), (33, 3, -20)],
    "duodenum": [(20, 30, 38), (44, 18, 18), (50, 4, -8), (44, -4, -38), (20, -6, -52), (-8, -8, -50), (-25, 0, -42)],
}
#: pancreas radius per control point (mm): head, head, neck, body, body, body, tail, tail
PANCREAS_RADII = (15.0, 16.0, 9.0, 10.0, 10.0, 9.5, 8.5, 7.0)
#: where the SMV stops and the portal vein starts, as a control-point index of "smv_portal"
CONFLUENCE_POINT = 3
#: where a tumor of each location sits: a pancreas control point (index) and its typical radius (mm)
TUMOR_SITES = {"head": (1, (11.0, 17.0)), "body": (4, (9.0, 14.0)), "tail": (5, (8.0, 12.0))}


@dataclass
class Anatomy:
    """Tubes and organ parameters of one phantom patient, all in world mm."""

    scale: float
    tubes: dict[str, Tube]
    confluence_s: float  # arc length on "smv_portal" where the SMV becomes the portal vein
    centre: np.ndarray  # world point at the centre of the field of view
    body: dict = field(default_factory=dict)  # skin/fat/muscle/spine/liver/kidney parameters
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    ax, ay, az = np.deg2rad(rng.uniform(-max_deg, max_deg, size=3))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def sample_anatomy(
    rng: np.random.Generator,
    scale: float,
    min_radius_mm: float,
    bmi: float = 26.0,
    dilated_ducts: bool = False,
    step: float = 0.3,
) -> Anatomy:
    """Draw one patient. ``min_radius_mm`` keeps small vessels several voxels wide on coarse grids;
    ``bmi`` sets the subcutaneous and visceral fat; ``dilated_ducts`` widens the pancreatic and bile
    ducts (a head tumor obstructing them); ``step`` is the centreline sampling (mm), about a third
    of a voxel."""
    rot = _rotation(rng, 6.0)
    size = rng.uniform(0.92, 1.08)  # patient size
    pts = {k: np.asarray(v, dtype=float) for k, v in LAYOUT.items()}
    # shared landmark jitter keeps joints joined: every tube moves with the landmark it starts from
    shift_ca = rng.normal(0, 2.0, 3)
    shift_sma = rng.normal(0, 2.0, 3)
    shift_conf = rng.normal(0, 2.0, 3)
    for name, p in pts.items():
        jitter = rng.normal(0, 2.5, p.shape)
        jitter[:, 2] *= 0.6
        if name in ("aorta", "ivc"):
            jitter[:, :2] *= 0.5
        if name == "celiac_trunk":
            jitter[0] = 0.0
            jitter += shift_ca
        if name in ("common_hepatic_artery", "splenic_artery"):
            jitter[0] = 0.0
        if name == "sma":
            jitter[0] = 0.0
            jitter += shift_sma
        if name in ("smv_portal",):
            jitter[CONFLUENCE_POINT] = shift_conf
        if name == "splenic_vein":
            jitter[0] = shift_conf
        pts[name] = p + jitter
    # joints: branches start exactly where their parent is
    pts["common_hepatic_artery"][0] = pts["celiac_trunk"][-1]
    pts["splenic_artery"][0] = pts["celiac_trunk"][-1]
    pts["proper_hepatic_artery"][0] = pts["common_hepatic_artery"][-1]
    pts["gastroduodenal_artery"][0] = pts["common_hepatic_artery"][-1]
    pts["splenic_vein"][0] = pts["smv_portal"][CONFLUENCE_POINT]
    centre = np.array([2.0, -4.0, 2.0]) + rng.normal(0, 3.0, 3)

    def world(p: np.ndarray) -> np.ndarray:
        return ((p - centre) @ rot.T) * size * scale

    def r(name: str, factor: float = 1.0) -> float:
        return max(RADII_MM[name] * factor * rng.uniform(0.9, 1.1) * size * scale, min_radius_mm)

    tubes: dict[str, Tube] = {}
    for name in (
        "aorta",
        "ivc",
        "celiac_trunk",
        "common_hepatic_artery",
        "proper_hepatic_artery",
        "gastroduodenal_artery",
        "splenic_artery",
        "sma",
        "splenic_vein",
    ):
        radius = r(name)
        tubes[name] = Tube(name, world(pts[name]), radius, step=step)
    r_smv, r_pv = r("smv"), r("portal_vein")
    n = len(pts["smv_portal"])
    radii = np.where(np.arange(n) < CONFLUENCE_POINT, r_smv, r_pv).astype(float)
    radii[CONFLUENCE_POINT] = 0.5 * (r_smv + r_pv)
    tubes["smv_portal"] = Tube("smv_portal", world(pts["smv_portal"]), radii, step=step)
    chord = np.linalg.norm(np.diff(tubes["smv_portal"].control, axis=0), axis=1)
    # arc length of the confluence control point (spline arc ~ chord length at this sampling)
    confluence_s = float(np.sum(chord[:CONFLUENCE_POINT]) * tubes["smv_portal"].length / chord.sum())
    pancreas_r = np.asarray(PANCREAS_RADII) * rng.uniform(0.85, 1.1, len(PANCREAS_RADII)) * size * scale
    tubes["pancreas"] = Tube("pancreas", world(pts["pancreas"]), pancreas_r, step=2 * step)
    duct = 2.2 if dilated_ducts else 1.0
    tubes["pancreatic_duct"] = Tube(
        "pancreatic_duct",
        world(pts["pancreatic_duct"]),
        max(RADII_MM["pancreatic_duct"] * duct * scale, 0.6 * min_radius_mm),
        step=step,
    )
    tubes["bile_duct"] = Tube(
        "bile_duct",
        world(pts["bile_duct"]),
        max(RADII_MM["bile_duct"] * (1.8 if dilated_ducts else 1.0) * scale, 0.6 * min_radius_mm),
        step=step,
    )
    tubes["duodenum"] = Tube("duodenum", world(pts["duodenum"]), 11.0 * size * scale, step=3 * step)
    fat = float(np.clip((bmi - 18.0) / 17.0, 0.0, 1.2))  # 0 (lean) .. ~1 (obese)
    body = {
        "rotation": rot,
        "size": size * scale,
        # anterior abdominal wall: skin at y = skin_y, then subcutaneous fat, then rectus muscle
        "skin_y": (62.0 + 28.0 * fat - centre[1]) * size * scale,
        "subcut_mm": (6.0 + 22.0 * fat) * scale,
        "rectus_mm": 9.0 * scale,
        "spine_centre": world(np.array([-6.0, -68.0, 0.0])),
        "spine_radii": np.array([22.0, 18.0]) * size * scale,
        "psoas": [world(np.array([side * 30.0, -58.0, 0.0])) for side in (-1, 1)],
        "psoas_radii": np.array([11.0, 10.0]) * size * scale * rng.uniform(0.85, 1.15),
        "liver_centre": world(np.array([70.0, 5.0, 70.0])),
        "liver_radii": np.array([60.0, 60.0, 48.0]) * size * scale,
        "kidney_centres": [world(np.array([side * 62.0, -48.0, 10.0])) for side in (-1, 1)],
        "kidney_radii": np.array([22.0, 16.0, 45.0]) * size * scale,
        "visceral_fat": fat,
    }
    return Anatomy(scale=scale, tubes=tubes, confluence_s=confluence_s, centre=np.zeros(3), body=body, rotation=rot)
