"""Models declare what they need from a cohort (models/needs.py): `run` refuses an unfit model before any
work, naming what is missing, `data validate` lists which models a cohort can feed, and masks that group
vessels (PANORAMA's "arteries" / "veins") are told apart from masks that name them."""

from __future__ import annotations

import json

import pytest
from data_fixtures import write_msd
from typer.testing import CliRunner

from resectbench import registry as reg
from resectbench.cli.app import build_app
from resectbench.data import load_cohort
from resectbench.models.needs import Needs, check_models, unmet
from resectbench.profiles import get_profile

MSD_TASK07 = {"background": 0, "pancreas": 1, "tumor": 2}  # MSD Task07: pancreas and tumour, no vessels


def invoke(*args):
    return CliRunner().invoke(build_app(), list(map(str, args)), catch_exceptions=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_run_refuses_a_model_whose_masks_lack_the_vessels_it_reads_before_any_work(tmp_path):
    data = write_msd(tmp_path / "task07", n=12, numbering=MSD_TASK07)
    run_dir = tmp_path / "run"
    res = invoke("run", "-m", "geometric-rules-oracle", "--data", data, "--run-dir", run_dir, "--outer-folds", 2)
    assert res.exit_code == 2, res.output
    out = flat(res.output)
    assert "cannot feed 1 model(s) - geometric-rules-oracle: its masks must name sma, celiac_trunk" in out
    assert "(it has pancreas, tumor)" in out and "rule set 'nccn-2019' reads the contact of each by name" in out
    assert not run_dir.exists()  # refused before the run directory is written
    # a model that needs no vessel runs on the same cohort
    res = invoke(
        "run", "-m", "clinical-sklearn", "--data", data, "--run-dir", run_dir, "--outer-folds", 2, "--no-references"
    )
    assert res.exit_code == 0, res.output


def test_grouped_vessel_labels_are_named_as_such_in_the_refusal(tmp_path):
    numbering = {"background": 0, "pancreas": 1, "tumor": 2, "sma": 3, "smv": 4}
    data = write_msd(tmp_path / "panorama", n=3, numbering=numbering, label_names={"sma": "arteries", "smv": "veins"})
    cohort = load_cohort(data)
    assert cohort.structures == ["pancreas", "tumor"]  # a group names no vessel: read as background
    why = " ".join(unmet(Needs(images=True, masks="training", structures=("tumor", "sma", "smv")), cohort))
    assert "'arteries' lumps sma, celiac_trunk, common_hepatic_artery in one label" in why
    assert "'veins' lumps smv, portal_vein in one label, which names no vessel" in why
    # the models that do not read vessels by name can still use these masks
    models = {n: reg.models.create(n) for n in ("geometric-rules", "clinical-sklearn", "cnn3d-fusion")}
    unfit = check_models(models, cohort, get_profile("cpu"))
    assert set(unfit) == {"geometric-rules"}


def test_each_need_is_checked():
    class FakeCohort:  # what unmet reads of a cohort
        def __init__(self, masks, structures, clinical_columns):
            import pandas as pd

            self.table = pd.DataFrame({"mask": masks})
            self.structures = structures
            self.clinical = pd.DataFrame(columns=clinical_columns)
            self.unmapped_labels = {}

        def __len__(self):
            return len(self.table)

    full = FakeCohort(["a.nii.gz", "b.nii.gz"], ["pancreas", "tumor", "sma"], ["age"])
    assert unmet(Needs(images=True, clinical=True, masks="every case", structures=("tumor", "sma")), full) == []
    half = FakeCohort(["a.nii.gz", None], ["tumor"], [])
    assert "1 of 2 cases have none" in unmet(Needs(masks="every case"), half)[0]
    assert unmet(Needs(masks="training"), half) == []  # masks on some training cases are enough
    assert "no case has a mask" in unmet(Needs(masks="training"), FakeCohort([None], [], []))[0]
    assert "has none" in unmet(Needs(clinical=True), half)[0]
    assert "CUDA" in unmet(Needs(gpu=True), full, device="cpu")[0] and unmet(Needs(gpu=True), full, "cuda:0") == []
    with pytest.raises(ValueError, match="masks must be one of"):
        Needs(masks="some")
    both = Needs(clinical=True, structures=("tumor",)) | Needs(images=True, masks="every case", structures=("sma",))
    assert both == Needs(images=True, clinical=True, masks="every case", structures=("tumor", "sma"))


def test_needs_follow_the_models_settings():
    cpu, whole = get_profile("cpu"), get_profile("cpu-whole")
    fusion = reg.models.create("swinunetr-fusion")
    assert fusion.needs(cpu).structures[:2] == ("tumor", "sma") and fusion.needs(cpu).clinical
    pooled = reg.models.create("swinunetr-fusion", **{"backbone.embedding": "pooled"})
    assert pooled.needs(cpu).structures == ("tumor",)  # the cascade's localiser learns the tumour
    assert pooled.needs(whole).masks == "none"  # whole view, pooled: masks only feed the auxiliary loss
    assert reg.models.create("geometric-rules-oracle").needs().masks == "every case"
    assert reg.models.create("geometric-rules").needs().masks == "training"
    assert not reg.models.create("geometric-features", use_clinical=False).needs().clinical
    ensemble = reg.models.create("expert-ensemble").needs(cpu)
    assert ensemble.clinical and ensemble.images and "sma" in ensemble.structures


def test_validate_lists_which_models_the_cohort_can_feed(tmp_path):
    data = write_msd(tmp_path / "task07", n=3, numbering=MSD_TASK07)
    res = invoke("data", "validate", data)
    assert res.exit_code == 0, res.output
    out = flat(res.output)
    assert "models it can feed:" in out and "clinical-sklearn" in out.split("models it can feed:")[1].split("cannot")[0]
    assert "cannot feed geometric-rules: its masks must name sma" in out
    report = json.loads(invoke("data", "validate", data, "--json").output)
    assert report["models"]["dummy"] == [] and report["models"]["tat"]


#: docs/data.md, "Public layouts": the dataset.json that reads PANORAMA's label files
PANORAMA_LABELS = {
    "background": 0,
    "PDAC lesion": 1,
    "veins": 2,
    "arteries": 3,
    "pancreas parenchyma": 4,
    "pancreatic duct": 5,
    "common bile duct": 6,
}


def test_the_documented_panorama_mapping_reads_its_labels_and_validate_says_what_groups_mean(tmp_path):
    from pathlib import Path

    numbering = {"background": 0, "tumor": 1, "smv": 2, "sma": 3, "pancreas": 4}  # PANORAMA's voxel values
    data = write_msd(tmp_path / "panorama", n=3, numbering=numbering)
    meta = json.loads((data / "dataset.json").read_text())
    (data / "dataset.json").write_text(json.dumps({**meta, "labels": PANORAMA_LABELS}))
    docs = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    assert json.dumps({"labels": PANORAMA_LABELS}) in docs  # the test reads what the docs print
    cohort = load_cohort(data)
    assert cohort.structures == ["pancreas", "tumor", "pancreatic_duct", "bile_duct"]
    assert cohort.unmapped_labels == {"veins": 2, "arteries": 3}
    case = cohort.load_case(cohort.case_ids[0])
    assert (case.mask == 2).any() and not (case.mask == 7).any()  # tumour read; the artery group is background
    out = flat(invoke("data", "validate", data).output)
    assert "label 'arteries' (value 3) lumps sma, celiac_trunk, common_hepatic_artery in one label" in out
    assert "cannot feed geometric-rules:" in out and "'veins' lumps smv, portal_vein in one label" in out
