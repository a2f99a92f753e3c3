"""Bad input: every problem names its case, in load_cohort, load_case, `data validate` and --skip-invalid."""
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.data import load_cohort
from resectbench.data.validate import validate_cohort
from resectbench.errors import DataError

from data_fixtures import write_msd

runner = CliRunner()


def _truncate(root, cid="case01"):
    p = root / "imagesTr" / f"{cid}_0000.nii.gz"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _nan_voxels(root, cid="case01"):
    p = root / "imagesTr" / f"{cid}_0000.nii.gz"
    img = nib.load(str(p))
    arr = np.asarray(img.dataobj).astype(np.float32)
    arr[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(arr, img.affine), str(p))


def _unknown_label(root, cid="case01"):
    p = root / "labelsTr" / f"{cid}.nii.gz"
    img = nib.load(str(p))
    arr = np.asarray(img.dataobj).copy()
    arr[0, 0, 0] = 9
    nib.save(nib.Nifti1Image(arr, img.affine), str(p))


def _missing_file(root, cid="case01"):
    (root / "imagesTr" / f"{cid}_0000.nii.gz").unlink()


def _non_numeric(root, cid="case01"):
    df = pd.read_csv(root / "clinical.csv", dtype=str)
    df.loc[df.case_id == cid, "age"] = "sixty"
    df.to_csv(root / "clinical.csv", index=False)


def _out_of_range(root, cid="case01"):
    df = pd.read_csv(root / "clinical.csv", dtype=str)
    df.loc[df.case_id == cid, "age"] = "250"
    df.to_csv(root / "clinical.csv", index=False)


def _duplicate_id(root, cid="case01"):
    df = pd.read_csv(root / "clinical.csv", dtype=str)
    pd.concat([df, df[df.case_id == cid]]).to_csv(root / "clinical.csv", index=False)


def _bad_label(root, cid="case01"):
    df = pd.read_csv(root / "clinical.csv", dtype=str)
    df.loc[df.case_id == cid, "label"] = "maybe"
    df.to_csv(root / "clinical.csv", index=False)


def _mask_off_grid(root, cid="case01"):
    p = root / "labelsTr" / f"{cid}.nii.gz"
    img = nib.load(str(p))
    aff = img.affine.copy()
    aff[0, 3] += 5.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff), str(p))


def _mask_wrong_shape(root, cid="case01"):
    p = root / "labelsTr" / f"{cid}.nii.gz"
    img = nib.load(str(p))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-1], img.affine), str(p))


def _silly_spacing(root, cid="case01"):
    p = root / "imagesTr" / f"{cid}_0000.nii.gz"
    img = nib.load(str(p))
    aff = img.affine.copy()
    aff[2, 2] = 40.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff), str(p))


# (breaker, message fragment, found by the cheap checks in load_cohort?)
CASES = {
    "truncated": (_truncate, "truncated or corrupt", False),
    "nan": (_nan_voxels, "NaN", False),
    "unknown_label": (_unknown_label, "label values [9]", False),
    "missing_file": (_missing_file, "image file is missing", True),
    "non_numeric": (_non_numeric, "'sixty' is not numeric", True),
    "out_of_range": (_out_of_range, "outside the plausible range", True),
    "duplicate": (_duplicate_id, "appears 2 times", True),
    "bad_label": (_bad_label, "label 'maybe'", True),
    "mask_off_grid": (_mask_off_grid, "mask affine differs", True),
    "mask_shape": (_mask_wrong_shape, "mask shape", True),
    "spacing": (_silly_spacing, "implausible voxel spacing", True),
}


@pytest.fixture(params=sorted(CASES))
def broken(request, tmp_path):
    breaker, fragment, cheap = CASES[request.param]
    root = write_msd(tmp_path / request.param, n=4)
    breaker(root)
    return root, fragment, cheap


def test_error_names_the_case_and_the_problem(broken):
    root, fragment, cheap = broken
    if cheap:
        with pytest.raises(DataError) as exc:
            load_cohort(root)
    else:
        cohort = load_cohort(root)                  # voxel problems surface when the case is read
        with pytest.raises(DataError) as exc:
            cohort.load_case("case01")
    assert exc.value.case_id == "case01"
    assert "case01" in str(exc.value) and fragment in str(exc.value)


def test_skip_invalid_excludes_and_reports(broken):
    root, fragment, _ = broken
    cohort = load_cohort(root, skip_invalid=True)
    assert "case01" not in cohort.case_ids and len(cohort) == 3
    excluded = cohort.info["excluded"]
    assert any(e["case_id"] == "case01" and fragment in e["problem"] for e in excluded)


def test_validate_cli_one_line_per_failing_case(broken):
    root, fragment, _ = broken
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = runner.invoke(build_app(), ["data", "validate", str(root)])
    assert result.exit_code == 1, result.output
    fail_lines = [ln for ln in result.output.splitlines() if ln.startswith("FAIL")]
    assert len(fail_lines) == 1 and "case01" in fail_lines[0] and fragment.split()[0] in fail_lines[0]
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert before == after                                  # never modifies data


def test_validate_passes_on_good_data_and_reports_counts(tmp_path):
    root = write_msd(tmp_path, n=3, orientation="LPS")
    report = validate_cohort(root)
    assert report.ok and report.class_counts == [1, 1, 1] and report.orientations == {"LPS": 3}
    result = runner.invoke(build_app(), ["data", "validate", str(root), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["ok"]


def test_several_failing_cases_each_get_a_line(tmp_path):
    root = write_msd(tmp_path, n=4)
    _nan_voxels(root, "case00")
    _non_numeric(root, "case02")
    report = validate_cohort(root)
    assert sorted(report.failing_cases) == ["case00", "case02"]
    assert len(report.lines()) == 2


def test_dataset_level_problems_are_clear(tmp_path):
    with pytest.raises(DataError, match="no such dataset"):
        load_cohort(tmp_path / "nothing")
    root = write_msd(tmp_path / "x", n=3)
    (root / "clinical.csv").unlink()
    with pytest.raises(DataError, match="no clinical.csv"):
        load_cohort(root)
    report = validate_cohort(root)
    assert not report.ok and "clinical.csv" in report.lines()[0]


def test_synth_then_validate_cli(tmp_path):
    out = tmp_path / "demo"
    r = runner.invoke(build_app(), ["data", "synth", str(out), "--n", "4", "--profile", "tiny", "--workers", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(build_app(), ["data", "validate", str(out)])
    assert r.exit_code == 0, r.output
    assert "all cases valid" in r.output
    r = runner.invoke(build_app(), ["data", "info", str(out), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["n_cases"] == 4
    r = runner.invoke(build_app(), ["data", "synth", str(out), "--n", "2", "--profile", "tiny"])
    assert r.exit_code == 1 and "not empty" in r.output


def test_info_cli_skip_invalid_lists_exclusions(tmp_path):
    root = write_msd(tmp_path / "ds", n=4)
    _nan_voxels(root, "case03")
    r = runner.invoke(build_app(), ["data", "info", str(root), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["n_cases"] == 4   # voxel problems surface when read
    r = runner.invoke(build_app(), ["data", "info", str(root), "--skip-invalid", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["n_cases"] == 3 and out["excluded"][0]["case_id"] == "case03"
    assert "NaN" in out["excluded"][0]["problem"]
