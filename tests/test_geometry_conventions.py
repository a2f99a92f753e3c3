"""Regression suite of issue 13: contact on every mask convention, thick slices, LPS vs RAS storage.

Before the fix an engulfing tumor (painted over the vessel's lumen) gave 0 degrees for a 270 degree
encasement, an overlapping one lost ~20 degrees, and 2.5 mm slices thinned short wide stumps across
the vessel.
"""

from __future__ import annotations

import numpy as np
import pytest

from resectbench.geometry import measure_case
from resectbench.geometry.phantoms import TUMOR_LABEL, VESSEL_LABEL, to_lps, tube_phantom

ISO = (1.0, 1.0, 1.0)
ANISO = (0.8, 0.8, 2.5)


def measure(mask, p):
    return measure_case(mask, p.spacing, p.label_map).iloc[0]


@pytest.mark.parametrize("convention", ["disjoint", "overlapping", "engulfing"])
@pytest.mark.parametrize(
    "spacing,orientation,angle,radius",
    [
        (ISO, "straight", 270.0, 5.5),
        (ISO, "oblique30", 150.0, 4.0),
        (ANISO, "straight", 345.0, 7.5),
        (ANISO, "oblique60", 200.0, 5.5),
        (ANISO, "curved", 100.0, 4.0),
    ],
)
def test_angle_on_every_convention(convention, spacing, orientation, angle, radius):
    p = tube_phantom(
        angle,
        orientation=orientation,
        spacing=spacing,
        radius_mm=radius,
        start_deg=40,
        size_mm=max(48.0, 6 * radius + 20),
        convention=convention,
    )
    r = measure(p.mask, p)
    assert r.contact_deg == pytest.approx(angle, abs=15.0)
    assert (r.contact_deg > 180) == (angle > 180)
    assert r.convention == ("engulfing" if convention == "engulfing" else r.convention)
    assert (r.reconstructed_mm > 0) == (convention == "engulfing")


def test_engulfed_vessel_is_interrupted_and_bridged():
    p = tube_phantom(270.0, spacing=ISO, radius_mm=5.5, size_mm=53, convention="engulfing")
    from scipy import ndimage

    assert ndimage.label(p.mask == VESSEL_LABEL)[1] == 2  # the label really is interrupted
    r = measure(p.mask, p)
    assert r.convention == "engulfing"
    assert 10.0 <= r.reconstructed_mm <= 22.0  # the 16 mm encased stretch
    assert r.contact_length_mm >= 12.0
    assert r.radius_mm == pytest.approx(5.5, abs=1.0)


def test_overlapping_is_named():
    p = tube_phantom(200.0, spacing=ISO, radius_mm=5.5, size_mm=53, convention="overlapping", overlap_mm=1.5)
    assert measure(p.mask, p).convention == "overlapping"
    d = tube_phantom(200.0, spacing=ISO, radius_mm=5.5, size_mm=53)
    assert measure(d.mask, d).convention == "disjoint"


@pytest.mark.parametrize("spacing", [ISO, ANISO])
def test_fat_plane_is_no_contact_and_nothing_is_bridged(spacing):
    p = tube_phantom(0.0, gap_mm=float(max(spacing)), spacing=spacing, radius_mm=5.5, size_mm=53)
    r = measure(p.mask, p)
    assert r.contact_deg == 0.0 and r.convention == "" and r.reconstructed_mm == 0.0


def test_separate_vessels_beside_a_tumor_are_not_joined():
    # two stumps that do not face each other across tumor (tumor off to the side of the gap)
    p = tube_phantom(90.0, spacing=ISO, radius_mm=4.0, size_mm=48, start_deg=0)
    mask = p.mask.copy()
    mask[:, :, 20:28][mask[:, :, 20:28] == VESSEL_LABEL] = 0  # a gap of fat, not tumor
    r = measure(mask, p)
    assert r.reconstructed_mm == 0.0


@pytest.mark.parametrize(
    "convention,spacing,orientation,tol",
    [
        ("disjoint", ISO, "oblique30", 2.5),
        ("disjoint", ANISO, "straight", 1.0),
        ("disjoint", ANISO, "oblique60", 1.0),
        ("engulfing", ISO, "oblique30", 2.0),
        ("engulfing", ANISO, "straight", 1.0),
        ("engulfing", ANISO, "oblique60", 7.0),
        ("engulfing", ANISO, "curved", 2.5),
    ],
)
def test_lps_and_ras_arrays_agree(convention, spacing, orientation, tol):
    # the raw arrays flipped (files are reoriented to RAS on reading, test below: exact). Thinning is
    # not flip-symmetric; the bridged course is fitted to the painted lumen's free wall, so both copies
    # get the same course. Measured apart (degrees): 1.5, 0.0, 0.0 disjoint; 1.1 (14 before the course
    # was fitted: this case was a strict xfail), 0.0, 5.5 (plane-to-plane noise of a vessel 60 degrees
    # off the slice axis on 2.5 mm slices, in any convention), 1.4 engulfing
    p = tube_phantom(
        190.0, orientation=orientation, spacing=spacing, radius_mm=5.5, start_deg=75, size_mm=53, convention=convention
    )
    ras, lps = measure(p.mask, p), measure(to_lps(p.mask), p)
    assert abs(ras.contact_deg - lps.contact_deg) <= tol
    assert (ras.contact_deg > 180) == (lps.contact_deg > 180)


def _curved_axis_distance(p, points_mm, curve_radius_mm=40.0):
    """Distance (mm) of points from the axis of a 'curved' tube phantom (an arc in the x-z plane)."""
    centre = (np.array(p.mask.shape) - 1) * np.array(p.spacing) / 2.0
    q = points_mm - (centre - np.array([curve_radius_mm, 0.0, 0.0]))
    return np.hypot(np.hypot(q[:, 0], q[:, 2]) - curve_radius_mm, q[:, 1])


@pytest.mark.parametrize("lps", [False, True])
def test_bridge_follows_a_curved_vessel_on_thick_slices(lps):
    # the worst case of the issue-13 benchmark: a 7.5 mm vessel bending (40 mm radius) through a 16 mm
    # engulfing tumor on 2.5 mm slices measured 207 degrees for a true 90 (stump axes 2.4 mm and 20 degrees
    # off, painted lumen left as tumor read as contact all round); its LPS copy measured 100
    from scipy import ndimage

    from resectbench.geometry.centerline import centerline
    from resectbench.geometry.reconstruct import bridge_gaps

    kw = dict(orientation="curved", spacing=ANISO, radius_mm=7.5, start_deg=315.96, size_mm=65.0)
    p = tube_phantom(90.0, convention="engulfing", **kw)
    lumen = tube_phantom(90.0, convention="disjoint", **kw).mask == VESSEL_LABEL  # the whole lumen
    mask = to_lps(p.mask) if lps else p.mask
    lumen = to_lps(lumen) if lps else lumen
    r = measure(mask, p)
    assert r.contact_deg == pytest.approx(90.0, abs=10.0)
    assert r.convention == "engulfing"

    spacing = np.asarray(p.spacing)
    vessel, tumor = mask == VESSEL_LABEL, mask == TUMOR_LABEL
    comps, n = ndimage.label(vessel, structure=np.ones((3, 3, 3)))
    assert n == 2
    b = bridge_gaps(
        centerline(vessel, spacing),
        vessel,
        tumor,
        np.zeros_like(vessel),
        spacing,
        comps,
        ndimage.distance_transform_edt(vessel, sampling=spacing),
    )
    assert b is not None
    assert not (b.tumor & lumen).any()  # no painted-over lumen voxel stays tumor
    on_bridge = np.isfinite(b.radius_mm)
    pts = b.line.points_mm[on_bridge]
    if lps:  # back to the RAS frame of the phantom's axis
        pts = pts.copy()
        pts[:, :2] = (np.array(mask.shape[:2]) - 1) * spacing[:2] - pts[:, :2]
    assert _curved_axis_distance(p, pts).max() <= 0.8  # one in-plane voxel (2.4 mm before)


def test_edge_adjacent_voxels_across_fat_are_no_contact():
    # a 1.14 mm fat plane around a bending vessel at 1 mm: tumor and vessel voxels share edges (never
    # faces) in 28 places; probing 0.6 voxel beyond the wall read 2 degrees of contact there
    from scipy import ndimage

    p = tube_phantom(0.0, orientation="curved", spacing=ISO, radius_mm=5.5, start_deg=345.69, gap_mm=1.14, size_mm=53.0)
    tumor, vessel = p.mask == TUMOR_LABEL, p.mask == VESSEL_LABEL
    assert not (ndimage.binary_dilation(tumor) & vessel).any()  # no shared face
    assert (ndimage.binary_dilation(tumor, structure=np.ones((3, 3, 3))) & vessel).any()  # shared edges
    r = measure(p.mask, p)
    assert r.contact_deg == 0.0 and r.contact_length_mm == 0.0


def test_lps_file_reads_like_ras(tmp_path):
    import nibabel as nib

    from resectbench.baselines.geometric_measure import measure_path

    p = tube_phantom(230.0, orientation="oblique30", spacing=ANISO, radius_mm=5.5, size_mm=53, convention="engulfing")
    ras = np.diag([*p.spacing, 1.0])
    lps = ras.copy()
    lps[0, 0], lps[1, 1] = -p.spacing[0], -p.spacing[1]
    lps[:2, 3] = (np.array(p.mask.shape[:2]) - 1) * np.array(p.spacing[:2])
    nib.save(nib.Nifti1Image(p.mask, ras), tmp_path / "ras.nii.gz")
    nib.save(nib.Nifti1Image(to_lps(p.mask), lps), tmp_path / "lps.nii.gz")
    labels = {"tumor": TUMOR_LABEL, "sma": VESSEL_LABEL}
    a = measure_path(tmp_path / "ras.nii.gz", labels=labels).set_index("vessel").loc["sma"]
    b = measure_path(tmp_path / "lps.nii.gz", labels=labels).set_index("vessel").loc["sma"]
    assert a.contact_deg == pytest.approx(b.contact_deg, abs=1.0)
    assert a.contact_deg == pytest.approx(230.0, abs=15.0)


def test_small_overlapped_vessel_keeps_its_covered_arc():
    # a 3.5 mm vessel whose wall the tumor covers by 1 mm over 200 degrees, 30 degrees off the 2.5 mm
    # slice axis: the free-wall circle was fitted with the rays next to the covered arc (pulled in by
    # partial voxels), so the cover went unseen ("disjoint") and the arc shrank to 177 degrees (class
    # <= 180). Those rays are now left out of the fit, and rays at the ends of the covered arc whose
    # label wall ends short of the contour with tumor in between count as contacted
    p = tube_phantom(
        200.0,
        orientation="oblique30",
        spacing=ANISO,
        radius_mm=3.5,
        start_deg=77.95,
        size_mm=48.0,
        convention="overlapping",
    )
    r = measure(p.mask, p)
    assert r.convention == "overlapping"
    assert r.contact_deg == pytest.approx(200.0, abs=10.0) and r.contact_deg > 180.0


@pytest.mark.parametrize(
    "orientation,angle,start,before",
    [("oblique30", 185.0, 66.01, 170.5), ("oblique60", 190.0, 49.24, 169.8), ("oblique60", 185.0, 154.57, 212.8)],
)
def test_one_voxel_cover_of_a_small_oblique_vessel(orientation, angle, start, before):
    # a 3.5 mm vessel at 1 mm whose wall the tumor covers by one voxel, off the slice axis (issue 13
    # benchmark, measured ``before``): the free-wall circle fitted with its radius free to half a turn of
    # wall misplaced the covered side by up to a voxel, so per plane the cover went unseen (read as
    # disjoint, <= 180) or the arc was moved out too far (212.8). Now the circle has the vessel's radius
    # from the untouched planes nearby, the cover is decided on all planes' contacted rays pooled, and the
    # contacted wall is moved out by the pooled cover thickness
    p = tube_phantom(
        angle,
        orientation=orientation,
        spacing=ISO,
        radius_mm=3.5,
        start_deg=start,
        size_mm=48.0,
        convention="overlapping",
    )
    r = measure(p.mask, p)
    assert r.convention == "overlapping"
    assert r.contact_deg > 180.0
    assert r.contact_deg == pytest.approx(angle, abs=10.0)
