"""Case-level findings: tumor location from the SMA/SMV axis, CHA reach, tumor volume."""

import numpy as np
import pytest

from resectbench.data.labels import INDEX
from resectbench.geometry.findings import case_findings, cha_reach_mm, tumor_location


def _ball(shape, centre, r):
    g = np.indices(shape).transpose(1, 2, 3, 0)
    return np.linalg.norm(g - np.array(centre), axis=-1) <= r


def _abdomen(tumor_x):
    """RAS grid (x to the patient's right): SMA at x=16, SMV at x=24, a tumor ball at tumor_x."""
    m = np.zeros((40, 30, 30), np.uint8)
    x, y, _ = np.indices(m.shape)
    m[(x - 16) ** 2 + (y - 15) ** 2 <= 4] = INDEX["sma"]
    m[(x - 24) ** 2 + (y - 15) ** 2 <= 6] = INDEX["smv"]
    m[_ball(m.shape, (tumor_x, 15, 15), 4) & (m == 0)] = INDEX["tumor"]
    return m


def test_location_from_the_sma_smv_axis():
    assert tumor_location(_abdomen(33), (1, 1, 1)) == "head"  # right of the SMV
    assert tumor_location(_abdomen(6), (1, 1, 1)) == "body"  # left of the SMA
    assert tumor_location(np.zeros((5, 5, 5), np.uint8), (1, 1, 1)) is None


def test_location_falls_back_to_the_pancreas():
    m = np.zeros((40, 10, 10), np.uint8)
    m[2:38, 3:7, 3:7] = INDEX["pancreas"]
    m[32:37, 4:6, 4:6] = INDEX["tumor"]
    assert tumor_location(m, (1, 1, 1)) == "head"
    m[m == INDEX["tumor"]] = INDEX["pancreas"]
    m[3:8, 4:6, 4:6] = INDEX["tumor"]
    assert tumor_location(m, (1, 1, 1)) == "body"


def test_cha_reach_measures_distance_to_celiac_or_bifurcation():
    m = np.zeros((50, 20, 20), np.uint8)
    m[2:8, 9:12, 9:12] = INDEX["celiac_trunk"]
    m[8:40, 9:12, 9:12] = INDEX["common_hepatic_artery"]
    m[40:48, 9:12, 9:12] = INDEX["gastroduodenal_artery"]
    near = m.copy()
    near[9:13, 12:15, 9:12] = INDEX["tumor"]  # touches the CHA right at its origin
    far = m.copy()
    far[22:26, 12:15, 9:12] = INDEX["tumor"]  # mid-CHA: 14 voxels from either end
    assert cha_reach_mm(near, (1, 1, 1)) <= 2.0
    assert cha_reach_mm(far, (2, 1, 1)) == pytest.approx(2 * 14, abs=2.5)
    assert np.isnan(cha_reach_mm(m, (1, 1, 1)))  # no tumor contact


def test_case_findings_volume():
    f = case_findings(_abdomen(33), (2.0, 1.0, 1.0))
    n = int((_abdomen(33) == INDEX["tumor"]).sum())
    assert f["tumor_volume_ml"] == pytest.approx(n * 2.0 / 1000)
    assert f["tumor_location"] == "head" and np.isnan(f["cha_reach_mm"])
