"""Bad input: every problem names its case, in load_cohort, load_case, `data validate` and --skip-invalid."""

import csv
import io
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from data_fixtures import write_msd
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.data import load_cohort
from resectbench.data.validate import validate_cohort
from resectbench.errors import DataError

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
        cohort = load_cohort(root)  # voxel problems surface when the case is read
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
    assert before == after  # never modifies data


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
    assert r.exit_code == 0 and json.loads(r.output)["n_cases"] == 4  # voxel problems surface when read
    r = runner.invoke(build_app(), ["data", "info", str(root), "--skip-invalid", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["n_cases"] == 3 and out["excluded"][0]["case_id"] == "case03"
    assert "NaN" in out["excluded"][0]["problem"]


# -- data dictionaries: codings of tables this project did not write -------------------------------------
_MESSY = (
    "case_id,label,age,sex,ca19_9_baseline,glucose,bilirubin,diabetes\n"
    "case00,0,61,0,120,5.4,17.1,yes\n"
    "case01,1,NA,1,88,6.1,342,no\n"
    "case02,2,-99,1,unknown,7.9,8.55,yes\n"
)


def _messy(tmp_path, dictionary: str | None = None, name="data_dictionary.csv"):
    root = write_msd(tmp_path / "messy", n=3)
    (root / "clinical.csv").write_text(_MESSY)
    if dictionary is not None:
        (root / name).write_text(dictionary)
    return root


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


_DICTIONARY_CSV = (
    "variable,required,values,unit,missing\n"
    "*,,,,unknown\n"
    "age,,,,-99\n"
    "sex,,0=female; 1=male,,\n"
    "ca19_9_baseline,,,kU/L,\n"
    "glucose,,,mmol/L,\n"
    "bilirubin,,,umol/L,\n"
    "diabetes,,yes=1; no=0,,\n"
)


def test_a_dictionary_in_the_folder_reads_codes_units_and_missing_tokens(tmp_path):
    root = _messy(tmp_path, _DICTIONARY_CSV)
    before = _tree(root)
    cohort = load_cohort(root)
    c = cohort.clinical
    assert c["sex"].tolist() == ["female", "male", "male"]
    assert np.isnan(c.loc["case01", "age"]) and np.isnan(c.loc["case02", "age"])  # NA and -99
    assert np.isnan(c.loc["case02", "ca19_9_baseline"])  # '*' token
    assert c["ca19_9_baseline"].tolist()[:2] == [120.0, 88.0]  # kU/L == U/mL
    assert c["glucose"].tolist() == pytest.approx([5.4 * 18.016, 6.1 * 18.016, 7.9 * 18.016])
    assert c["bilirubin"].tolist() == pytest.approx([1.0, 20.0, 0.5], rel=1e-3)
    assert c["diabetes"].tolist() == [1.0, 0.0, 1.0]
    assert cohort.info["data_dictionary"]["variables"]["sex"] == {"values": {"0": "female", "1": "male"}}
    assert _tree(root) == before  # nothing rewritten


@pytest.mark.parametrize(
    "name,text",
    [
        (
            "codes.toml",
            'missing = ["unknown"]\nage = {missing = [-99]}\nsex = {values = {0 = "female", 1 = "male"}}\n'
            'ca19_9_baseline = {unit = "U/L"}\nglucose = {unit = "mmol/L"}\nbilirubin = {unit = "µmol/L"}\n'
            "diabetes = {values = {yes = 1, no = 0}}\n",
        ),
        (
            "codes.json",
            '{"missing": ["unknown"], "age": {"missing": ["-99"]}, "sex": {"values": {"0": "female", '
            '"1": "male"}}, "ca19_9_baseline": {"unit": "U/L"}, "glucose": {"unit": "mmol/l"}, '
            '"bilirubin": {"unit": "umol/L"}, "diabetes": {"values": {"yes": 1, "no": 0}}}',
        ),
    ],
)
def test_a_dictionary_given_by_flag_in_toml_or_json(tmp_path, name, text):
    root = _messy(tmp_path)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    c = load_cohort(root, data_dictionary=path).clinical
    assert c["ca19_9_baseline"].tolist()[:2] == pytest.approx([0.12, 0.088])  # U/L -> U/mL
    assert c["sex"].tolist() == ["female", "male", "male"] and c["diabetes"].tolist() == [1.0, 0.0, 1.0]
    result = CliRunner().invoke(build_app(), ["data", "info", str(root), "--data-dictionary", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["data_dictionary"]["path"] == str(path)
    assert (
        CliRunner().invoke(build_app(), ["data", "validate", str(root), "--data-dictionary", str(path)]).exit_code == 0
    )


def test_validate_lists_every_problem_and_proposes_a_dictionary_that_works(tmp_path):
    root = _messy(tmp_path)
    before = _tree(root)
    result = CliRunner().invoke(build_app(), ["data", "validate", str(root)])
    assert result.exit_code == 1
    fails = [ln for ln in result.output.splitlines() if ln.startswith("FAIL")]
    assert len(fails) == 3 and all(f"case0{k}" in " ".join(fails) for k in range(3))
    flat = " ".join(result.output.split())
    for fragment in (
        "'sex': value '0' is not one of female, male",
        "'age': value -99 outside",
        "'ca19_9_baseline': value 'unknown' is not numeric",
        "'glucose': value 5.4 outside",
        "'bilirubin': value 342 outside",
        "'diabetes': value 'yes' is not numeric",
    ):
        assert fragment in flat, fragment
    stub = result.output[result.output.index("variable,required,values,unit,missing,note") :]
    rows = {r["variable"]: r for r in csv.DictReader(io.StringIO(stub))}
    assert rows["sex"]["values"] == "0=female; 1=male" and "check your codebook" in rows["sex"]["note"]
    assert rows["age"]["missing"] == "-99" and rows["ca19_9_baseline"]["missing"] == "unknown"
    assert rows["glucose"]["unit"] == "mmol/L" and rows["bilirubin"]["unit"] == "umol/L"
    assert rows["diabetes"]["values"] == "no=0; yes=1"
    assert _tree(root) == before  # nothing written
    proposed = tmp_path / "proposed.csv"
    proposed.write_text(stub)
    assert (
        CliRunner().invoke(build_app(), ["data", "validate", str(root), "--data-dictionary", str(proposed)]).exit_code
        == 0
    )


def test_stub_keeps_the_dictionary_in_use_and_sex_1_2_follows_iso_5218(tmp_path):
    root = write_msd(tmp_path / "iso", n=3)
    (root / "clinical.csv").write_text("case_id,label,age,sex\ncase00,0,60,1\ncase01,1,70,2\ncase02,2,999,9\n")
    (root / "data_dictionary.csv").write_text("variable,required\nage,\nsex,\nbmi,false\n")
    report = validate_cohort(root)
    rows = {r["variable"]: r for r in csv.DictReader(io.StringIO(report.dictionary_stub))}
    assert rows["sex"]["values"] == "1=male; 2=female" and rows["sex"]["missing"] == "9"
    assert rows["age"]["missing"] == "999" and rows["bmi"]["required"] == "false"
    assert report.data_dictionary == str(root / "data_dictionary.csv")


@pytest.mark.parametrize(
    "dictionary,fragment",
    [
        ("variable,unit\nglucose,furlongs\n", "variable 'glucose': unit 'furlongs' cannot be converted to mg/dL"),
        ("variable,values\nsex,0=femal; 1=male\n", "variable 'sex': value map sends '0' to 'femal'"),
        ("variable,values\nsex,0 female\n", "value map entry '0 female' is not CODE=VALUE"),
        ("variable,values\nsex,0=female; 0=male\n", "code '0' appears twice"),
        ("variable,unit\nage,\nage,\n", "variable 'age' is listed twice"),
    ],
)
def test_a_bad_dictionary_is_named_with_its_problem(tmp_path, dictionary, fragment):
    root = _messy(tmp_path, dictionary)
    result = CliRunner().invoke(build_app(), ["data", "validate", str(root)])
    assert result.exit_code == 1
    assert any(
        "data_dictionary.csv" in ln and fragment in ln
        for ln in (" ".join(x.split()) for x in result.output.splitlines() if x.startswith("FAIL"))
    ), result.output


def test_a_missing_dictionary_file_is_named(tmp_path):
    root = _messy(tmp_path)
    result = CliRunner().invoke(
        build_app(), ["data", "validate", str(root), "--data-dictionary", str(tmp_path / "nope.csv")]
    )
    assert result.exit_code == 1 and "nope.csv does not exist" in " ".join(result.output.split())
