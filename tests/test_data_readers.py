"""Readers: both naming styles, any label numbering and aliases, LPS/RAS affines, manifests."""

import json

import numpy as np
import pandas as pd
import pytest
from data_fixtures import canonical_volumes, write_msd

from resectbench.data import load_cohort
from resectbench.data.labels import INDEX
from resectbench.errors import DataError


@pytest.mark.parametrize("naming", ["nnunet", "msd"])
def test_both_naming_styles_give_the_same_cases(tmp_path, naming):
    c = load_cohort(write_msd(tmp_path / naming, naming=naming))
    assert c.case_ids == ["case00", "case01", "case02"]
    assert c.labels.tolist() == [0, 1, 2]
    assert c.table["mask"].notna().all()


def test_msd_v1_training_list(tmp_path):
    c = load_cohort(write_msd(tmp_path, naming="msd", msd_v1=True))
    assert len(c) == 3 and c.has_masks


@pytest.mark.parametrize("orientation", ["RAS", "LPS", "LAS", "PLI"])
def test_any_stored_orientation_reads_back_canonical(tmp_path, orientation):
    c = load_cohort(write_msd(tmp_path, orientation=orientation))
    image, mask = canonical_volumes(1)
    case = c.load_case("case01")
    np.testing.assert_array_equal(case.mask, mask)  # tumor still right-anterior-superior
    np.testing.assert_allclose(case.image, image)
    np.testing.assert_allclose(case.spacing, (1.5, 1.5, 2.0))
    assert "".join(__import__("nibabel").aff2axcodes(case.affine)) == "RAS"


def test_reader_that_ignored_the_affine_would_flip_the_tumor(tmp_path):
    """Guards the test above: the raw LPS array really is flipped relative to RAS."""
    import nibabel as nib

    write_msd(tmp_path, orientation="LPS")
    raw = np.asarray(nib.load(str(tmp_path / "labelsTr" / "case00.nii.gz")).dataobj)
    _, mask = canonical_volumes(0)
    assert not np.array_equal(raw, mask)


def test_any_label_numbering_maps_to_canonical_indices(tmp_path):
    numbering = {"background": 0, "pancreas": 7, "tumor": 3, "sma": 12}
    c = load_cohort(write_msd(tmp_path, numbering=numbering))
    assert c.label_map == numbering
    _, mask = canonical_volumes(2)
    np.testing.assert_array_equal(c.load_case("case02").mask, mask)


def test_aliases_in_dataset_json(tmp_path):
    c = load_cohort(
        write_msd(
            tmp_path,
            msd_v1=True,
            label_names={"tumor": "PDAC", "sma": "superior_mesenteric_artery", "pancreas": "Pancreas"},
        )
    )
    assert set(c.label_map) == {"background", "pancreas", "tumor", "sma"}
    assert c.structures == ["pancreas", "tumor", "sma"]


def test_unknown_structure_names_are_reported_not_dropped(tmp_path):
    numbering = {"background": 0, "pancreas": 1, "tumor": 2, "sma": 3}
    root = write_msd(tmp_path, numbering=numbering)
    meta = json.loads((root / "dataset.json").read_text())
    meta["labels"] = {"background": 0, "pancreas": 1, "tumor": 2, "kidney": 3}
    (root / "dataset.json").write_text(json.dumps(meta))
    c = load_cohort(root)
    assert c.unmapped_labels == {"kidney": 3}
    assert (c.load_case("case00").mask == INDEX["sma"]).sum() == 0  # loaded as background


def test_manifest_csv_with_relative_paths(tmp_path):
    write_msd(tmp_path / "ds")
    rows = [
        {
            "case_id": f"m{i}",
            "image": f"ds/imagesTr/case0{i}_0000.nii.gz",
            "mask": f"ds/labelsTr/case0{i}.nii.gz",
            "label": ["resectable", "borderline", "LA"][i],
            "site": "A" if i else "B",
            "age": 50 + i,
        }
        for i in range(3)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    c = load_cohort(tmp_path / "manifest.csv")
    assert c.case_ids == ["m0", "m1", "m2"]
    assert c.labels.tolist() == [0, 1, 2]
    assert c.table["group"].tolist() == ["B", "A", "A"]
    assert c.clinical_schema["age"].kind == "continuous"
    # manifests without dataset.json use canonical numbering: pancreas 1, tumor 2, sma 3 -> 1, 2, 7
    m = c.load_case("m0").mask
    assert set(np.unique(m)) <= {0, 1, 2, 3}


def test_fingerprint_changes_with_a_clinical_value_and_a_voxel(tmp_path):
    root = write_msd(tmp_path)
    f0 = load_cohort(root).fingerprint
    assert load_cohort(root).fingerprint == f0
    df = pd.read_csv(root / "clinical.csv")
    df.loc[0, "age"] = 61
    df.to_csv(root / "clinical.csv", index=False)
    f1 = load_cohort(root).fingerprint
    assert f1 != f0


def test_subset_keeps_order_and_rejects_unknown_ids(tmp_path):
    c = load_cohort(write_msd(tmp_path))
    s = c.subset(["case02", "case00"])
    assert s.case_ids == ["case02", "case00"] and s.labels.tolist() == [2, 0]
    assert s.clinical.index.tolist() == ["case02", "case00"]
    with pytest.raises(DataError, match="nope"):
        c.subset(["nope"])


# -- clinical table discipline: only the dictionary's variables reach a model ---------------------------
def test_columns_outside_the_dictionary_are_ignored_with_a_warning_never_used(tmp_path):
    from resectbench.data.validate import validate_cohort

    root = write_msd(tmp_path / "ds", n=3)
    table = pd.read_csv(root / "clinical.csv")
    table.insert(0, "Unnamed: 0", table["label"].rank(method="first"))  # an exported index sorted by label
    table["favourite_colour"] = ["blue", "red", "green"]
    table["CA19-9"] = [-99, 40, -99]
    table.to_csv(root / "clinical.csv", index=False)
    cohort = load_cohort(root)
    assert list(cohort.clinical.columns) == ["age", "sex", "ca19_9_baseline"]
    ignored = cohort.info["ignored_columns"]
    assert set(ignored) == {"Unnamed: 0", "favourite_colour", "CA19-9"}
    assert "give it column = 'CA19-9'" in ignored["CA19-9"]  # the variable it may be, and how to map it
    warnings = " ".join(validate_cohort(root).warnings)
    assert "column 'Unnamed: 0' is ignored" in warnings and "column 'favourite_colour' is ignored" in warnings


def test_a_dictionary_maps_a_sites_column_names_and_sentinels_onto_the_variables(tmp_path):
    from resectbench.errors import InvalidCohortError

    root = write_msd(tmp_path / "ds", n=3)
    table = pd.read_csv(root / "clinical.csv").rename(columns={"ca19_9_baseline": "CA19-9"})
    table["blood_glucose"] = [5.5, -99, 7.0]  # mmol/L, -99 = not measured
    table.to_csv(root / "clinical.csv", index=False)
    dictionary = pd.DataFrame(
        [
            {"variable": "ca19_9_baseline", "column": "CA19-9", "unit": "", "missing": ""},
            {"variable": "glucose", "column": "blood_glucose", "unit": "mmol/L", "missing": "-99"},
        ]
    )
    # glucose has a column only under the site's name: refused, and the message names the likely column
    (root / "data_dictionary.csv").write_text(
        "variable,column,unit,missing\nca19_9_baseline,CA19-9,,\nglucose,,mmol/L,-99\n"
    )
    with pytest.raises(InvalidCohortError, match=r"no column for variable 'glucose'.*'blood_glucose'\?"):
        load_cohort(root)
    dictionary.to_csv(root / "data_dictionary.csv", index=False)
    cohort = load_cohort(root)
    assert "CA19-9" not in cohort.clinical.columns and "blood_glucose" not in cohort.info["ignored_columns"]
    np.testing.assert_allclose(cohort.clinical["ca19_9_baseline"], [100.0, 200.0, 300.0])
    glucose = cohort.clinical["glucose"].to_numpy()
    assert np.isnan(glucose[1]) and glucose[0] == pytest.approx(5.5 * 18.016)  # sentinel missing, unit converted
    # a column mapped onto a variable the table also has is ambiguous
    table["ca19_9_baseline"] = [1, 2, 3]
    table.to_csv(root / "clinical.csv", index=False)
    with pytest.raises(InvalidCohortError, match="'CA19-9' is mapped to 'ca19_9_baseline', and the table also has"):
        load_cohort(root)


def test_a_toml_dictionary_can_rename_columns_too(tmp_path):
    root = write_msd(tmp_path / "ds", n=3)
    pd.read_csv(root / "clinical.csv").rename(columns={"age": "age_years"}).to_csv(root / "clinical.csv", index=False)
    (tmp_path / "site.toml").write_text('age = {column = "age_years"}\n')
    cohort = load_cohort(root, data_dictionary=tmp_path / "site.toml")
    assert list(cohort.clinical["age"]) == [60.0, 61.0, 62.0] and not cohort.info["ignored_columns"]


def test_a_column_the_dictionary_marks_not_recorded_is_left_out(tmp_path):
    root = write_msd(tmp_path / "ds", n=3)
    (root / "data_dictionary.csv").write_text("variable,column,required\nca19_9_baseline,-,false\n")
    cohort = load_cohort(root)  # the site's ca19_9_baseline means something else: not read
    assert "ca19_9_baseline" not in cohort.clinical.columns
    assert "does not record it" in cohort.info["ignored_columns"]["ca19_9_baseline"]
    assert cohort.info["missing_variables"] == {"ca19_9_baseline": "optional in data_dictionary.csv"}


def test_a_manifest_without_a_label_column_reads_as_new_patients(tmp_path):
    root = write_msd(tmp_path / "ds", n=3)
    rows = [
        {"case_id": p.name[: -len("_0000.nii.gz")], "image": str(p), "age": 60}
        for p in sorted((root / "imagesTr").iterdir())
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(DataError, match="no label column"):
        load_cohort(tmp_path / "new.csv")  # a training cohort needs its labels
    cohort = load_cohort(tmp_path / "new.csv", require_labels=False)
    assert list(cohort.labels) == [-1, -1, -1] and not cohort.labelled.any() and not cohort.has_masks
    assert list(cohort.clinical["age"]) == [60.0, 60.0, 60.0]
