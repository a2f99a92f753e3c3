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
@pytest.mark.parametrize("spacing,orientation,angle,radius", [
    (ISO, "straight", 270.0, 5.5), (ISO, "oblique30", 150.0, 4.0), (ANISO, "straight", 345.0, 7.5),
    (ANISO, "oblique60", 200.0, 5.5), (ANISO, "curved", 100.0, 4.0)])
def test_angle_on_every_convention(convention, spacing, orientation, angle, radius):
    p = tube_phantom(angle, orientation=orientation, spacing=spacing, radius_mm=radius, start_deg=40,
                     size_mm=max(48.0, 6 * radius + 20), convention=convention)
    r = measure(p.mask, p)
    assert r.contact_deg == pytest.approx(angle, abs=15.0)
    assert (r.contact_deg > 180) == (angle > 180)
    assert r.convention == ("engulfing" if convention == "engulfing" else r.convention)
    assert (r.reconstructed_mm > 0) == (convention == "engulfing")


def test_engulfed_vessel_is_interrupted_and_bridged():
    p = tube_phantom(270.0, spacing=ISO, radius_mm=5.5, size_mm=53, convention="engulfing")
    from scipy import ndimage
    assert ndimage.label(p.mask == VESSEL_LABEL)[1] == 2          # the label really is interrupted
    r = measure(p.mask, p)
    assert r.convention == "engulfing"
    assert 10.0 <= r.reconstructed_mm <= 22.0                    # the 16 mm encased stretch
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
    mask[:, :, 20:28][mask[:, :, 20:28] == VESSEL_LABEL] = 0      # a gap of fat, not tumor
    r = measure(mask, p)
    assert r.reconstructed_mm == 0.0


OPEN_FLIP_DEFECT = pytest.mark.xfail(strict=True, reason="open: flipped array of an engulfed oblique vessel at 1 mm "
                                     "measures 14 degrees apart (stump axes from flip-asymmetric thinning)")


@pytest.mark.parametrize("convention,spacing,orientation", [
    ("disjoint", ISO, "oblique30"), ("disjoint", ANISO, "straight"), ("disjoint", ANISO, "oblique60"),
    pytest.param("engulfing", ISO, "oblique30", marks=OPEN_FLIP_DEFECT), ("engulfing", ANISO, "straight"),
    ("engulfing", ANISO, "oblique60")])
def test_lps_and_ras_arrays_agree(convention, spacing, orientation):
    # the raw arrays flipped (files are reoriented to RAS on reading, test below: exact); thinning is
    # not flip-symmetric, so the bridged course differs slightly: measured up to 4 degrees
    p = tube_phantom(190.0, orientation=orientation, spacing=spacing, radius_mm=5.5, start_deg=75, size_mm=53,
                     convention=convention)
    ras, lps = measure(p.mask, p), measure(to_lps(p.mask), p)
    assert abs(ras.contact_deg - lps.contact_deg) <= (3.0 if convention == "disjoint" else 6.0)
    assert (ras.contact_deg > 180) == (lps.contact_deg > 180)


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
