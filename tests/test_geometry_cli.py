"""`resectbench geometry measure` on a mask file and on a cohort, and its errors."""
from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.data.labels import INDEX
from resectbench.baselines.geometric_phantoms import write_phantom_cohort
from resectbench.data import load_cohort
from resectbench.geometry.phantoms import TUMOR_LABEL, VESSEL_LABEL, tube_phantom


@pytest.fixture(scope="module")
def app():
    return build_app()


def _write_case(path, angle=200.0, extra_label=None):
    p = tube_phantom(angle, size_mm=32)
    mask = np.zeros_like(p.mask)
    mask[p.mask == VESSEL_LABEL] = INDEX["smv"]
    mask[p.mask == TUMOR_LABEL] = INDEX["tumor"]
    if extra_label is not None:
        mask[0, 0, 0] = extra_label
    nib.save(nib.Nifti1Image(mask, np.diag([1.0, 1.0, 1.0, 1.0])), str(path))
    return path


def test_measure_single_mask(app, tmp_path):
    case = _write_case(tmp_path / "case_7.nii.gz")
    out = tmp_path / "c.csv"
    result = CliRunner().invoke(app, ["geometry", "measure", str(case), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out).set_index("vessel")
    assert (table.case_id == "case_7").all()
    assert table.loc["smv", "contact_deg"] == pytest.approx(200.0, abs=15.0)
    assert table.loc["sma", "contact_deg"] == 0 and not table.loc["sma", "present"]


def test_measure_single_mask_with_custom_labels(app, tmp_path):
    p = tube_phantom(120.0, size_mm=32)
    nib.save(nib.Nifti1Image(p.mask, np.eye(4)), str(tmp_path / "m.nii.gz"))
    out = tmp_path / "c.csv"
    result = CliRunner().invoke(app, ["geometry", "measure", str(tmp_path / "m.nii.gz"), "--labels",
                                      "tumor=2,SMA=1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out).set_index("vessel").loc["sma", "contact_deg"] == pytest.approx(120.0, abs=15.0)


def test_bad_masks_name_the_case(app, tmp_path):
    bad = _write_case(tmp_path / "case_9.nii.gz", extra_label=42)
    result = CliRunner().invoke(app, ["geometry", "measure", str(bad)])
    assert result.exit_code == 2 and "case_9" in result.output and "42" in result.output
    good = _write_case(tmp_path / "case_8.nii.gz")
    image = tmp_path / "img.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 10), np.float32), np.eye(4)), str(image))
    result = CliRunner().invoke(app, ["geometry", "measure", str(good), "--image", str(image)])
    assert result.exit_code == 2 and "case_8" in result.output and "shape" in result.output


def test_measure_cohort_and_a_broken_case(app, tmp_path):
    manifest = write_phantom_cohort(tmp_path / "tubes")
    cohort = load_cohort(manifest)
    out = tmp_path / "cohort.csv"
    result = CliRunner().invoke(app, ["geometry", "measure", str(manifest), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert sorted(table.case_id.unique()) == cohort.case_ids
    assert {"tumor_location", "contact_deg", "min_distance_mm"} <= set(table.columns)
    touching = table[table.contact_deg > 0].set_index("case_id")
    assert len(touching) == len(cohort) - 1  # every case but the one held off by a gap
    # a mask that no longer matches its image grid -> error naming that case
    broken = tmp_path / "broken"
    shutil.copytree(manifest.parent, broken)
    victim = cohort.case_ids[1]
    mask_file = broken / "masks" / f"{victim}.nii.gz"
    img = nib.load(str(mask_file))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-2], img.affine), str(mask_file))
    result = CliRunner().invoke(app, ["geometry", "measure", str(broken / "manifest.csv"), "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and victim in result.output
