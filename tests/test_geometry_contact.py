"""Contact measurement on tube phantoms whose angle is exact by construction."""

from __future__ import annotations

import numpy as np
import pytest

from resectbench.errors import DataError
from resectbench.geometry import measure_case
from resectbench.geometry.centerline import centerline
from resectbench.geometry.phantoms import TUMOR_LABEL, VESSEL_LABEL, tube_phantom

ISO = (1.0, 1.0, 1.0)
ANISO = (0.8, 0.8, 2.5)


def measure(p, **kw):
    return measure_case(p.mask, p.spacing, p.label_map, **kw).set_index("vessel").loc["vessel"]


@pytest.mark.parametrize("orientation", ["straight", "oblique30", "oblique60", "curved"])
@pytest.mark.parametrize("angle", [50.0, 150.0, 215.0, 300.0])
def test_angle_isotropic(orientation, angle):
    p = tube_phantom(angle, orientation=orientation, spacing=ISO, size_mm=40, start_deg=angle / 3)
    r = measure(p)
    assert r.contact_deg == pytest.approx(angle, abs=15.0)
    assert r.min_distance_mm == 0.0
    assert 8.0 <= r.contact_length_mm <= 24.0  # tumor spans 16 mm along the vessel


@pytest.mark.parametrize("orientation,angle", [("straight", 100.0), ("oblique30", 250.0), ("curved", 160.0)])
def test_angle_anisotropic(orientation, angle):
    p = tube_phantom(angle, orientation=orientation, spacing=ANISO, size_mm=40, radius_mm=5.0, start_deg=40)
    assert measure(p).contact_deg == pytest.approx(angle, abs=15.0)


def test_full_encasement_is_360():
    for spacing in (ISO, ANISO):
        p = tube_phantom(360.0, orientation="oblique30", spacing=spacing, size_mm=40)
        assert measure(p).contact_deg == pytest.approx(360.0, abs=1.0)


def test_gap_means_no_contact_and_distance_is_reported():
    p = tube_phantom(0.0, gap_mm=3.0, size_mm=36)
    r = measure(p)
    assert r.contact_deg == 0.0 and r.contact_length_mm == 0.0
    assert 1.5 <= r.min_distance_mm <= 3.5


def test_tangent_contact_is_small():
    p = tube_phantom(0.0, gap_mm=3.0, size_mm=36)
    mask = p.mask.copy()
    mask[mask == TUMOR_LABEL] = 0
    grid = np.indices(mask.shape).transpose(1, 2, 3, 0).astype(float)
    c = (np.array(mask.shape) - 1) / 2.0
    ball_centre = c + np.array([4.0 + 6.0, 0.0, 0.0])  # vessel radius 4, ball radius 6: touching
    ball = np.linalg.norm(grid - ball_centre, axis=-1) <= 6.0
    mask[ball & (mask == 0)] = TUMOR_LABEL
    r = measure_case(mask, ISO, p.label_map).iloc[0]
    assert r.min_distance_mm == 0.0
    assert 0.0 < r.contact_deg <= 60.0


def test_two_tumor_components_take_the_larger_contact():
    a = tube_phantom(70.0, size_mm=44, tumor_offset_mm=-11, length_mm=10)
    b = tube_phantom(230.0, size_mm=44, tumor_offset_mm=11, length_mm=10, start_deg=90)
    mask = a.mask.copy()
    mask[b.mask == TUMOR_LABEL] = TUMOR_LABEL
    r = measure_case(mask, ISO, a.label_map).iloc[0]
    assert r.contact_deg == pytest.approx(230.0, abs=15.0)
    assert 12.0 <= r.contact_length_mm <= 24.0  # two stretches of 10 mm


def test_vessel_leaving_the_field_of_view():
    p = tube_phantom(120.0, size_mm=40, tumor_offset_mm=16)  # tumor runs off the edge with the vessel
    r = measure(p)
    assert r.contact_deg == pytest.approx(120.0, abs=15.0)


def test_vein_deformity_grows_with_indentation():
    scores = []
    for indent in (0.0, 3.0):
        p = tube_phantom(90.0, radius_mm=6.0, indent_mm=indent, size_mm=40)
        df = measure_case(p.mask, p.spacing, {"tumor": TUMOR_LABEL, "smv": VESSEL_LABEL})
        scores.append(df.iloc[0].vein_deformity)
    assert scores[0] < 0.04 < 0.07 < scores[1]
    art = measure_case(p.mask, p.spacing, {"tumor": TUMOR_LABEL, "sma": VESSEL_LABEL}).iloc[0]
    assert np.isnan(art.vein_deformity)  # only veins get a deformity score


def test_empty_masks_give_zero_contact():
    p = tube_phantom(90.0, size_mm=32)
    no_tumor = np.where(p.mask == TUMOR_LABEL, 0, p.mask).astype(np.uint8)
    r = measure_case(no_tumor, ISO, p.label_map).iloc[0]
    assert r.present and r.contact_deg == 0.0 and np.isnan(r.min_distance_mm)
    no_vessel = np.where(p.mask == VESSEL_LABEL, 0, p.mask).astype(np.uint8)
    r = measure_case(no_vessel, ISO, p.label_map).iloc[0]
    assert not r.present and r.contact_deg == 0.0
    empty = measure_case(np.zeros((8, 8, 8), np.uint8), ISO)
    assert (empty.contact_deg == 0).all() and not empty.present.any()
    assert {"sma", "smv", "portal_vein", "celiac_trunk", "common_hepatic_artery", "ivc"} <= set(empty.vessel)


def test_default_label_map_is_canonical_and_columns_are_tidy():
    from resectbench.data.labels import INDEX

    p = tube_phantom(200.0, size_mm=36)
    mask = np.zeros_like(p.mask)
    mask[p.mask == VESSEL_LABEL] = INDEX["sma"]
    mask[p.mask == TUMOR_LABEL] = INDEX["tumor"]
    df = measure_case(mask, ISO)
    assert list(df.columns) == [
        "vessel",
        "present",
        "contact_deg",
        "contact_length_mm",
        "min_distance_mm",
        "vein_deformity",
        "radius_mm",
        "n_planes",
        "convention",
        "reconstructed_mm",
    ]
    row = df.set_index("vessel").loc["sma"]
    assert row.contact_deg == pytest.approx(200.0, abs=15.0)
    assert row.radius_mm == pytest.approx(4.0, abs=1.0)
    assert (df.set_index("vessel").drop("sma").contact_deg == 0).all()


def test_bad_input_names_the_case():
    p = tube_phantom(90.0, size_mm=24)
    with pytest.raises(DataError, match=r"case 'c7'.*labels \[9\]"):
        measure_case(np.where(p.mask == 1, 9, p.mask), ISO, p.label_map, case_id="c7")
    with pytest.raises(DataError, match="3D"):
        measure_case(p.mask[0], ISO, p.label_map, case_id="c7")
    with pytest.raises(DataError, match="spacing"):
        measure_case(p.mask, (1.0, 0.0, 1.0), p.label_map, case_id="c7")
    with pytest.raises(DataError, match="tumor"):
        measure_case(p.mask, ISO, {"vessel": 1}, case_id="c7")


def test_centerline_of_even_width_straight_tube_is_not_empty():
    # scikit-image's 3D thinning deletes this tube entirely (issue #3757); the centerline must not
    x, y, _ = np.mgrid[:24, :24, :30]
    tube = (x - 11.5) ** 2 + (y - 11.5) ** 2 <= 16
    line = centerline(tube, (1.0, 1.0, 1.0))
    assert len(line) >= 15
    assert np.allclose(np.abs(line.tangents[:, 2]), 1.0, atol=0.05)
    assert line.weights_mm.sum() == pytest.approx(len(line), rel=0.2)
