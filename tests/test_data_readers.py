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
