"""`resectbench data template`: a clinical.csv and data_dictionary.csv to fill in that read back as they are."""

import pandas as pd
from data_fixtures import write_msd
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.data import load_cohort
from resectbench.data.readers.load import read_dictionary
from resectbench.data.schema import CLINICAL_SCHEMA
from resectbench.data.template import write_template

runner = CliRunner()


def _images_only(root):
    """write_msd's cohort without its clinical table: what a research group starts from."""
    write_msd(root, n=3)
    (root / "clinical.csv").unlink()
    return root


def test_the_dictionary_reads_back_and_the_filled_table_loads(tmp_path):
    root = _images_only(tmp_path / "cohort")
    write_template(root)
    dictionary = read_dictionary(root / "data_dictionary.csv")
    assert dictionary.problems == []
    assert list(dictionary.variables) == list(CLINICAL_SCHEMA)
    assert all(c.required for c in dictionary.variables.values())
    assert {v: c.unit for v, c in dictionary.variables.items()} == {v: s.unit for v, s in CLINICAL_SCHEMA.items()}
    assert dictionary.missing == ()

    table = pd.read_csv(root / "clinical.csv", dtype=str, keep_default_na=False)
    assert table.case_id.tolist() == ["case00", "case01", "case02"]
    assert list(table.columns) == ["case_id", "label", *CLINICAL_SCHEMA]
    table["label"] = ["resectable", "BR", "2"]
    table.loc[0, ["age", "sex", "asa_score", "grade"]] = ["64", "female", "2", "G3"]
    table.loc[1, "glucose"] = "110"
    table.to_csv(root / "clinical.csv", index=False)
    cohort = load_cohort(root)
    assert cohort.case_ids == ["case00", "case01", "case02"]
    assert cohort.labels.tolist() == [0, 1, 2]
    assert set(cohort.clinical.columns) == set(CLINICAL_SCHEMA)
    assert cohort.clinical.loc["case00", "age"] == 64.0 and cohort.clinical.loc["case00", "grade"] == "G3"
    assert cohort.clinical.loc["case01", "glucose"] == 110.0 and pd.isna(cohort.clinical.loc["case02", "age"])


def test_the_blank_template_reads_as_new_patients_in_a_plain_folder(tmp_path):
    """No dataset.json, images straight in the folder (nnU-Net's inference input): every case, unlabeled."""
    root = _images_only(tmp_path / "cohort")
    for image in (root / "imagesTr").iterdir():
        image.rename(root / image.name)
    (root / "imagesTr").rmdir()
    (root / "dataset.json").unlink()
    result = runner.invoke(build_app(), ["data", "template", str(root)])
    assert result.exit_code == 0, result.output
    assert "3 cases" in result.output and "resectbench predict" in result.output
    cohort = load_cohort(root, require_labels=False)
    assert cohort.case_ids == ["case00", "case01", "case02"] and cohort.labels.tolist() == [-1, -1, -1]
    assert set(cohort.clinical.columns) == set(CLINICAL_SCHEMA)


def test_existing_files_are_refused_unless_forced(tmp_path):
    root = _images_only(tmp_path / "cohort")
    (root / "clinical.csv").write_text("case_id,label\ncase00,0\n")
    result = runner.invoke(build_app(), ["data", "template", str(root)])
    assert result.exit_code == 1
    assert "clinical.csv already exists" in result.output and "--force" in result.output
    assert (root / "clinical.csv").read_text() == "case_id,label\ncase00,0\n"
    assert not (root / "data_dictionary.csv").exists()  # nothing written, not even the file that was free

    result = runner.invoke(build_app(), ["data", "template", str(root), "--force"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(root / "clinical.csv")) == 3


def test_out_writes_elsewhere_and_says_the_next_step(tmp_path):
    root = _images_only(tmp_path / "cohort")
    out = tmp_path / "drafts"
    result = runner.invoke(build_app(), ["data", "template", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "clinical.csv").exists() and (out / "data_dictionary.csv").exists()
    assert not (root / "clinical.csv").exists() and not (root / "data_dictionary.csv").exists()
    assert f"move both files into {root}" in result.output.replace("\n", "")
    assert f"resectbench data validate {root}" in result.output.replace("\n", "")


def test_a_folder_without_images_is_an_error(tmp_path):
    result = runner.invoke(build_app(), ["data", "template", str(tmp_path)])
    assert result.exit_code == 1 and "no NIfTI images" in result.output
